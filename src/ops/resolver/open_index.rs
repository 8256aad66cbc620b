//! Indexes over open ops that each step of the rules walks (by entity and address, by
//! awaited transaction, by deadline, by confirming block).

use super::OpRecord;
use crate::ops::config::Config;
use crate::ops::decision::Status;
use std::collections::{BTreeMap, BTreeSet};

/// Indexes over open ops; rebuilt per op by [`OpenIndex::add`] / [`OpenIndex::remove`].
#[derive(Debug, Default)]
pub(super) struct OpenIndex {
    /// (entity, address) → open ops, in log order.
    pub(super) groups: BTreeMap<(String, String), BTreeSet<i64>>,
    pub(super) open_per_address: BTreeMap<String, u32>,
    /// Pending ops by their `txHash`.
    pub(super) awaiting_tx: BTreeMap<String, BTreeSet<i64>>,
    /// Pending ops appended before the first block.
    pub(super) unstarted: BTreeSet<i64>,
    /// Pending ops by (deadline, seq).
    pub(super) deadlines: BTreeSet<(i64, i64)>,
    /// Confirmed ops by (confirming height, seq).
    pub(super) confirmed_at: BTreeSet<(i64, i64)>,
    /// Confirmed ops by confirming block hash.
    pub(super) confirmed_in: BTreeMap<String, BTreeSet<i64>>,
}

fn deadline(op: &OpRecord, start: i64, config: &Config) -> i64 {
    let wait = match op.tx_hash {
        Some(_) => config.expiry_secs,
        None => config.tx_wait_secs.min(config.expiry_secs),
    };
    start.saturating_add(i64::from(wait))
}

impl OpenIndex {
    pub(super) fn add(&mut self, op: &OpRecord, config: &Config) {
        if !op.status.is_open() {
            return;
        }
        self.groups.entry((op.entity.clone(), op.address.clone())).or_default().insert(op.seq);
        *self.open_per_address.entry(op.address.clone()).or_default() += 1;
        match op.status {
            Status::Pending => {
                if let Some(tx) = &op.tx_hash {
                    self.awaiting_tx.entry(tx.clone()).or_default().insert(op.seq);
                }
                match op.start {
                    None => {
                        self.unstarted.insert(op.seq);
                    }
                    Some(start) => {
                        self.deadlines.insert((deadline(op, start, config), op.seq));
                    }
                }
            }
            Status::Confirmed => {
                if let Some(c) = &op.confirmation {
                    self.confirmed_at.insert((c.height, op.seq));
                    self.confirmed_in.entry(c.hash.clone()).or_default().insert(op.seq);
                }
            }
            Status::Final | Status::Reverted => {}
        }
    }

    pub(super) fn remove(&mut self, op: &OpRecord, config: &Config) {
        if !op.status.is_open() {
            return;
        }
        let group = (op.entity.clone(), op.address.clone());
        remove_from(&mut self.groups, &group, op.seq);
        if let Some(n) = self.open_per_address.get_mut(&op.address) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.open_per_address.remove(&op.address);
            }
        }
        if let Some(tx) = &op.tx_hash {
            remove_from(&mut self.awaiting_tx, tx, op.seq);
        }
        self.unstarted.remove(&op.seq);
        if let Some(start) = op.start {
            self.deadlines.remove(&(deadline(op, start, config), op.seq));
        }
        if let Some(c) = &op.confirmation {
            self.confirmed_at.remove(&(c.height, op.seq));
            remove_from(&mut self.confirmed_in, &c.hash, op.seq);
        }
    }
}

fn remove_from<K: Ord + Clone>(map: &mut BTreeMap<K, BTreeSet<i64>>, key: &K, seq: i64) {
    if let Some(set) = map.get_mut(key) {
        set.remove(&seq);
        if set.is_empty() {
            map.remove(key);
        }
    }
}
