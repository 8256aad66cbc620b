import { backoffDelay } from './backoff.js';
import { DEFAULT_MAX_EVENTS, EventStore } from './store.js';
import type { ChainEvent, Filter, OpsFilter, OpStatusEntry, Rollback, ServerFrame, Since } from './types.js';

/** What a user can show: connecting (also while waiting to retry), connected, disconnected. */
export type ConnectionState = 'connecting' | 'connected' | 'disconnected';

/**
 * The part of the WebSocket API the client uses: the browser's global or Node's `ws`. The
 * handlers' parameters are `never` so that both implementations' own event types fit.
 */
export interface WebSocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: never) => unknown) | null;
  onclose: ((ev: never) => unknown) | null;
  onerror: ((ev: never) => unknown) | null;
  onmessage: ((ev: never) => unknown) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface RealtimeClientOptions {
  /** `ws://host:port/ws`, or a function read at every (re)connect. */
  url: string | (() => string);
  /** Default: `globalThis.WebSocket` (browsers, Node ≥ 22). In Node 20 pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** Smallest backoff ceiling, ms. Default 500. */
  minReconnectDelay?: number;
  /** Largest backoff ceiling, ms. Default 20000. */
  maxReconnectDelay?: number;
  /** A `ping` is sent this long after the last frame received, ms. Default 15000. */
  pingInterval?: number;
  /** Silence after a `ping` that marks the connection dead (closed, then reconnected), ms. Default 10000. */
  pongTimeout?: number;
  /** Events kept per subscription (oldest dropped first). Default 1000. */
  maxEvents?: number;
  /** Connect in the constructor. Default true. */
  autoConnect?: boolean;
  /** Source of randomness for the jitter (tests). Default `Math.random`. */
  random?: () => number;
  /** Client token (PROTOCOL §4), sent as `auth` first on every connection; a function is read at each connect. */
  token?: string | (() => string | null);
}

export const DEFAULTS = {
  minReconnectDelay: 500,
  maxReconnectDelay: 20_000,
  pingInterval: 15_000,
  pongTimeout: 10_000,
  maxEvents: DEFAULT_MAX_EVENTS,
} as const;

export interface SubscribeOptions {
  /** Start point of the first subscribe; later resumes use the last delivered `seq`. Absent: live only. */
  since?: Since;
  /** Events kept by this subscription's store. Default: the client's `maxEvents`. */
  maxEvents?: number;
}

/** An entry delivered to a subscription, in `seq` order, each once. */
export type Entry =
  | { kind: 'event'; event: ChainEvent }
  | { kind: 'rollback'; rollback: Rollback }
  | { kind: 'op-status'; op: OpStatusEntry };

export interface ServerError {
  code: string;
  message: string;
}

const OPEN = 1;

/** One subscription: its filter, its store of events, and its resume cursor. */
export class Subscription {
  readonly id: string;
  readonly filter: Filter | OpsFilter;
  readonly store: EventStore;
  /** True once the server sent `caught-up` on the current connection. */
  caughtUp = false;
  /** The last `error` the server answered this subscription with, if any. */
  lastError: ServerError | null = null;
  private readonly since: Since | undefined;
  private readonly entryListeners = new Set<(entry: Entry) => void>();
  private readonly client: RealtimeClient;
  private active = true;

  /** @internal */
  constructor(client: RealtimeClient, id: string, filter: Filter | OpsFilter, options: SubscribeOptions, maxEvents: number) {
    this.client = client;
    this.id = id;
    this.filter = filter;
    this.since = options.since;
    this.store = new EventStore(options.maxEvents ?? maxEvents);
  }

  /** The `seq` up to which every matching entry was delivered, or null. */
  get lastSeq(): number | null {
    return this.store.lastSeq;
  }

  get isActive(): boolean {
    return this.active;
  }

  /** Events (rolled-back ones removed) in `seq` order: an immutable array, new only on change. */
  get events(): readonly ChainEvent[] {
    return this.store.getSnapshot();
  }

  /** Calls `listener` for every entry delivered from now on; returns the function that stops it. */
  onEntry(listener: (entry: Entry) => void): () => void {
    this.entryListeners.add(listener);
    return () => {
      this.entryListeners.delete(listener);
    };
  }

  unsubscribe(): void {
    if (!this.active) return;
    this.active = false;
    this.client.release(this);
  }

  /** @internal the subscribe frame for the current connection */
  request(): Record<string, unknown> {
    const cursor = this.store.lastSeq;
    const since = cursor !== null ? { seq: cursor } : this.since;
    return since === undefined
      ? { type: 'subscribe', id: this.id, filter: this.filter }
      : { type: 'subscribe', id: this.id, filter: this.filter, since };
  }

