//! Turning payloads into log rows, without I/O.
//!
//! The appender loads the canonical state of every block a group of payloads mentions (one
//! query per table), then this module walks the payloads in order — each payload's
//! rollbacks, then its applies — deciding what is new, what is a duplicate and what to
//! undo. The same walk over the same state always yields the same rows.

use crate::model::{EntryKind, LogEntry};
use super::rows::{BlockRow, LogRow};
use super::StoreError;
use crate::model::{event_body, Block, EventObject, EventType, Payload, RollbackObject, TxSummary};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// foldhash for the write path's maps and sets, keyed by block hashes and principal names:
/// the appender hashes a dozen or so per payload, and SipHash (std's default) made hashing
/// a large share of its time on small blocks.
/// The keys come from authenticated deliveries, and the seed is random per process.
pub(crate) type FastSet<T> = HashSet<T, foldhash::fast::RandomState>;
pub(crate) type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// What the webhook answers for one payload (PROTOCOL §1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestReport {
    /// Blocks this payload made canonical (a block already applied is not counted again).
    pub applied_blocks: u64,
    /// Canonical blocks this payload rolled back.
    pub rolled_back_blocks: u64,
    /// New event entries stored.
    pub events: u64,
    /// Events skipped because their identity was already applied.
    pub duplicate_events: u64,
    /// The log's head `seq` once this payload is committed.
    pub head_seq: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct BlockState {
    /// Whether `blocks` holds a row for it as the group begins (else the group inserts it).
    pub stored: bool,
    pub height: i64,
    pub parent_hash: Option<String>,
    pub canonical: bool,
    pub last_seq: i64,
    pub applied_seq: i64,
}

/// What a rollback entry repeats from the event it undoes.
#[derive(Debug, Clone)]
pub(crate) struct EventDetail {
    pub tx_hash: String,
    pub event_type: EventType,
    pub contract_id: Option<String>,
    pub affected_addresses: Vec<String>,
    pub block_height: i64,
}

/// The canonical state of the blocks a group of payloads mentions.
#[derive(Debug, Default)]
pub(crate) struct Snapshot {
    pub blocks: FastMap<String, BlockState>,
    /// Canonical event identities (tx_index, event_index) → seq, per canonical block hash.
    pub events: FastMap<String, BTreeMap<(i32, i32), i64>>,
    /// Details of canonical events that a payload of the group rolls back.
    pub details: FastMap<i64, EventDetail>,
    /// The transaction hashes listed by the block entries of each canonical block's latest
    /// application (its `block applied` entry and any `block extended` after it).
    pub txs: FastMap<String, FastSet<String>>,
    /// Canonical blocks whose block entry predates transaction lists: which transactions
    /// they hold is unknown, so no delivery extends them.
    pub unlisted: FastSet<String>,
}

/// Everything one group commit writes.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub writes: Writes,
    pub reports: Vec<IngestReport>,
    pub entries: Vec<LogEntry>,
    pub head: i64,
}

/// The rows of a plan, in the order they are written.
#[derive(Debug, Default)]
pub(crate) struct Writes {
    /// One per entry of [`Plan::entries`], in the same order. `contract_key` is left unset:
    /// the appender numbers the entries' contract ids ([`super::append`]).
    pub rows: Vec<LogRow>,
    /// (principal, seq): one per principal an entry touches; the appender numbers principals.
    pub addresses: Vec<(String, i64)>,
    /// Blocks `blocks` has no row for yet: plain INSERTs.
    pub new_blocks: Vec<BlockRow>,
    /// Blocks whose stored row changes.
    pub block_upserts: Vec<BlockRow>,
}

/// Walks a group's payloads in order. The appender may take the log and address rows planned
/// so far at any point between payloads ([`Planner::take_rows`]) and write them while the
/// rest is planned; block rows come last ([`Planner::finish`]), once every payload is in.
pub(crate) struct Planner {
    head: i64,
    committed_at: i64,
    snapshot: Snapshot,
    plan: Plan,
    /// Blocks to upsert, in the order the group first touched them.
    touched_blocks: Vec<String>,
    touched_set: FastSet<String>,
    /// Blocks some payload of the group rolls back: only their new events need details.
    rolled_back_in_group: FastSet<String>,
    /// Blocks the group delivers more than once: only their transactions are kept while
    /// planning, for a later delivery to extend.
    delivered_again_in_group: FastSet<String>,
    /// Entries whose rows [`Planner::take_rows`] has handed out.
    taken: usize,
}

