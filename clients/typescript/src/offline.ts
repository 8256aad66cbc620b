/**
 * The offline queue: ops made while offline are kept in IndexedDB (a page reload or a browser
 * restart loses none) and sent in order, each exactly once, when the page is back online.
 *
 * One drainer at a time per origin: the Web Locks API where the browser has it (released
 * when its tab closes), else a lease row in IndexedDB. The drainer sends the oldest item,
 * waits for its `op-ack`, and only then deletes it; a drainer that dies between the two
 * leaves the item for the next one, whose resend the server answers with the op's current
 * status (the `opId` is the op's identity), so the op still reaches the log once. Tabs tell
 * each other of changes over a BroadcastChannel.
 */
import { OpError } from './ops/channel.js';
import type { OpMessage, OpsTransport } from './ops/channel.js';
import type { OpAck } from './types.js';

export interface QueuedItem {
  /** Order of enqueueing (IndexedDB key). */
  readonly id: number;
  readonly opId: string;
  readonly op: OpMessage;
  readonly enqueuedAt: number;
}

/** An op to queue; `opId` is made when absent. */
export type NewOp = Omit<OpMessage, 'opId'> & { opId?: string };

export interface OfflineQueueOptions {
  /** Where ops go when online; may also be given later with `setTransport`. */
  transport?: OpsTransport;
  /** IndexedDB database (and lock / channel) name. Default `timebank-realtime-offline`. */
  name?: string;
  /** Most items kept; `enqueue` beyond it rejects with a RangeError. Default 1000. */
  maxItems?: number;
  /** Lease of the drainer where Web Locks are missing, ms. Default 15000. */
  leaseMs?: number;
  /** Default `globalThis.indexedDB`. */
  indexedDB?: IDBFactory;
  /** Longest wait before retrying an op the server could not take yet (`rate_limited`, `unavailable`, …), ms; the wait doubles from 1 s. Default 60000. */
  maxRetryDelay?: number;
  /** Use the Web Locks API when present. Default true. */
  useWebLocks?: boolean;
  /** The lock manager. Default `navigator.locks`. */
  locks?: Locks;
}

/**
 * Refusals that a resend cannot change: the op leaves the queue. Any other code (not signed
 * in, `rate_limited`, `unavailable`, `too_many_open_ops`, a server without ops) keeps it first
 * in line for a later retry.
 */
const PERMANENT = new Set(['invalid_op', 'op_mismatch', 'op_too_large']);

const QUEUE = 'queue';
const META = 'meta';
const DRAINER = 'drainer';

function request<T>(r: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

function committed(tx: IDBTransaction): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = tx.onabort = () => reject(tx.error ?? new Error('IndexedDB transaction aborted'));
  });
}

/** The part of the Web Locks API (`navigator.locks`) the queue uses: exclusive locks by name. */
export type Locks = { request(name: string, cb: () => Promise<void>): Promise<void> };

/** Is the browser online (true where it cannot tell)? */
function browserOnline(): boolean {
  const nav = (globalThis as { navigator?: { onLine?: boolean } }).navigator;
  return nav?.onLine ?? true;
}

export interface OfflineSnapshot {
  readonly isOnline: boolean;
  readonly queuedItems: readonly QueuedItem[];
}

export class OfflineQueue {
  readonly name: string;
  private transport: OpsTransport | undefined;
  private readonly maxItems: number;
  private readonly leaseMs: number;
  private readonly locks: Locks | undefined;
  private readonly db: Promise<IDBDatabase>;
  private readonly channel: BroadcastChannel | null;
  private readonly me = crypto.randomUUID();
  private snapshot: OfflineSnapshot = Object.freeze({ isOnline: false, queuedItems: Object.freeze([]) });
  private readonly listeners = new Set<() => void>();
  private readonly ackListeners = new Set<(ack: OpAck) => void>();
  private readonly errorListeners = new Set<(e: unknown) => void>();
  private readonly failListeners = new Set<(opId: string, e: OpError) => void>();
  private draining: Promise<void> | null = null;
  private again = false;
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private waitTimer: ReturnType<typeof setTimeout> | null = null;
  private waitMs = 0;
  private readonly maxWaitMs: number;
  private stops: Array<() => void> = [];
  private closed = false;