  /** @internal */
  deliver(entry: Entry): void {
    let applied: boolean;
    if (entry.kind === 'op-status') {
      // Op statuses move the cursor only; the ops layer keeps them.
      const last = this.store.lastSeq;
      applied = last === null || entry.op.seq > last;
      if (applied) this.store.markDelivered(entry.op.seq);
    } else {
      applied = entry.kind === 'event' ? this.store.applyEvent(entry.event) : this.store.applyRollback(entry.rollback);
    }
    if (!applied) return;
    for (const listener of [...this.entryListeners]) listener(entry);
  }
}

/**
 * A WebSocket client of timebank-realtime. It reconnects by itself (exponential backoff, full
 * jitter), detects a dead connection by heartbeat, and resumes every subscription from the
 * last `seq` it delivered, after a reconnect and after a `resync`, so no event is lost or
 * repeated. The only buffers are the subscriptions' stores (`maxEvents` each); nothing is
 * queued for sending: subscribe frames are rebuilt from the subscriptions at each connect.
 */
export class RealtimeClient {
  private readonly options: Required<Omit<RealtimeClientOptions, 'WebSocket' | 'autoConnect' | 'token'>>;
  private token: RealtimeClientOptions['token'];
  private readonly frameListeners = new Set<(frame: ServerFrame) => void>();
  private readonly WebSocketImpl: WebSocketConstructor;
  private socket: WebSocketLike | null = null;
  private currentState: ConnectionState = 'disconnected';
  private wanted = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private nextId = 1;
  private readonly subscriptions = new Map<string, Subscription>();
  private readonly stateListeners = new Set<(state: ConnectionState) => void>();

  constructor(options: RealtimeClientOptions) {
    const ctor = options.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
    if (ctor === undefined) {
      throw new TypeError('no WebSocket implementation: pass options.WebSocket (e.g. the ws package)');
    }
    this.WebSocketImpl = ctor;
    this.options = {
      url: options.url,
      minReconnectDelay: options.minReconnectDelay ?? DEFAULTS.minReconnectDelay,
      maxReconnectDelay: options.maxReconnectDelay ?? DEFAULTS.maxReconnectDelay,
      pingInterval: options.pingInterval ?? DEFAULTS.pingInterval,
      pongTimeout: options.pongTimeout ?? DEFAULTS.pongTimeout,
      maxEvents: options.maxEvents ?? DEFAULTS.maxEvents,
      random: options.random ?? Math.random,
    };
    this.token = options.token;
    if (options.autoConnect ?? true) this.connect();
  }

  get state(): ConnectionState {
    return this.currentState;
  }

  /** Calls `listener` with every new state; returns the function that stops it. */
  onStateChange(listener: (state: ConnectionState) => void): () => void {
    this.stateListeners.add(listener);
    return () => {
      this.stateListeners.delete(listener);
    };
  }

  /** Opens the connection (and keeps reopening it) until `disconnect()`. */
  connect(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.attempt = 0;
    this.open();
  }

  /** Closes the connection and stops reconnecting. Subscriptions stay, to resume on `connect()`. */
  disconnect(): void {
    this.wanted = false;
    this.clearTimers();
    const socket = this.socket;
    this.socket = null;
    if (socket !== null) {
      detach(socket);
      socket.close(1000, 'client disconnect');
    }
    this.setState('disconnected');
  }

  /** Sets the client token (`null`: none from the next connection on) and sends `auth` now if connected. */
  authenticate(token: string | (() => string | null) | null): void {
    this.token = token ?? undefined;
    this.sendAuth();
  }

  /** Calls `listener` with every frame the server sends (after the client handled it); returns the function that stops it. */
  onFrame(listener: (frame: ServerFrame) => void): () => void {
    this.frameListeners.add(listener);
    return () => {
      this.frameListeners.delete(listener);
    };
  }

  /** Sends a client message now; false (nothing sent, nothing queued) when not connected. */
  sendMessage(message: Record<string, unknown>): boolean {
    return this.send(message);
  }

  /** Subscribes to `filter`; the subscription lives (across reconnects) until its `unsubscribe()`. */
  subscribe(filter: Filter | OpsFilter, options: SubscribeOptions = {}): Subscription {
    const sub = new Subscription(this, `s${this.nextId++}`, filter, options, this.options.maxEvents);
    this.subscriptions.set(sub.id, sub);
    this.send(sub.request());
    return sub;
  }

  /** The active subscriptions (for inspection and tests). */
  get activeSubscriptions(): readonly Subscription[] {
    return [...this.subscriptions.values()];
  }

  /** @internal called by `Subscription.unsubscribe()` */
  release(sub: Subscription): void {
    if (this.subscriptions.get(sub.id) !== sub) return;
    this.subscriptions.delete(sub.id);
    this.send({ type: 'unsubscribe', id: sub.id });
  }

