//! Log entries as the rest of the server sees them once committed.

use crate::model::EventType;
use serde::Deserialize;
use std::sync::Arc;

/// What a log row records. Stored as a SMALLINT; new kinds (operations, their outcomes)
/// take new numbers and never reuse old ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i16)]
pub enum EntryKind {
    /// One receipt event of an applied block (PROTOCOL §2 event object).
    Event = 1,
    /// The undoing of one event of a rolled-back block (PROTOCOL §2 rollback object).
    Rollback = 2,
    /// A block became canonical. Not sent to subscribers; it lets the canonical view be
    /// rebuilt from the log for blocks that carried no event.
    BlockApplied = 3,
    /// A block stopped being canonical. Not sent to subscribers.
    BlockRolledBack = 4,
}

impl EntryKind {
    pub fn from_i16(v: i16) -> Option<EntryKind> {
        match v {
            1 => Some(EntryKind::Event),
            2 => Some(EntryKind::Rollback),
            3 => Some(EntryKind::BlockApplied),
            4 => Some(EntryKind::BlockRolledBack),
            _ => None,
        }
    }

    /// Whether entries of this kind reach WebSocket subscribers.
    pub fn is_delivered(self) -> bool {
        matches!(self, EntryKind::Event | EntryKind::Rollback)
    }
}

/// A committed log entry: what the router fans out and what catch-up reads.
///
/// `body` is the wire object (event object, rollback object, or block marker), encoded
/// once at append time and shared by every subscriber that receives it.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    pub seq: i64,
    pub kind: EntryKind,
    pub block_height: i64,
    pub block_hash: String,
    pub event_type: Option<EventType>,
    pub contract_id: Option<String>,
    pub affected_addresses: Vec<String>,
    /// For a rollback entry, the `seq` of the event it undoes.
    pub rollback_of: Option<i64>,
    pub body: Arc<str>,
}

/// The fields of a stored event or rollback body that the row does not hold.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct BodyFields {
    #[serde(default)]
    pub affected_addresses: Vec<String>,
    #[serde(default)]
    pub contract_id: Option<String>,
    #[serde(default)]
    pub tx_hash: Option<String>,
}
