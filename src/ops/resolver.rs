//! The [`Resolver`]: the rules of docs/ops.md as a state machine fed one log entry at a
//! time. `apply` returns the decisions the entry causes; `view` and `answer_*` read the
//! state without changing it.
//!
//! Every collection is a `BTreeMap`/`BTreeSet` and every list of decisions is built in the
//! order the rules fix, so the output never depends on hashing or insertion accidents.
//!
//! # State
//!
//! Ops live in `ops`, keyed by the `seq` of their `op` entry (log order), with `ids` mapping
//! (address, opId) to it. [`OpenIndex`] holds the indexes over open ops that each step
//! walks (by entity and address, by awaited transaction, by deadline, by confirming block);
//! an op is taken out of them before any change and put back after, so they never drift.

use super::chain::{Chain, Found};
use super::config::{entity_kind, Config, Strategy};
use super::decision::{fields_eq, Answer, CancelRequest, Decision, OpRequest, Reason, RejectDetail, Status};
use super::input::{BlockApplied, BlockRolledBack, EntityChanged, Input, OpCancelled, OpSubmitted, TxHashAttached};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

mod conflict;
mod open_index;

use open_index::OpenIndex;

/// The block that confirmed an op, and the entry that confirmed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirmation {
    pub height: i64,
    pub hash: String,
    /// The `seq` of the entry that confirmed the op (a block, or the op or `op-tx` entry
    /// that found its transaction already mined).
    pub seq: i64,
}

/// What the rules keep of one op (docs/ops.md "The op record").
#[derive(Debug, Clone, PartialEq)]
pub struct OpRecord {
    /// The `seq` of the `op` entry: the op's place in log order.
    pub seq: i64,
    pub address: String,
    pub op_id: String,
    pub entity: String,
    pub kind: String,
    pub data: Map<String, Value>,
    /// As sent; absent means "the current one".
    pub base_version: Option<i64>,
    /// The version staleness is measured from.
    pub base: i64,
    pub tx_hash: Option<String>,
    pub status: Status,
    pub reason: Option<Reason>,
    pub confirmation: Option<Confirmation>,
    /// The block clock when the op was appended or last rolled back.
    pub start: Option<i64>,
    pub strategy: Strategy,
}

/// The decisions of one entry, and the (entity, address) groups it touched: only their
/// pending ops can newly lose a conflict.
#[derive(Default)]
struct Run {
    decisions: Vec<Decision>,
    touched: BTreeSet<(String, String)>,
}

/// The lifecycle and conflict rules of docs/ops.md, fed the log in `seq` order.
#[derive(Debug)]
pub struct Resolver {
    config: Config,
    chain: Chain,
    ops: BTreeMap<i64, OpRecord>,
    ids: BTreeMap<(String, String), i64>,
    open: OpenIndex,
    /// Per address, settled ops in the order they settled, for the retention bound.
    settled: BTreeMap<String, VecDeque<i64>>,
    /// Addresses whose settled ops exceed the retention, trimmed at the next entry so the
    /// ops of the decisions just returned can still be read.
    over_retention: BTreeSet<String>,
    /// Addresses some of whose settled ops were forgotten: only for them can an `opId` the
    /// resolver does not know still be one the log holds.
    forgot_some: BTreeSet<String>,
    /// Sweep every pending op after each entry instead of the touched groups; same
    /// decisions, checked by the unit tests.
    full_sweep: bool,
}

impl Resolver {
    pub fn new(config: Config) -> Resolver {
        Resolver {
            config,
            chain: Chain::default(),
            ops: BTreeMap::new(),
            ids: BTreeMap::new(),
            open: OpenIndex::default(),
            settled: BTreeMap::new(),
            over_retention: BTreeSet::new(),
            forgot_some: BTreeSet::new(),
            full_sweep: false,
        }
    }

