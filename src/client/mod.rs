//! A WebSocket client of PROTOCOL §3, for Rust programs, the tests and `tail`.
//!
//! [`Client::connect`] starts one background task that owns the socket. The caller adds
//! subscriptions ([`Client::subscribe`]) and reads [`ClientEvent`]s ([`Client::next`]).
//! The task tracks, per subscription, the last `seq` delivered; when the connection drops
//! it reconnects with exponential backoff and full jitter ([`Backoff`]) and resubscribes
//! each subscription with `since: {seq: last}`, and when the server ends a subscription
//! with `resync` it resubscribes that one the same way. The server guarantees no gap and
//! no duplicate per subscription, so the client deduplicates nothing: it checks that `seq`
//! increases and reports a violation as an error event ([`OUT_OF_ORDER`]), still
//! delivering the entry.
//!
//! # Bounds
//!
//! Events wait in a channel of [`ClientConfig::event_buffer`] entries. When the caller
//! stops reading, the task stops reading the socket, so the server's own outgoing bound
//! applies: it ends the subscriptions with `resync`, and the client resumes them from
//! their last `seq` once the caller reads again. Memory stays bounded at both ends.
//!
//! # Without the server
//!
//! A program that only subscribes depends on the crate without its default `server`
//! feature (`default-features = false`): this module, [`crate::protocol`] and
//! [`crate::model`] build alone, without diesel or actix. Its task needs a tokio runtime.

mod backoff;
mod optimistic;
mod queue;
mod task;

pub use backoff::{Backoff, BACKOFF_BASE, BACKOFF_CAP};
pub use optimistic::{new_op_id, Optimistic, OptimisticClient, OptimisticConfig, OptimisticError, OPS_SUBSCRIPTION};
pub use queue::{OfflineQueue, QueueError, QueueLimits, Queued, MAX_QUEUED_OPS, MAX_QUEUED_OP_BYTES};

use crate::protocol::{ErrorCode, Filter, OpAck, OpMessage, OpObject, ResyncReason, Since};
use serde_json::value::RawValue;
use std::time::Duration;
use tokio::sync::mpsc;

/// Events buffered between the socket and the caller: a few frames' worth of commits,
/// small enough (≤ ~1 MiB of event objects) that a stalled caller costs little.
pub const EVENT_BUFFER: usize = 1_024;
/// Read buffer of a client connection. tungstenite zero-fills the whole buffer before each
/// read (128 KiB by default), which costs more than the frames themselves on a busy stream.
pub const READ_BUFFER: usize = 16 * 1024;

/// The WebSocket settings of client connections (the `tail` command, `bench-ws`).
pub fn ws_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

/// How long one connection attempt (TCP + upgrade) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Error code of a client-side [`ClientEvent::Error`]: an entry whose `seq` is not above
/// the subscription's last one (the server broke its ordering guarantee).
pub const OUT_OF_ORDER: &str = "out_of_order";
/// Error code of a client-side [`ClientEvent::Error`]: a server frame this client could
/// not read.
pub const BAD_FRAME: &str = "bad_frame";
/// Error code of the last [`ClientEvent::Error`] before the event stream ends: the
/// configured number of reconnect attempts failed.
pub const GAVE_UP: &str = "gave_up";

#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub backoff: Backoff,
    /// Capacity of the event channel (see the module's "Bounds").
    pub event_buffer: usize,
    pub connect_timeout: Duration,
    /// Seed of the jitter; `None`: random. Tests fix it to get a known schedule.
    pub seed: Option<u64>,
    /// A fixed socket receive buffer in bytes (`SO_RCVBUF`, which disables the kernel's
    /// autotuning); `None`: the system default. Small values make a stalled reader fill
    /// its buffers quickly (tests, `bench-ws`).
    pub recv_buffer: Option<u32>,
    /// A client token (PROTOCOL §4: JWT, `sub` = the Stacks address), sent at each upgrade
    /// as `Authorization: Bearer`. [`Client::authenticate`] replaces it on the open
    /// connection and for the next ones.
    pub token: Option<String>,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig { backoff: Backoff::default(), event_buffer: EVENT_BUFFER, connect_timeout: CONNECT_TIMEOUT, seed: None, recv_buffer: None, token: None }
    }
}

