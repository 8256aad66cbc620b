/**
 * The rules of docs/ops.md (op lifecycle, conflicts, optimistic view) as a state machine fed
 * log entries in `seq` order: the same decisions as the server's `ops::Resolver`, pinned by
 * tests/vectors/ops.json. A client holds few ops, so every step scans the ops it remembers
 * (the "full sweep" of docs/ops.md) instead of keeping the server's indexes.
 */
import type { Answer, Decision, Fields, OpReason, OpsInput, OpStatus, RejectDetail, ResolverConfig, Strategy, Tx } from './types.js';

interface Confirmation { height: number; hash: string; seq: number }

/** What the rules keep of one op (docs/ops.md "The op record"). */
export interface OpRecord {
  seq: number;
  address: string;
  opId: string;
  entity: string;
  kind: string;
  data: Fields;
  baseVersion: number | undefined;
  base: number;
  txHash: string | null;
  status: OpStatus;
  reason: OpReason | null;
  confirmation: Confirmation | null;
  start: number | null;
  strategy: Strategy;
}

interface LastChange { version: number; seq: number; txHash: string }
interface Block { height: number; timestamp: number; txs: Tx[] }

const isOpen = (s: OpStatus): boolean => s === 'pending' || s === 'confirmed';
const key = (address: string, opId: string): string => `${address}\n${opId}`;

/** `exchange` of `exchange:123`, or null when either part is empty. */
export function entityKind(entity: string): string | null {
  const i = entity.indexOf(':');
  return i > 0 && i < entity.length - 1 ? entity.slice(0, i) : null;
}

/** JSON equality, key order ignored (numbers compare by value, as JSON.parse gives them). */
export function jsonEq(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => jsonEq(x, b[i]));
  }
  const ka = Object.keys(a);
  const rb = b as Record<string, unknown>;
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(rb, k) && jsonEq((a as Record<string, unknown>)[k], rb[k]));
}

export class Resolver {
  readonly config: Required<ResolverConfig>;
  private clockValue: number | null = null;
  /** Recent canonical blocks by hash; per transaction, the blocks listing it, first listed first. */
  private readonly recent = new Map<string, Block>();
  private readonly txBlocks = new Map<string, string[]>();
  private readonly entities = new Map<string, { version: number; fields: Map<string, LastChange> }>();
  /** Ops by the `seq` of their `op` entry; entries arrive in `seq` order, so this is log order. */
  private readonly ops = new Map<number, OpRecord>();
  private readonly ids = new Map<string, number>();
  /** The open (pending or confirmed) ops, in log order: what every step scans. */
  private readonly open = new Map<number, OpRecord>();
  /** Per address, settled ops in the order they settled, for the retention bound. */
  private readonly settled = new Map<string, number[]>();
  private decisions: Decision[] = [];

  constructor(config: ResolverConfig = {}) {
    this.config = {
      defaultStrategy: 'chain-wins', kinds: {}, rejectUnknownKinds: false, finalDepth: 6, expirySecs: 3600,
      txWaitSecs: 600, maxOpenOpsPerAddress: 100, settledRetainedPerAddress: 1000, ...config,
    };
  }

  /** The block clock: the greatest block timestamp so far. */
  get clock(): number | null {
    return this.clockValue;
  }

  /** An op the resolver remembers (open ones; settled ones within the retention). */
  op(address: string, opId: string): OpRecord | undefined {
    const seq = this.ids.get(key(address, opId));
    return seq === undefined ? undefined : this.ops.get(seq);
  }

  /** The standing (pending or confirmed) ops of `address` on `entity`, in log order. */
  standing(address: string, entity: string): OpRecord[] {
    return [...this.open.values()].filter((o) => o.address === address && o.entity === entity);
  }

