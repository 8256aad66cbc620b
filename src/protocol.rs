//! The WebSocket wire contract (PROTOCOL §3): client messages, server messages, filters.
//!
//! Pure data and parsing, no I/O: the server and a Rust client share this module.
//! Client messages are parsed in stages so that each failure gets the error code a client
//! can act on (`bad_json`, `unknown_type`, `invalid_filter`). Event and rollback frames are
//! not serialized here field by field: the entry's stored `body` is spliced in verbatim
//! ([`entry_frame_tail`], [`frame_for_sub`]), so an entry is encoded once at append time
//! and once more per topic, never per subscriber.
//!
//! Operations (PROTOCOL §4) have their wire types in [`ops`]; their `op-status` frames are
//! spliced like events.

pub mod ops;

pub use ops::{OpAck, OpMessage, OpObject};

use crate::model::{EntryKind, EventType, LogEntry};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// What a subscription selects (PROTOCOL §3 filters). The value itself is the canonical
/// topic key: two subscriptions with equal filters share one topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase", deny_unknown_fields)]
pub enum Filter {
    /// Events emitted by one contract, optionally narrowed to one event type.
    Contract {
        contract_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_type: Option<EventType>,
    },
    /// Events whose `affectedAddresses` contain the address.
    User { address: String },
    /// Events of one type, from any contract.
    EventType { event_type: EventType },
    /// Every event and rollback.
    All,
    /// The status changes of the connection's own ops (PROTOCOL §4). On the wire
    /// `{"type":"ops"}` names no address: the server fills in the connection's signed-in
    /// one, and a filter naming an address is refused, so no client can ask for another
    /// address's ops.
    Ops {
        #[serde(skip)]
        address: String,
    },
}

impl Filter {
    /// Whether the entry reaches subscribers of this filter. Rollbacks match exactly the
    /// filters their original event matched: they carry its type, contract and addresses.
    pub fn matches(&self, entry: &LogEntry) -> bool {
        if let Filter::Ops { address } = self {
            return entry.kind.is_op_status() && !address.is_empty() && entry.affected_addresses.first() == Some(address);
        }
        if !entry.kind.is_delivered() {
            return false;
        }
        match self {
            Filter::Contract { contract_id, event_type } => {
                entry.contract_id.as_deref() == Some(contract_id.as_str())
                    && event_type.is_none_or(|t| entry.event_type == Some(t))
            }
            Filter::User { address } => entry.affected_addresses.iter().any(|a| a == address),
            Filter::EventType { event_type } => entry.event_type == Some(*event_type),
            Filter::All => true,
            Filter::Ops { .. } => false,
        }
    }

    fn validate(&self) -> Result<(), String> {
        match self {
            Filter::Contract { contract_id, .. } if contract_id.trim().is_empty() => {
                Err("contractId must not be empty".into())
            }
            Filter::User { address } if address.trim().is_empty() => Err("address must not be empty".into()),
            _ => Ok(()),
        }
    }
}

/// Where a subscription's history starts (PROTOCOL §3 `since`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Since {
    /// Every matching entry after this `seq`, rollbacks included.
    Seq(i64),
    /// Every canonical matching event above this height; with `block_hash`, rollbacks first
    /// when that block is no longer canonical.
    BlockHeight { height: i64, block_hash: Option<String> },
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct SinceWire {
    seq: Option<i64>,
    block_height: Option<i64>,
    block_hash: Option<String>,
}

impl TryFrom<SinceWire> for Since {
    type Error = String;
    fn try_from(w: SinceWire) -> Result<Since, String> {
        match (w.seq, w.block_height, w.block_hash) {
            (Some(seq), None, None) if seq >= 0 => Ok(Since::Seq(seq)),
            (Some(_), None, None) => Err("since.seq must be >= 0".into()),
            (None, Some(height), hash) if height >= 0 => Ok(Since::BlockHeight { height, block_hash: hash }),
            (None, Some(_), _) => Err("since.blockHeight must be >= 0".into()),
            _ => Err("since needs exactly one of seq or blockHeight (blockHash only with blockHeight)".into()),
        }
    }
}