  constructor(options: OfflineQueueOptions = {}) {
    this.name = options.name ?? 'timebank-realtime-offline';
    this.maxItems = options.maxItems ?? 1000;
    this.leaseMs = options.leaseMs ?? 15_000;
    this.maxWaitMs = options.maxRetryDelay ?? 60_000;
    const nav = (globalThis as { navigator?: { locks?: Locks } }).navigator;
    this.locks = options.useWebLocks === false ? undefined : options.locks ?? nav?.locks;
    const idb = options.indexedDB ?? globalThis.indexedDB;
    if (idb === undefined) throw new TypeError('no IndexedDB: pass options.indexedDB');
    const open = idb.open(this.name, 1);
    open.onupgradeneeded = () => {
      const queue = open.result.createObjectStore(QUEUE, { keyPath: 'id', autoIncrement: true });
      queue.createIndex('opId', 'opId', { unique: true });
      open.result.createObjectStore(META);
    };
    this.db = request(open).then((db) => {
      // A newer version of this library opening the database in another tab must not be blocked.
      db.onversionchange = () => db.close();
      return db;
    });
    this.channel = typeof BroadcastChannel === 'function' ? new BroadcastChannel(this.name) : null;
    if (this.channel !== null) {
      this.channel.onmessage = (ev: MessageEvent<{ t: string; ack?: OpAck }>) => {
        if (ev.data.t === 'ack' && ev.data.ack !== undefined) this.emitAck(ev.data.ack);
        if (ev.data.t === 'released') {
          // Only a tab that found the lease taken waits for its release.
          if (this.retryTimer === null) return;
          clearTimeout(this.retryTimer);
          this.retryTimer = null;
        }
        // Only a real change is broadcast, and an empty pass broadcasts nothing: no echo between tabs.
        this.background(this.refresh().then(() => {
          if (this.snapshot.queuedItems.length > 0) return this.drain();
        }));
      };
    }
    const win = globalThis as { addEventListener?: (t: string, l: () => void) => void; removeEventListener?: (t: string, l: () => void) => void };
    if (typeof win.addEventListener === 'function') {
      const onChange = (): void => this.kick();
      win.addEventListener('online', onChange);
      win.addEventListener('offline', onChange);
      this.stops.push(() => {
        win.removeEventListener?.('online', onChange);
        win.removeEventListener?.('offline', onChange);
      });
    }
    if (options.transport !== undefined) this.setTransport(options.transport);
    this.background(this.refresh());
  }

  /** Sends through `transport` from now on (drains at once if online). */
  setTransport(transport: OpsTransport): void {
    this.transport = transport;
    this.stops.push(transport.onConnection(() => this.kick()));
    this.kick();
  }

  /** The browser is online and the socket connected. */
  get isOnline(): boolean {
    return browserOnline() && (this.transport?.isConnected ?? false);
  }

  /** `{isOnline, queuedItems}`: immutable, new only on change. */
  getSnapshot = (): OfflineSnapshot => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** Every `op-ack` of a drained op (from any tab of the origin). */
  onAck(listener: (ack: OpAck) => void): () => void {
    this.ackListeners.add(listener);
    return () => {
      this.ackListeners.delete(listener);
    };
  }

  /** An op the server refused (`op_mismatch`, `invalid_op`, …): it leaves the queue. */
  onFailed(listener: (opId: string, error: OpError) => void): () => void {
    this.failListeners.add(listener);
    return () => {
      this.failListeners.delete(listener);
    };
  }

  /** IndexedDB errors of work the queue does by itself (drains, refreshes). */
  onError(listener: (error: unknown) => void): () => void {
    this.errorListeners.add(listener);
    return () => {
      this.errorListeners.delete(listener);
    };
  }

  /**
   * Stores the op (durably, before resolving) and drains if online. An `opId` already queued
   * keeps its place; a `txHash` it lacked is added (the wallet signed after queueing).
   */
  enqueue = async (op: NewOp): Promise<QueuedItem> => {
    const full: OpMessage = { ...op, opId: op.opId ?? crypto.randomUUID() };
    const db = await this.db;
    const tx = db.transaction(QUEUE, 'readwrite');
    const store = tx.objectStore(QUEUE);
    const done = committed(tx);
    let item: Omit<QueuedItem, 'id'> & { id?: number } = { opId: full.opId, op: full, enqueuedAt: Date.now() };
    let refused = false;
    const existing = store.index('opId').get(full.opId);
    existing.onsuccess = () => {
      const had = existing.result as QueuedItem | undefined;
      if (had !== undefined) {
        item = had;
        if (had.op.txHash === undefined && full.txHash !== undefined) {
          item = { ...had, op: { ...had.op, txHash: full.txHash } };
          store.put(item);
        }
        return;
      }
      const count = store.count();
      count.onsuccess = () => {
        if (count.result >= this.maxItems) {
          refused = true;
          return;
        }
        const added = store.add(item);
        added.onsuccess = () => (item = { ...item, id: added.result as number });
      };
    };
    await done;
    if (refused) throw new RangeError(`the offline queue holds ${this.maxItems} items already`);
    this.post({ t: 'changed' });
    await this.refresh();
    this.background(this.drain());
    return item as QueuedItem;
  };

  /** The queued items, oldest first, read from IndexedDB. */
  async items(): Promise<QueuedItem[]> {
    const db = await this.db;
    return request(db.transaction(QUEUE).objectStore(QUEUE).getAll() as IDBRequest<QueuedItem[]>);
  }