  /** Applies one log entry; returns its decisions in the order docs/ops.md fixes. */
  apply(e: OpsInput): Decision[] {
    this.trimSettled();
    this.decisions = [];
    switch (e.type) {
      case 'op': {
        const known = this.op(e.address, e.opId);
        if (known !== undefined) {
          if (this.resend(known, e).action === 'attach' && e.txHash !== undefined) this.attach(known, e.txHash, e.seq);
          break;
        }
        const version = this.entities.get(e.entity)?.version ?? 0;
        const kind = entityKind(e.entity);
        const op: OpRecord = {
          seq: e.seq, address: e.address, opId: e.opId, entity: e.entity, kind: e.kind, data: e.data,
          baseVersion: e.baseVersion, base: e.baseVersion ?? version, txHash: e.txHash ?? null,
          status: 'pending', reason: null, confirmation: null, start: this.clockValue,
          strategy: (kind !== null && Object.hasOwn(this.config.kinds, kind) ? this.config.kinds[kind]?.strategy : undefined) ?? this.config.defaultStrategy,
        };
        const detail = this.rejectDetail(op, kind, version);
        this.ops.set(e.seq, op);
        this.open.set(e.seq, op);
        this.ids.set(key(e.address, e.opId), e.seq);
        if (detail !== null) this.revert(op, 'rejected', null, detail);
        else if (op.txHash !== null) this.settleIfMined(op, op.txHash, e.seq);
        break;
      }
      case 'op-tx': {
        const op = this.op(e.address, e.opId);
        if (op?.status === 'pending' && op.txHash === null) this.attach(op, e.txHash, e.seq);
        break;
      }
      case 'op-cancel': {
        const op = this.op(e.address, e.opId);
        if (op?.status === 'pending' && op.txHash === null) this.revert(op, 'cancelled', null, null);
        break;
      }
      case 'block':
        this.block(e);
        break;
      case 'block-rollback':
        this.forgetBlock(e.hash);
        for (const op of this.list('confirmed')) {
          if (op.confirmation?.hash !== e.hash) continue;
          this.transition(op, 'pending', 'rolled_back');
          op.start = this.clockValue;
          op.confirmation = null;
        }
        break;
      case 'entity-change': {
        let entity = this.entities.get(e.entity);
        if (entity === undefined) this.entities.set(e.entity, (entity = { version: 0, fields: new Map() }));
        entity.version = e.version;
        for (const f of e.fields) entity.fields.set(f, { version: e.version, seq: e.seq, txHash: e.txHash });
        break;
      }
    }
    // The conflict sweep: pending ops newest first, each revert taking effect before the next.
    for (const op of this.list('pending').reverse()) {
      const fields = Object.keys(op.data);
      const loses = op.strategy === 'chain-wins' ? fields.some((f) => this.stale(op, f)) : !fields.some((f) => this.visible(op, f));
      if (loses) this.revert(op, 'conflict', null, null);
    }
    return this.decisions;
  }

  /** How the server answers an `op` message (nothing is applied). */
  answerOp(m: { address: string; opId: string; entity: string; kind: string; data: Fields; baseVersion?: number; txHash?: string }): Answer {
    const op = this.op(m.address, m.opId);
    return op === undefined ? { action: 'append' } : this.resend(op, m);
  }

  /** How the server answers an `op-cancel` message (nothing is applied). */
  answerCancel(m: { address: string; opId: string }): Answer {
    const op = this.op(m.address, m.opId);
    if (op === undefined) return { action: 'unknown' };
    if (op.status !== 'pending') return { action: 'ack', status: op.status, reason: op.reason };
    return op.txHash !== null ? { action: 'refused' } : { action: 'append' };
  }

  /** The optimistic view: `chain` (confirmed fields) with each field a standing op of `address` is visible on set to its value. */
  view(address: string, entity: string, chain: Fields): Fields {
    const fields = { ...chain };
    for (const op of this.standing(address, entity)) {
      for (const [f, v] of Object.entries(op.data)) if (this.visible(op, f)) fields[f] = v;
    }
    return fields;
  }

  private list(status: OpStatus): OpRecord[] {
    return [...this.open.values()].filter((o) => o.status === status);
  }

  private rejectDetail(op: OpRecord, kind: string | null, version: number): RejectDetail | null {
    if (kind === null) return 'bad_entity';
    const rule = Object.hasOwn(this.config.kinds, kind) ? this.config.kinds[kind] : undefined;
    if (rule === undefined && this.config.rejectUnknownKinds) return 'unknown_kind';
    const fields = Object.keys(op.data);
    if (fields.length === 0) return 'empty_data';
    const allowed = rule?.fields;
    if (allowed !== undefined && fields.some((f) => !allowed.includes(f))) return 'field_not_allowed';
    if (op.baseVersion !== undefined && (op.baseVersion < 0 || op.baseVersion > version)) return 'bad_base_version';
    const open = [...this.open.values()].filter((o) => o.address === op.address).length;
    return open >= this.config.maxOpenOpsPerAddress ? 'too_many_open_ops' : null;
  }

  private resend(op: OpRecord, m: { entity: string; kind: string; data: Fields; baseVersion?: number; txHash?: string }): Answer {
    const same = op.entity === m.entity && op.kind === m.kind && jsonEq(op.data, m.data) && op.baseVersion === m.baseVersion;
    if (!same || (op.txHash !== null && m.txHash !== undefined && op.txHash !== m.txHash)) return { action: 'mismatch' };
    if (op.txHash === null && m.txHash !== undefined && op.status === 'pending') return { action: 'attach' };
    return { action: 'ack', status: op.status, reason: op.reason };
  }

  private attach(op: OpRecord, txHash: string, entrySeq: number): void {
    op.txHash = txHash;
    this.settleIfMined(op, txHash, entrySeq);
  }

