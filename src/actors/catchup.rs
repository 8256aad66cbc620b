//! Catch-up reads of a WebSocket subscription: which history a `since` asks for, read
//! from the store page by page up to the handover `seq` (see [`super::session`]).

use crate::model::{EventType, LogEntry};
use crate::protocol::Filter;
use serde::Deserialize;
use std::sync::Arc;
use crate::store::{EntryFilter, Page, PageEntry, Store, StoreError};

/// Longest chain of abandoned blocks followed back from a stale `since.blockHash`.
const MAX_FORK_WALK: usize = 1_000;

/// Where a history read goes next.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cursor {
    Seq { after: i64 },
    CanonicalAbove { height: i64, after: i64 },
}

impl Cursor {
    /// The same read, resumed after `seq`.
    pub(super) fn after(self, seq: i64) -> Cursor {
        match self {
            Cursor::Seq { .. } => Cursor::Seq { after: seq },
            Cursor::CanonicalAbove { height, .. } => Cursor::CanonicalAbove { height, after: seq },
        }
    }
}

/// One page of history for `cursor`, bounded above by the handover `upto`.
pub(super) async fn read_page(
    store: &Store,
    filter: &EntryFilter,
    cursor: Cursor,
    upto: i64,
    limit: i64,
) -> Result<Page, StoreError> {
    match cursor {
        Cursor::Seq { after } => store.history_since_seq(filter, after, upto, limit).await,
        Cursor::CanonicalAbove { height, after } => store.history_canonical_above(filter, height, after, upto, limit).await,
    }
}

/// The store's view of a protocol filter.
pub(super) fn entry_filter(filter: &Filter) -> EntryFilter {
    match filter {
        Filter::Contract { contract_id, event_type } => {
            EntryFilter { contract_id: Some(contract_id.clone()), event_type: *event_type, ..Default::default() }
        }
        Filter::User { address } => EntryFilter { address: Some(address.clone()), ..Default::default() },
        Filter::EventType { event_type } => EntryFilter { event_type: Some(*event_type), ..Default::default() },
        Filter::All => EntryFilter::default(),
        Filter::Ops { address } => EntryFilter { ops_of: Some(address.clone()), ..Default::default() },
    }
}

/// The fields of a rollback object that filters look at.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RollbackFields {
    event_type: Option<EventType>,
    contract_id: Option<String>,
    #[serde(default)]
    affected_addresses: Vec<String>,
}

/// Whether a rollback entry of the store reaches subscribers of `filter`: the test live
/// delivery applies ([`Filter::matches`]).
fn matches_rollback(filter: &Filter, rollback: &PageEntry) -> Result<bool, StoreError> {
    let fields: RollbackFields = serde_json::from_str(&rollback.body)
        .map_err(|e| StoreError::Corrupt(format!("rollback {}: {e}", rollback.seq)))?;
    let entry = LogEntry {
        seq: rollback.seq,
        kind: rollback.kind,
        block_height: 0,
        block_hash: String::new(),
        event_type: fields.event_type,
        contract_id: fields.contract_id,
        affected_addresses: fields.affected_addresses,
        rollback_of: None,
        body: Arc::from(""),
    };
    Ok(filter.matches(&entry))
}

/// For `since: {blockHeight, blockHash}`: the rollbacks of every event the client may hold
/// from the abandoned fork, and the height from which canonical events must follow.
///
/// The client's chain ends at `block_hash`. If that block is canonical (or unknown), it
/// holds nothing stale: no rollbacks, events above `height`. Otherwise follow its parents
/// back to the first canonical block (the fork point, height F): each abandoned block on
/// the way is one whose events the client may hold, namely those of its latest
/// application (rollback entries of that block after its last `BlockApplied` marker).
/// Canonical events then follow from F, not from `height`: the new fork's blocks between
/// F and `height` are ones the client has never seen.
pub(super) async fn fork_rollbacks(
    store: &Store,
    filter: &Filter,
    block_hash: &str,
    height: i64,
    upto: i64,
) -> Result<(Vec<PageEntry>, i64), StoreError> {
    let mut abandoned = Vec::new();
    let mut fork_height = height;
    // A block's parent is one height below it.
    let mut cursor = Some((block_hash.to_string(), height));
    while let Some((hash, h)) = cursor.take() {
        match store.block_info(&hash, h).await? {
            Some((_, true)) => {
                fork_height = fork_height.min(h);
                break;
            }
            Some((parent, false)) if abandoned.len() < MAX_FORK_WALK => {
                fork_height = fork_height.min(h - 1);
                abandoned.push((hash, h));
                cursor = parent.map(|p| (p, h - 1));
            }
            _ => break,
        }
    }
    let mut rollbacks = Vec::new();
    for (hash, h) in &abandoned {
        let applied = store.last_applied_marker(hash, *h, upto).await?.unwrap_or(0);
        for rollback in store.history_rollbacks_of_block(hash, *h, applied, upto).await? {
            if matches_rollback(filter, &rollback)? {
                rollbacks.push(rollback);
            }
        }
    }
    rollbacks.sort_by_key(|e| e.seq);
    Ok((rollbacks, fork_height.max(0)))
}
