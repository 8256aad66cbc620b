//! What the rules remember of the chain: the block clock, the recent canonical blocks with
//! their transactions (to settle an op whose transaction is already mined), and per entity
//! its version and each field's last change (for staleness). docs/ops.md "The block
//! clock", "The op record".

use super::input::{BlockApplied, EntityChanged, Tx};
use std::collections::{BTreeMap, BTreeSet};

/// The last `entity-change` of an entity that listed a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastChange {
    /// The entity's version after that change.
    pub version: i64,
    /// The change's `seq`.
    pub seq: i64,
    pub tx_hash: String,
}

#[derive(Debug, Default)]
struct EntityVersions {
    version: i64,
    fields: BTreeMap<String, LastChange>,
}

#[derive(Debug)]
struct RecentBlock {
    height: i64,
    timestamp: i64,
    txs: Vec<Tx>,
}

/// A transaction found in a recent canonical block.
#[derive(Debug, Clone)]
pub struct Found {
    pub height: i64,
    pub hash: String,
    pub tx: Tx,
}

#[derive(Debug, Default)]
pub struct Chain {
    /// The greatest block timestamp so far; `None` before the first block.
    clock: Option<i64>,
    /// Canonical blocks whose timestamp is within the lookback of the clock, by hash.
    recent: BTreeMap<String, RecentBlock>,
    /// The same blocks by (timestamp, hash), to forget the oldest as the clock advances.
    by_time: BTreeSet<(i64, String)>,
    /// For each transaction of a recent block, the blocks listing it, first listed first.
    tx_blocks: BTreeMap<String, Vec<String>>,
    entities: BTreeMap<String, EntityVersions>,
}

impl Chain {
    pub fn clock(&self) -> Option<i64> {
        self.clock
    }

    /// Advances the clock to the block's timestamp (never back) and returns it.
    pub fn advance_clock(&mut self, timestamp: i64) -> i64 {
        let clock = self.clock.map_or(timestamp, |c| c.max(timestamp));
        self.clock = Some(clock);
        clock
    }

    /// Records a canonical block's transactions as recent (adding to those of a block
    /// already recorded), then forgets blocks older than `lookback` seconds of block time.
    pub fn add_block(&mut self, block: &BlockApplied, lookback: i64) {
        let entry = self.recent.entry(block.hash.clone()).or_insert_with(|| RecentBlock {
            height: block.height,
            timestamp: block.timestamp,
            txs: Vec::new(),
        });
        self.by_time.insert((entry.timestamp, block.hash.clone()));
        for tx in &block.txs {
            if entry.txs.iter().any(|t| t.tx_hash == tx.tx_hash) {
                continue;
            }
            entry.txs.push(tx.clone());
            let blocks = self.tx_blocks.entry(tx.tx_hash.clone()).or_default();
            if !blocks.contains(&block.hash) {
                blocks.push(block.hash.clone());
            }
        }
        let oldest_kept = self.clock.unwrap_or(block.timestamp).saturating_sub(lookback);
        while let Some((timestamp, hash)) = self.by_time.first().cloned() {
            if timestamp >= oldest_kept {
                break;
            }
            self.forget_block(&hash);
        }
    }

    /// The block is no longer canonical (or too old): its transactions are not recent.
    pub fn forget_block(&mut self, hash: &str) {
        let Some(block) = self.recent.remove(hash) else {
            return;
        };
        self.by_time.remove(&(block.timestamp, hash.to_string()));
        for tx in block.txs {
            if let Some(blocks) = self.tx_blocks.get_mut(&tx.tx_hash) {
                blocks.retain(|h| h != hash);
                if blocks.is_empty() {
                    self.tx_blocks.remove(&tx.tx_hash);
                }
            }
        }
    }

    /// The transaction in the first recent canonical block that lists it.
    pub fn find_tx(&self, tx_hash: &str) -> Option<Found> {
        let hash = self.tx_blocks.get(tx_hash)?.first()?;
        let block = self.recent.get(hash)?;
        let tx = block.txs.iter().find(|t| t.tx_hash == tx_hash)?;
        Some(Found { height: block.height, hash: hash.clone(), tx: tx.clone() })
    }

    pub fn record_change(&mut self, change: &EntityChanged) {
        let entity = self.entities.entry(change.entity.clone()).or_default();
        entity.version = change.version;
        for field in &change.fields {
            entity.fields.insert(
                field.clone(),
                LastChange { version: change.version, seq: change.seq, tx_hash: change.tx_hash.clone() },
            );
        }
    }

    /// The entity's version: that of its last change, `0` before any.
    pub fn version(&self, entity: &str) -> i64 {
        self.entities.get(entity).map_or(0, |e| e.version)
    }

    pub fn last_change(&self, entity: &str, field: &str) -> Option<&LastChange> {
        self.entities.get(entity)?.fields.get(field)
    }
}