  private block(b: Extract<OpsInput, { type: 'block' }>): void {
    const clock = (this.clockValue = this.clockValue === null ? b.timestamp : Math.max(this.clockValue, b.timestamp));
    for (const op of this.list('pending')) op.start ??= clock;
    let block = this.recent.get(b.hash);
    if (block === undefined) this.recent.set(b.hash, (block = { height: b.height, timestamp: b.timestamp, txs: [] }));
    for (const tx of b.txs) {
      if (block.txs.some((t) => t.txHash === tx.txHash)) continue;
      block.txs.push(tx);
      const hashes = this.txBlocks.get(tx.txHash) ?? [];
      if (!hashes.includes(b.hash)) hashes.push(b.hash);
      this.txBlocks.set(tx.txHash, hashes);
    }
    for (const [hash, r] of [...this.recent]) if (r.timestamp < clock - this.config.expirySecs) this.forgetBlock(hash);
    for (const tx of b.txs) {
      for (const op of this.list('pending')) if (op.txHash === tx.txHash) this.settle(op, b.height, b.hash, tx, b.seq);
    }
    for (const op of this.list('confirmed')) {
      if (op.confirmation !== null && b.height - op.confirmation.height >= this.config.finalDepth) this.transition(op, 'final', null);
    }
    for (const op of this.list('pending')) {
      const wait = op.txHash !== null ? this.config.expirySecs : Math.min(this.config.txWaitSecs, this.config.expirySecs);
      if (op.start !== null && clock > op.start + wait) this.revert(op, 'expired', null, null);
    }
  }

  private forgetBlock(hash: string): void {
    const block = this.recent.get(hash);
    if (block === undefined) return;
    this.recent.delete(hash);
    for (const tx of block.txs) {
      const rest = (this.txBlocks.get(tx.txHash) ?? []).filter((h) => h !== hash);
      if (rest.length === 0) this.txBlocks.delete(tx.txHash);
      else this.txBlocks.set(tx.txHash, rest);
    }
  }

  /** Settles the op against its transaction when a recent canonical block lists it. */
  private settleIfMined(op: OpRecord, txHash: string, entrySeq: number): void {
    const hash = this.txBlocks.get(txHash)?.[0];
    const block = hash === undefined ? undefined : this.recent.get(hash);
    const tx = block?.txs.find((t) => t.txHash === txHash);
    if (hash !== undefined && block !== undefined && tx !== undefined) this.settle(op, block.height, hash, tx, entrySeq);
  }

  private settle(op: OpRecord, height: number, hash: string, tx: Tx, entrySeq: number): void {
    const block = { height, hash };
    if ((tx.sender ?? null) !== op.address) this.revert(op, 'tx_mismatch', block, null);
    else if (!tx.success) this.revert(op, 'tx_failed', block, null);
    else {
      op.confirmation = { height, hash, seq: entrySeq };
      this.transition(op, 'confirmed', null);
    }
  }

  private revert(op: OpRecord, reason: OpReason, block: { height: number; hash: string } | null, detail: RejectDetail | null): void {
    const d = this.transition(op, 'reverted', reason);
    d.blockHeight = block?.height ?? null;
    d.blockHash = block?.hash ?? null;
    d.detail = detail;
  }

  /** Records a status change; the decision names the confirming (or removed) block where the status keeps one. */
  private transition(op: OpRecord, status: OpStatus, reason: OpReason | null): Decision {
    op.status = status;
    op.reason = reason;
    if (!isOpen(status)) {
      this.open.delete(op.seq);
      const q = this.settled.get(op.address) ?? [];
      q.push(op.seq);
      this.settled.set(op.address, q);
    }
    const c = status === 'confirmed' || status === 'final' || reason === 'rolled_back' ? op.confirmation : null;
    const d: Decision = { address: op.address, opId: op.opId, status, reason, blockHeight: c?.height ?? null, blockHash: c?.hash ?? null, detail: null };
    this.decisions.push(d);
    return d;
  }

  /** Forgets the oldest settled ops beyond the retention (at the next entry, so a decision's op can still be read). */
  private trimSettled(): void {
    for (const [address, q] of this.settled) {
      while (q.length > this.config.settledRetainedPerAddress) {
        const op = this.ops.get(q.shift() as number);
        if (op === undefined) continue;
        this.ops.delete(op.seq);
        this.ids.delete(key(address, op.opId));
      }
    }
  }

  private lastChange(op: OpRecord, field: string): LastChange | undefined {
    return this.entities.get(op.entity)?.fields.get(field);
  }

  /** The chain changed the field by another transaction after the version the op's client saw. */
  private stale(op: OpRecord, field: string): boolean {
    const l = this.lastChange(op, field);
    return l !== undefined && l.version > op.base && op.txHash !== l.txHash;
  }

  /** Owned by the op (no later standing op of its address on its entity sets it) and not hidden. */
  private visible(op: OpRecord, field: string): boolean {
    if (!Object.hasOwn(op.data, field)) return false;
    const l = this.lastChange(op, field);
    const hidden = (op.strategy !== 'last-writer-wins' && this.stale(op, field))
      || (op.status === 'confirmed' && op.confirmation !== null && l !== undefined && l.seq > op.confirmation.seq);
    if (hidden) return false;
    for (const later of this.open.values()) {
      if (later.seq > op.seq && later.entity === op.entity && later.address === op.address && Object.hasOwn(later.data, field)) return false;
    }
    return true;
  }
}
