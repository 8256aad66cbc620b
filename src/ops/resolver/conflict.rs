//! The conflict sweep and what it reads (docs/ops.md "Staleness, visibility, strategies",
//! "The conflict sweep").

use super::{OpRecord, Resolver, Run};
use crate::ops::config::Strategy;
use crate::ops::decision::{Reason, Status};
use std::ops::Bound;

impl Resolver {
    /// docs/ops.md "The conflict sweep": pending ops, newest first, each revert taking
    /// effect before the next.
    pub(super) fn sweep(&mut self, run: &mut Run) {
        let mut candidates: Vec<i64> = if self.full_sweep {
            self.open.groups.values().flatten().copied().collect()
        } else {
            run.touched.iter().filter_map(|g| self.open.groups.get(g)).flatten().copied().collect()
        };
        candidates.retain(|seq| self.ops.get(seq).is_some_and(|op| op.status == Status::Pending));
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        for seq in candidates {
            if self.loses_conflict(seq) {
                self.revert(run, seq, Reason::Conflict, None, None);
            }
        }
    }

    fn loses_conflict(&self, seq: i64) -> bool {
        let Some(op) = self.ops.get(&seq) else {
            return false;
        };
        match op.strategy {
            Strategy::ChainWins => op.data.keys().any(|f| self.stale(op, f)),
            Strategy::LastWriterWins | Strategy::Merge => !op.data.keys().any(|f| self.visible(op, f)),
        }
    }

    /// The chain's current value of the field was written by another transaction after
    /// the version the op's client saw.
    fn stale(&self, op: &OpRecord, field: &str) -> bool {
        self.chain
            .last_change(&op.entity, field)
            .is_some_and(|l| l.version > op.base && op.tx_hash.as_deref() != Some(l.tx_hash.as_str()))
    }

    fn hidden(&self, op: &OpRecord, field: &str) -> bool {
        let lost_to_chain = op.strategy != Strategy::LastWriterWins && self.stale(op, field);
        let changed_since_confirmed = match (&op.confirmation, self.chain.last_change(&op.entity, field)) {
            (Some(c), Some(l)) => op.status == Status::Confirmed && l.seq > c.seq,
            _ => false,
        };
        lost_to_chain || changed_since_confirmed
    }

    /// The op owns the field (no later standing op of its address on its entity sets it)
    /// and does not hide it.
    pub(super) fn visible(&self, op: &OpRecord, field: &str) -> bool {
        if !op.data.contains_key(field) || self.hidden(op, field) {
            return false;
        }
        let mut later = self
            .open
            .groups
            .get(&(op.entity.clone(), op.address.clone()))
            .into_iter()
            .flat_map(|g| g.range((Bound::Excluded(op.seq), Bound::Unbounded)))
            .filter_map(|s| self.ops.get(s));
        !later.any(|l| l.data.contains_key(field))
    }
}
