//! The ops of a [`super::Task`]: sent one at a time, in order, each after the previous
//! one's answer.

use super::Task;
use crate::client::ClientEvent;
use crate::protocol::{ClientMessage, ErrorCode, OpMessage};
use tokio::time::Instant;

/// One op request waiting for the server's answer.
#[derive(Debug, Clone)]
pub(crate) enum OpRequest {
    Op(OpMessage),
    Cancel(String),
}

impl OpRequest {
    pub(super) fn op_id(&self) -> &str {
        match self {
            OpRequest::Op(op) => &op.op_id,
            OpRequest::Cancel(id) => id,
        }
    }

    pub(super) fn frame(&self) -> String {
        match self {
            OpRequest::Op(op) => ClientMessage::Op(op.clone()).to_json(),
            OpRequest::Cancel(id) => ClientMessage::OpCancel { op_id: id.clone() }.to_json(),
        }
    }
}

/// Ops leave one at a time, each once the previous one is answered, so the log holds them
/// in the caller's order even when the server asks one to wait (`rate_limited`,
/// `unavailable`) or the connection drops with one in flight: the unanswered one is sent
/// again first, on this connection after a delay or on the next one.
#[derive(Default)]
pub(super) struct OpOutbox {
    pub(super) waiting: std::collections::VecDeque<OpRequest>,
    /// The front was sent on the current connection and is not answered yet.
    pub(super) in_flight: bool,
    /// The front is sent again at this time (the server asked it to wait).
    pub(super) retry_at: Option<Instant>,
    pub(super) retries: u32,
    /// Ops wait for a token: the server answered `unauthorized`.
    pub(super) needs_token: bool,
}

impl Task {
    /// The frame of the op to send now: the front of the outbox, unless one is in flight
    /// or waiting for a retry or a token.
    pub(super) fn next_op_frame(&mut self) -> Option<String> {
        let o = &mut self.outbox;
        if o.in_flight || o.retry_at.is_some() || o.needs_token {
            return None;
        }
        let frame = o.waiting.front()?.frame();
        o.in_flight = true;
        Some(frame)
    }

    /// Whether an `error` frame is the answer to the op in flight: the server names the
    /// op by `id`, and the codes are those of ops.
    pub(super) fn answers_op(&self, id: Option<&str>, code: ErrorCode) -> bool {
        let Some(front) = self.outbox.waiting.front().filter(|_| self.outbox.in_flight) else {
            return false;
        };
        let op_code = matches!(
            code,
            ErrorCode::OpMismatch
                | ErrorCode::InvalidOp
                | ErrorCode::RateLimited
                | ErrorCode::OpTooLarge
                | ErrorCode::TooManyOpenOps
                | ErrorCode::Unavailable
                | ErrorCode::Unauthorized
        );
        op_code && id.is_none_or(|id| id == front.op_id())
    }

    /// The server refused the op in flight: wait and send it again when the refusal is
    /// passing (`rate_limited`, `unavailable`) or a token is missing (`unauthorized`),
    /// else drop it and tell the caller.
    pub(super) async fn op_refused(&mut self, code: ErrorCode, message: String) -> bool {
        let o = &mut self.outbox;
        o.in_flight = false;
        match code {
            ErrorCode::RateLimited | ErrorCode::Unavailable => {
                o.retries = o.retries.saturating_add(1);
                let delay = self.config.backoff.delay(o.retries, &mut self.rng);
                o.retry_at = Some(Instant::now() + delay);
                true
            }
            ErrorCode::Unauthorized => {
                o.needs_token = true;
                let op_id = o.waiting.front().map(|r| r.op_id().to_string());
                self.emit(ClientEvent::server_error(op_id, code, message)).await
            }
            _ => {
                o.retries = 0;
                let Some(request) = o.waiting.pop_front() else { return true };
                let op_id = request.op_id().to_string();
                let code = serde_json::to_value(code).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
                self.emit(ClientEvent::OpRefused { op_id, code, message }).await
            }
        }
    }
}