/// Log and address rows of a stretch of the group, with the entries they belong to.
pub(crate) struct Taken<'a> {
    pub rows: Vec<LogRow>,
    pub addresses: Vec<(String, i64)>,
    /// One per row, in the same order.
    pub entries: &'a [LogEntry],
}

impl Planner {
    /// A planner for a group of `payloads`, from the log's `head` and the canonical state of
    /// the group's blocks.
    pub(crate) fn new(head: i64, snapshot: Snapshot, payloads: &[Payload], committed_at: i64) -> Planner {
        Planner {
            head,
            committed_at,
            snapshot,
            plan: Plan::default(),
            touched_blocks: Vec::new(),
            touched_set: FastSet::default(),
            rolled_back_in_group: payloads
                .iter()
                .flat_map(|p| p.rollback.iter().map(|b| b.hash.clone()))
                .collect(),
            delivered_again_in_group: {
                let mut seen = FastSet::default();
                payloads
                    .iter()
                    .flat_map(|p| p.apply.iter())
                    .filter(|b| !seen.insert(b.hash.as_str()))
                    .map(|b| b.hash.clone())
                    .collect()
            },
            taken: 0,
        }
    }

    /// Plans the next payload of the group.
    pub(crate) fn push(&mut self, payload: Payload) -> Result<(), StoreError> {
        let report = self.payload(payload)?;
        self.plan.reports.push(report);
        Ok(())
    }

    /// Log rows planned and not yet taken.
    pub(crate) fn pending_rows(&self) -> usize {
        self.plan.writes.rows.len()
    }

    /// Takes the log and address rows planned since the last call.
    pub(crate) fn take_rows(&mut self) -> Taken<'_> {
        let rows = std::mem::take(&mut self.plan.writes.rows);
        let addresses = std::mem::take(&mut self.plan.writes.addresses);
        let entries = &self.plan.entries[self.taken..self.taken + rows.len()];
        self.taken += rows.len();
        Taken { rows, addresses, entries }
    }
}

impl Planner {
    fn next_seq(&mut self) -> i64 {
        self.head += 1;
        self.head
    }

    fn touch(&mut self, hash: &str) {
        if !self.touched_set.contains(hash) {
            self.touched_set.insert(hash.to_string());
            self.touched_blocks.push(hash.to_string());
        }
    }

