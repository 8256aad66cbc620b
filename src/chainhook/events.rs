//! One Chainhook receipt event → one [`NewEvent`]: its `eventType`, its `data` with Clarity
//! values decoded, its `contractId` and the principals it touches.

use super::clarity;
use super::payload::{ChainhookEventType, ReceiptEvent};
use super::principal::is_principal;
use crate::model::{EventType, NewEvent};
use serde_json::{Map, Value};

/// Chainhook's hex-carrying fields: (raw name, decoded name, camelCase name we keep the hex
/// under). The decoded names are those Chainhook itself writes with
/// `decode_clarity_values: true`, so both forms of a payload give the same `data`.
const RAW_FIELDS: [(&str, &str, &str); 6] = [
    ("raw_value", "value", "rawValue"),
    ("raw_new_value", "new_value", "rawNewValue"),
    ("raw_inserted_key", "inserted_key", "rawInsertedKey"),
    ("raw_inserted_value", "inserted_value", "rawInsertedValue"),
    ("raw_key", "key", "rawKey"),
    ("raw_deleted_key", "deleted_key", "rawDeletedKey"),
];

/// Data fields that name a principal directly.
const ADDRESS_FIELDS: [&str; 3] = ["sender", "recipient", "locked_address"];

/// What an event inherits from its transaction.
#[derive(Debug, Clone, Copy)]
pub struct TxContext<'a> {
    pub tx_hash: &'a str,
    pub tx_index: i32,
    pub success: bool,
    /// `metadata.sender`.
    pub sender: Option<&'a str>,
    /// The contract of a `ContractCall` transaction.
    pub called_contract: Option<&'a str>,
}

/// Builds the event; never fails, because an undecodable value is recorded in the data
/// (`decodeError`) rather than rejecting the payload: Chainhook deregisters a predicate
/// whose deliveries keep failing, which would stop the whole stream.
pub fn build_event(tx: &TxContext<'_>, event: ReceiptEvent, event_index: i32) -> NewEvent {
    let is_nft = matches!(
        event.event_type,
        ChainhookEventType::NftTransferEvent
            | ChainhookEventType::NftMintEvent
            | ChainhookEventType::NftBurnEvent
    );
    let mut data = event.data;
    let value_principals = normalize(&mut data, is_nft);
    let event_type = event_type(event.event_type, &data);
    let contract_id = contract_id(event.event_type, &data, tx);
    let affected_addresses = affected_addresses(&data, tx, value_principals);
    NewEvent {
        tx_hash: tx.tx_hash.to_string(),
        tx_index: tx.tx_index,
        event_index,
        event_type,
        contract_id,
        data: Value::Object(data),
        affected_addresses,
        success: tx.success,
        encoded: None,
    }
}

fn event_type(kind: ChainhookEventType, data: &Map<String, Value>) -> EventType {
    use ChainhookEventType as C;
    match kind {
        C::SmartContractEvent => {
            if data.get("topic").and_then(Value::as_str) == Some("print") {
                EventType::PrintEvent
            } else {
                EventType::ContractEvent
            }
        }
        C::StxTransferEvent => EventType::StxTransferEvent,
        C::StxMintEvent => EventType::StxMintEvent,
        C::StxBurnEvent => EventType::StxBurnEvent,
        C::StxLockEvent => EventType::StxLockEvent,
        C::FtTransferEvent => EventType::FtTransferEvent,
        C::FtMintEvent => EventType::FtMintEvent,
        C::FtBurnEvent => EventType::FtBurnEvent,
        C::NftTransferEvent => EventType::NftTransferEvent,
        C::NftMintEvent => EventType::NftMintEvent,
        C::NftBurnEvent => EventType::NftBurnEvent,
        C::DataVarSetEvent => EventType::DataVarSetEvent,
        C::DataMapInsertEvent => EventType::DataMapInsertEvent,
        C::DataMapUpdateEvent => EventType::DataMapUpdateEvent,
        C::DataMapDeleteEvent => EventType::DataMapDeleteEvent,
    }
}

