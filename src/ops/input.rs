//! The log entries the rules read (docs/ops.md "Input entries"). The server builds them
//! from its own entries (an op message, a block marker, an entities-projection change);
//! the JSON form is the one of the test vectors, `type` naming the kind.

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

/// One log entry, in `seq` order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type")]
pub enum Input {
    #[serde(rename = "op")]
    OpSubmitted(OpSubmitted),
    #[serde(rename = "op-tx")]
    TxHashAttached(TxHashAttached),
    #[serde(rename = "op-cancel")]
    OpCancelled(OpCancelled),
    #[serde(rename = "block")]
    BlockApplied(BlockApplied),
    #[serde(rename = "block-rollback")]
    BlockRolledBack(BlockRolledBack),
    #[serde(rename = "entity-change")]
    EntityChanged(EntityChanged),
}

impl Input {
    /// The entry's position in the log.
    pub fn seq(&self) -> i64 {
        match self {
            Input::OpSubmitted(e) => e.seq,
            Input::TxHashAttached(e) => e.seq,
            Input::OpCancelled(e) => e.seq,
            Input::BlockApplied(e) => e.seq,
            Input::BlockRolledBack(e) => e.seq,
            Input::EntityChanged(e) => e.seq,
        }
    }
}

// serde's internally tagged enums buffer numbers in a way the crate's `arbitrary_precision`
// serde_json cannot read back as integers, so the tag is dispatched by hand.
impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        let kind = value.get("type").and_then(Value::as_str).ok_or_else(|| D::Error::missing_field("type"))?.to_string();
        let mut fields = match value {
            Value::Object(map) => map,
            _ => return Err(D::Error::custom("an entry is a JSON object")),
        };
        fields.remove("type");
        let body = Value::Object(fields);
        let parsed = match kind.as_str() {
            "op" => serde_json::from_value(body).map(Input::OpSubmitted),
            "op-tx" => serde_json::from_value(body).map(Input::TxHashAttached),
            "op-cancel" => serde_json::from_value(body).map(Input::OpCancelled),
            "block" => serde_json::from_value(body).map(Input::BlockApplied),
            "block-rollback" => serde_json::from_value(body).map(Input::BlockRolledBack),
            "entity-change" => serde_json::from_value(body).map(Input::EntityChanged),
            other => return Err(D::Error::custom(format!("unknown entry type {other:?}"))),
        };
        parsed.map_err(|e| D::Error::custom(format!("{kind}: {e}")))
    }
}

/// An op as its client sent it, with the address of the client's token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpSubmitted {
    pub seq: i64,
    pub address: String,
    pub op_id: String,
    /// `kind:id` of the entity.
    pub entity: String,
    /// The op's own kind, e.g. `create-exchange`; carried, never interpreted.
    pub kind: String,
    /// The fields the op sets.
    pub data: Map<String, Value>,
    /// The entity version the client saw; absent: the current one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tx_hash: Option<String>,
}

/// A resend gave an op without a `txHash` its transaction hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TxHashAttached {
    pub seq: i64,
    pub address: String,
    pub op_id: String,
    pub tx_hash: String,
}

/// The client withdrew an op (`op-cancel`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OpCancelled {
    pub seq: i64,
    pub address: String,
    pub op_id: String,
}

/// One delivered transaction of a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Tx {
    pub tx_hash: String,
    /// Absent for transactions without a sender; never equal to an op's address.
    #[serde(default)]
    pub sender: Option<String>,
    pub success: bool,
}

/// A block became canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockApplied {
    pub seq: i64,
    pub height: i64,
    pub hash: String,
    /// Seconds, as Chainhook sends it: the only clock the rules read.
    pub timestamp: i64,
    /// In block order.
    #[serde(default)]
    pub txs: Vec<Tx>,
}

/// A block stopped being canonical.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BlockRolledBack {
    pub seq: i64,
    pub height: i64,
    pub hash: String,
}

/// The entities projection changed an entity (an applied or an undone print event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EntityChanged {
    pub seq: i64,
    /// `kind:id`.
    pub entity: String,
    /// Every field whose value the change may have altered.
    pub fields: Vec<String>,
    /// The transaction of the print event (of the undone one, for an undo).
    pub tx_hash: String,
    /// The entity's version after the change.
    pub version: i64,
}
