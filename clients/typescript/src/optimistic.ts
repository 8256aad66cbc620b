/**
 * Optimistic updates (PROTOCOL §4): `executeWithOptimistic` shows a predicted change at once,
 * runs the dApp's action (which signs and broadcasts the transaction and yields its hash),
 * sends the op, and calls `onConfirm` / `onRevert` as the server's op statuses decide —
 * including a revert after a reorg took back a confirmation.
 */
import type { OpAck, OpStatusEntry } from './types.js';
import type { Fields, OpStatus } from './ops/types.js';
import { OfflineError, OpError } from './ops/channel.js';
import type { OpMessage, OpsTransport } from './ops/channel.js';

/** Refusals that say "not now": nothing was appended, the op is sent again. */
const BUSY = new Set(['rate_limited', 'unavailable']);

/** What `executeWithOptimistic` predicts: the entity (`kind:id`, PROTOCOL §5) and the fields it sets. */
export interface OptimisticValue {
  entity: string;
  data: Fields;
  /** The entity `version` the user saw (absent: the current one). */
  baseVersion?: number;
}

/** An op as the manager shows it: `local` until the server acknowledged it. */
export interface OptimisticOp {
  readonly opId: string;
  readonly kind: string;
  readonly entity: string;
  readonly data: Fields;
  readonly txHash: string | null;
  readonly status: 'local' | OpStatus;
  readonly reason: string | null;
}

/** What the callbacks receive: the op's status as the server decided it (or the local failure). */
export interface Settlement {
  opId: string;
  status: OpStatus;
  reason: string | null;
  txHash: string | null;
  blockHeight: number | null;
  blockHash: string | null;
  /** The action's exception, or the server's `OpError`, when the op never reached the log. */
  error?: unknown;
}

/** Anything that durably sends ops (the offline queue) and reports their acks. */
export interface OpSender {
  enqueue(op: OpMessage): Promise<unknown>;
  onAck(listener: (ack: OpAck) => void): () => void;
  onFailed(listener: (opId: string, error: OpError) => void): () => void;
}

export interface OptimisticOptions {
  /** Send through a durable queue (the offline queue) instead of directly. */
  queue?: OpSender;
  /** Most unsettled ops at once (the server allows 100 open ops per address). Default 100. */
  maxOps?: number;
  /** opId maker. Default `crypto.randomUUID`. */
  newId?: () => string;
}

interface Tracked {
  op: OptimisticOp;
  message: OpMessage | null;
  acked: boolean;
  sawStatus: boolean;
  confirmedOnce: boolean;
  onConfirm: ((s: Settlement) => void) | undefined;
  onRevert: ((s: Settlement) => void) | undefined;
}

export class OptimisticStateManager {
  private readonly tracked = new Map<string, Tracked>();
  private readonly listeners = new Set<() => void>();
  private snapshot: readonly OptimisticOp[] = Object.freeze([]);
  private readonly maxOps: number;
  private readonly newId: () => string;
  private readonly stops: Array<() => void> = [];

  constructor(private readonly transport: OpsTransport, private readonly options: OptimisticOptions = {}) {
    this.maxOps = options.maxOps ?? 100;
    this.newId = options.newId ?? (() => crypto.randomUUID());
    this.stops.push(transport.onStatus((s) => this.status(s.opId, s.status, s.reason, s, false)));
    this.stops.push(transport.onConnection((up) => up && this.resend()));
    const queue = options.queue;
    if (queue !== undefined) {
      this.stops.push(queue.onAck((a) => this.status(a.opId, a.status, a.reason ?? null, null, true)));
      this.stops.push(queue.onFailed((opId, e) => this.fail(opId, e)));
    }
  }

  /**
   * Shows `optimisticValue` at once, runs `action` (returns the transaction hash), sends the
   * op, and settles it: `onConfirm` when the server says `confirmed` (or `final`), once;
   * `onRevert` when it says `reverted` — also after an `onConfirm` when a reorg took the
   * block away and the transaction did not come back. An action that throws withdraws the
   * prediction (`onRevert` with reason `cancelled` and the error). Resolves with the opId
   * once the op is handed to the server (or the queue).
   */
  async executeWithOptimistic(
    kind: string,
    optimisticValue: OptimisticValue,
    action: () => Promise<string> | string,
    onConfirm?: (s: Settlement) => void,
    onRevert?: (s: Settlement) => void,
  ): Promise<string> {
    if (this.tracked.size >= this.maxOps) throw new RangeError(`more than ${this.maxOps} unsettled optimistic ops`);
    const opId = this.newId();
    const { entity, data, baseVersion } = optimisticValue;
    const t: Tracked = {
      op: { opId, kind, entity, data, txHash: null, status: 'local', reason: null },
      message: null, acked: false, sawStatus: false, confirmedOnce: false, onConfirm, onRevert,
    };
    this.tracked.set(opId, t);
    this.changed();
    let txHash: string;
    try {
      txHash = await action();
    } catch (error) {
      this.finish(t, 'reverted', 'cancelled', null, error);
      return opId;
    }
    t.op = { ...t.op, txHash };
    t.message = baseVersion === undefined ? { opId, kind, entity, data, txHash } : { opId, kind, entity, data, baseVersion, txHash };
    this.changed();
    if (this.options.queue !== undefined) await this.options.queue.enqueue(t.message);
    else this.sendDirect(t);
    return opId;
  }