    fn payload(&mut self, payload: Payload) -> Result<IngestReport, StoreError> {
        let mut report = IngestReport::default();
        // A block this same payload applies again is not rolled back: rolling it back and
        // re-applying it would leave it canonical anyway, and skipping the pair keeps
        // redelivery of such a payload idempotent (its events are duplicates the second
        // time) and keeps events other deliveries stored for that block.
        let reapplied: FastSet<&str> = match payload.rollback.is_empty() {
            true => FastSet::default(),
            false => payload.apply.iter().map(|b| b.hash.as_str()).collect(),
        };
        for block in &payload.rollback {
            if reapplied.contains(block.hash.as_str()) {
                continue;
            }
            if self.roll_back_block(&block.hash)? {
                report.rolled_back_blocks += 1;
            }
        }
        for block in payload.apply {
            self.touch(&block.hash);
            let canonical = self.snapshot.blocks.get(&block.hash).is_some_and(|b| b.canonical);
            if !canonical {
                let seq = self.push_block_entry(EntryKind::BlockApplied, &block, &block.transactions)?;
                self.snapshot.blocks.insert(
                    block.hash.clone(),
                    BlockState {
                        stored: self.snapshot.blocks.get(&block.hash).is_some_and(|b| b.stored),
                        height: block.height,
                        parent_hash: block.parent_hash.clone(),
                        canonical: true,
                        last_seq: seq,
                        applied_seq: seq,
                    },
                );
                // A block is applied afresh: none of its events are canonical yet.
                self.snapshot.events.insert(block.hash.clone(), BTreeMap::new());
                self.snapshot.unlisted.remove(&block.hash);
                if self.delivered_again_in_group.contains(&block.hash) {
                    let listed = block.transactions.iter().map(|t| t.tx_hash.clone()).collect();
                    self.snapshot.txs.insert(block.hash.clone(), listed);
                }
                report.applied_blocks += 1;
            } else {
                self.extend_block(&block)?;
            }
            let mut known = self.snapshot.events.remove(&block.hash).unwrap_or_default();
            let mut last_seq = None;
            for ev in block.events {
                let key = (ev.tx_index, ev.event_index);
                if known.contains_key(&key) {
                    report.duplicate_events += 1;
                    continue;
                }
                self.head += 1;
                let seq = self.head;
                known.insert(key, seq);
                last_seq = Some(seq);
                if self.rolled_back_in_group.contains(&block.hash) {
                    // A later payload of this group may roll this block back.
                    self.snapshot.details.insert(
                        seq,
                        EventDetail {
                            tx_hash: ev.tx_hash.clone(),
                            event_type: ev.event_type,
                            contract_id: ev.contract_id.clone(),
                            affected_addresses: ev.affected_addresses.clone(),
                            block_height: block.height,
                        },
                    );
                }
                let body = match ev.encoded.as_deref().and_then(|tail| event_body(seq, tail)) {
                    Some(body) => body,
                    None => encode(&EventObject {
                        seq,
                        tx_hash: ev.tx_hash.clone(),
                        tx_index: ev.tx_index,
                        event_index: ev.event_index,
                        block_height: block.height,
                        block_hash: block.hash.clone(),
                        contract_id: ev.contract_id.clone(),
                        event_type: ev.event_type,
                        data: ev.data,
                        affected_addresses: ev.affected_addresses.clone(),
                        success: ev.success,
                        timestamp: block.timestamp,
                        rolled_back: false,
                    })?,
                };
                self.push_entry(
                    LogRow {
                        seq,
                        kind: EntryKind::Event as i16,
                        block_hash: block.hash.clone(),
                        block_height: block.height,
                        tx_index: Some(ev.tx_index),
                        event_index: Some(ev.event_index),
                        rollback_of: None,
                        body,
                        committed_at: self.committed_at,
                        type_code: Some(ev.event_type.code()),
                        contract_key: None,
                    },
                    ev.event_type,
                    ev.contract_id,
                    ev.affected_addresses,
                );
                report.events += 1;
            }
            if let (Some(seq), Some(b)) = (last_seq, self.snapshot.blocks.get_mut(&block.hash)) {
                b.last_seq = seq;
            }
            self.snapshot.events.insert(block.hash, known);
        }
        report.head_seq = self.head;
        Ok(report)
    }

    /// A delivery of a block already canonical that lists transactions its block entries do
    /// not (another predicate's share of the block) records those in a `block extended`
    /// entry, before the delivery's new events, so that ops can match them. A redelivery
    /// appends nothing.
    fn extend_block(&mut self, block: &Block) -> Result<(), StoreError> {
        if self.snapshot.unlisted.contains(&block.hash) {
            return Ok(());
        }
        let listed = self.snapshot.txs.entry(block.hash.clone()).or_default();
        let new: Vec<TxSummary> =
            block.transactions.iter().filter(|t| !listed.contains(&t.tx_hash)).cloned().collect();
        if new.is_empty() {
            return Ok(());
        }
        listed.extend(new.iter().map(|t| t.tx_hash.clone()));
        let seq = self.push_block_entry(EntryKind::BlockExtended, block, &new)?;
        if let Some(b) = self.snapshot.blocks.get_mut(&block.hash) {
            b.last_seq = seq;
        }
        Ok(())
    }

    /// Appends a block entry of `kind` for `block` listing `transactions`; returns its `seq`.
    fn push_block_entry(&mut self, kind: EntryKind, block: &Block, transactions: &[TxSummary]) -> Result<i64, StoreError> {
        let seq = self.next_seq();
        let body = encode(&AppliedMarker {
            block_hash: &block.hash,
            block_height: block.height,
            parent_hash: block.parent_hash.as_deref(),
            seq,
            timestamp: block.timestamp,
            transactions,
        })?;
        self.push_marker(seq, kind, &block.hash, block.height, body);
        Ok(seq)
    }

