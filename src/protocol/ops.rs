//! The wire form of operations (PROTOCOL §4): the `op` and `op-cancel` client messages,
//! the `op-ack` answer and the `op` object of `op-status` frames.
//!
//! Pure data, shared by the server and the Rust client. Statuses and reasons are the
//! rules' own types ([`crate::ops`]), so the wire and the resolver cannot drift apart.

use crate::ops::{Reason, RejectDetail, Status};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Longest `opId`: a UUID is 36 characters; the bound leaves room for other unique ids
/// while keeping the (address, opId) index small.
pub const MAX_OP_ID_LEN: usize = 64;
/// Longest `entity` (`kind:id`) and op `kind`: entity ids are contract keys, far shorter.
pub const MAX_ENTITY_LEN: usize = 256;
/// Longest `txHash`: `0x` and 64 hex digits for Stacks; the bound refuses junk early.
pub const MAX_TX_HASH_LEN: usize = 130;

/// A client's `op` message (PROTOCOL §4): the prediction of a change a transaction makes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpMessage {
    /// The op's identity per address, forever (a UUID the client makes).
    pub op_id: String,
    /// The op's own kind, e.g. `create-exchange`.
    pub kind: String,
    /// `kind:id` of a §5 entity.
    pub entity: String,
    /// The fields the op sets (a flat object).
    pub data: Map<String, Value>,
    /// The entity `version` the client saw; absent: the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<i64>,
    /// The transaction carrying the change; may come later with a resend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
}

impl OpMessage {
    /// Checks what the wire alone can check (the rules judge the rest when the op is
    /// appended): an `opId` of 1–[`MAX_OP_ID_LEN`] characters from `[A-Za-z0-9_-]`, a
    /// non-empty `kind` and `entity` within [`MAX_ENTITY_LEN`], a flat `data` (no nested
    /// objects or arrays), a `baseVersion` ≥ 0, a `txHash` of 1–[`MAX_TX_HASH_LEN`]
    /// characters.
    pub fn validate(&self) -> Result<(), String> {
        validate_op_id(&self.op_id)?;
        if self.kind.is_empty() || self.kind.len() > MAX_ENTITY_LEN {
            return Err(format!("kind must be 1-{MAX_ENTITY_LEN} bytes"));
        }
        if self.entity.is_empty() || self.entity.len() > MAX_ENTITY_LEN {
            return Err(format!("entity must be 1-{MAX_ENTITY_LEN} bytes"));
        }
        if let Some((k, _)) = self.data.iter().find(|(_, v)| v.is_object() || v.is_array()) {
            return Err(format!("data must be a flat object; field {k:?} is not a scalar"));
        }
        if self.base_version.is_some_and(|v| v < 0) {
            return Err("baseVersion must be >= 0".into());
        }
        if let Some(h) = &self.tx_hash {
            if h.is_empty() || h.len() > MAX_TX_HASH_LEN {
                return Err(format!("txHash must be 1-{MAX_TX_HASH_LEN} bytes"));
            }
        }
        Ok(())
    }

    /// The size of `data` as compact JSON: what the `data` limit counts.
    pub fn data_bytes(&self) -> usize {
        serde_json::to_string(&self.data).map(|s| s.len()).unwrap_or(usize::MAX)
    }
}

/// `opId` of 1–[`MAX_OP_ID_LEN`] characters from `[A-Za-z0-9_-]`.
pub fn validate_op_id(op_id: &str) -> Result<(), String> {
    if op_id.is_empty() || op_id.len() > MAX_OP_ID_LEN {
        return Err(format!("opId must be 1-{MAX_OP_ID_LEN} characters"));
    }
    if !op_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Err("opId may hold only letters, digits, '-' and '_'".into());
    }
    Ok(())
}

/// The `op` object of an `op-status` frame: one status of one op, as its log entry
/// records it (PROTOCOL §4). `seq` is the entry's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpObject {
    pub seq: i64,
    pub op_id: String,
    pub entity: String,
    pub kind: String,
    pub status: Status,
    pub reason: Option<Reason>,
    pub tx_hash: Option<String>,
    pub block_height: Option<i64>,
    pub block_hash: Option<String>,
    pub data: Map<String, Value>,
    /// Only with reason `rejected` (an extension): which rule refused the op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<RejectDetail>,
}

