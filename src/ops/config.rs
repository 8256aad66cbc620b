//! The settings the rules read: strategies per entity kind, the finality depth, the two
//! expiry clocks and the bounds (docs/ops.md "Settings").

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `OP_FINAL_DEPTH`: the reorg depth Chainhook handles, so a block this deep stays.
pub const DEFAULT_FINAL_DEPTH: u32 = 6;
/// `OP_EXPIRY_SECS`: an hour of block time for a signed transaction to be mined; past that a
/// dApp should stop showing the prediction (the chain still shows whatever happens).
pub const DEFAULT_EXPIRY_SECS: u32 = 3600;
/// `OP_TX_WAIT_SECS`: ten minutes of block time for the wallet to sign and return a hash.
pub const DEFAULT_TX_WAIT_SECS: u32 = 600;
/// Open ops per address: far above what one user's devices queue, low enough that a
/// misbehaving client cannot grow the resolver's state or its per-entry work.
pub const DEFAULT_MAX_OPEN_OPS_PER_ADDRESS: u32 = 100;
/// Settled ops remembered per address, to answer resends of an offline queue without a
/// store lookup; older ones are answered from the store.
pub const DEFAULT_SETTLED_RETAINED_PER_ADDRESS: u32 = 1000;

/// How ops of one address on one entity resolve against each other and the chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Stale ops are reverted; pending ops never revert each other.
    #[default]
    ChainWins,
    /// The later op wins overlapping fields; staleness is ignored.
    LastWriterWins,
    /// Fields go to the later op, stale fields to the chain; an op with no field left loses.
    Merge,
}

/// What the settings say about one entity kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KindRule {
    /// Absent: the default strategy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<Strategy>,
    /// Present: the only fields an op on this kind may set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fields: Option<BTreeSet<String>>,
}

/// The settings; every key has the default of docs/ops.md, so a JSON object need only name
/// what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Config {
    pub default_strategy: Strategy,
    pub kinds: BTreeMap<String, KindRule>,
    pub reject_unknown_kinds: bool,
    pub final_depth: u32,
    pub expiry_secs: u32,
    pub tx_wait_secs: u32,
    pub max_open_ops_per_address: u32,
    pub settled_retained_per_address: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            default_strategy: Strategy::default(),
            kinds: BTreeMap::new(),
            reject_unknown_kinds: false,
            final_depth: DEFAULT_FINAL_DEPTH,
            expiry_secs: DEFAULT_EXPIRY_SECS,
            tx_wait_secs: DEFAULT_TX_WAIT_SECS,
            max_open_ops_per_address: DEFAULT_MAX_OPEN_OPS_PER_ADDRESS,
            settled_retained_per_address: DEFAULT_SETTLED_RETAINED_PER_ADDRESS,
        }
    }
}

impl Config {
    /// The strategy of an entity kind (`exchange` of `exchange:123`).
    pub fn strategy(&self, entity_kind: &str) -> Strategy {
        self.kinds.get(entity_kind).and_then(|k| k.strategy).unwrap_or(self.default_strategy)
    }
}

/// The entity kind of `kind:id`: the text before the first `:`, when both parts are
/// non-empty.
pub fn entity_kind(entity: &str) -> Option<&str> {
    match entity.split_once(':') {
        Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Some(kind),
        _ => None,
    }
}
