//! What the rules decide: status changes of ops ([`Decision`], appended as `op-status`
//! entries), and how the server answers a resend or a cancel before appending anything
//! ([`Answer`]). docs/ops.md "Decisions", "Answers to resends and cancels".

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Pending,
    Confirmed,
    Final,
    Reverted,
}

impl Status {
    /// Pending or confirmed: the op still shows in the optimistic view and counts
    /// against the open-ops limit.
    pub fn is_open(self) -> bool {
        matches!(self, Status::Pending | Status::Confirmed)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Back to pending: a reorg removed the confirming block.
    RolledBack,
    /// The transaction is in a canonical block with `success: false`.
    TxFailed,
    /// The transaction was sent by another address.
    TxMismatch,
    /// No confirming block, or no `txHash`, in time.
    Expired,
    /// Lost a conflict under the entity kind's strategy.
    Conflict,
    /// Withdrawn by its client before it had a `txHash`.
    Cancelled,
    /// Refused when appended; [`RejectDetail`] says why.
    Rejected,
}

/// Why an op was rejected when appended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectDetail {
    BadEntity,
    UnknownKind,
    EmptyData,
    FieldNotAllowed,
    BadBaseVersion,
    TooManyOpenOps,
}

/// One status change of one op, to be appended as an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Decision {
    pub address: String,
    pub op_id: String,
    pub status: Status,
    #[serde(default)]
    pub reason: Option<Reason>,
    /// The block the decision is about: the confirming block (`confirmed`, `final`), the
    /// block holding the transaction (`tx_failed`, `tx_mismatch`), the removed block
    /// (`rolled_back`); else absent.
    #[serde(default)]
    pub block_height: Option<i64>,
    #[serde(default)]
    pub block_hash: Option<String>,
    /// Only with [`Reason::Rejected`].
    #[serde(default)]
    pub detail: Option<RejectDetail>,
}

/// An `op` message as the server receives it, with its token's address.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpRequest {
    pub address: String,
    pub op_id: String,
    pub entity: String,
    pub kind: String,
    pub data: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
}

/// An `op-cancel` message with its token's address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CancelRequest {
    pub address: String,
    pub op_id: String,
}

/// How the server answers an `op` or `op-cancel` message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Answer {
    /// New: append the op (or the cancel) as an entry.
    Append,
    /// A resend bringing the op's first `txHash`: append it as an `op-tx` entry.
    Attach,
    /// Nothing to append: answer `op-ack` with the op's current status.
    Ack {
        status: Status,
        #[serde(default)]
        reason: Option<Reason>,
    },
    /// A resend that differs from the op: `error` `op_mismatch`.
    Mismatch,
    /// A cancel of no known op: `error` `invalid_op`.
    Unknown,
    /// A cancel of an op that has a `txHash`: `error` `invalid_op`.
    Refused,
}

/// JSON equality with numbers compared by value (`2` equals `2.0`), as a client library
/// in another language compares them.
pub fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            let (x, y) = (x.to_string(), y.to_string());
            match (x.parse::<i128>(), y.parse::<i128>()) {
                (Ok(x), Ok(y)) => x == y,
                _ => match (x.parse::<f64>(), y.parse::<f64>()) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => x == y,
                },
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => fields_eq(x, y),
        _ => a == b,
    }
}

/// Same keys, values equal by [`json_eq`]; key order does not matter.
pub fn fields_eq(a: &Map<String, Value>, b: &Map<String, Value>) -> bool {
    a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| json_eq(v, w)))
}