    /// Whether ops of `address` were forgotten (docs/ops.md "Memory and limits"): when not,
    /// an `opId` of `address` the resolver does not know is new, without asking the log.
    pub fn has_forgotten_ops_of(&self, address: &str) -> bool {
        self.forgot_some.contains(address)
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The block clock: the greatest block timestamp so far.
    pub fn clock(&self) -> Option<i64> {
        self.chain.clock()
    }

    /// An op the resolver remembers (every open op; settled ones within the retention).
    pub fn op(&self, address: &str, op_id: &str) -> Option<&OpRecord> {
        let seq = self.ids.get(&(address.to_string(), op_id.to_string()))?;
        self.ops.get(seq)
    }

    /// The standing (pending or confirmed) ops of an address on an entity, in log order:
    /// an entity's `pendingOps`.
    pub fn standing(&self, address: &str, entity: &str) -> Vec<&OpRecord> {
        self.open
            .groups
            .get(&(entity.to_string(), address.to_string()))
            .into_iter()
            .flatten()
            .filter_map(|seq| self.ops.get(seq))
            .collect()
    }

    /// The entity's chain version: that of its last `entity-change` (0 before any).
    pub fn entity_version(&self, entity: &str) -> i64 {
        self.chain.version(entity)
    }

    /// Open ops of an address.
    pub fn open_count(&self, address: &str) -> u32 {
        self.open.open_per_address.get(address).copied().unwrap_or(0)
    }

    /// Applies one log entry and returns the status changes it causes, in the order of
    /// docs/ops.md "Entries, step by step" followed by the conflict sweep.
    pub fn apply(&mut self, input: &Input) -> Vec<Decision> {
        self.trim_settled();
        let mut run = Run::default();
        match input {
            Input::OpSubmitted(e) => self.op_submitted(&mut run, e),
            Input::TxHashAttached(e) => self.tx_hash_attached(&mut run, e),
            Input::OpCancelled(e) => self.op_cancelled(&mut run, e),
            Input::BlockApplied(e) => self.block_applied(&mut run, e),
            Input::BlockRolledBack(e) => self.block_rolled_back(&mut run, e),
            Input::EntityChanged(e) => self.entity_changed(&mut run, e),
        }
        self.sweep(&mut run);
        run.decisions
    }

    /// How the server answers an `op` message, before appending anything.
    pub fn answer_op(&self, request: &OpRequest) -> Answer {
        match self.op(&request.address, &request.op_id) {
            None => Answer::Append,
            Some(op) => resend_answer(
                op,
                &request.entity,
                &request.kind,
                &request.data,
                request.base_version,
                request.tx_hash.as_deref(),
            ),
        }
    }

    /// How the server answers an `op-cancel` message, before appending anything.
    pub fn answer_cancel(&self, request: &CancelRequest) -> Answer {
        match self.op(&request.address, &request.op_id) {
            None => Answer::Unknown,
            Some(op) if op.status != Status::Pending => Answer::Ack { status: op.status, reason: op.reason },
            Some(op) if op.tx_hash.is_some() => Answer::Refused,
            Some(_) => Answer::Append,
        }
    }

    /// The optimistic view of an entity for an address: `chain` (the confirmed fields),
    /// with each field on which a standing op of the address is visible set to its value.
    pub fn view(&self, address: &str, entity: &str, chain: &Map<String, Value>) -> Map<String, Value> {
        let mut fields = chain.clone();
        for op in self.standing(address, entity) {
            for (name, value) in &op.data {
                if self.visible(op, name) {
                    fields.insert(name.clone(), value.clone());
                }
            }
        }
        fields
    }

    // Entries.

    fn op_submitted(&mut self, run: &mut Run, e: &OpSubmitted) {
        if let Some(op) = self.op(&e.address, &e.op_id) {
            // A resend that reached the log: only a first txHash changes anything.
            let answer =
                resend_answer(op, &e.entity, &e.kind, &e.data, e.base_version, e.tx_hash.as_deref());
            if let (Answer::Attach, Some(tx)) = (answer, &e.tx_hash) {
                let seq = op.seq;
                self.attach(run, seq, tx, e.seq);
            }
            return;
        }
        let entity_version = self.chain.version(&e.entity);
        let rejected = self.reject_detail(e, entity_version);
        let strategy = entity_kind(&e.entity).map_or(self.config.default_strategy, |k| self.config.strategy(k));
        let op = OpRecord {
            seq: e.seq,
            address: e.address.clone(),
            op_id: e.op_id.clone(),
            entity: e.entity.clone(),
            kind: e.kind.clone(),
            data: e.data.clone(),
            base_version: e.base_version,
            base: e.base_version.unwrap_or(entity_version),
            tx_hash: e.tx_hash.clone(),
            status: Status::Pending,
            reason: None,
            confirmation: None,
            start: self.chain.clock(),
            strategy,
        };
        self.open.add(&op, &self.config);
        self.ids.insert((e.address.clone(), e.op_id.clone()), e.seq);
        self.ops.insert(e.seq, op);
        run.touched.insert((e.entity.clone(), e.address.clone()));
        if let Some(detail) = rejected {
            self.revert(run, e.seq, Reason::Rejected, None, Some(detail));
            return;
        }
        if let Some(tx) = &e.tx_hash {
            if let Some(found) = self.chain.find_tx(tx) {
                self.settle(run, e.seq, &found, e.seq);
            }
        }
    }

    /// docs/ops.md `op` step 2, first match wins.
    fn reject_detail(&self, e: &OpSubmitted, entity_version: i64) -> Option<RejectDetail> {
        let Some(kind) = entity_kind(&e.entity) else {
            return Some(RejectDetail::BadEntity);
        };
        let rule = self.config.kinds.get(kind);
        if rule.is_none() && self.config.reject_unknown_kinds {
            return Some(RejectDetail::UnknownKind);
        }
        if e.data.is_empty() {
            return Some(RejectDetail::EmptyData);
        }
        if let Some(allowed) = rule.and_then(|r| r.fields.as_ref()) {
            if e.data.keys().any(|f| !allowed.contains(f)) {
                return Some(RejectDetail::FieldNotAllowed);
            }
        }
        if e.base_version.is_some_and(|b| b < 0 || b > entity_version) {
            return Some(RejectDetail::BadBaseVersion);
        }
        if self.open_count(&e.address) >= self.config.max_open_ops_per_address {
            return Some(RejectDetail::TooManyOpenOps);
        }
        None
    }

    fn tx_hash_attached(&mut self, run: &mut Run, e: &TxHashAttached) {
        if let Some(op) = self.op(&e.address, &e.op_id) {
            if op.status == Status::Pending && op.tx_hash.is_none() {
                let seq = op.seq;
                self.attach(run, seq, &e.tx_hash, e.seq);
            }
        }
    }

    /// Gives a pending op its first txHash, then settles it if that transaction is mined.
    fn attach(&mut self, run: &mut Run, seq: i64, tx_hash: &str, entry_seq: i64) {
        self.change(seq, |op| op.tx_hash = Some(tx_hash.to_string()));
        if let Some(op) = self.ops.get(&seq) {
            run.touched.insert((op.entity.clone(), op.address.clone()));
        }
        if let Some(found) = self.chain.find_tx(tx_hash) {
            self.settle(run, seq, &found, entry_seq);
        }
    }

    fn op_cancelled(&mut self, run: &mut Run, e: &OpCancelled) {
        if let Some(op) = self.op(&e.address, &e.op_id) {
            if op.status == Status::Pending && op.tx_hash.is_none() {
                let seq = op.seq;
                self.revert(run, seq, Reason::Cancelled, None, None);
            }
        }
    }

    fn block_applied(&mut self, run: &mut Run, b: &BlockApplied) {
        let clock = self.chain.advance_clock(b.timestamp);
        let unstarted: Vec<i64> = self.open.unstarted.iter().copied().collect();
        for seq in unstarted {
            self.change(seq, |op| op.start = Some(clock));
        }
        self.chain.add_block(b, i64::from(self.config.expiry_secs));
        for tx in &b.txs {
            let waiting: Vec<i64> = self.open.awaiting_tx.get(&tx.tx_hash).into_iter().flatten().copied().collect();
            let found = Found { height: b.height, hash: b.hash.clone(), tx: tx.clone() };
            for seq in waiting {
                self.settle(run, seq, &found, b.seq);
            }
        }
        let deepest_final = b.height.saturating_sub(i64::from(self.config.final_depth));
        let mut finals: Vec<i64> =
            self.open.confirmed_at.iter().take_while(|(h, _)| *h <= deepest_final).map(|(_, s)| *s).collect();
        finals.sort_unstable();
        for seq in finals {
            self.transition(run, seq, |op| {
                op.status = Status::Final;
                op.reason = None;
            });
        }
        let mut overdue: Vec<i64> =
            self.open.deadlines.iter().take_while(|(d, _)| clock > *d).map(|(_, s)| *s).collect();
        overdue.sort_unstable();
        for seq in overdue {
            self.revert(run, seq, Reason::Expired, None, None);
        }
    }

    fn block_rolled_back(&mut self, run: &mut Run, b: &BlockRolledBack) {
        self.chain.forget_block(&b.hash);
        let clock = self.chain.clock();
        let removed: Vec<i64> = self.open.confirmed_in.get(&b.hash).into_iter().flatten().copied().collect();
        for seq in removed {
            self.transition(run, seq, |op| {
                op.status = Status::Pending;
                op.reason = Some(Reason::RolledBack);
                op.start = clock;
                op.confirmation = None;
            });
        }
    }

    fn entity_changed(&mut self, run: &mut Run, e: &EntityChanged) {
        self.chain.record_change(e);
        let groups: Vec<(String, String)> = self
            .open
            .groups
            .range((e.entity.clone(), String::new())..)
            .take_while(|((entity, _), _)| *entity == e.entity)
            .map(|(group, _)| group.clone())
            .collect();
        run.touched.extend(groups);
    }

    // Status changes.

    /// Settles a pending op against its transaction (docs/ops.md "Settling an op against a
    /// transaction").
    fn settle(&mut self, run: &mut Run, seq: i64, found: &Found, entry_seq: i64) {
        let Some(op) = self.ops.get(&seq) else {
            return;
        };
        let block = Some((found.height, found.hash.clone()));
        if found.tx.sender.as_deref() != Some(op.address.as_str()) {
            self.revert(run, seq, Reason::TxMismatch, block, None);
        } else if !found.tx.success {
            self.revert(run, seq, Reason::TxFailed, block, None);
        } else {
            let confirmation = Confirmation { height: found.height, hash: found.hash.clone(), seq: entry_seq };
            self.transition(run, seq, |op| {
                op.status = Status::Confirmed;
                op.reason = None;
                op.confirmation = Some(confirmation);
            });
        }
    }

    fn revert(
        &mut self,
        run: &mut Run,
        seq: i64,
        reason: Reason,
        block: Option<(i64, String)>,
        detail: Option<RejectDetail>,
    ) {
        let decided = self.transition(run, seq, |op| {
            op.status = Status::Reverted;
            op.reason = Some(reason);
        });
        if let Some(d) = decided {
            (d.block_height, d.block_hash) = block.map_or((None, None), |(h, b)| (Some(h), Some(b)));
            d.detail = detail;
        }
    }

    /// Changes an op's status and records the decision; the decision names the confirming
    /// block as it was before the change (confirmed, final, rolled back). Returns it for
    /// the caller to complete.
    fn transition<'r>(
        &mut self,
        run: &'r mut Run,
        seq: i64,
        f: impl FnOnce(&mut OpRecord),
    ) -> Option<&'r mut Decision> {
        let before = self.ops.get(&seq)?.confirmation.clone();
        self.change(seq, f);
        let op = self.ops.get(&seq)?;
        let block = op.confirmation.clone().or(before);
        run.touched.insert((op.entity.clone(), op.address.clone()));
        if !op.status.is_open() {
            self.settled.entry(op.address.clone()).or_default().push_back(seq);
            if self.settled.get(&op.address).is_some_and(|q| q.len() > self.config.settled_retained_per_address as usize) {
                self.over_retention.insert(op.address.clone());
            }
        }
        let keeps_block = matches!(op.status, Status::Confirmed | Status::Final) || op.reason == Some(Reason::RolledBack);
        run.decisions.push(Decision {
            address: op.address.clone(),
            op_id: op.op_id.clone(),
            status: op.status,
            reason: op.reason,
            block_height: block.as_ref().filter(|_| keeps_block).map(|c| c.height),
            block_hash: block.filter(|_| keeps_block).map(|c| c.hash),
            detail: None,
        });
        run.decisions.last_mut()
    }

    /// Changes an op with its indexes kept in step.
    fn change(&mut self, seq: i64, f: impl FnOnce(&mut OpRecord)) {
        let Some(op) = self.ops.get_mut(&seq) else {
            return;
        };
        self.open.remove(op, &self.config);
        f(op);
        self.open.add(op, &self.config);
    }

    /// Forgets the oldest settled ops of addresses over the retention.
    fn trim_settled(&mut self) {
        let limit = self.config.settled_retained_per_address as usize;
        for address in std::mem::take(&mut self.over_retention) {
            let Some(queue) = self.settled.get_mut(&address) else {
                continue;
            };
            while queue.len() > limit {
                let Some(seq) = queue.pop_front() else {
                    break;
                };
                if let Some(op) = self.ops.remove(&seq) {
                    self.ids.remove(&(op.address, op.op_id));
                    self.forgot_some.insert(address.clone());
                }
            }
            if queue.is_empty() {
                self.settled.remove(&address);
            }
        }
    }
}

/// docs/ops.md "Answers to resends and cancels", for an op message naming a known op.
fn resend_answer(
    op: &OpRecord,
    entity: &str,
    kind: &str,
    data: &Map<String, Value>,
    base_version: Option<i64>,
    tx_hash: Option<&str>,
) -> Answer {
    let same = op.entity == entity && op.kind == kind && fields_eq(&op.data, data) && op.base_version == base_version;
    match (same, op.tx_hash.as_deref(), tx_hash) {
        (false, _, _) => Answer::Mismatch,
        (true, Some(had), Some(sent)) if had != sent => Answer::Mismatch,
        (true, None, Some(_)) if op.status == Status::Pending => Answer::Attach,
        _ => Answer::Ack { status: op.status, reason: op.reason },
    }
}

#[cfg(test)]
impl Resolver {
    /// Sweep every pending op after each entry (the rule as written) instead of only the
    /// groups the entry touched (the optimisation).
    pub(super) fn sweep_everything(&mut self) {
        self.full_sweep = true;
    }

    /// Open ops of an address counted one by one, against the index's count.
    pub(super) fn open_ops_counted(&self, address: &str) -> usize {
        self.ops.values().filter(|o| o.address == address && o.status.is_open()).count()
    }
}
