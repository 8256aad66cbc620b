/** The wire objects of docs/protocol.md (PROTOCOL v1), as the client sees them. */

export type EventType =
  | 'print_event'
  | 'contract_event'
  | 'stx_transfer_event'
  | 'stx_mint_event'
  | 'stx_burn_event'
  | 'stx_lock_event'
  | 'ft_transfer_event'
  | 'ft_mint_event'
  | 'ft_burn_event'
  | 'nft_transfer_event'
  | 'nft_mint_event'
  | 'nft_burn_event'
  | 'data_var_set_event'
  | 'data_map_insert_event'
  | 'data_map_update_event'
  | 'data_map_delete_event';

/** One receipt event of an applied block (protocol §2.1). */
export interface ChainEvent {
  seq: number;
  txHash: string;
  txIndex: number;
  eventIndex: number;
  blockHeight: number;
  blockHash: string;
  contractId: string | null;
  eventType: EventType;
  data: Record<string, unknown>;
  affectedAddresses: string[];
  success: boolean;
  timestamp: number;
}

/** Undoes the event whose `seq` is `rollbackOf` (protocol §2.2). */
export interface Rollback {
  seq: number;
  rollbackOf: number;
  txHash: string;
  blockHeight: number;
  blockHash: string;
  eventType: EventType;
  contractId: string | null;
  affectedAddresses: string[];
}

/** What a subscription matches (protocol §5.1). */
export type Filter =
  | { type: 'contract'; contractId: string; eventType?: EventType }
  | { type: 'user'; address: string }
  | { type: 'event-type'; eventType: EventType }
  | { type: 'all' };

/** Where a subscription starts: `seq` resumes exactly; `blockHeight` starts from a block. */
export type Since = { seq: number } | { blockHeight: number; blockHash?: string };

export type ServerFrame =
  | { type: 'subscribed'; id: string; headSeq: number; headBlockHeight: number | null }
  | { type: 'event'; sub: string; event: ChainEvent }
  | { type: 'rollback'; sub: string; rollback: Rollback }
  | { type: 'caught-up'; sub: string; seq: number }
  | { type: 'resync'; sub: string; seq: number; reason: string }
  | { type: 'unsubscribed'; id: string }
  | { type: 'error'; id?: string; opId?: string; code: string; message: string }
  | { type: 'pong' }
  | { type: 'authenticated'; address: string; exp: number }
  | OpsFrame;

/** The `ops` filter (PROTOCOL §4): the signed-in address's op status changes. */
export type OpsFilter = { type: 'ops' };

/** A status change of one of the address's ops, delivered to `ops` subscriptions (PROTOCOL §4). */
export interface OpStatusEntry {
  seq: number;
  opId: string;
  entity: string;
  kind: string;
  status: 'pending' | 'confirmed' | 'final' | 'reverted';
  reason: string | null;
  txHash: string | null;
  blockHeight: number | null;
  blockHash: string | null;
  data: Record<string, unknown>;
  address?: string;
  /** With reason `rejected`: why (docs/ops.md "Decisions"). */
  detail?: string | null;
}

/** The answer to an `op` (or `op-cancel`) on the sending connection. */
export interface OpAck {
  opId: string;
  seq: number;
  status: OpStatusEntry['status'];
  reason?: string | null;
  entity: string;
  version: number;
  /** With reason `rejected`: why. */
  detail?: string | null;
}

export type OpsFrame =
  | ({ type: 'op-ack' } & OpAck)
  | { type: 'op-status'; sub: string; op: OpStatusEntry };