/// A client → server message.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientMessage {
    Subscribe { id: String, filter: Filter, since: Option<Since> },
    Unsubscribe { id: String },
    Ping,
    /// Signs the connection in, or refreshes its token (PROTOCOL §4 Identity).
    Auth { token: String },
    /// An op (PROTOCOL §4), or a resend of one.
    Op(OpMessage),
    /// Withdraws an op that has no `txHash` yet.
    OpCancel { op_id: String },
}

/// Error codes of PROTOCOL §3. The connection stays open after each of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadJson,
    UnknownType,
    InvalidFilter,
    DuplicateId,
    UnknownSubscription,
    TooManySubscriptions,
    Unauthorized,
    /// A resend of an `opId` differs from the op (other than bringing its first `txHash`).
    OpMismatch,
    /// A malformed `op` or `op-cancel`, or a cancel of an unknown op or of one with a
    /// `txHash`.
    InvalidOp,
    /// More `op`/`op-cancel` messages in one second than a connection may send.
    RateLimited,
    /// An op's `data` is larger than the configured limit.
    OpTooLarge,
    /// The address already has as many open (pending or confirmed) ops as it may.
    TooManyOpenOps,
    /// The op could not be stored (store unreachable); nothing was appended, resend it.
    Unavailable,
    /// A code this version does not know (a newer server's).
    #[serde(other)]
    Other,
}

/// Why a client message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    /// The subscription id the message named, when it could be read.
    pub id: Option<String>,
    pub code: ErrorCode,
    pub message: String,
}

impl ClientError {
    fn new(id: Option<&str>, code: ErrorCode, message: impl Into<String>) -> Self {
        ClientError { id: id.map(str::to_string), code, message: message.into() }
    }
}

impl ClientMessage {
    /// Parses one text frame: not JSON (or not an object) → `bad_json`; a `type` other
    /// than the known ones → `unknown_type`; a bad `filter` or `since` → `invalid_filter`;
    /// `auth` without a token → `unauthorized`.
    pub fn parse(text: &str) -> Result<ClientMessage, ClientError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| ClientError::new(None, ErrorCode::BadJson, format!("not JSON: {e}")))?;
        let Value::Object(mut obj) = value else {
            return Err(ClientError::new(None, ErrorCode::BadJson, "a message must be a JSON object"));
        };
        let id = match obj.get("id") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(ClientError::new(None, ErrorCode::BadJson, "id must be a string")),
        };
        let kind = match obj.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(_) => return Err(ClientError::new(id.as_deref(), ErrorCode::BadJson, "type must be a string")),
            None => return Err(ClientError::new(id.as_deref(), ErrorCode::BadJson, "missing type")),
        };
        let need_id = |id: Option<String>| {
            id.filter(|s| !s.is_empty())
                .ok_or_else(|| ClientError::new(None, ErrorCode::BadJson, format!("{kind} needs a non-empty string id")))
        };
        match kind.as_str() {
            "ping" => Ok(ClientMessage::Ping),
            "auth" => match obj.remove("token") {
                Some(Value::String(token)) if !token.is_empty() => Ok(ClientMessage::Auth { token }),
                _ => Err(ClientError::new(id.as_deref(), ErrorCode::Unauthorized, "auth needs a non-empty string token")),
            },
            "unsubscribe" => Ok(ClientMessage::Unsubscribe { id: need_id(id)? }),
            "subscribe" => {
                let id = need_id(id)?;
                let invalid = |m: String| ClientError::new(Some(&id), ErrorCode::InvalidFilter, m);
                let filter = obj.remove("filter").ok_or_else(|| invalid("missing filter".into()))?;
                let filter: Filter =
                    serde_json::from_value(filter).map_err(|e| invalid(format!("filter: {e}")))?;
                filter.validate().map_err(invalid)?;
                let since = match obj.remove("since") {
                    None | Some(Value::Null) => None,
                    Some(s) => {
                        let wire: SinceWire =
                            serde_json::from_value(s).map_err(|e| invalid(format!("since: {e}")))?;
                        Some(Since::try_from(wire).map_err(invalid)?)
                    }
                };
                Ok(ClientMessage::Subscribe { id, filter, since })
            }
            "op" => {
                obj.remove("type");
                obj.remove("id");
                let op: OpMessage = serde_json::from_value(Value::Object(obj))
                    .map_err(|e| ClientError::new(id.as_deref(), ErrorCode::InvalidOp, format!("op: {e}")))?;
                op.validate().map_err(|m| ClientError::new(id.as_deref(), ErrorCode::InvalidOp, m))?;
                Ok(ClientMessage::Op(op))
            }
            "op-cancel" => match obj.remove("opId") {
                Some(Value::String(op_id)) => {
                    ops::validate_op_id(&op_id).map_err(|m| ClientError::new(id.as_deref(), ErrorCode::InvalidOp, m))?;
                    Ok(ClientMessage::OpCancel { op_id })
                }
                _ => Err(ClientError::new(id.as_deref(), ErrorCode::InvalidOp, "op-cancel needs a string opId")),
            },
            other => Err(ClientError::new(id.as_deref(), ErrorCode::UnknownType, format!("unknown message type {other:?}"))),
        }
    }
}