  /** Sends the queued ops in order if online and no other tab is doing it; resolves when this pass ends. */
  drain(): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.draining !== null) {
      this.again = true;
      return this.draining;
    }
    this.draining = (async () => {
      do {
        this.again = false;
        if (!this.isOnline) break;
        if (this.locks !== undefined) await this.locks.request(`${this.name}:drain`, () => this.sendAll());
        else await this.withLease();
      } while (this.again && !this.closed);
    })().finally(() => {
      this.draining = null;
    });
    return this.draining;
  }

  close(): void {
    this.closed = true;
    for (const stop of this.stops) stop();
    this.stops = [];
    if (this.retryTimer !== null) clearTimeout(this.retryTimer);
    if (this.waitTimer !== null) clearTimeout(this.waitTimer);
    this.channel?.close();
    void this.db.then((db) => db.close());
  }

  private async withLease(): Promise<void> {
    if (!(await this.lease(true))) {
      // Another tab drains; it broadcasts when done, and its lease ends at the latest here.
      if (this.retryTimer === null) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = null;
          this.background(this.drain());
        }, this.leaseMs);
      }
      return;
    }
    try {
      await this.sendAll(() => this.lease(true));
    } finally {
      await this.lease(false);
      this.post({ t: 'released' });
    }
  }

  /** Takes or renews (true) or gives up (false) the drainer lease; true when held. */
  private async lease(take: boolean): Promise<boolean> {
    const db = await this.db;
    const tx = db.transaction(META, 'readwrite');
    const store = tx.objectStore(META);
    const done = committed(tx);
    let held = false;
    const get = store.get(DRAINER);
    get.onsuccess = () => {
      const cur = get.result as { owner: string; until: number } | undefined;
      const now = Date.now();
      const free = cur === undefined || cur.owner === this.me || cur.until < now;
      if (take && free) {
        store.put({ owner: this.me, until: now + this.leaseMs }, DRAINER);
        held = true;
      } else if (!take && cur?.owner === this.me) {
        store.delete(DRAINER);
      }
    };
    await done;
    return held;
  }

  private async sendAll(renew?: () => Promise<boolean>): Promise<void> {
    let sent = false;
    try {
      while (!this.closed && this.isOnline && this.transport !== undefined) {
        const db = await this.db;
        const cursor = await request(db.transaction(QUEUE).objectStore(QUEUE).openCursor());
        const head = cursor?.value as QueuedItem | undefined;
        if (head === undefined) break;
        if (renew !== undefined && !(await renew())) break;
        let ack: OpAck;
        try {
          ack = await this.transport.send(head.op);
        } catch (e) {
          if (!(e instanceof OpError)) break; // offline: the next connection drains
          if (!PERMANENT.has(e.code)) {
            this.retryLater();
            break;
          }
          // The server will never take this op: it leaves the queue, and the app hears why.
          await this.remove(head.id);
          sent = true;
          for (const l of [...this.failListeners]) l(head.opId, e);
          continue;
        }
        await this.remove(head.id);
        sent = true;
        this.waitMs = 0;
        this.emitAck(ack);
        this.post({ t: 'ack', ack });
      }
    } finally {
      if (sent) {
        await this.refresh();
        this.post({ t: 'changed' });
      }
    }
  }

  /** The head stays first; a retry comes after a doubling wait (a new connection retries at once). */
  private retryLater(): void {
    this.waitMs = Math.min(this.maxWaitMs, Math.max(1000, this.waitMs * 2));
    if (this.waitTimer !== null) clearTimeout(this.waitTimer);
    this.waitTimer = setTimeout(() => {
      this.waitTimer = null;
      this.background(this.drain());
    }, this.waitMs);
  }

  private async remove(id: number): Promise<void> {
    const db = await this.db;
    const tx = db.transaction(QUEUE, 'readwrite');
    tx.objectStore(QUEUE).delete(id);
    await committed(tx);
  }

  private kick(): void {
    this.background(this.refresh().then(() => this.drain()));
  }

  /** Work nobody awaits: its errors go to `onError` (none once closed: the database is gone on purpose). */
  private background(work: Promise<unknown>): void {
    work.catch((e: unknown) => {
      if (!this.closed) for (const l of [...this.errorListeners]) l(e);
    });
  }

  /** Tells the other tabs (work still in flight when this queue closes tells nobody). */
  private post(message: { t: string; ack?: OpAck }): void {
    if (!this.closed) this.channel?.postMessage(message);
  }

  private emitAck(ack: OpAck): void {
    for (const l of [...this.ackListeners]) l(ack);
  }

  private async refresh(): Promise<void> {
    if (this.closed) return;
    const items = await this.items();
    const prev = this.snapshot;
    const same = prev.isOnline === this.isOnline && prev.queuedItems.length === items.length
      && items.every((it, i) => prev.queuedItems[i]?.id === it.id && prev.queuedItems[i]?.op.txHash === it.op.txHash);
    if (same) return;
    this.snapshot = Object.freeze({ isOnline: this.isOnline, queuedItems: Object.freeze(items) });
    for (const l of [...this.listeners]) l();
  }
}

let shared: OfflineQueue | null = null;

/** The page's queue (made on first use with `options`). */
export function getOfflineQueue(options?: OfflineQueueOptions): OfflineQueue {
  shared ??= new OfflineQueue(options);
  return shared;
}
