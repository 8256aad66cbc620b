//! Ops messages appended as log entries (PROTOCOL §4): one transaction for a batch of
//! `op` and `op-cancel` messages, each answered as docs/ops.md "Answers to resends and
//! cancels" says, the decisions each new entry causes appended right after it.

use super::conn::WriteConn;
use super::ops::{cancel_body, op_body, OpRows, OpsShared};
use crate::model::{EntryKind, EventType};
use crate::ops::{Answer, CancelRequest, OpRequest, Reason, RejectDetail, Status};
use crate::store::backend::on_backend;
use crate::store::schema::{log_entries, op_log};
use crate::store::{classify, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// (seq, kind, rollback_of, type_code, body) of an entry the rules catch up with.
type CatchUpRow = (i64, i16, Option<i64>, Option<i16>, String);

/// Entries read per query while the rules catch up with the log.
const CATCH_UP_PAGE: i64 = 1_000;

/// One ops message of a signed-in connection, with the token's address.
#[derive(Debug, Clone)]
pub enum OpCommand {
    Op(OpRequest),
    Cancel(CancelRequest),
}

/// How one [`OpCommand`] was answered.
#[derive(Debug, Clone, PartialEq)]
pub enum OpReply {
    /// `op-ack`: the op's entry `seq`, its status once the transaction's entries are
    /// decided, and the entity's chain version.
    Ack { op_id: String, seq: i64, status: Status, reason: Option<Reason>, detail: Option<RejectDetail>, entity: String, version: i64 },
    /// A resend that differs from the op.
    Mismatch,
    /// A cancel of an unknown op, or of one with a `txHash`.
    InvalidOp(&'static str),
    /// The address has as many open ops as it may; nothing appended.
    TooManyOpenOps(u32),
}

/// Feeds the rules every entry after the last one they saw, up to `head`.
pub(super) async fn catch_up(conn: &mut WriteConn, ops: &OpsShared, head: i64) -> Result<(), StoreError> {
    loop {
        let after = ops.lock().fed;
        if after >= head {
            return Ok(());
        }
        let rows: Vec<CatchUpRow> = on_backend!(&mut conn.0, |c| log_entries::table
            .filter(log_entries::seq.gt(after))
            .filter(log_entries::seq.le(head))
            .order(log_entries::seq.asc())
            .limit(CATCH_UP_PAGE)
            .select((log_entries::seq, log_entries::kind, log_entries::rollback_of, log_entries::type_code, log_entries::body))
            .load(c)
            .await)
        .map_err(classify)?;
        if rows.is_empty() {
            return Ok(());
        }
        let mut feed = ops.lock();
        for (seq, kind, rollback_of, type_code, body) in rows {
            let kind = EntryKind::from_i16(kind).ok_or_else(|| StoreError::Corrupt(format!("entry {seq} has unknown kind {kind}")))?;
            let event_type = type_code.and_then(EventType::from_code);
            feed.feed(seq, kind, event_type, rollback_of, &body)?;
        }
    }
}

/// The status of an op the rules no longer remember (settled long ago), from the log: its
/// `op` entry's `seq` and its last status entry's status and reason.
async fn stored_status(conn: &mut WriteConn, address: &str, op_id: &str) -> Result<Option<(i64, Status, Option<Reason>)>, StoreError> {
    let first: Option<i64> = on_backend!(&mut conn.0, |c| op_log::table
        .filter(op_log::address.eq(address))
        .filter(op_log::op_id.eq(op_id))
        .filter(op_log::kind.eq(EntryKind::Op as i16))
        .select(op_log::seq)
        .first(c)
        .await
        .optional())
    .map_err(classify)?;
    let Some(seq) = first else { return Ok(None) };
    let last: Option<String> = on_backend!(&mut conn.0, |c| op_log::table
        .inner_join(log_entries::table)
        .filter(op_log::address.eq(address))
        .filter(op_log::op_id.eq(op_id))
        .filter(op_log::kind.eq(EntryKind::OpStatus as i16))
        .order(op_log::seq.desc())
        .select(log_entries::body)
        .first(c)
        .await
        .optional())
    .map_err(classify)?;
    #[derive(serde::Deserialize)]
    struct StatusOnly {
        status: Status,
        #[serde(default)]
        reason: Option<Reason>,
    }
    let (status, reason) = match last {
        Some(body) => {
            let s: StatusOnly = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(format!("op-status of {op_id}: {e}")))?;
            (s.status, s.reason)
        }
        None => (Status::Pending, None),
    };
    Ok(Some((seq, status, reason)))
}

/// Plans the entries of `commands` inside the open transaction whose head is `head`, feeding
/// the rules as it goes: the replies, the rows to write, and the new head.
pub(super) async fn plan_ops(
    conn: &mut WriteConn,
    ops: &OpsShared,
    head: i64,
    commands: Vec<OpCommand>,
    committed_at: i64,
) -> Result<(Vec<OpReply>, OpRows, i64), StoreError> {
    let mut rows = OpRows::new(committed_at);
    let mut replies = Vec::with_capacity(commands.len());
    let mut next = head + 1;
    let max_open = ops.settings().rules.max_open_ops_per_address;
    for command in commands {
        let (address, op_id, entity) = match &command {
            OpCommand::Op(r) => (r.address.clone(), r.op_id.clone(), Some(r.entity.clone())),
            OpCommand::Cancel(r) => (r.address.clone(), r.op_id.clone(), None),
        };
        let answer = {
            let feed = ops.lock();
            match &command {
                OpCommand::Op(r) => feed.resolver().answer_op(r),
                OpCommand::Cancel(r) => feed.resolver().answer_cancel(r),
            }
        };
        let (kind, body) = match (&command, answer) {
            (_, Answer::Mismatch) => {
                replies.push(OpReply::Mismatch);
                continue;
            }
            (_, Answer::Unknown) => {
                replies.push(OpReply::InvalidOp("no op with this opId"));
                continue;
            }
            (_, Answer::Refused) => {
                replies.push(OpReply::InvalidOp("the op has a txHash: it can no longer be withdrawn"));
                continue;
            }
            (_, Answer::Ack { .. }) => {
                replies.push(ack(ops, &address, &op_id, entity));
                continue;
            }
            (OpCommand::Op(r), Answer::Append) => {
                // Only an op the resolver forgot can be in the log unknown to it.
                let forgotten = ops.lock().resolver().has_forgotten_ops_of(&address);
                let stored = if forgotten { stored_status(conn, &address, &op_id).await? } else { None };
                if let Some((seq, status, reason)) = stored {
                    let version = ops.lock().resolver().entity_version(&r.entity);
                    replies.push(OpReply::Ack { op_id, seq, status, reason, detail: None, entity: r.entity.clone(), version });
                    continue;
                }
                if ops.lock().resolver().open_count(&address) >= max_open {
                    replies.push(OpReply::TooManyOpenOps(max_open));
                    continue;
                }
                (EntryKind::Op, op_body(next, &address, r))
            }
            (OpCommand::Op(r), Answer::Attach) => (EntryKind::OpTx, op_body(next, &address, r)),
            (OpCommand::Cancel(_), _) => (EntryKind::OpCancel, cancel_body(next, &address, &op_id)),
        };
        let seq = next;
        rows.push(seq, kind, &address, &op_id, None, body.clone());
        next += 1;
        let detail = {
            let mut feed = ops.lock();
            let decisions = feed.feed(seq, kind, None, None, &body)?;
            next = rows.push_decisions(&feed, &decisions, seq, next);
            decisions.iter().rev().find(|d| d.address == address && d.op_id == op_id).and_then(|d| d.detail)
        };
        let mut reply = ack(ops, &address, &op_id, entity);
        if let OpReply::Ack { detail: d, .. } = &mut reply {
            *d = detail;
        }
        replies.push(reply);
    }
    Ok((replies, rows, next - 1))
}

/// `op-ack` with the op's current status; the entity is the op's (for a cancel, the
/// message names none).
fn ack(ops: &OpsShared, address: &str, op_id: &str, entity: Option<String>) -> OpReply {
    let feed = ops.lock();
    let resolver = feed.resolver();
    match resolver.op(address, op_id) {
        Some(op) => OpReply::Ack {
            op_id: op_id.to_string(),
            seq: op.seq,
            status: op.status,
            reason: op.reason,
            detail: None,
            entity: op.entity.clone(),
            version: resolver.entity_version(&op.entity),
        },
        None => OpReply::InvalidOp(if entity.is_some() { "the op is not known" } else { "no op with this opId" }),
    }
}
