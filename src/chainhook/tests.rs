//! Payloads built in code: normalisation of raw and decoded forms, index fallbacks,
//! `contractId`, `affectedAddresses`, and every error path.

use super::*;
use crate::model::EventType;
use serde_json::{json, Value};

const SENDER: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";
const OTHER: &str = "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5";
const CONTRACT: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4";
/// `(tuple (who 'ST1248…) (n u7))`, serialised by hand.
const TUPLE_HEX: &str = "0x0c00000002016e01000000000000000000000000000000070377686f051a444405205b939a0230313fde340e79246068346f";

fn tx(events: Value) -> Value {
    json!({
        "transaction_identifier": {"hash": "0xaa"},
        "metadata": {
            "success": true,
            "sender": OTHER,
            "kind": {"type": "ContractCall", "data": {"contract_identifier": CONTRACT}},
            "receipt": {"events": events}
        }
    })
}

fn block(transactions: Value) -> Value {
    json!({
        "block_identifier": {"hash": "0xb1", "index": 7},
        "parent_block_identifier": {"hash": "0xb0", "index": 6},
        "timestamp": 1700000000,
        "transactions": transactions
    })
}

fn payload(apply: Value) -> Value {
    json!({"apply": apply, "rollback": []})
}

fn parse(v: &Value) -> Result<Payload, PayloadError> {
    parse_payload(&serde_json::to_vec(v).unwrap())
}

fn single_event(event: Value) -> NewEvent {
    let p = parse(&payload(json!([block(json!([tx(json!([event]))]))]))).unwrap();
    p.apply[0].events[0].clone()
}

fn err(v: &Value) -> PayloadError {
    parse(v).unwrap_err()
}

// ---- happy path ---------------------------------------------------------------------

#[test]
fn block_fields_and_order() {
    let mut p = payload(json!([block(json!([]))]));
    p["rollback"] = json!([{"block_identifier": {"hash": "0xr", "index": 3}, "timestamp": -5,
        "transactions": []}]);
    p["chainhook"] = json!({"uuid": "x"});
    p["events"] = json!([]);
    p["unknown"] = json!({"anything": [1, 2]});
    let parsed = parse(&p).unwrap();
    assert_eq!(parsed.apply.len(), 1);
    let b = &parsed.apply[0];
    assert_eq!(
        (b.hash.as_str(), b.height, b.timestamp),
        ("0xb1", 7, 1700000000)
    );
    assert_eq!(b.parent_hash.as_deref(), Some("0xb0"));
    let r = &parsed.rollback[0];
    assert_eq!(
        (
            r.hash.as_str(),
            r.height,
            r.timestamp,
            r.parent_hash.as_deref()
        ),
        ("0xr", 3, -5, None)
    );
}

#[test]
fn raw_and_decoded_forms_give_the_same_value() {
    let raw = single_event(json!({"type": "SmartContractEvent", "data": {
        "contract_identifier": CONTRACT, "topic": "print", "raw_value": TUPLE_HEX}}));
    let decoded = single_event(json!({"type": "SmartContractEvent", "data": {
        "contract_identifier": CONTRACT, "topic": "print", "value": {"n": 7, "who": SENDER}}}));
    assert_eq!(raw.data["value"], json!({"n": 7, "who": SENDER}));
    assert_eq!(raw.data["value"], decoded.data["value"]);
    assert_eq!(raw.data["rawValue"], json!(TUPLE_HEX));
    assert!(raw.data.get("raw_value").is_none());
    assert!(decoded.data.get("rawValue").is_none());
    for e in [&raw, &decoded] {
        assert_eq!(e.event_type, EventType::PrintEvent);
        assert_eq!(e.contract_id.as_deref(), Some(CONTRACT));
        assert_eq!(e.affected_addresses, vec![OTHER, SENDER]);
        assert!(e.data.get("decodeError").is_none());
    }
}

