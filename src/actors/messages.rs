//! Messages between actors: imperative commands, past-tense notifications.

use crate::model::Payload;
use crate::protocol::Filter;
use crate::model::LogEntry;
use crate::store::{IngestReport, OpCommand, OpReply};
use actix::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Why a payload was not appended. Every variant leaves the log unchanged.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The store could not be reached or the transaction failed: retry later.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// Too many payloads are already waiting for the writer: retry later.
    #[error("event store writer is overloaded ({0} payloads waiting)")]
    Overloaded(usize),
    /// The writer stopped before answering (it is being restarted): retry later.
    #[error("event store writer restarted before answering")]
    WriterGone,
}

/// Append one payload to the log; answered once it is durably committed.
#[derive(Message)]
#[rtype(result = "Result<IngestReport, WriteError>")]
pub struct Append {
    pub payload: Payload,
}

/// Append one ops message of a signed-in connection (PROTOCOL §4); answered once the
/// entries it caused (if any) are durably committed.
#[derive(Message)]
#[rtype(result = "Result<OpReply, WriteError>")]
pub struct SubmitOp {
    pub command: OpCommand,
}

/// Route one Chainhook payload into the log (sent by the webhook and `ingest`).
#[derive(Message)]
#[rtype(result = "Result<IngestReport, WriteError>")]
pub struct Ingest {
    pub payload: Payload,
}

/// Entries just committed, in `seq` order, contiguous with the previous `Committed`.
#[derive(Message, Clone, Debug)]
#[rtype(result = "()")]
pub struct Committed {
    pub entries: Arc<[LogEntry]>,
}

/// Register a recipient for every `Committed` from now on; answered with the last `seq`
/// forwarded so far, so the listener knows where live delivery starts.
#[derive(Message)]
#[rtype(result = "i64")]
pub struct Listen {
    pub recipient: Recipient<Committed>,
}

/// Some node committed the log up to `head` (learnt by a notification, a periodic check,
/// or the check right after the listener reconnected). The supervisor routes what it has
/// not routed yet, reading it from the store by `seq`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct HeadSeen {
    pub head: i64,
    pub source: HeadSource,
}

/// How a [`HeadSeen`] was learnt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadSource {
    Notification,
    Check,
    Reconnect,
}

/// Ask the supervisor for its counters.
#[derive(Message)]
#[rtype(result = "SupervisorStats")]
pub struct GetStats;

/// What the supervisor has done so far, for health checks and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SupervisorStats {
    /// The last `seq` forwarded to listeners.
    pub forwarded_seq: i64,
    pub listeners: usize,
    /// How many times the event-store writer started (1 + restarts).
    pub writer_starts: u64,
    /// Routing across nodes: the head known, the store reads that filled gaps.
    pub cluster: ClusterStats,
}

/// What the supervisor learnt of other nodes' appends and how it routed them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStats {
    #[serde(flatten)]
    pub sequencer: super::sequencer::SequencerStats,
    /// Notifications of other nodes' commits received.
    pub notifications: u64,
    /// Times the log listener connection was reopened.
    pub listener_reconnects: u64,
    /// Store reads (of other nodes' entries) that failed and were retried.
    pub read_failures: u64,
}

/// Where a topic hands entries for one session, and that session's outgoing bound.
///
/// `queued` counts entries a topic handed to the session and the session has not yet
/// written to its WebSocket context. A session whose client stops reading is not polled
/// (actix-http stops polling the response), so the count stops falling; topics check it
/// before every send, which makes the bound independent of the session's timers.
#[derive(Clone)]
pub struct SessionSink {
    /// The subscription's id as a JSON string, as frames carry it: subscribers of a topic
    /// with the same id share one set of frames.
    pub sub_json: Arc<str>,
    pub deliver: Recipient<Deliver>,
    pub overflowed: Recipient<Overflowed>,
    pub queued: Arc<AtomicUsize>,
    /// Entries the session may have queued before its subscriptions end with `resync`.
    pub max_queued: usize,
}

impl SessionSink {
    /// Reserves room for `n` entries. One batch is always accepted by an empty queue, so
    /// a commit larger than the bound does not end a subscription whose client keeps up.
    pub fn try_reserve(&self, n: usize) -> bool {
        let mut current = self.queued.load(Ordering::Acquire);
        loop {
            if current > 0 && current + n > self.max_queued {
                return false;
            }
            match self.queued.compare_exchange_weak(current, current + n, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => current = now,
            }
        }
    }
}

/// Subscribe a session's subscription `token` to the topic of `filter`; answered with
/// the handover `seq`: every matching entry after it reaches the session through the
/// topic, every one up to it must come from the store.
#[derive(Message)]
#[rtype(result = "i64")]
pub struct Subscribe {
    pub token: u64,
    pub filter: Filter,
    pub sink: SessionSink,
}

/// End subscription `token` (idempotent).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    pub token: u64,
}

/// Registry → topic: the committed entries that match the topic's filter, in order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Route {
    pub items: Vec<Routed>,
}

/// One entry as the registry routes it: its `seq` and the frame part shared by every
/// subscriber (see [`crate::protocol::entry_frame_tail`]).
#[derive(Debug, Clone)]
pub struct Routed {
    pub seq: i64,
    pub tail: Arc<str>,
}

/// Registry → topic: start delivering to a subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddSubscriber {
    pub token: u64,
    pub sink: SessionSink,
}

/// Registry → topic: stop delivering to a subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveSubscriber {
    pub token: u64,
}

/// One entry as a topic delivers it: its `seq` and its whole frame, shared (by reference
/// count) by every subscription of the topic with the same id.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub seq: i64,
    pub frame: bytestring::ByteString,
}

/// Topic → session: entries for subscription `token`, in `seq` order.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    pub token: u64,
    pub items: Arc<[Delivery]>,
}

/// Topic → session: the session's outgoing bound was full; subscription `token` got
/// every entry before this notice and no entry after it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Overflowed {
    pub token: u64,
}
