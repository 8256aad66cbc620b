//! Messages between actors: imperative commands, past-tense notifications.

use crate::model::Payload;
use crate::store::{IngestReport, LogEntry};
use actix::prelude::*;
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
}
