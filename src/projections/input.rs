//! What a projection sees of a log entry: an event applied, or an event undone.
//!
//! A rollback entry carries no `data`, only `rollback_of`; the engine loads the undone
//! event's body by that `seq` and hands it to the projection with [`Direction::Undo`], so
//! every projection undoes exactly what it did, from the same input.

use crate::model::EventType;
use serde::Deserialize;
use serde_json::Value;

/// Whether the event is being applied or undone (its rollback entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Apply,
    Undo,
}

impl Direction {
    /// +1 for apply, −1 for undo.
    pub fn sign(self) -> i64 {
        match self {
            Direction::Apply => 1,
            Direction::Undo => -1,
        }
    }
}

/// One event entry's effect, as folded by projections.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    /// The `seq` of the entry being folded (the rollback entry's own `seq` for an undo).
    pub seq: i64,
    pub direction: Direction,
    /// The event applied, or the event undone.
    pub event: &'a EventView,
}

/// The fields of a stored event object (PROTOCOL §2) that projections read.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventView {
    pub seq: i64,
    pub block_height: i64,
    #[serde(default)]
    pub contract_id: Option<String>,
    pub event_type: EventType,
    #[serde(default)]
    pub data: EventData,
    #[serde(default)]
    pub affected_addresses: Vec<String>,
    #[serde(default = "yes")]
    pub success: bool,
}

fn yes() -> bool {
    true
}

/// The parts of an event's `data` any built-in projection reads; the rest is skipped
/// without being materialised (this parse is the hot loop of a replay).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct EventData {
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    #[serde(default)]
    pub amount: Option<Value>,
    /// FT events: `ADDR.contract::asset`; NFT events (decoded form): the token id.
    #[serde(default)]
    pub asset_identifier: Option<Value>,
    /// NFT events: `ADDR.contract::asset`.
    #[serde(default)]
    pub asset_class_identifier: Option<String>,
    /// Print events: the decoded Clarity value.
    #[serde(default)]
    pub value: Option<Value>,
}

impl EventView {
    pub fn parse(body: &str) -> Result<EventView, serde_json::Error> {
        serde_json::from_str(body)
    }
}

pub use crate::model::entities::scalar_text;