/// The `op-ack` answer to `op` and `op-cancel`, sent to the sending connection once the
/// entry (if any) is committed: `seq` is the op entry's, `status`/`reason` the op's status
/// then, `version` the entity's chain version then.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpAck {
    pub op_id: String,
    pub seq: i64,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub entity: String,
    pub version: i64,
    /// Only with reason `rejected` (an extension).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<RejectDetail>,
}

impl OpAck {
    /// `{"type":"op-ack",…}`.
    pub fn to_json(&self) -> String {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), Value::String("op-ack".into()));
        }
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EntryKind, LogEntry};
    use crate::protocol::{entry_frame_tail, frame_for_sub, history_frame, ClientMessage, ErrorCode, Filter, ServerFrame, Since};
    use serde_json::json;

    #[test]
    fn op_messages_validate() {
        let ok: OpMessage = serde_json::from_value(json!({
            "opId":"7f1c-aa","kind":"create-exchange","entity":"exchange:1","data":{"hours":2,"s":"x"},"baseVersion":3
        }))
        .expect("parses");
        assert_eq!(ok.validate(), Ok(()));
        assert_eq!(ok.data_bytes(), r#"{"hours":2,"s":"x"}"#.len());
        for bad in [
            json!({"opId":"","kind":"k","entity":"e:1","data":{"a":1}}),
            json!({"opId":"a b","kind":"k","entity":"e:1","data":{"a":1}}),
            json!({"opId":"x".repeat(65),"kind":"k","entity":"e:1","data":{"a":1}}),
            json!({"opId":"a","kind":"","entity":"e:1","data":{"a":1}}),
            json!({"opId":"a","kind":"k","entity":"","data":{"a":1}}),
            json!({"opId":"a","kind":"k","entity":"e:1","data":{"a":{"b":1}}}),
            json!({"opId":"a","kind":"k","entity":"e:1","data":{"a":[1]}}),
            json!({"opId":"a","kind":"k","entity":"e:1","data":{"a":1},"baseVersion":-1}),
            json!({"opId":"a","kind":"k","entity":"e:1","data":{"a":1},"txHash":""}),
        ] {
            let m: OpMessage = serde_json::from_value(bad.clone()).expect("shape parses");
            assert!(m.validate().is_err(), "{bad}");
        }
    }

    #[test]
    fn op_ack_matches_the_contract() {
        let ack = OpAck {
            op_id: "a".into(),
            seq: 7,
            status: Status::Pending,
            reason: None,
            entity: "exchange:1".into(),
            version: 3,
            detail: None,
        };
        let v: Value = serde_json::from_str(&ack.to_json()).expect("json");
        assert_eq!(v, json!({"type":"op-ack","opId":"a","seq":7,"status":"pending","entity":"exchange:1","version":3}));
        match ServerFrame::parse(&ack.to_json()) {
            Ok(ServerFrame::OpAck(back)) => assert_eq!(back, ack),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn op_errors_name_the_op() {
        let e = crate::protocol::ServerMessage::OpError { op_id: Some("a1"), code: ErrorCode::OpMismatch, message: "m" }.to_json();
        assert_eq!(serde_json::from_str::<Value>(&e).expect("json"), json!({"type":"error","opId":"a1","code":"op_mismatch","message":"m"}));
        assert!(matches!(ServerFrame::parse(&e), Ok(ServerFrame::OpError { op_id, code: ErrorCode::OpMismatch, .. }) if op_id == "a1"));
        let newer = r#"{"type":"error","code":"a_later_code","message":"m"}"#;
        assert!(matches!(ServerFrame::parse(newer), Ok(ServerFrame::Error { code: ErrorCode::Other, .. })));
    }

    fn code(text: &str) -> ErrorCode {
        ClientMessage::parse(text).expect_err("refused").code
    }

    #[test]
    fn op_and_cancel_messages_parse_and_round_trip() {
        let text = r#"{"type":"op","opId":"7f1c","kind":"create-exchange","entity":"exchange:123","data":{"status":"pending","hours":2},"baseVersion":3,"txHash":"0xab"}"#;
        let m = ClientMessage::parse(text).expect("parses");
        let ClientMessage::Op(op) = &m else { panic!("{m:?}") };
        assert_eq!((op.op_id.as_str(), op.base_version, op.tx_hash.as_deref()), ("7f1c", Some(3), Some("0xab")));
        assert_eq!(ClientMessage::parse(&m.to_json()), Ok(m.clone()));
        let c = ClientMessage::parse(r#"{"type":"op-cancel","opId":"7f1c"}"#).expect("parses");
        assert_eq!(c, ClientMessage::OpCancel { op_id: "7f1c".into() });
        assert_eq!(ClientMessage::parse(&c.to_json()), Ok(c));
        let ops = ClientMessage::parse(r#"{"type":"subscribe","id":"o","filter":{"type":"ops"},"since":{"seq":4}}"#);
        let want = ClientMessage::Subscribe { id: "o".into(), filter: Filter::Ops { address: String::new() }, since: Some(Since::Seq(4)) };
        assert_eq!(ops, Ok(want.clone()));
        assert_eq!(ClientMessage::parse(&want.to_json()), Ok(want));
    }

    #[test]
    fn malformed_ops_are_invalid_op() {
        for text in [
            r#"{"type":"op"}"#,
            r#"{"type":"op","opId":"a","kind":"k","entity":"e:1"}"#,
            r#"{"type":"op","opId":"a","kind":"k","entity":"e:1","data":[1]}"#,
            r#"{"type":"op","opId":"a","kind":"k","entity":"e:1","data":{"a":1},"extra":1}"#,
            r#"{"type":"op","opId":7,"kind":"k","entity":"e:1","data":{"a":1}}"#,
            r#"{"type":"op","opId":"a","kind":"k","entity":"e:1","data":{"a":{"b":2}}}"#,
            r#"{"type":"op","opId":"a","kind":"k","entity":"e:1","data":{"a":1},"baseVersion":"3"}"#,
            r#"{"type":"op-cancel"}"#,
            r#"{"type":"op-cancel","opId":""}"#,
        ] {
            assert_eq!(code(text), ErrorCode::InvalidOp, "{text}");
        }
        // The ops filter names no address: asking for one is refused.
        assert_eq!(
            code(r#"{"type":"subscribe","id":"o","filter":{"type":"ops","address":"SP2"}}"#),
            ErrorCode::InvalidFilter
        );
    }

    fn op_entry(kind: EntryKind, address: &str) -> LogEntry {
        LogEntry {
            seq: 3,
            kind,
            block_height: 0,
            block_hash: String::new(),
            event_type: None,
            contract_id: None,
            affected_addresses: vec![address.into()],
            rollback_of: None,
            body: std::sync::Arc::from(r#"{"seq":3,"opId":"a"}"#),
        }
    }

    #[test]
    fn ops_filters_match_only_their_address_and_chain_filters_never_ops() {
        let mine = Filter::Ops { address: "SP1".into() };
        let unbound = Filter::Ops { address: String::new() };
        for kind in [EntryKind::Op, EntryKind::OpTx, EntryKind::OpStatus] {
            assert!(mine.matches(&op_entry(kind, "SP1")));
            assert!(!mine.matches(&op_entry(kind, "SP2")));
            assert!(!unbound.matches(&op_entry(kind, "")));
            assert!(!Filter::All.matches(&op_entry(kind, "SP1")));
            assert!(!Filter::User { address: "SP1".into() }.matches(&op_entry(kind, "SP1")));
            let frame = frame_for_sub("\"o\"", &entry_frame_tail(&op_entry(kind, "SP1")).expect("delivered"));
            match ServerFrame::parse(&frame) {
                Ok(ServerFrame::OpStatus { sub, seq: 3, body }) => assert_eq!((sub.as_str(), body.get()), ("o", r#"{"seq":3,"opId":"a"}"#)),
                other => panic!("{other:?}"),
            }
            assert_eq!(history_frame("\"o\"", kind, r#"{"seq":3,"opId":"a"}"#), Some(frame));
        }
        assert!(!mine.matches(&op_entry(EntryKind::OpCancel, "SP1")));
        assert_eq!(entry_frame_tail(&op_entry(EntryKind::OpCancel, "SP1")), None);
    }

    #[test]
    fn op_objects_read_back() {
        let o: OpObject = serde_json::from_value(json!({
            "seq":4040,"opId":"7f1c","entity":"exchange:123","kind":"create-exchange","status":"confirmed",
            "reason":null,"txHash":"0x01","blockHeight":100460,"blockHash":"0x02","data":{"hours":2},"address":"SP1"
        }))
        .expect("reads, extra keys ignored");
        assert_eq!((o.status, o.reason, o.block_height), (Status::Confirmed, None, Some(100460)));
    }
}
