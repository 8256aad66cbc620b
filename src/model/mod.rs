//! The event model shared by the Chainhook parser, the store and the wire.
//!
//! Pure data: no I/O, no actix, no diesel. A Chainhook payload parses into a [`Payload`]
//! of [`Block`]s carrying [`NewEvent`]s; the store gives each stored event a `seq` and
//! encodes it once as the PROTOCOL §2 event object. Once committed, every row of the log
//! is a [`LogEntry`] of some [`EntryKind`] ([`entry`]).

pub mod entities;
pub mod entry;

pub use entry::{EntryKind, LogEntry};

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

    /// The type's number in the log's `type_code` index column: its position in
    /// [`EventType::ALL`] plus one. Stored, so fixed: new types take new numbers at the end.
    pub fn code(self) -> i16 {
        // ALL lists every variant once, so the search always succeeds.
        EventType::ALL.iter().position(|t| *t == self).map_or(0, |i| i as i16 + 1)
    }

    /// The type whose [`EventType::code`] is `code`.
    pub fn from_code(code: i16) -> Option<EventType> {
        usize::try_from(code).ok()?.checked_sub(1).and_then(|i| EventType::ALL.get(i)).copied()
    }

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
    /// The event object minus its `seq`, encoded where the payload is parsed (see
    /// [`Block::encode_events`]) so the writer only splices the `seq` in; `None`: the
    /// writer encodes it.
    pub encoded: Option<String>,
}

/// The fields of [`EventObject`] after `seq`, in the same order, borrowed.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EventTail<'a> {
    tx_hash: &'a str,
    tx_index: i32,
    event_index: i32,
    block_height: i64,
    block_hash: &'a str,
    contract_id: &'a Option<String>,
    event_type: EventType,
    data: &'a serde_json::Value,
    affected_addresses: &'a [String],
    success: bool,
    timestamp: i64,
}

impl Block {
    /// Encodes every event's wire object except its `seq`. Done where payloads are
    /// parsed (HTTP workers, `ingest` tasks), in parallel with the writer's commits.
    pub fn encode_events(&mut self) {
        for ev in &mut self.events {
            let tail = EventTail {
                tx_hash: &ev.tx_hash,
                tx_index: ev.tx_index,
                event_index: ev.event_index,
                block_height: self.height,
                block_hash: &self.hash,
                contract_id: &ev.contract_id,
                event_type: ev.event_type,
                data: &ev.data,
                affected_addresses: &ev.affected_addresses,
                success: ev.success,
                timestamp: self.timestamp,
            };
            ev.encoded = serde_json::to_string(&tail).ok();
        }
    }
}

/// The event object for `seq` from an encoding made by [`Block::encode_events`]; `None`
/// when `tail` is not such an encoding.
pub fn event_body(seq: i64, tail: &str) -> Option<String> {
    let rest = tail.strip_prefix('{')?;
    if rest.len() < 2 {
        return None;
    }
    let mut body = String::with_capacity(tail.len() + 24);
    body.push_str("{\"seq\":");
    body.push_str(&seq.to_string());
    body.push(',');
    body.push_str(rest);
    Some(body)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Readers find an entry's type from its stored code alone.
    #[test]
    fn every_type_code_reads_back_as_its_type() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_code(t.code()), Some(t));
        }
        for code in [0, -1, EventType::ALL.len() as i16 + 1, i16::MAX] {
            assert_eq!(EventType::from_code(code), None, "{code}");
        }
    }

    /// The migration that introduced `type_code` filled it with a CASE over the type names;
    /// both dialects' mapping must be the one the writer uses.
    #[test]
    fn type_codes_match_the_migration_backfill() {
        for dialect in ["postgres", "sqlite"] {
            let path = format!(
                "{}/migrations/{dialect}/2026-11-25-000003_compact_keys/up.sql",
                env!("CARGO_MANIFEST_DIR")
            );
            let sql = std::fs::read_to_string(&path).expect("migration file");
            for t in EventType::ALL {
                let arm = format!("WHEN '{}' THEN ", t.as_str());
                let at = sql.find(&arm).unwrap_or_else(|| panic!("{dialect}: no arm for {t}"));
                let number: String =
                    sql[at + arm.len()..].chars().take_while(|c| c.is_ascii_digit()).collect();
                assert_eq!(number, t.code().to_string(), "{dialect}: code of {t}");
            }
        }
        let codes: std::collections::HashSet<i16> = EventType::ALL.iter().map(|t| t.code()).collect();
        assert_eq!(codes.len(), EventType::ALL.len());
        assert!(!codes.contains(&0));
    }

    #[test]
    fn spliced_body_equals_the_encoded_event_object() {
        let ev = NewEvent {
            tx_hash: "0xab".into(),
            tx_index: 3,
            event_index: 7,
            event_type: EventType::PrintEvent,
            contract_id: Some("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.c".into()),
            data: serde_json::json!({"value": {"n": 340282366920938463463374607431768211455u128}}),
            affected_addresses: vec!["ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM".into()],
            success: false,
            encoded: None,
        };
        let mut block = Block {
            hash: "0x01".into(),
            height: 9,
            parent_hash: None,
            timestamp: 1_700_000_000,
            transactions: vec![],
            events: vec![ev.clone()],
        };
        block.encode_events();
        let tail = block.events[0].encoded.clone().expect("encoded");
        let object = EventObject {
            seq: 4032,
            tx_hash: ev.tx_hash,
            tx_index: ev.tx_index,
            event_index: ev.event_index,
            block_height: 9,
            block_hash: "0x01".into(),
            contract_id: ev.contract_id,
            event_type: ev.event_type,
            data: ev.data,
            affected_addresses: ev.affected_addresses,
            success: false,
            timestamp: 1_700_000_000,
            rolled_back: false,
        };
        let expected = serde_json::to_string(&object).expect("encodes");
        assert_eq!(event_body(4032, &tail).as_deref(), Some(expected.as_str()));
        assert_eq!(event_body(1, "{}"), None);
        assert_eq!(event_body(1, "not json"), None);
    }
}
