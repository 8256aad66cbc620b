/** Ops (PROTOCOL §4, docs/ops.md): statuses, resolver input entries, decisions and settings. */

export type OpStatus = 'pending' | 'confirmed' | 'final' | 'reverted';
export type OpReason = 'rolled_back' | 'tx_failed' | 'tx_mismatch' | 'expired' | 'conflict' | 'cancelled' | 'rejected';
export type RejectDetail = 'bad_entity' | 'unknown_kind' | 'empty_data' | 'field_not_allowed' | 'bad_base_version' | 'too_many_open_ops';
export type Strategy = 'chain-wins' | 'last-writer-wins' | 'merge';
/** A flat object of entity fields. */
export type Fields = Record<string, unknown>;

/** docs/ops.md "Settings"; every key defaults as there. */
export interface ResolverConfig {
  defaultStrategy?: Strategy;
  kinds?: Record<string, { strategy?: Strategy; fields?: string[] }>;
  rejectUnknownKinds?: boolean;
  finalDepth?: number;
  expirySecs?: number;
  txWaitSecs?: number;
  maxOpenOpsPerAddress?: number;
  settledRetainedPerAddress?: number;
}

export interface Tx { txHash: string; sender?: string | null; success: boolean }

/** docs/ops.md "Input entries": the log entries the rules read, in `seq` order. */
export type OpsInput =
  | { type: 'op'; seq: number; address: string; opId: string; entity: string; kind: string; data: Fields; baseVersion?: number; txHash?: string }
  | { type: 'op-tx'; seq: number; address: string; opId: string; txHash: string }
  | { type: 'op-cancel'; seq: number; address: string; opId: string }
  | { type: 'block'; seq: number; height: number; hash: string; timestamp: number; txs: Tx[] }
  | { type: 'block-rollback'; seq: number; height: number; hash: string }
  | { type: 'entity-change'; seq: number; entity: string; fields: string[]; txHash: string; version: number };

/** One status change of one op (an `op-status` entry). */
export interface Decision {
  address: string;
  opId: string;
  status: OpStatus;
  reason: OpReason | null;
  blockHeight: number | null;
  blockHash: string | null;
  detail: RejectDetail | null;
}

/** How the server answers an `op` or `op-cancel` message before appending anything. */
export type Answer =
  | { action: 'append' | 'attach' | 'mismatch' | 'unknown' | 'refused' }
  | { action: 'ack'; status: OpStatus; reason: OpReason | null };