/// Rewrites raw (hex) fields into their decoded form in place, and returns the principals
/// found inside every decoded value.
///
/// Raw `raw_X` becomes decoded `X` plus the hex under camelCase `rawX`. When a payload
/// carries both `raw_X` and `X`, the hex wins: it is what the chain emitted. Fields already
/// in decoded form are scanned for strings that are c32check-valid principals.
fn normalize(data: &mut Map<String, Value>, is_nft: bool) -> Vec<String> {
    let mut principals = Vec::new();
    let mut errors: Vec<(&str, String)> = Vec::new();
    for (raw_name, decoded_name, camel_name) in RAW_FIELDS {
        // In raw form an NFT event's `asset_identifier` holds the asset class and
        // `raw_value` the hex token id; decoded form calls them `asset_class_identifier`
        // and `asset_identifier`.
        let target = if is_nft && raw_name == "raw_value" {
            "asset_identifier"
        } else {
            decoded_name
        };
        let Some(raw) = data.remove(raw_name) else {
            if let Some(decoded) = data.get(target) {
                collect_json_principals(decoded, &mut principals);
            }
            continue;
        };
        if target == "asset_identifier" && !data.contains_key("asset_class_identifier") {
            if let Some(class) = data.remove("asset_identifier") {
                data.insert("asset_class_identifier".into(), class);
            }
        }
        let decoded = match raw.as_str() {
            Some(hex_str) => clarity::decode_hex(hex_str).map_err(|e| e.to_string()),
            None => Err(format!("{raw_name} is not a string")),
        };
        match decoded {
            Ok(d) => {
                data.insert(target.into(), d.json);
                principals.extend(d.principals);
            }
            Err(message) => {
                data.insert(target.into(), Value::Null);
                errors.push((target, message));
            }
        }
        data.insert(camel_name.into(), raw);
    }
    if !errors.is_empty() {
        let message = if let [(_, only)] = errors.as_slice() {
            only.clone()
        } else {
            errors
                .iter()
                .map(|(field, m)| format!("{field}: {m}"))
                .collect::<Vec<_>>()
                .join("; ")
        };
        data.insert("decodeError".into(), Value::String(message));
    }
    principals
}

/// Every string inside an already-decoded value that is a valid principal. Recursion is
/// bounded by serde_json's own nesting limit on the parsed body.
fn collect_json_principals(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) if is_principal(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_json_principals(v, out)),
        Value::Object(fields) => fields
            .values()
            .for_each(|v| collect_json_principals(v, out)),
        _ => {}
    }
}

fn contract_id(
    kind: ChainhookEventType,
    data: &Map<String, Value>,
    tx: &TxContext<'_>,
) -> Option<String> {
    use ChainhookEventType as C;
    let field = |name: &str| {
        data.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    match kind {
        C::SmartContractEvent
        | C::DataVarSetEvent
        | C::DataMapInsertEvent
        | C::DataMapUpdateEvent
        | C::DataMapDeleteEvent => field("contract_identifier").map(str::to_string),
        C::FtTransferEvent | C::FtMintEvent | C::FtBurnEvent => {
            field("asset_identifier").and_then(asset_contract)
        }
        C::NftTransferEvent | C::NftMintEvent | C::NftBurnEvent => {
            field("asset_class_identifier").and_then(asset_contract)
        }
        C::StxTransferEvent | C::StxMintEvent | C::StxBurnEvent | C::StxLockEvent => {
            tx.called_contract.map(str::to_string)
        }
    }
}

/// The contract part of an asset identifier `ADDR.contract::asset`.
fn asset_contract(asset: &str) -> Option<String> {
    match asset.split_once("::") {
        Some((contract, _)) if !contract.is_empty() => Some(contract.to_string()),
        Some(_) => None,
        None if asset.contains('.') => Some(asset.to_string()),
        None => None,
    }
}

fn affected_addresses(
    data: &Map<String, Value>,
    tx: &TxContext<'_>,
    value_principals: Vec<String>,
) -> Vec<String> {
    let direct = ADDRESS_FIELDS
        .iter()
        .filter_map(|f| data.get(*f).and_then(Value::as_str));
    let mut out: Vec<String> = Vec::new();
    for address in direct
        .chain(tx.sender)
        .map(str::to_string)
        .chain(value_principals)
    {
        // Events touch a handful of principals; a linear scan beats hashing here.
        if !address.is_empty() && !out.contains(&address) {
            out.push(address);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asset_contract_rules() {
        assert_eq!(
            asset_contract("SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token::usda").as_deref(),
            Some("SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token")
        );
        assert_eq!(asset_contract("ST1.c").as_deref(), Some("ST1.c"));
        assert_eq!(asset_contract("asset-id"), None);
        assert_eq!(asset_contract("::x"), None);
    }
}
