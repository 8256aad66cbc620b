/**
 * Ops over the socket (PROTOCOL §4): sends `op` / `op-cancel`, matches each `op-ack` or
 * `error` to its op, and keeps the `ops` subscription, resumed by `seq` like every other
 * subscription, so a device learns every status change it missed.
 */
import type { RealtimeClient, Subscription } from '../client.js';
import type { OpAck, OpStatusEntry, ServerFrame, Since } from '../types.js';
import type { Fields } from './types.js';

/** An `op` message (PROTOCOL §4) without its `type`. */
export interface OpMessage {
  opId: string;
  kind: string;
  entity: string;
  data: Fields;
  baseVersion?: number;
  txHash?: string;
}

/** The server answered an op with `error` (`op_mismatch`, `invalid_op`, `unauthorized`, `unknown_type`, …). */
export class OpError extends Error {
  constructor(readonly code: string, message: string, readonly opId: string) {
    super(message);
    this.name = 'OpError';
  }
}

/** The connection dropped (or was never open) before the server answered. */
export class OfflineError extends Error {
  constructor() {
    super('not connected');
    this.name = 'OfflineError';
  }
}

/** What the optimistic manager and the offline queue need from the server. */
export interface OpsTransport {
  readonly isConnected: boolean;
  /** Sends the op; resolves with its `op-ack`, rejects with `OpError` or `OfflineError`. */
  send(op: OpMessage): Promise<OpAck>;
  cancel(opId: string): Promise<OpAck>;
  /** Every status change of the address's ops (the `ops` subscription), each once, in `seq` order. */
  onStatus(listener: (op: OpStatusEntry) => void): () => void;
  /** Connected or not, at every change. */
  onConnection(listener: (connected: boolean) => void): () => void;
}

/** Most ops awaiting their answer on the connection; more are refused with `OpError('too_many_in_flight')`. */
export const MAX_IN_FLIGHT = 256;

interface Waiter {
  resolve: (ack: OpAck) => void;
  reject: (e: Error) => void;
}

export class OpsChannel implements OpsTransport {
  readonly subscription: Subscription;
  private readonly waiting = new Map<string, Waiter>();
  private readonly statusListeners = new Set<(op: OpStatusEntry) => void>();
  private readonly stops: Array<() => void>;

  /** Opens the `ops` subscription on `client` (which must carry a token); `since` resumes a stored cursor. */
  constructor(private readonly client: RealtimeClient, options: { since?: Since } = {}) {
    this.subscription = client.subscribe({ type: 'ops' }, options.since === undefined ? {} : { since: options.since });
    this.stops = [
      client.onFrame((f) => this.frame(f)),
      this.subscription.onEntry((e) => {
        if (e.kind === 'op-status') for (const l of [...this.statusListeners]) l(e.op);
      }),
      client.onStateChange((s) => {
        if (s !== 'connected') this.failAll(() => new OfflineError());
      }),
    ];
  }

  get isConnected(): boolean {
    return this.client.state === 'connected';
  }

  /** The `seq` up to which every status change was delivered: store it to resume after a reload. */
  get lastSeq(): number | null {
    return this.subscription.lastSeq;
  }

  send(op: OpMessage): Promise<OpAck> {
    return this.request(op.opId, { type: 'op', ...op });
  }

  cancel(opId: string): Promise<OpAck> {
    return this.request(opId, { type: 'op-cancel', opId });
  }

  onStatus(listener: (op: OpStatusEntry) => void): () => void {
    this.statusListeners.add(listener);
    return () => {
      this.statusListeners.delete(listener);
    };
  }

  onConnection(listener: (connected: boolean) => void): () => void {
    return this.client.onStateChange((s) => listener(s === 'connected'));
  }

  close(): void {
    for (const stop of this.stops) stop();
    this.subscription.unsubscribe();
    this.failAll(() => new OfflineError());
  }

  private request(opId: string, message: Record<string, unknown>): Promise<OpAck> {
    return new Promise<OpAck>((resolve, reject) => {
      if (this.waiting.size >= MAX_IN_FLIGHT) return reject(new OpError('too_many_in_flight', `more than ${MAX_IN_FLIGHT} ops awaiting an answer`, opId));
      // A second request for one op (a resend) shares the answer of the first.
      const prior = this.waiting.get(opId);
      this.waiting.set(opId, {
        resolve: (a) => (prior?.resolve(a), resolve(a)),
        reject: (e) => (prior?.reject(e), reject(e)),
      });
      if (!this.client.sendMessage(message)) this.settle(opId, new OfflineError());
    });
  }

  private settle(opId: string, outcome: OpAck | Error): void {
    const w = this.waiting.get(opId);
    if (w === undefined) return;
    this.waiting.delete(opId);
    if (outcome instanceof Error) w.reject(outcome);
    else w.resolve(outcome);
  }

  private failAll(make: (opId: string) => Error): void {
    for (const opId of [...this.waiting.keys()]) this.settle(opId, make(opId));
  }

  private frame(f: ServerFrame): void {
    if (f.type === 'authenticated' && this.subscription.lastError?.code === 'unauthorized') {
      // Subscribed before signing in: the server refused the filter; ask again now.
      this.subscription.lastError = null;
      this.client.sendMessage(this.subscription.request());
    } else if (f.type === 'op-ack') {
      const { type: _, ...ack } = f;
      this.settle(f.opId, ack);
    } else if (f.type === 'error') {
      const opId = f.opId ?? f.id;
      if (opId !== undefined && this.waiting.has(opId)) this.settle(opId, new OpError(f.code, f.message, opId));
      // A server without ops cannot name the op it did not understand: every op in flight failed alike.
      else if (f.code === 'unknown_type') this.failAll((opId) => new OpError(f.code, f.message, opId));
    }
  }
}