impl Since {
    /// The wire form: `{"seq":S}` or `{"blockHeight":H[,"blockHash":"0x…"]}`.
    pub fn to_wire(&self) -> Value {
        match self {
            Since::Seq(seq) => serde_json::json!({ "seq": seq }),
            Since::BlockHeight { height, block_hash: None } => serde_json::json!({ "blockHeight": height }),
            Since::BlockHeight { height, block_hash: Some(h) } => {
                serde_json::json!({ "blockHeight": height, "blockHash": h })
            }
        }
    }
}

impl ClientMessage {
    /// The text frame a client sends; [`ClientMessage::parse`] reads it back.
    pub fn to_json(&self) -> String {
        let v = match self {
            ClientMessage::Subscribe { id, filter, since } => {
                let mut v = serde_json::json!({ "type": "subscribe", "id": id, "filter": filter });
                if let Some(s) = since {
                    v["since"] = s.to_wire();
                }
                v
            }
            ClientMessage::Unsubscribe { id } => serde_json::json!({ "type": "unsubscribe", "id": id }),
            ClientMessage::Ping => serde_json::json!({ "type": "ping" }),
            ClientMessage::Auth { token } => serde_json::json!({ "type": "auth", "token": token }),
            ClientMessage::Op(op) => {
                let mut v = serde_json::to_value(op).unwrap_or_default();
                v["type"] = Value::String("op".into());
                v
            }
            ClientMessage::OpCancel { op_id } => serde_json::json!({ "type": "op-cancel", "opId": op_id }),
        };
        v.to_string()
    }
}

