//! The ops rules fed by the writer (PROTOCOL §4, docs/ops.md).
//!
//! [`OpsFeed`] turns log entries into the rules' inputs and runs them through a
//! [`Resolver`]: block markers become `block` and `block-rollback` inputs, print events and
//! their rollbacks become `entity-change` inputs through the entities projection's own
//! [`EntityMapping`] (so versions and fields are the projection's), and op entries are read
//! back as the ops they record. The writer feeds it every entry it appends and appends the
//! decisions in the same transaction; at startup, and in cluster mode under the append
//! lock, it feeds the entries the log holds beyond what it has seen. `op-status` entries are
//! outputs, never inputs, so the decisions are a pure function of the other entries.

use crate::model::entities::{entity_name, EntityMapping, Op};
use crate::model::{EntryKind, EventType, LogEntry};
use crate::ops::{
    BlockApplied, BlockRolledBack, Decision, EntityChanged, Input, OpCancelled, OpRecord, OpSubmitted, Resolver, Status, Tx,
    TxHashAttached,
};
use crate::store::rows::{LogRow, OpLogRow};
use crate::store::StoreError;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// What the writer needs to run the ops rules.
#[derive(Debug, Clone)]
pub struct OpsSettings {
    pub rules: crate::ops::Config,
    /// The entities projection's mapping: entity changes are read off print events with it.
    pub mapping: EntityMapping,
}

/// The rules' state, shared by the writer (which feeds it) and the read API (which asks it
/// for `pendingOps` and optimistic views).
pub struct OpsShared {
    settings: OpsSettings,
    feed: Mutex<OpsFeed>,
}

impl OpsShared {
    pub fn new(settings: OpsSettings) -> Arc<OpsShared> {
        let feed = Mutex::new(OpsFeed::new(&settings));
        Arc::new(OpsShared { settings, feed })
    }

    pub fn settings(&self) -> &OpsSettings {
        &self.settings
    }

    /// The state, for reading or feeding. Never held across an await.
    pub fn lock(&self) -> MutexGuard<'_, OpsFeed> {
        self.feed.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Forgets everything: the next transaction feeds the log again from its start (after a
    /// transaction whose outcome is unknown, the state may hold entries that are not stored).
    pub(super) fn reset(&self) {
        *self.lock() = OpsFeed::new(&self.settings);
    }
}

/// The keys an entity's changes set, in log order: enough to name the fields a change
/// may alter (the values are the projection's business).
#[derive(Debug, Default)]
struct Tracked {
    version: i64,
    changes: Vec<(i64, Op, Vec<String>)>,
}

impl Tracked {
    fn keys(&self) -> BTreeSet<String> {
        let mut keys = BTreeSet::new();
        for (_, op, fields) in &self.changes {
            if *op == Op::Create {
                keys.clear();
            }
            keys.extend(fields.iter().cloned());
        }
        keys
    }
}

pub struct OpsFeed {
    resolver: Resolver,
    mapping: EntityMapping,
    entities: HashMap<String, Tracked>,
    /// Applied print events that changed an entity: their entity and transaction, for the
    /// rollback that undoes them.
    changed_by: HashMap<i64, String>,
    /// The last `seq` fed.
    pub(super) fed: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EventFields {
    #[serde(default)]
    tx_hash: Option<String>,
    event_type: EventType,
    #[serde(default = "yes")]
    success: bool,
    #[serde(default)]
    contract_id: Option<String>,
    #[serde(default)]
    data: DataValue,
}

#[derive(Deserialize, Default)]
struct DataValue {
    #[serde(default)]
    value: Option<Value>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkerFields {
    block_hash: String,
    block_height: i64,
    #[serde(default)]
    timestamp: i64,
    #[serde(default)]
    transactions: Vec<TxFields>,
}

/// A transaction of a block marker, as the rules read it (the marker holds more).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TxFields {
    tx_hash: String,
    #[serde(default)]
    sender: Option<String>,
    success: bool,
}

#[derive(Deserialize)]
struct TxHashOnly {
    #[serde(rename = "txHash", default)]
    tx_hash: Option<String>,
}

/// What an op entry's body holds beyond the wire object.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OpFields {
    address: String,
    op_id: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default)]
    base_version: Option<i64>,
    #[serde(default)]
    tx_hash: Option<String>,
}

fn corrupt(seq: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("entry {seq}: {e}"))
}

impl OpsFeed {
    fn new(settings: &OpsSettings) -> OpsFeed {
        OpsFeed {
            resolver: Resolver::new(settings.rules.clone()),
            mapping: settings.mapping.clone(),
            entities: HashMap::new(),
            changed_by: HashMap::new(),
            fed: 0,
        }
    }

    pub fn resolver(&self) -> &Resolver {
        &self.resolver
    }

    /// The last `seq` fed.
    pub fn fed(&self) -> i64 {
        self.fed
    }

