//! `op` and `op-cancel` on a WebSocket session (PROTOCOL §4): checked here (identity, the
//! per-connection rate, the size of `data`), appended by the writer, answered with
//! `op-ack` once committed or with an `error` naming the `opId`. A refused message
//! appends nothing.

use super::WsSession;
use crate::actors::messages::{SubmitOp, WriteError};
use crate::ops::{CancelRequest, OpRequest};
use crate::protocol::{ErrorCode, OpAck, OpMessage, ServerMessage};
use crate::store::{OpCommand, OpReply};
use actix::prelude::*;
use actix_web_actors::ws;
use std::time::{Duration, Instant};

/// Counts ops messages in fixed one-second windows.
#[derive(Debug)]
pub(super) struct OpsRate {
    window_start: Instant,
    count: u32,
}

impl Default for OpsRate {
    fn default() -> Self {
        OpsRate { window_start: Instant::now(), count: 0 }
    }
}

impl OpsRate {
    /// Counts one message; `false` when it is over `max` in the current second.
    fn admit(&mut self, max: u32) -> bool {
        let now = Instant::now();
        if now.duration_since(self.window_start) >= Duration::from_secs(1) {
            self.window_start = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(1);
        self.count <= max
    }
}

impl WsSession {
    /// A malformed `op`/`op-cancel`: the `error` names its `opId` when it is a string.
    pub(super) fn refuse_op(ctx: &mut ws::WebsocketContext<Self>, text: &str, e: &crate::protocol::ClientError) {
        let op_id = serde_json::from_str::<serde_json::Value>(text)
            .ok()
            .and_then(|v| v.get("opId").and_then(|o| o.as_str()).map(str::to_string));
        Self::send(ctx, ServerMessage::OpError { op_id: op_id.as_deref(), code: e.code, message: &e.message });
    }

    fn op_error(ctx: &mut ws::WebsocketContext<Self>, op_id: &str, code: ErrorCode, message: &str) {
        Self::send(ctx, ServerMessage::OpError { op_id: Some(op_id), code, message });
    }

    /// The checks every ops message passes before it reaches the writer: a signed-in
    /// address, ops enabled, the rate. `None`: refused (answered here).
    fn admit_op(&mut self, op_id: &str, ctx: &mut ws::WebsocketContext<Self>) -> Option<(String, Recipient<SubmitOp>)> {
        let Some(address) = self.signed_in_address().map(str::to_string) else {
            Self::op_error(ctx, op_id, ErrorCode::Unauthorized, "ops need a signed-in connection (a client token)");
            return None;
        };
        let Some(ops) = self.ops.clone() else {
            Self::op_error(ctx, op_id, ErrorCode::Unauthorized, "ops are not enabled on this server");
            return None;
        };
        if !self.ops_rate.admit(self.config.max_ops_per_sec) {
            let message = format!("at most {} op and op-cancel messages per second", self.config.max_ops_per_sec);
            Self::op_error(ctx, op_id, ErrorCode::RateLimited, &message);
            return None;
        }
        Some((address, ops))
    }

    pub(super) fn submit_op(&mut self, op: OpMessage, ctx: &mut ws::WebsocketContext<Self>) {
        let Some((address, ops)) = self.admit_op(&op.op_id, ctx) else { return };
        let size = op.data_bytes();
        if size > self.config.max_op_data_bytes {
            let message = format!("data is {size} bytes; at most {}", self.config.max_op_data_bytes);
            return Self::op_error(ctx, &op.op_id, ErrorCode::OpTooLarge, &message);
        }
        let request = OpRequest {
            address,
            op_id: op.op_id,
            entity: op.entity,
            kind: op.kind,
            data: op.data,
            base_version: op.base_version,
            tx_hash: op.tx_hash,
        };
        let op_id = request.op_id.clone();
        self.send_to_writer(ops, OpCommand::Op(request), op_id, ctx);
    }

    pub(super) fn submit_cancel(&mut self, op_id: String, ctx: &mut ws::WebsocketContext<Self>) {
        let Some((address, ops)) = self.admit_op(&op_id, ctx) else { return };
        let command = OpCommand::Cancel(CancelRequest { address, op_id: op_id.clone() });
        self.send_to_writer(ops, command, op_id, ctx);
    }

    fn send_to_writer(&mut self, ops: Recipient<SubmitOp>, command: OpCommand, op_id: String, ctx: &mut ws::WebsocketContext<Self>) {
        let reply = ops.send(SubmitOp { command });
        ctx.spawn(reply.into_actor(self).map(move |reply, _act, ctx| {
            let reply = reply.unwrap_or(Err(WriteError::WriterGone));
            match reply {
                Ok(OpReply::Ack { op_id, seq, status, reason, detail, entity, version }) => {
                    ctx.text(OpAck { op_id, seq, status, reason, entity, version, detail }.to_json());
                }
                Ok(OpReply::Mismatch) => Self::op_error(
                    ctx,
                    &op_id,
                    ErrorCode::OpMismatch,
                    "this opId names an op with other content; only a first txHash may be added",
                ),
                Ok(OpReply::InvalidOp(why)) => Self::op_error(ctx, &op_id, ErrorCode::InvalidOp, why),
                Ok(OpReply::TooManyOpenOps(max)) => {
                    let message = format!("the address has {max} open ops, the most it may have");
                    Self::op_error(ctx, &op_id, ErrorCode::TooManyOpenOps, &message);
                }
                Err(e) => Self::op_error(ctx, &op_id, ErrorCode::Unavailable, &format!("{e}; nothing was stored, resend")),
            }
        }));
    }
}