/// Server → client messages other than `event` and `rollback` (those are spliced).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case", rename_all_fields = "camelCase")]
pub enum ServerMessage<'a> {
    Subscribed { id: &'a str, head_seq: i64, head_block_height: Option<i64> },
    CaughtUp { sub: &'a str, seq: i64 },
    Resync { sub: &'a str, seq: i64, reason: ResyncReason },
    Error { #[serde(skip_serializing_if = "Option::is_none")] id: Option<&'a str>, code: ErrorCode, message: &'a str },
    Pong,
    /// The connection acts for `address` until `exp` (Unix seconds): the answer to `auth`
    /// and to a valid token at the upgrade.
    Authenticated { address: &'a str, exp: u64 },
    /// An `error` refusing an `op` or `op-cancel`, naming its `opId` when it could be read
    /// (an extension: the `opId` key).
    #[serde(rename = "error")]
    OpError { #[serde(skip_serializing_if = "Option::is_none")] op_id: Option<&'a str>, code: ErrorCode, message: &'a str },
}

/// Why a subscription ended with `resync`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResyncReason {
    /// The client did not read fast enough (PROTOCOL §3).
    SlowConsumer,
    /// The history could not be read from the store; resubscribing later resumes.
    StoreUnavailable,
    /// The server is shutting down (restart, deploy): the connection closes next with 1012;
    /// reconnect (to any node) and resubscribe with `since.seq`.
    Shutdown,
    /// A reason this version does not know (a newer server's): resubscribe with `since.seq`.
    #[serde(other)]
    Other,
}

impl ResyncReason {
    /// The wire name (`slow_consumer`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            ResyncReason::SlowConsumer => "slow_consumer",
            ResyncReason::StoreUnavailable => "store_unavailable",
            ResyncReason::Shutdown => "shutdown",
            ResyncReason::Other => "other",
        }
    }
}

impl ServerMessage<'_> {
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A server → client message as a client reads it (the owned counterpart of
/// [`ServerMessage`], plus the spliced `event`/`rollback` frames and `unsubscribed`).
/// Event and rollback objects stay raw JSON: a client forwards them without re-encoding.
#[derive(Debug, Clone)]
pub enum ServerFrame {
    Subscribed { id: String, head_seq: i64, head_block_height: Option<i64> },
    Event { sub: String, seq: i64, body: Box<serde_json::value::RawValue> },
    Rollback { sub: String, seq: i64, body: Box<serde_json::value::RawValue> },
    CaughtUp { sub: String, seq: i64 },
    Resync { sub: String, seq: i64, reason: ResyncReason },
    Error { id: Option<String>, code: ErrorCode, message: String },
    Unsubscribed { id: String },
    Pong,
    Authenticated { address: String, exp: u64 },
    /// The answer to the connection's own `op` or `op-cancel`.
    OpAck(OpAck),
    /// An `error` that names an `opId`: the refusal of that `op` or `op-cancel`.
    OpError { op_id: String, code: ErrorCode, message: String },
    /// A status change of one of the address's ops, on an `ops` subscription; `body` is the
    /// `op` object ([`OpObject`]), kept raw like event objects.
    OpStatus { sub: String, seq: i64, body: Box<serde_json::value::RawValue> },
}

/// The flat shape of every server frame. Not an internally tagged enum: serde buffers
/// those, and `RawValue` cannot be read from a buffer.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerFrameWire<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
    id: Option<String>,
    sub: Option<String>,
    seq: Option<i64>,
    head_seq: Option<i64>,
    head_block_height: Option<i64>,
    #[serde(borrow)]
    event: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    rollback: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow)]
    op: Option<&'a serde_json::value::RawValue>,
    reason: Option<ResyncReason>,
    code: Option<ErrorCode>,
    message: Option<String>,
    address: Option<String>,
    exp: Option<u64>,
    op_id: Option<String>,
}

#[derive(Deserialize)]
struct SeqOf {
    seq: i64,
}