    /// Feeds one committed entry (its decisions are already in the log).
    pub fn feed_entry(&mut self, e: &LogEntry) -> Result<(), StoreError> {
        self.feed(e.seq, e.kind, e.event_type, e.rollback_of, &e.body).map(drop)
    }

    /// The rules' input for one entry (`None`: the rules do not read it).
    pub(super) fn input_of(&mut self, seq: i64, kind: EntryKind, event_type: Option<EventType>, rollback_of: Option<i64>, body: &str) -> Result<Option<Input>, StoreError> {
        Ok(match kind {
            // An extension is read as a `block` entry for a block already canonical (rule 15).
            EntryKind::BlockApplied | EntryKind::BlockExtended => {
                let m: MarkerFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                let txs = m.transactions.into_iter().map(|t| Tx { tx_hash: t.tx_hash, sender: t.sender, success: t.success }).collect();
                Some(Input::BlockApplied(BlockApplied { seq, height: m.block_height, hash: m.block_hash, timestamp: m.timestamp, txs }))
            }
            EntryKind::BlockRolledBack => {
                let m: MarkerFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                Some(Input::BlockRolledBack(BlockRolledBack { seq, height: m.block_height, hash: m.block_hash }))
            }
            EntryKind::Event => {
                // Only print events can change an entity: the rest are not parsed.
                if event_type.is_some_and(|t| t != EventType::PrintEvent) {
                    return Ok(None);
                }
                let e: EventFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                let Some(m) = self.mapping.change_of(e.event_type, e.success, e.contract_id.as_deref(), e.data.value.as_ref())
                else {
                    return Ok(None);
                };
                let name = entity_name(&m.kind, &m.id);
                let tracked = self.entities.entry(name.clone()).or_default();
                let mut fields: BTreeSet<String> = m.fields.keys().cloned().collect();
                if m.op == Op::Create {
                    fields.extend(tracked.keys());
                }
                tracked.changes.push((seq, m.op, m.fields.keys().cloned().collect()));
                tracked.version += 1;
                self.changed_by.insert(seq, name.clone());
                let tx_hash = e.tx_hash.unwrap_or_default();
                Some(Input::EntityChanged(EntityChanged { seq, entity: name, fields: fields.into_iter().collect(), tx_hash, version: tracked.version }))
            }
            EntryKind::Rollback => {
                let Some(name) = rollback_of.and_then(|of| self.changed_by.remove(&of)) else {
                    return Ok(None);
                };
                let of = rollback_of.unwrap_or_default();
                let t: TxHashOnly = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                let tracked = self.entities.entry(name.clone()).or_default();
                let before = tracked.keys();
                let undone: Vec<String> =
                    tracked.changes.iter().find(|(s, _, _)| *s == of).map(|(_, _, f)| f.clone()).unwrap_or_default();
                tracked.changes.retain(|(s, _, _)| *s != of);
                let after = tracked.keys();
                tracked.version += 1;
                let mut fields: BTreeSet<String> = undone.into_iter().collect();
                fields.extend(before.symmetric_difference(&after).cloned());
                Some(Input::EntityChanged(EntityChanged {
                    seq,
                    entity: name,
                    fields: fields.into_iter().collect(),
                    tx_hash: t.tx_hash.unwrap_or_default(),
                    version: tracked.version,
                }))
            }
            EntryKind::Op => {
                let o: OpFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                Some(Input::OpSubmitted(OpSubmitted {
                    seq,
                    address: o.address,
                    op_id: o.op_id,
                    entity: o.entity,
                    kind: o.kind,
                    data: o.data,
                    base_version: o.base_version,
                    tx_hash: o.tx_hash,
                }))
            }
            EntryKind::OpTx => {
                let o: OpFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                let tx_hash = o.tx_hash.ok_or_else(|| corrupt(seq, "op-tx without txHash"))?;
                Some(Input::TxHashAttached(TxHashAttached { seq, address: o.address, op_id: o.op_id, tx_hash }))
            }
            EntryKind::OpCancel => {
                let o: OpFields = serde_json::from_str(body).map_err(|e| corrupt(seq, e))?;
                Some(Input::OpCancelled(OpCancelled { seq, address: o.address, op_id: o.op_id }))
            }
            EntryKind::OpStatus => None,
        })
    }

    /// Feeds one entry; returns the decisions it causes.
    pub(super) fn feed(&mut self, seq: i64, kind: EntryKind, event_type: Option<EventType>, rollback_of: Option<i64>, body: &str) -> Result<Vec<Decision>, StoreError> {
        if seq <= self.fed {
            return Ok(Vec::new());
        }
        let input = self.input_of(seq, kind, event_type, rollback_of, body)?;
        self.fed = seq;
        Ok(input.map(|i| self.resolver.apply(&i)).unwrap_or_default())
    }
}

