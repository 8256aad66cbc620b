//! Log entries as the rest of the system sees them once committed: what the router fans
//! out, what catch-up reads, what projections fold. Pure data; the store maps them to and
//! from its rows.

use super::EventType;
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
    /// An op as its signed-in client sent it (PROTOCOL §4); its first status, `pending`.
    /// Delivered to the `ops` subscriptions of its address only.
    Op = 5,
    /// A resend gave an op its `txHash`. Delivered like [`EntryKind::Op`].
    OpTx = 6,
    /// The client withdrew an op. Not delivered: the `reverted` `cancelled` decision is.
    OpCancel = 7,
    /// A decision of the ops rules: one status change of one op. Delivered like
    /// [`EntryKind::Op`].
    OpStatus = 8,
    /// More transactions of a block that is already canonical, as another predicate
    /// delivered them; the body is a block entry listing only those. Not sent to
    /// subscribers.
    BlockExtended = 9,
}

impl EntryKind {
    pub fn from_i16(v: i16) -> Option<EntryKind> {
        match v {
            1 => Some(EntryKind::Event),
            2 => Some(EntryKind::Rollback),
            3 => Some(EntryKind::BlockApplied),
            4 => Some(EntryKind::BlockRolledBack),
            5 => Some(EntryKind::Op),
            6 => Some(EntryKind::OpTx),
            7 => Some(EntryKind::OpCancel),
            8 => Some(EntryKind::OpStatus),
            9 => Some(EntryKind::BlockExtended),
            _ => None,
        }
    }

    /// Whether entries of this kind reach subscribers of chain filters (`contract`,
    /// `user`, `event-type`, `all`).
    pub fn is_delivered(self) -> bool {
        matches!(self, EntryKind::Event | EntryKind::Rollback)
    }

    /// Whether entries of this kind reach the `ops` subscriptions of their address (as
    /// `op-status` frames), and no other subscription.
    pub fn is_op_status(self) -> bool {
        matches!(self, EntryKind::Op | EntryKind::OpTx | EntryKind::OpStatus)
    }

    /// The kinds of the ops half of the log: private to one address.
    pub fn is_op(self) -> bool {
        matches!(self, EntryKind::Op | EntryKind::OpTx | EntryKind::OpCancel | EntryKind::OpStatus)
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
    /// The wire object. For the op kinds: the `op` object of an `op-status` frame
    /// (`crate::protocol::OpObject`), plus the op's `address` and, for an `op` entry, its
    /// `baseVersion`; `affected_addresses` then holds that one address.
    pub body: Arc<str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kinds are stored by number: each reads back as itself, and unknown numbers (a
    /// newer version's kinds) are refused rather than misread.
    #[test]
    fn every_kind_number_reads_back_as_its_kind() {
        for kind in [
            EntryKind::Event,
            EntryKind::Rollback,
            EntryKind::BlockApplied,
            EntryKind::BlockRolledBack,
            EntryKind::Op,
            EntryKind::OpTx,
            EntryKind::OpCancel,
            EntryKind::OpStatus,
            EntryKind::BlockExtended,
        ] {
            assert_eq!(EntryKind::from_i16(kind as i16), Some(kind));
        }
        for v in [0, 10, -1, i16::MAX] {
            assert_eq!(EntryKind::from_i16(v), None, "{v}");
        }
    }
}