impl ServerFrame {
    /// Parses one text frame from the server; `Err` names what is missing or unknown.
    pub fn parse(text: &str) -> Result<ServerFrame, String> {
        let w: ServerFrameWire<'_> = serde_json::from_str(text).map_err(|e| format!("server frame: {e}"))?;
        let need = |v: Option<String>, name: &str| v.ok_or_else(|| format!("{} frame without {name}", w.kind));
        let seq_of = |raw: &serde_json::value::RawValue| {
            serde_json::from_str::<SeqOf>(raw.get()).map(|s| s.seq).map_err(|e| format!("{} object: {e}", w.kind))
        };
        let frame = match w.kind.as_ref() {
            "subscribed" => ServerFrame::Subscribed {
                id: need(w.id.clone(), "id")?,
                head_seq: w.head_seq.ok_or("subscribed frame without headSeq")?,
                head_block_height: w.head_block_height,
            },
            "event" => {
                let raw = w.event.ok_or("event frame without event")?;
                ServerFrame::Event { sub: need(w.sub.clone(), "sub")?, seq: seq_of(raw)?, body: raw.to_owned() }
            }
            "rollback" => {
                let raw = w.rollback.ok_or("rollback frame without rollback")?;
                ServerFrame::Rollback { sub: need(w.sub.clone(), "sub")?, seq: seq_of(raw)?, body: raw.to_owned() }
            }
            "caught-up" => ServerFrame::CaughtUp { sub: need(w.sub.clone(), "sub")?, seq: w.seq.ok_or("caught-up without seq")? },
            "resync" => ServerFrame::Resync {
                sub: need(w.sub.clone(), "sub")?,
                seq: w.seq.ok_or("resync without seq")?,
                reason: w.reason.ok_or("resync without reason")?,
            },
            "error" => match w.op_id.clone() {
                Some(op_id) => ServerFrame::OpError {
                    op_id,
                    code: w.code.ok_or("error without code")?,
                    message: w.message.clone().unwrap_or_default(),
                },
                None => ServerFrame::Error {
                    id: w.id.clone(),
                    code: w.code.ok_or("error without code")?,
                    message: w.message.clone().unwrap_or_default(),
                },
            },
            "unsubscribed" => ServerFrame::Unsubscribed { id: need(w.id.clone(), "id")? },
            "pong" => ServerFrame::Pong,
            "op-ack" => ServerFrame::OpAck(serde_json::from_str(text).map_err(|e| format!("op-ack frame: {e}"))?),
            "op-status" => {
                let raw = w.op.ok_or("op-status frame without op")?;
                ServerFrame::OpStatus { sub: need(w.sub.clone(), "sub")?, seq: seq_of(raw)?, body: raw.to_owned() }
            }
            "authenticated" => ServerFrame::Authenticated {
                address: need(w.address.clone(), "address")?,
                exp: w.exp.ok_or("authenticated frame without exp")?,
            },
            other => return Err(format!("unknown server frame type {other:?}")),
        };
        Ok(frame)
    }
}

/// The part of an `event`/`rollback` frame shared by every subscriber of an entry:
/// `"type":"event","event":{…}}`. `None` for entries that never reach subscribers.
pub fn entry_frame_tail(entry: &LogEntry) -> Option<Arc<str>> {
    let (name, key) = frame_type(entry.kind)?;
    Some(Arc::from(format!("\"type\":\"{name}\",\"{key}\":{}}}", entry.body)))
}

/// The frame `type` of an entry of `kind` and the key of its object; `None` for kinds
/// subscribers never receive.
fn frame_type(kind: EntryKind) -> Option<(&'static str, &'static str)> {
    match kind {
        EntryKind::Event => Some(("event", "event")),
        EntryKind::Rollback => Some(("rollback", "rollback")),
        EntryKind::Op | EntryKind::OpTx | EntryKind::OpStatus => Some(("op-status", "op")),
        EntryKind::BlockApplied | EntryKind::BlockExtended | EntryKind::BlockRolledBack | EntryKind::OpCancel => None,
    }
}

/// The whole frame of a history entry of `kind` whose object is `body`, for one
/// subscription: what [`frame_for_sub`] makes of [`entry_frame_tail`], in one allocation
/// (history entries go to one subscriber, so nothing is shared).
pub fn history_frame(sub_json: &str, kind: EntryKind, body: &str) -> Option<String> {
    let (name, key) = frame_type(kind)?;
    let mut s = String::with_capacity(24 + sub_json.len() + name.len() + key.len() + body.len());
    s.push_str("{\"sub\":");
    s.push_str(sub_json);
    s.push_str(",\"type\":\"");
    s.push_str(name);
    s.push_str("\",\"");
    s.push_str(key);
    s.push_str("\":");
    s.push_str(body);
    s.push('}');
    Some(s)
}

/// A whole `event`/`rollback` frame for one subscription: `{"sub":"s1",` + the tail.
pub fn frame_for_sub(sub_json: &str, tail: &str) -> String {
    let mut s = String::with_capacity(9 + sub_json.len() + tail.len());
    s.push_str("{\"sub\":");
    s.push_str(sub_json);
    s.push(',');
    s.push_str(tail);
    s
}

#[cfg(test)]
mod tests;