/// New op entries of one transaction: their log rows, `op_log` rows, and the committed
/// entries handed to fan-out.
pub(super) struct OpRows {
    pub log: Vec<LogRow>,
    pub ops: Vec<OpLogRow>,
    pub entries: Vec<LogEntry>,
    /// The transaction's commit time, on every row.
    committed_at: i64,
}

impl OpRows {
    pub(super) fn new(committed_at: i64) -> OpRows {
        OpRows { log: Vec::new(), ops: Vec::new(), entries: Vec::new(), committed_at }
    }

    /// Adds an entry of an op kind for `address`.
    pub(super) fn push(&mut self, seq: i64, kind: EntryKind, address: &str, op_id: &str, block: Option<(i64, String)>, body: String) {
        let (block_height, block_hash) = block.unwrap_or((0, String::new()));
        self.log.push(LogRow {
            seq,
            kind: kind as i16,
            block_hash: block_hash.clone(),
            block_height,
            tx_index: None,
            event_index: None,
            rollback_of: None,
            body: body.clone(),
            committed_at: self.committed_at,
            type_code: None,
            contract_key: None,
        });
        self.ops.push(OpLogRow { address: address.to_string(), seq, op_id: op_id.to_string(), kind: kind as i16 });
        self.entries.push(LogEntry {
            seq,
            kind,
            block_height,
            block_hash,
            event_type: None,
            contract_id: None,
            affected_addresses: vec![address.to_string()],
            rollback_of: None,
            body: Arc::from(body),
        });
    }

    /// Adds the `op-status` entries of `decisions`, caused by the entry `cause`, from
    /// `next` on; returns the next free `seq`.
    pub(super) fn push_decisions(&mut self, feed: &OpsFeed, decisions: &[Decision], cause: i64, mut next: i64) -> i64 {
        for d in decisions {
            let op = feed.resolver.op(&d.address, &d.op_id);
            let body = status_body(next, d, op, cause);
            let block = d.block_height.zip(d.block_hash.clone());
            self.push(next, EntryKind::OpStatus, &d.address, &d.op_id, block, body);
            next += 1;
        }
        next
    }
}

/// The body of an `op-status` entry: the `op` object of PROTOCOL §4, with the op's
/// `address`, the rejection `detail` and `cause`, the `seq` of the entry that caused the
/// decision.
fn status_body(seq: i64, d: &Decision, op: Option<&OpRecord>, cause: i64) -> String {
    let mut v = json!({
        "seq": seq,
        "opId": d.op_id,
        "entity": op.map(|o| o.entity.as_str()),
        "kind": op.map(|o| o.kind.as_str()),
        "status": d.status,
        "reason": d.reason,
        "txHash": op.and_then(|o| o.tx_hash.as_deref()),
        "blockHeight": d.block_height,
        "blockHash": d.block_hash,
        "data": op.map(|o| Value::Object(o.data.clone())),
        "address": d.address,
        "cause": cause,
    });
    if let Some(detail) = d.detail {
        v["detail"] = json!(detail);
    }
    v.to_string()
}

/// The body of an `op` entry (status `pending`) or an `op-tx` entry (`pending`, with the
/// `txHash` it attaches).
pub(super) fn op_body(seq: i64, address: &str, op: &crate::ops::OpRequest) -> String {
    let mut v = json!({
        "seq": seq,
        "opId": op.op_id,
        "entity": op.entity,
        "kind": op.kind,
        "status": Status::Pending,
        "reason": null,
        "txHash": op.tx_hash,
        "blockHeight": null,
        "blockHash": null,
        "data": op.data,
        "address": address,
    });
    if let Some(b) = op.base_version {
        v["baseVersion"] = json!(b);
    }
    v.to_string()
}

/// The body of an `op-cancel` entry.
pub(super) fn cancel_body(seq: i64, address: &str, op_id: &str) -> String {
    json!({"seq": seq, "opId": op_id, "address": address}).to_string()
}

/// Every decision a log's entries cause, re-derived with fresh rules from the entries other
/// than `op-status` ones: the `op-status` bodies the writer appends, without their `seq`,
/// in log order. Equal to the logged ones when status is a pure function of the log.
pub fn rederive_decisions(settings: &OpsSettings, entries: &[LogEntry]) -> Result<Vec<Value>, StoreError> {
    let mut feed = OpsFeed::new(settings);
    let mut out = Vec::new();
    for e in entries {
        let decisions = feed.feed(e.seq, e.kind, e.event_type, e.rollback_of, &e.body)?;
        for d in &decisions {
            let body = status_body(0, d, feed.resolver.op(&d.address, &d.op_id), e.seq);
            let mut v: Value = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            if let Some(o) = v.as_object_mut() {
                o.remove("seq");
            }
            out.push(v);
        }
    }
    Ok(out)
}
