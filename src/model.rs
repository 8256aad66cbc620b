//! The event model shared by the Chainhook parser, the store and the wire.
//!
//! Pure data: no I/O, no actix, no diesel. A Chainhook payload parses into a [`Payload`]
//! of [`Block`]s carrying [`NewEvent`]s; the store gives each stored event a `seq` and
//! encodes it once as the PROTOCOL §2 event object.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// `eventType` of an event object (PROTOCOL §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    PrintEvent,
    ContractEvent,
    StxTransferEvent,
    StxMintEvent,
    StxBurnEvent,
    StxLockEvent,
    FtTransferEvent,
    FtMintEvent,
    FtBurnEvent,
    NftTransferEvent,
    NftMintEvent,
    NftBurnEvent,
    DataVarSetEvent,
    DataMapInsertEvent,
    DataMapUpdateEvent,
    DataMapDeleteEvent,
}

impl EventType {
    pub const ALL: [EventType; 16] = [
        EventType::PrintEvent,
        EventType::ContractEvent,
        EventType::StxTransferEvent,
        EventType::StxMintEvent,
        EventType::StxBurnEvent,
        EventType::StxLockEvent,
        EventType::FtTransferEvent,
        EventType::FtMintEvent,
        EventType::FtBurnEvent,
        EventType::NftTransferEvent,
        EventType::NftMintEvent,
        EventType::NftBurnEvent,
        EventType::DataVarSetEvent,
        EventType::DataMapInsertEvent,
        EventType::DataMapUpdateEvent,
        EventType::DataMapDeleteEvent,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::PrintEvent => "print_event",
            EventType::ContractEvent => "contract_event",
            EventType::StxTransferEvent => "stx_transfer_event",
            EventType::StxMintEvent => "stx_mint_event",
            EventType::StxBurnEvent => "stx_burn_event",
            EventType::StxLockEvent => "stx_lock_event",
            EventType::FtTransferEvent => "ft_transfer_event",
            EventType::FtMintEvent => "ft_mint_event",
            EventType::FtBurnEvent => "ft_burn_event",
            EventType::NftTransferEvent => "nft_transfer_event",
            EventType::NftMintEvent => "nft_mint_event",
            EventType::NftBurnEvent => "nft_burn_event",
            EventType::DataVarSetEvent => "data_var_set_event",
            EventType::DataMapInsertEvent => "data_map_insert_event",
            EventType::DataMapUpdateEvent => "data_map_update_event",
            EventType::DataMapDeleteEvent => "data_map_delete_event",
        }
    }
}

impl fmt::Display for EventType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown event type {0:?}")]
pub struct UnknownEventType(pub String);

impl FromStr for EventType {
    type Err = UnknownEventType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownEventType(s.to_string()))
    }
}

/// A parsed Chainhook payload, in the order PROTOCOL §1 applies it: every `rollback`
/// block first (newest first, as sent), then every `apply` block (oldest first).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Payload {
    pub rollback: Vec<Block>,
    pub apply: Vec<Block>,
}

impl Payload {
    /// Number of receipt events across every `apply` block.
    pub fn apply_event_count(&self) -> usize {
        self.apply.iter().map(|b| b.events.len()).sum()
    }
}

/// One Stacks block as Chainhook delivered it: only the transactions that matched the
/// predicate, flattened to their receipt events.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// `block_identifier.hash` (the index block hash).
    pub hash: String,
    /// `block_identifier.index`.
    pub height: i64,
    /// `parent_block_identifier.hash`, when present.
    pub parent_hash: Option<String>,
    /// Block timestamp in seconds, as Chainhook sends it.
    pub timestamp: i64,
    /// The delivered transactions, failed ones included (a failed transaction usually
    /// has no receipt event, so this is where its `success: false` is kept).
    pub transactions: Vec<TxSummary>,
    /// Receipt events of the delivered transactions, in transaction then receipt order.
    pub events: Vec<NewEvent>,
}

/// One delivered transaction, as the block entry of the log records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TxSummary {
    pub tx_hash: String,
    pub tx_index: i32,
    pub sender: Option<String>,
    pub success: bool,
    /// The Clarity repr of the result, e.g. `(err u2014)`.
    pub result: Option<String>,
    pub event_count: usize,
}

/// A receipt event before it is stored (no `seq` yet).
///
/// Identity on chain is (`block hash`, `tx_index`, `event_index`).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub tx_hash: String,
    /// The transaction's `metadata.position.index`, or its position in the block's
    /// delivered transactions where the payload has none.
    pub tx_index: i32,
    /// The event's `position.index`, or its position in the receipt where the payload has none.
    pub event_index: i32,
    pub event_type: EventType,
    pub contract_id: Option<String>,
    /// Chainhook's event data with Clarity values decoded (PROTOCOL §2).
    pub data: serde_json::Value,
    /// Every principal the event touches, without duplicates, in first-seen order.
    pub affected_addresses: Vec<String>,
    /// The transaction's `metadata.success`.
    pub success: bool,
}

/// The event object of PROTOCOL §2, as it goes on the wire and into the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventObject {
    pub seq: i64,
    pub tx_hash: String,
    pub tx_index: i32,
    pub event_index: i32,
    pub block_height: i64,
    pub block_hash: String,
    pub contract_id: Option<String>,
    pub event_type: EventType,
    pub data: serde_json::Value,
    pub affected_addresses: Vec<String>,
    pub success: bool,
    pub timestamp: i64,
    /// Present (and `true`) only in read API answers for an event that was since rolled back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub rolled_back: bool,
}

/// The rollback object of PROTOCOL §2: one per event of a rolled-back block.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RollbackObject {
    pub seq: i64,
    pub rollback_of: i64,
    pub tx_hash: String,
    pub block_height: i64,
    pub block_hash: String,
    pub event_type: EventType,
    pub contract_id: Option<String>,
    pub affected_addresses: Vec<String>,
}