  /** Unsettled ops, oldest first: an immutable array, new only on change. */
  getSnapshot = (): readonly OptimisticOp[] => this.snapshot;

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  };

  /** `chain` (the entity's confirmed fields) with the unsettled ops' fields on top, the latest op winning. */
  view(entity: string, chain: Fields): Fields {
    const fields = { ...chain };
    for (const op of this.snapshot) if (op.entity === entity) Object.assign(fields, op.data);
    return fields;
  }

  close(): void {
    for (const stop of this.stops) stop();
  }

  private sendDirect(t: Tracked): void {
    if (this.tracked.get(t.op.opId) !== t || t.message === null || t.acked || !this.transport.isConnected) return;
    this.transport.send(t.message).then(
      (ack) => this.status(ack.opId, ack.status, ack.reason ?? null, null, true),
      (e: unknown) => {
        // Offline: resent when the connection is back (a resend of an opId is harmless);
        // the server busy: resent a moment later.
        if (e instanceof OpError && BUSY.has(e.code)) setTimeout(() => this.sendDirect(t), 1000);
        else if (!(e instanceof OfflineError)) this.fail(t.op.opId, e);
      },
    );
  }

  private resend(): void {
    if (this.options.queue === undefined) for (const t of this.tracked.values()) this.sendDirect(t);
  }

  private fail(opId: string, error: unknown): void {
    const t = this.tracked.get(opId);
    if (t !== undefined) this.finish(t, 'reverted', error instanceof OpError ? error.code : 'error', null, error);
  }

  private status(opId: string, status: OpStatus, reason: string | null, entry: OpStatusEntry | null, fromAck: boolean): void {
    const t = this.tracked.get(opId);
    if (t === undefined) return;
    if (fromAck) {
      t.acked = true;
      // The subscription's statuses are ordered; an ack only fills in before the first of them.
      if (t.sawStatus && status !== 'final' && status !== 'reverted') return;
    } else {
      t.sawStatus = true;
    }
    if (status === 'final' || status === 'reverted') return this.finish(t, status, reason, entry, undefined);
    t.op = { ...t.op, status, reason };
    this.changed();
    if (status === 'confirmed' && !t.confirmedOnce) {
      t.confirmedOnce = true;
      t.onConfirm?.(this.settlement(t, status, reason, entry, undefined));
    }
  }

  private finish(t: Tracked, status: OpStatus, reason: string | null, entry: OpStatusEntry | null, error: unknown): void {
    this.tracked.delete(t.op.opId);
    this.changed();
    const s = this.settlement(t, status, reason, entry, error);
    if (status === 'reverted') t.onRevert?.(s);
    else if (!t.confirmedOnce) t.onConfirm?.(s);
  }

  private settlement(t: Tracked, status: OpStatus, reason: string | null, entry: OpStatusEntry | null, error: unknown): Settlement {
    const s: Settlement = {
      opId: t.op.opId, status, reason, txHash: entry?.txHash ?? t.op.txHash,
      blockHeight: entry?.blockHeight ?? null, blockHash: entry?.blockHash ?? null,
    };
    if (error !== undefined) s.error = error;
    return s;
  }

  private changed(): void {
    this.snapshot = Object.freeze([...this.tracked.values()].map((t) => t.op));
    for (const l of [...this.listeners]) l();
  }
}

let shared: OptimisticStateManager | null = null;

/**
 * The page's manager: the first call names its transport (an `OpsChannel`, and optionally
 * the offline queue); later calls may omit it.
 */
export function getOptimisticStateManager(transport?: OpsTransport, options?: OptimisticOptions): OptimisticStateManager {
  if (shared === null) {
    if (transport === undefined) throw new Error('getOptimisticStateManager: the first call needs the transport (new OpsChannel(client))');
    shared = new OptimisticStateManager(transport, options);
  }
  return shared;
}