  private open(): void {
    this.reconnectTimer = null;
    if (!this.wanted) return;
    this.setState('connecting');
    const url = typeof this.options.url === 'function' ? this.options.url() : this.options.url;
    let socket: WebSocketLike;
    try {
      socket = new this.WebSocketImpl(url);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      this.attempt = 0;
      this.setState('connected');
      this.sendAuth();
      for (const sub of this.subscriptions.values()) {
        sub.caughtUp = false;
        this.send(sub.request());
      }
      this.armHeartbeat();
    };
    socket.onmessage = (ev: { data: unknown }) => {
      if (this.socket !== socket) return;
      this.armHeartbeat();
      if (typeof ev.data !== 'string') return;
      let frame: ServerFrame;
      try {
        frame = JSON.parse(ev.data) as ServerFrame;
      } catch {
        return;
      }
      this.handle(frame);
      for (const listener of [...this.frameListeners]) listener(frame);
    };
    socket.onerror = () => {
      // onclose follows and does the reconnecting.
    };
    socket.onclose = () => {
      if (this.socket !== socket) return;
      this.dropped();
    };
  }

  private dropped(): void {
    const socket = this.socket;
    this.socket = null;
    this.clearTimers();
    if (socket !== null) detach(socket);
    if (this.wanted) this.scheduleReconnect();
    else this.setState('disconnected');
  }

  private scheduleReconnect(): void {
    this.setState('connecting');
    const delay = backoffDelay(this.attempt++, this.options.minReconnectDelay, this.options.maxReconnectDelay, this.options.random);
    this.reconnectTimer = setTimeout(() => this.open(), delay);
  }

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case 'event':
        this.subscriptions.get(frame.sub)?.deliver({ kind: 'event', event: frame.event });
        break;
      case 'rollback':
        this.subscriptions.get(frame.sub)?.deliver({ kind: 'rollback', rollback: frame.rollback });
        break;
      case 'op-status':
        this.subscriptions.get(frame.sub)?.deliver({ kind: 'op-status', op: frame.op });
        break;
      case 'caught-up': {
        const sub = this.subscriptions.get(frame.sub);
        if (sub !== undefined) {
          sub.store.markDelivered(frame.seq);
          sub.caughtUp = true;
        }
        break;
      }
      case 'resync': {
        // The subscription ended server-side; everything up to frame.seq was delivered.
        const sub = this.subscriptions.get(frame.sub);
        if (sub !== undefined) {
          sub.store.markDelivered(frame.seq);
          sub.caughtUp = false;
          this.send(sub.request());
        }
        break;
      }
      case 'error': {
        const sub = frame.id === undefined ? undefined : this.subscriptions.get(frame.id);
        if (sub !== undefined) sub.lastError = { code: frame.code, message: frame.message };
        break;
      }
      default:
        break;
    }
  }

  private send(message: Record<string, unknown>): boolean {
    const socket = this.socket;
    if (socket === null || socket.readyState !== OPEN || this.currentState !== 'connected') return false;
    socket.send(JSON.stringify(message));
    return true;
  }

  private sendAuth(): void {
    const token = typeof this.token === 'function' ? this.token() : this.token;
    if (typeof token === 'string' && token !== '') this.send({ type: 'auth', token });
  }

  /** After every frame received: ping after `pingInterval` of silence, then expect an answer. */
  private armHeartbeat(): void {
    if (this.pingTimer !== null) clearTimeout(this.pingTimer);
    if (this.pongTimer !== null) clearTimeout(this.pongTimer);
    this.pongTimer = null;
    this.pingTimer = setTimeout(() => {
      this.pingTimer = null;
      this.send({ type: 'ping' });
      this.pongTimer = setTimeout(() => {
        this.pongTimer = null;
        const socket = this.socket;
        if (socket === null) return;
        socket.close(4000, 'heartbeat timeout');
        this.dropped();
      }, this.options.pongTimeout);
    }, this.options.pingInterval);
  }

  private clearTimers(): void {
    for (const timer of [this.reconnectTimer, this.pingTimer, this.pongTimer]) {
      if (timer !== null) clearTimeout(timer);
    }
    this.reconnectTimer = this.pingTimer = this.pongTimer = null;
  }

  private setState(state: ConnectionState): void {
    if (state === this.currentState) return;
    this.currentState = state;
    for (const listener of [...this.stateListeners]) listener(state);
  }
}

/** Silences a socket the client is done with (no-op handlers: `ws` throws on an unheard error). */
function detach(socket: WebSocketLike): void {
  const ignore = (): void => {};
  socket.onopen = socket.onmessage = socket.onerror = socket.onclose = ignore;
}