    /// Appends a rollback entry for every canonical event of the block, newest first, then
    /// the block marker. A block that is not canonical changes nothing.
    fn roll_back_block(&mut self, hash: &str) -> Result<bool, StoreError> {
        let height = match self.snapshot.blocks.get(hash) {
            Some(b) if b.canonical => b.height,
            _ => return Ok(false),
        };
        self.touch(hash);
        self.snapshot.txs.remove(hash);
        let events = self.snapshot.events.remove(hash).unwrap_or_default();
        let mut originals: Vec<i64> = events.values().copied().collect();
        originals.sort_unstable_by(|a, b| b.cmp(a));
        for original in originals {
            let detail = self.snapshot.details.get(&original).cloned().ok_or_else(|| {
                StoreError::Corrupt(format!("no log entry for canonical event seq {original}"))
            })?;
            let seq = self.next_seq();
            let obj = RollbackObject {
                seq,
                rollback_of: original,
                tx_hash: detail.tx_hash,
                block_height: detail.block_height,
                block_hash: hash.to_string(),
                event_type: detail.event_type,
                contract_id: detail.contract_id,
                affected_addresses: detail.affected_addresses,
            };
            let body = encode(&obj)?;
            self.push_entry(
                LogRow {
                    seq,
                    kind: EntryKind::Rollback as i16,
                    block_hash: obj.block_hash,
                    block_height: obj.block_height,
                    tx_index: None,
                    event_index: None,
                    rollback_of: Some(original),
                    body,
                    committed_at: self.committed_at,
                    type_code: Some(obj.event_type.code()),
                    contract_key: None,
                },
                obj.event_type,
                obj.contract_id,
                obj.affected_addresses,
            );
        }
        let seq = self.next_seq();
        let body = serde_json::json!({"seq": seq, "blockHash": hash, "blockHeight": height}).to_string();
        self.push_marker(seq, EntryKind::BlockRolledBack, hash, height, body);
        if let Some(b) = self.snapshot.blocks.get_mut(hash) {
            b.canonical = false;
            b.last_seq = seq;
        }
        Ok(true)
    }

    fn push_marker(&mut self, seq: i64, kind: EntryKind, hash: &str, height: i64, body: String) {
        self.plan.entries.push(LogEntry {
            seq,
            kind,
            block_height: height,
            block_hash: hash.to_string(),
            event_type: None,
            contract_id: None,
            affected_addresses: Vec::new(),
            rollback_of: None,
            body: Arc::from(body.as_str()),
        });
        self.plan.writes.rows.push(LogRow {
            seq,
            kind: kind as i16,
            block_hash: hash.to_string(),
            block_height: height,
            tx_index: None,
            event_index: None,
            rollback_of: None,
            body,
            committed_at: self.committed_at,
            type_code: None,
            contract_key: None,
        });
    }

    fn push_entry(&mut self, row: LogRow, event_type: EventType, contract_id: Option<String>, mut addresses: Vec<String>) {
        // The address table's key is (address, seq): one row per principal.
        dedup_in_order(&mut addresses);
        for a in &addresses {
            self.plan.writes.addresses.push((a.clone(), row.seq));
        }
        self.plan.entries.push(LogEntry {
            seq: row.seq,
            kind: EntryKind::from_i16(row.kind).unwrap_or(EntryKind::Event),
            block_height: row.block_height,
            block_hash: row.block_hash.clone(),
            event_type: Some(event_type),
            contract_id,
            affected_addresses: addresses,
            rollback_of: row.rollback_of,
            body: Arc::from(row.body.as_str()),
        });
        self.plan.writes.rows.push(row);
    }

    /// The block rows, with the log and address rows not taken yet, the reports and every
    /// entry of the group.
    pub(crate) fn finish(mut self) -> Result<Plan, StoreError> {
        for hash in &self.touched_blocks {
            if let Some(b) = self.snapshot.blocks.get(hash) {
                let rows = match b.stored {
                    true => &mut self.plan.writes.block_upserts,
                    false => &mut self.plan.writes.new_blocks,
                };
                rows.push(BlockRow {
                    block_hash: hash.clone(),
                    block_height: b.height,
                    parent_hash: b.parent_hash.clone(),
                    canonical: b.canonical,
                    last_seq: b.last_seq,
                    applied_seq: b.applied_seq,
                });
            }
        }
        self.plan.head = self.head;
        Ok(self.plan)
    }
}

/// The body of a `BlockApplied` marker: the block as delivered, without its events (of a
/// `BlockExtended` one: with only the transactions it adds).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct AppliedMarker<'a> {
    block_hash: &'a str,
    block_height: i64,
    parent_hash: Option<&'a str>,
    seq: i64,
    timestamp: i64,
    transactions: &'a [TxSummary],
}

/// Drops repeated names, keeping each one's first place. The parser already gives each
/// principal once; this keeps the address table's key unique whatever built the payload.
fn dedup_in_order(names: &mut Vec<String>) {
    let mut seen = FastSet::default();
    names.retain(|a| seen.insert(a.clone()));
}

fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode entry: {e}")))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