#[test]
fn non_print_topic_is_contract_event() {
    let e = single_event(json!({"type": "SmartContractEvent", "data": {
        "contract_identifier": CONTRACT, "topic": "custom", "raw_value": "0x03"}}));
    assert_eq!(e.event_type, EventType::ContractEvent);
    assert_eq!(e.data["value"], json!(true));
}

#[test]
fn undecodable_hex_is_kept_with_decode_error() {
    for bad in ["0xzz", "0x0f", "0x0304", "0x01ff"] {
        let e = single_event(json!({"type": "SmartContractEvent", "data": {
            "contract_identifier": CONTRACT, "topic": "print", "raw_value": bad}}));
        assert_eq!(e.data["value"], Value::Null, "{bad}");
        assert_eq!(e.data["rawValue"], json!(bad));
        assert!(
            e.data["decodeError"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{bad}"
        );
    }
    let e = single_event(json!({"type": "DataMapInsertEvent", "data": {
        "contract_identifier": CONTRACT, "map": "m", "raw_inserted_key": "0x0f",
        "raw_inserted_value": 5}}));
    let msg = e.data["decodeError"].as_str().unwrap();
    assert!(
        msg.contains("inserted_key: ") && msg.contains("inserted_value: "),
        "{msg}"
    );
    assert_eq!(e.data["rawInsertedValue"], json!(5));
}

#[test]
fn raw_nft_event_is_renamed_like_chainhook_decodes_it() {
    let class = format!("{CONTRACT}::doc-nft");
    let raw = single_event(json!({"type": "NFTMintEvent", "data": {
        "asset_identifier": class, "raw_value": "0x0100000000000000000000000000000005",
        "recipient": SENDER}}));
    let decoded = single_event(json!({"type": "NFTMintEvent", "data": {
        "asset_class_identifier": class, "asset_identifier": 5, "recipient": SENDER}}));
    assert_eq!(raw.data["asset_class_identifier"], json!(class));
    assert_eq!(raw.data["asset_identifier"], json!(5));
    assert_eq!(
        raw.data["rawValue"],
        json!("0x0100000000000000000000000000000005")
    );
    assert!(raw.data.get("value").is_none());
    for e in [&raw, &decoded] {
        assert_eq!(e.event_type, EventType::NftMintEvent);
        assert_eq!(e.contract_id.as_deref(), Some(CONTRACT));
        assert_eq!(e.affected_addresses, vec![SENDER, OTHER]);
    }
    assert_eq!(
        raw.data["asset_identifier"],
        decoded.data["asset_identifier"]
    );
}

#[test]
fn data_map_and_var_events_decode_every_field() {
    let e = single_event(json!({"type": "DataMapUpdateEvent", "data": {
        "contract_identifier": CONTRACT, "map": "balances",
        "raw_key": "0x051a444405205b939a0230313fde340e79246068346f",
        "raw_new_value": "0x0100000000000000000000000000000009"}}));
    assert_eq!(e.event_type, EventType::DataMapUpdateEvent);
    assert_eq!(e.data["key"], json!(SENDER));
    assert_eq!(e.data["new_value"], json!(9));
    assert_eq!(
        e.data["rawKey"],
        json!("0x051a444405205b939a0230313fde340e79246068346f")
    );
    assert_eq!(
        e.data["rawNewValue"],
        json!("0x0100000000000000000000000000000009")
    );
    assert_eq!(e.affected_addresses, vec![OTHER, SENDER]);
    assert_eq!(e.contract_id.as_deref(), Some(CONTRACT));

    let e = single_event(json!({"type": "DataMapDeleteEvent", "data": {
        "contract_identifier": CONTRACT, "map": "m", "raw_deleted_key": "0x04"}}));
    assert_eq!(
        (
            e.data["deleted_key"].clone(),
            e.data["rawDeletedKey"].clone()
        ),
        (json!(false), json!("0x04"))
    );
    let e = single_event(json!({"type": "DataVarSetEvent", "data": {
        "contract_identifier": CONTRACT, "var": "v", "raw_new_value": "0x09"}}));
    assert_eq!(e.event_type, EventType::DataVarSetEvent);
    assert!(e.data["new_value"].is_null() && e.data.get("decodeError").is_none());
    let e = single_event(json!({"type": "DataMapInsertEvent", "data": {
        "contract_identifier": CONTRACT, "map": "m", "raw_inserted_key": "0x03",
        "raw_inserted_value": "0x0d000000026869"}}));
    assert_eq!(
        (
            e.data["inserted_key"].clone(),
            e.data["inserted_value"].clone()
        ),
        (json!(true), json!("hi"))
    );
}

#[test]
fn every_event_type_maps() {
    let cases = [
        ("STXTransferEvent", EventType::StxTransferEvent),
        ("STXMintEvent", EventType::StxMintEvent),
        ("STXBurnEvent", EventType::StxBurnEvent),
        ("STXLockEvent", EventType::StxLockEvent),
        ("FTTransferEvent", EventType::FtTransferEvent),
        ("FTMintEvent", EventType::FtMintEvent),
        ("FTBurnEvent", EventType::FtBurnEvent),
        ("NFTTransferEvent", EventType::NftTransferEvent),
        ("NFTMintEvent", EventType::NftMintEvent),
        ("NFTBurnEvent", EventType::NftBurnEvent),
        ("DataVarSetEvent", EventType::DataVarSetEvent),
        ("DataMapInsertEvent", EventType::DataMapInsertEvent),
        ("DataMapUpdateEvent", EventType::DataMapUpdateEvent),
        ("DataMapDeleteEvent", EventType::DataMapDeleteEvent),
    ];
    for (name, expected) in cases {
        assert_eq!(
            single_event(json!({"type": name, "data": {}})).event_type,
            expected,
            "{name}"
        );
    }
}

#[test]
fn stx_contract_id_is_the_called_contract() {
    let e = single_event(json!({"type": "STXLockEvent", "data": {
        "locked_address": SENDER, "locked_amount": "1", "unlock_height": "2"}}));
    assert_eq!(e.contract_id.as_deref(), Some(CONTRACT));
    assert_eq!(e.affected_addresses, vec![SENDER, OTHER]);

    let mut t = tx(
        json!([{"type": "STXTransferEvent", "data": {"sender": SENDER,
        "recipient": OTHER, "amount": "5"}}]),
    );
    t["metadata"]["kind"] = json!({"type": "NativeTokenTransfer"});
    let p = parse(&payload(json!([block(json!([t]))]))).unwrap();
    assert_eq!(p.apply[0].events[0].contract_id, None);
    t["metadata"]["kind"] = json!({"type": "Coinbase"});
    t["metadata"].as_object_mut().unwrap().remove("sender");
    let p = parse(&payload(json!([block(json!([t]))]))).unwrap();
    assert_eq!(p.apply[0].events[0].contract_id, None);
    assert_eq!(p.apply[0].events[0].affected_addresses, vec![SENDER, OTHER]);
}

#[test]
fn ft_contract_id_and_placeholder_assets() {
    let e = single_event(json!({"type": "FTTransferEvent", "data": {
        "asset_identifier": format!("{CONTRACT}::tok"), "sender": "", "recipient": SENDER,
        "amount": "1"}}));
    assert_eq!(e.contract_id.as_deref(), Some(CONTRACT));
    assert_eq!(e.affected_addresses, vec![SENDER, OTHER]);
    let e = single_event(json!({"type": "FTBurnEvent", "data": {"asset_identifier": "asset-id"}}));
    assert_eq!(e.contract_id, None);
}

#[test]
fn decoded_values_only_count_checksummed_principals() {
    let e = single_event(json!({"type": "SmartContractEvent", "data": {
        "contract_identifier": CONTRACT, "topic": "print", "value": {
            "a": "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EJ",
            "b": ["hello", format!("{SENDER}.pool"), {"c": SENDER}],
            "d": format!("{CONTRACT}::tok")}}}));
    assert_eq!(
        e.affected_addresses,
        vec![OTHER.to_string(), format!("{SENDER}.pool"), SENDER.into()]
    );
}

#[test]
fn missing_positions_fall_back_to_array_order() {
    let ev = |i: Option<u64>| match i {
        Some(i) => json!({"type": "STXMintEvent", "data": {}, "position": {"index": i}}),
        None => json!({"type": "STXMintEvent", "data": {}}),
    };
    let mut t0 = tx(json!([ev(None), ev(None), ev(Some(9))]));
    t0["metadata"]["position"] = json!({"index": 4});
    let t1 = tx(json!([ev(None)]));
    let mut t2 = tx(json!([ev(None), {"type": "STXMintEvent", "data": {}, "position": {}}]));
    t2["metadata"]["position"] = Value::Null;
    let p = parse(&payload(json!([block(json!([t0, t1, t2]))]))).unwrap();
    let got: Vec<(i32, i32)> = p.apply[0]
        .events
        .iter()
        .map(|e| (e.tx_index, e.event_index))
        .collect();
    assert_eq!(got, vec![(4, 0), (4, 1), (4, 9), (1, 0), (2, 0), (2, 1)]);
}

#[test]
fn failed_transactions_keep_their_events() {
    let mut t = tx(json!([{"type": "STXBurnEvent", "data": {"sender": SENDER, "amount": "1"}}]));
    t["metadata"]["success"] = json!(false);
    let p = parse(&payload(json!([block(json!([t]))]))).unwrap();
    assert!(!p.apply[0].events[0].success);
}

// ---- errors ---------------------------------------------------------------------------

fn assert_shape_error(v: &Value, path: &str) {
    let e = err(v);
    assert_eq!((e.code, e.path.as_str()), (INVALID_PAYLOAD, path), "{e:?}");
    assert!(!e.message.is_empty());
}

#[test]
fn not_json_is_invalid_json() {
    for body in [
        &b"hello"[..],
        b"",
        b"{\"apply\": [",
        b"{\"apply\": [], \"rollback\": []} x",
        b"\xff\xfe",
    ] {
        let e = parse_payload(body).unwrap_err();
        assert_eq!((e.code, e.path.as_str()), (INVALID_JSON, ""), "{body:?}");
        assert!(e.message.contains("line"), "{}", e.message);
    }
}

#[test]
fn truncated_json_is_invalid_json_even_after_a_shape_error() {
    // `apply` has the wrong type, but the body is cut off: that is reported first.
    let e = parse_payload(br#"{"apply": 5, "rollback": [{"block_identifier": "#).unwrap_err();
    assert_eq!(e.code, INVALID_JSON);
    assert!(e.message.contains("EOF"), "{}", e.message);
}

#[test]
fn top_level_must_be_an_object() {
    for v in [json!([[], []]), json!(5), json!("apply"), Value::Null] {
        assert_shape_error(&v, "");
    }
}

#[test]
fn missing_or_mistyped_top_level_arrays() {
    assert_shape_error(&json!({"rollback": []}), "apply");
    assert_shape_error(&json!({"apply": []}), "rollback");
    assert_shape_error(&json!({"apply": {}, "rollback": []}), "apply");
    assert_shape_error(&json!({"apply": [], "rollback": null}), "rollback");
    let e = err(&json!({"rollback": []}));
    assert!(e.message.contains("missing field `apply`"), "{}", e.message);
}

#[test]
fn block_shape_errors() {
    let mut b = block(json!([]));
    b["block_identifier"]["index"] = json!("7");
    assert_shape_error(&payload(json!([b])), "apply[0].block_identifier.index");
    b["block_identifier"]["index"] = json!(-1);
    assert_shape_error(&payload(json!([b])), "apply[0].block_identifier.index");
    b["block_identifier"]["index"] = json!(1.5);
    assert_shape_error(&payload(json!([b])), "apply[0].block_identifier.index");
    b["block_identifier"]["index"] = json!(u64::MAX);
    assert_shape_error(&payload(json!([b])), "apply[0].block_identifier.index");

    let mut b = block(json!([]));
    b.as_object_mut().unwrap().remove("timestamp");
    assert_shape_error(&payload(json!([block(json!([])), b])), "apply[1].timestamp");
    let mut b = block(json!([]));
    b["block_identifier"]
        .as_object_mut()
        .unwrap()
        .remove("hash");
    assert_shape_error(&payload(json!([b])), "apply[0].block_identifier.hash");
    let mut b = block(json!({}));
    assert_shape_error(&payload(json!([b.clone()])), "apply[0].transactions");
    b["transactions"] = json!([]);
    b["parent_block_identifier"] = json!({"hash": 3});
    assert_shape_error(
        &payload(json!([b])),
        "apply[0].parent_block_identifier.hash",
    );
}

#[test]
fn transaction_shape_errors() {
    let ok = tx(json!([]));
    let with = |f: &dyn Fn(&mut Value)| {
        let mut t = tx(json!([]));
        f(&mut t);
        payload(json!([block(json!([ok.clone(), ok.clone(), t]))]))
    };
    let base = "apply[0].transactions[2]";
    assert_shape_error(
        &with(&|t| {
            t["metadata"].as_object_mut().unwrap().remove("success");
        }),
        &format!("{base}.metadata.success"),
    );
    assert_shape_error(
        &with(&|t| t["metadata"]["success"] = json!("true")),
        &format!("{base}.metadata.success"),
    );
    assert_shape_error(
        &with(&|t| t["transaction_identifier"] = json!({"hash": null})),
        &format!("{base}.transaction_identifier.hash"),
    );
    assert_shape_error(
        &with(&|t| t["metadata"]["receipt"] = json!({})),
        &format!("{base}.metadata.receipt.events"),
    );
    assert_shape_error(
        &with(&|t| t["metadata"]["sender"] = json!(1)),
        &format!("{base}.metadata.sender"),
    );
    assert_shape_error(
        &with(&|t| t["metadata"]["position"] = json!({"index": -2})),
        &format!("{base}.metadata.position.index"),
    );
    assert_shape_error(
        &with(&|t| t["metadata"]["position"] = json!({"index": 3_000_000_000u64})),
        &format!("{base}.metadata.position.index"),
    );
}

#[test]
fn event_shape_errors() {
    let with_event = |ev: Value| {
        payload(json!([block(json!([tx(
            json!([{"type": "STXMintEvent", "data": {}}, ev])
        )]))]))
    };
    let base = "apply[0].transactions[0].metadata.receipt.events[1]";
    assert_shape_error(
        &with_event(json!({"type": "MysteryEvent", "data": {}})),
        &format!("{base}.type"),
    );
    assert_shape_error(&with_event(json!({"data": {}})), &format!("{base}.type"));
    assert_shape_error(
        &with_event(json!({"type": 3, "data": {}})),
        &format!("{base}.type"),
    );
    assert_shape_error(
        &with_event(json!({"type": "STXMintEvent"})),
        &format!("{base}.data"),
    );
    assert_shape_error(
        &with_event(json!({"type": "STXMintEvent", "data": "x"})),
        &format!("{base}.data"),
    );
    assert_shape_error(
        &with_event(json!({"type": "STXMintEvent", "data": {}, "position": {"index": "0"}})),
        &format!("{base}.position.index"),
    );
    let e = err(&with_event(json!({"type": "MysteryEvent", "data": {}})));
    assert!(e.message.contains("MysteryEvent"), "{}", e.message);
}

#[test]
fn rollback_paths_are_named_rollback() {
    let mut b = block(json!([]));
    b["timestamp"] = json!("now");
    let v = json!({"apply": [], "rollback": [block(json!([])), b]});
    assert_shape_error(&v, "rollback[1].timestamp");
}