/// What the client reports, in the order it happened.
#[derive(Debug, Clone)]
pub enum ClientEvent {
    /// A connection is open (first, and after each reconnect); subscriptions are being
    /// (re)sent.
    Connected,
    /// The server accepted a subscription; everything after `head_seq` comes live.
    Subscribed { sub: String, head_seq: i64 },
    /// An event object, raw as the server sent it.
    Event { sub: String, seq: i64, raw: Box<RawValue> },
    /// A rollback object, raw as the server sent it.
    Rollback { sub: String, seq: i64, raw: Box<RawValue> },
    /// The subscription's history is complete up to `seq`; the rest comes live.
    CaughtUp { sub: String, seq: i64 },
    /// The server ended the subscription after `seq`; the client resubscribes from its last
    /// delivered `seq` after a backoff delay.
    Resync { sub: String, seq: i64, reason: ResyncReason },
    /// A server `error` (`code` is its wire code) or a client-side one ([`OUT_OF_ORDER`],
    /// [`GAVE_UP`]).
    Error { id: Option<String>, code: String, message: String },
    /// The server accepted the client token: ops and the `ops` filter act for `address`
    /// until `exp` (Unix seconds).
    Authenticated { address: String, exp: u64 },
    /// The server's answer to an op or cancel of this client ([`Client::send_op`]).
    OpAck(OpAck),
    /// The server refused an op or cancel for good (`code`: `invalid_op`, `op_mismatch`,
    /// `op_too_large`, …); sending it again would change nothing.
    OpRefused { op_id: String, code: String, message: String },
    /// A status change of one of the address's ops, on an `ops` subscription.
    OpStatus { sub: String, seq: i64, op: OpObject },
    /// The connection is gone; attempt `attempt` starts after `delay`.
    Reconnecting { attempt: u32, delay: Duration },
}

impl ClientEvent {
    pub(crate) fn server_error(id: Option<String>, code: ErrorCode, message: String) -> ClientEvent {
        let code = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        ClientEvent::Error { id, code, message }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// Only plain `ws://` is built in (no TLS dependency); put a TLS proxy in front for
    /// `wss://`.
    #[error("not a ws://host:port/path URL: {0}")]
    BadUrl(String),
}

/// What the caller asks of the background task.
#[derive(Debug)]
enum Command {
    Subscribe { id: String, filter: Filter, since: Option<Since> },
    Unsubscribe { id: String },
    Authenticate { token: String },
    Op(task::OpRequest),
    DropConnection,
}

/// A handle on the background task; dropping it closes the connection.
pub struct Client {
    // Unbounded: commands come from the caller's own calls, one per subscription change.
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::Receiver<ClientEvent>,
}

impl Client {
    /// Starts the connection task (on the current tokio runtime) and returns at once: the
    /// first event is [`ClientEvent::Connected`], or [`ClientEvent::Reconnecting`] when the
    /// server cannot be reached.
    pub fn connect(url: &str, config: ClientConfig) -> Result<Client, ConnectError> {
        if task::host_port(url).is_none() {
            return Err(ConnectError::BadUrl(url.to_string()));
        }
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (event_tx, events) = mpsc::channel(config.event_buffer.max(1));
        tokio::spawn(task::Task::new(url.to_string(), config, event_tx).run(command_rx));
        Ok(Client { commands, events })
    }

    /// Adds a subscription; `since` as in PROTOCOL §3 (`None`: live only). Its id must be
    /// unique among this client's subscriptions (the server answers `duplicate_id`).
    pub fn subscribe(&self, id: impl Into<String>, filter: Filter, since: Option<Since>) {
        let _ = self.commands.send(Command::Subscribe { id: id.into(), filter, since });
    }

    pub fn unsubscribe(&self, id: impl Into<String>) {
        let _ = self.commands.send(Command::Unsubscribe { id: id.into() });
    }

    /// The next event; `None` once the client gave up (after a [`GAVE_UP`] error).
    pub async fn next(&mut self) -> Option<ClientEvent> {
        self.events.recv().await
    }

    /// Sends a (fresh) client token on the open connection (`auth`), and at the upgrade of
    /// every later one. The answer is [`ClientEvent::Authenticated`], or an `unauthorized`
    /// error that leaves the connection as it was.
    pub fn authenticate(&self, token: impl Into<String>) {
        let _ = self.commands.send(Command::Authenticate { token: token.into() });
    }

    /// Sends an op (PROTOCOL §4). Ops leave in the order given, one at a time, each once
    /// the previous one is answered; one that is unanswered when the connection drops is
    /// sent again on the next one (the server applies an `opId` once and answers a resend
    /// with the op's status). The answer is [`ClientEvent::OpAck`] or
    /// [`ClientEvent::OpRefused`]. Kept in memory only: [`OptimisticClient`] adds a queue
    /// on disk.
    pub fn send_op(&self, op: OpMessage) {
        let _ = self.commands.send(Command::Op(task::OpRequest::Op(op)));
    }

    /// Withdraws an op that has no `txHash` yet (`op-cancel`), in order with the ops.
    pub fn cancel_op(&self, op_id: impl Into<String>) {
        let _ = self.commands.send(Command::Op(task::OpRequest::Cancel(op_id.into())));
    }

    /// Drops the socket as a network failure would (without a close handshake); the
    /// client then reconnects and resumes. For tests and fault drills.
    pub fn drop_connection(&self) {
        let _ = self.commands.send(Command::DropConnection);
    }
}
