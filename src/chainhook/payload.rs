//! Serde shapes of a Chainhook v1 Stacks `http_post` body: only the fields we need.
//!
//! Strict about what the event log depends on (block identity, transaction identity,
//! success, receipt events), silent about everything else: unknown fields are ignored, so
//! a newer Chainhook that adds fields keeps working. Deserialised through
//! `serde_path_to_error`, so a wrong shape is reported with its JSON path.

use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Deserialize)]
pub struct ChainhookPayload {
    pub apply: Vec<ChainhookBlock>,
    pub rollback: Vec<ChainhookBlock>,
}

#[derive(Debug, Deserialize)]
pub struct ChainhookBlock {
    pub block_identifier: BlockIdentifier,
    #[serde(default)]
    pub parent_block_identifier: Option<ParentBlockIdentifier>,
    pub timestamp: i64,
    pub transactions: Vec<ChainhookTransaction>,
}

#[derive(Debug, Deserialize)]
pub struct BlockIdentifier {
    pub hash: String,
    pub index: u64,
}

/// Only the hash matters to us; the parent's index is implied by the block's.
#[derive(Debug, Deserialize)]
pub struct ParentBlockIdentifier {
    pub hash: String,
}

#[derive(Debug, Deserialize)]
pub struct ChainhookTransaction {
    pub transaction_identifier: TransactionIdentifier,
    pub metadata: TransactionMetadata,
}

#[derive(Debug, Deserialize)]
pub struct TransactionIdentifier {
    pub hash: String,
}

#[derive(Debug, Deserialize)]
pub struct TransactionMetadata {
    pub success: bool,
    #[serde(default)]
    pub sender: Option<String>,
    #[serde(default)]
    pub position: Option<Position>,
    /// Kept as JSON: its shape differs per transaction kind (coinbase, deployment, Bitcoin
    /// operations…) and we only look inside a `ContractCall`.
    #[serde(default)]
    pub kind: Option<Value>,
    /// The Clarity repr of the transaction's result, e.g. `(err u2014)`; kept as JSON so
    /// an unexpected shape never rejects a payload.
    #[serde(default)]
    pub result: Option<Value>,
    pub receipt: Receipt,
}

#[derive(Debug, Deserialize)]
pub struct Position {
    #[serde(default)]
    pub index: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Receipt {
    pub events: Vec<ReceiptEvent>,
}

#[derive(Debug, Deserialize)]
pub struct ReceiptEvent {
    #[serde(rename = "type")]
    pub event_type: ChainhookEventType,
    pub data: Map<String, Value>,
    #[serde(default)]
    pub position: Option<Position>,
}

/// Chainhook's receipt event `type`. An unknown type is rejected rather than guessed at:
/// every consumer keys on `eventType`, and a silently mislabelled event is worse than a
/// loud 400 that names the field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum ChainhookEventType {
    SmartContractEvent,
    #[serde(rename = "STXTransferEvent")]
    StxTransferEvent,
    #[serde(rename = "STXMintEvent")]
    StxMintEvent,
    #[serde(rename = "STXBurnEvent")]
    StxBurnEvent,
    #[serde(rename = "STXLockEvent")]
    StxLockEvent,
    #[serde(rename = "FTTransferEvent")]
    FtTransferEvent,
    #[serde(rename = "FTMintEvent")]
    FtMintEvent,
    #[serde(rename = "FTBurnEvent")]
    FtBurnEvent,
    #[serde(rename = "NFTTransferEvent")]
    NftTransferEvent,
    #[serde(rename = "NFTMintEvent")]
    NftMintEvent,
    #[serde(rename = "NFTBurnEvent")]
    NftBurnEvent,
    DataVarSetEvent,
    DataMapInsertEvent,
    DataMapUpdateEvent,
    DataMapDeleteEvent,
}

/// The called contract of a `ContractCall` transaction `kind`, else `None`.
pub fn called_contract(kind: Option<&Value>) -> Option<&str> {
    let kind = kind?;
    if kind.get("type")?.as_str()? != "ContractCall" {
        return None;
    }
    kind.get("data")?
        .get("contract_identifier")?
        .as_str()
        .filter(|s| !s.is_empty())
}
