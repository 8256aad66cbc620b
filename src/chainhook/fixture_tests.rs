//! The real Chainhook payloads in `../shared/fixtures/chainhook/`, read at test time (never
//! copied into the repository). Every fact asserted here can be checked by reading the JSON.

use super::*;
use crate::model::EventType;
use serde_json::json;
use std::path::{Path, PathBuf};

const FIXTURE_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/chainhook");

/// Parses fixture `NN_*.json`, or `None` (with a note) when the fixtures are not checked out.
fn load(number: &str) -> Option<Payload> {
    let dir = Path::new(FIXTURE_DIR);
    if !dir.is_dir() {
        println!("skipped: ../shared/fixtures not present");
        return None;
    }
    let path: PathBuf = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name.starts_with(&format!("{number}_")) && name.ends_with(".json")
        })
        .unwrap_or_else(|| panic!("fixture {number} missing from {FIXTURE_DIR}"));
    let body = std::fs::read(&path).unwrap();
    match parse_payload(&body) {
        Ok(p) => Some(p),
        Err(e) => panic!("{}: {e:?}", path.display()),
    }
}

fn types(events: &[NewEvent]) -> Vec<EventType> {
    events.iter().map(|e| e.event_type).collect()
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f01_sdk_occurrence_every_event_type() {
    let Some(p) = load("01") else { return };
    assert_eq!((p.apply.len(), p.rollback.len()), (13, 1));
    assert!(p
        .apply
        .iter()
        .chain(&p.rollback)
        .all(|b| b.hash == "0x" && b.height == 1 && b.timestamp == 0));
    assert_eq!(p.apply[0].parent_hash.as_deref(), Some("0x"));
    assert!(p.rollback[0].events.is_empty());
    assert!(p.apply.iter().all(|b| b.events.len() == 1));
    let all: Vec<&NewEvent> = p.apply.iter().flat_map(|b| &b.events).collect();
    use EventType::*;
    assert_eq!(
        all.iter().map(|e| e.event_type).collect::<Vec<_>>(),
        vec![
            StxTransferEvent,
            StxMintEvent,
            StxLockEvent,
            StxBurnEvent,
            NftTransferEvent,
            NftMintEvent,
            NftBurnEvent,
            FtTransferEvent,
            FtMintEvent,
            FtBurnEvent,
            PrintEvent,
            PrintEvent,
            ContractEvent,
        ]
    );
    for e in &all {
        assert_eq!((e.tx_index, e.event_index, e.success), (1, 0, true));
        // Placeholder addresses are empty strings and skipped; the tx sender remains.
        assert_eq!(
            e.affected_addresses,
            vec!["ST13F481SBR0R7Z6NMMH8YV2FJJYXA5JPA0AD3HP9"]
        );
    }
    // STX events inside a ContractCall belong to the called contract.
    assert_eq!(
        all[0].contract_id.as_deref(),
        Some("ST13F481SBR0R7Z6NMMH8YV2FJJYXA5JPA0AD3HP9.subnet-v1")
    );
    // Placeholder asset ids "asset-id" name no contract.
    assert!(all[4..10].iter().all(|e| e.contract_id.is_none()));
    assert_eq!(all[4].data["asset_class_identifier"], json!("asset-id"));
    assert_eq!(all[10].data["value"], json!("abcsome-valueabc"));
    assert_eq!(
        all[10].contract_id.as_deref(),
        Some("ST3AXH4EBHD63FCFPTZ8GR29TNTVWDYPGY0KDY5E5.loan-data")
    );
    assert_eq!(all[11].contract_id.as_deref(), Some("some-id"));
    assert_eq!(all[12].data["topic"], json!("not-print"));
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f02_testnet_bns_prints_decode_to_tuples() {
    let Some(p) = load("02") else { return };
    assert_eq!((p.apply.len(), p.rollback.len()), (1, 0));
    let b = &p.apply[0];
    assert_eq!((b.height, b.timestamp), (100458, 1678912545));
    assert_eq!(
        b.hash,
        "0x9795645ebe4ef3965926d08b4f268115a8cd8c573de0b62f517707736223572b"
    );
    assert_eq!(
        b.parent_hash.as_deref(),
        Some("0x684ca184a829f43484d6f97a57a523a4c64c18ceed090c06089772ef843e365d")
    );
    assert_eq!(types(&b.events), vec![EventType::PrintEvent; 6]);
    // tx_index is metadata.position.index; position 8 is the failed tx, which has no events.
    let tx_indexes: Vec<i32> = b.events.iter().map(|e| e.tx_index).collect();
    assert_eq!(tx_indexes, vec![2, 3, 5, 6, 7, 9]);
    assert!(b.events.iter().all(|e| e.event_index == 0 && e.success));
    assert!(
        !b.events
            .iter()
            .any(|e| e.tx_hash
                == "0xdc26459d26e9bc815cc1c79fbbf71058f84dde8c595cd0c7fa2db6acee3f8144")
    );
    let senders = [
        "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH",
        "STH5E075AH1KJG8ZXKBQQS5AWC2Y2HQ1A550JWV2",
        "ST1Q35RWX54R0KH3H046DKPPTK3PAXN001QENC5FS",
        "STAQ93AFNCXX2K1PJ0R3F138PPQKPVPNHYDKH08A",
        "ST214NAB8QC7X43AG59EXDT5HGA0J9B670PN9S5GX",
        "STKJ2BNECD78VV3D0AAPPD2A4DQEYE7VGR57QFJ6",
    ];
    for (e, sender) in b.events.iter().zip(senders) {
        let meta = &e.data["value"]["attachment"]["metadata"];
        assert_eq!(meta["op"], json!("name-revoke"));
        assert_eq!(
            meta["namespace"],
            json!("0x627463"),
            "namespace is a buffer (\"btc\")"
        );
        // The decoded tx-sender principal is the transaction's sender: both c32-encode the
        // same hash160, so the address is listed once.
        assert_eq!(meta["tx-sender"], json!(sender));
        assert_eq!(e.affected_addresses, vec![sender]);
        assert_eq!(
            e.contract_id.as_deref(),
            Some("ST000000000000000000002AMW42H.bns")
        );
        assert!(e.data["rawValue"]
            .as_str()
            .unwrap()
            .starts_with("0x0c00000001"));
        assert!(e.data.get("raw_value").is_none());
    }
    let first = &b.events[0].data["value"]["attachment"];
    assert_eq!(first["attachment-index"], json!(2843));
    assert_eq!(first["hash"], json!("0x"));
    assert_eq!(
        first["metadata"]["name"],
        json!("0x66696e642d74782d6572726f72")
    );
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f03_mainnet_arkadiko_ft_mint_prints_and_stx_transfer() {
    let Some(p) = load("03") else { return };
    let b = &p.apply[0];
    assert_eq!(
        (b.height, b.timestamp, p.rollback.len()),
        (34307, 1634625398, 0)
    );
    use EventType::*;
    assert_eq!(
        types(&b.events),
        vec![
            FtMintEvent,
            PrintEvent,
            StxTransferEvent,
            PrintEvent,
            PrintEvent
        ]
    );
    let idx: Vec<(i32, i32)> = b
        .events
        .iter()
        .map(|e| (e.tx_index, e.event_index))
        .collect();
    assert_eq!(idx, vec![(16, 0), (16, 1), (16, 2), (16, 3), (16, 4)]);
    let owner = "SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5";
    let arkadiko = "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR";

    let mint = &b.events[0];
    assert_eq!(mint.data["amount"], json!("130000000"));
    assert_eq!(mint.contract_id, Some(format!("{arkadiko}.usda-token")));
    assert_eq!(mint.affected_addresses, vec![owner]);

    let vault = &b.events[1];
    assert_eq!(
        vault.contract_id,
        Some(format!("{arkadiko}.arkadiko-freddie-v1-1"))
    );
    let v = &vault.data["value"];
    assert_eq!(v["action"], json!("created"));
    assert_eq!(v["type"], json!("vault"));
    let d = &v["data"];
    assert_eq!(d.as_object().unwrap().len(), 17);
    assert_eq!(d["owner"], json!(owner));
    assert_eq!(d["collateral"], json!(300000000));
    assert_eq!(d["debt"], json!(130000000));
    assert_eq!(d["collateral-type"], json!("STX-A"));
    assert_eq!(d["created-at-block-height"], json!(34307));
    assert_eq!(d["auction-ended"], json!(false));
    assert_eq!(d["auto-payoff"], json!(true));
    assert_eq!(d["id"], json!(1));
    assert_eq!(vault.affected_addresses, vec![owner]);

    let transfer = &b.events[2];
    assert_eq!(transfer.data["amount"], json!("300000000"));
    assert_eq!(
        transfer.contract_id,
        Some(format!("{arkadiko}.arkadiko-freddie-v1-1"))
    );
    assert_eq!(
        transfer.affected_addresses,
        vec![
            owner.to_string(),
            format!("{arkadiko}.arkadiko-stx-reserve-v1-1")
        ]
    );

    let minted = &b.events[3];
    assert_eq!(minted.contract_id, Some(format!("{arkadiko}.arkadiko-dao")));
    assert_eq!(
        minted.data["value"],
        json!({"action": "minted", "data": {"amount": 130000000, "recipient": owner}, "type": "token"})
    );
    assert_eq!(
        b.events[4].data["value"],
        json!({"result": {"success": true, "value": true}})
    );
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f04_devnet_decoded_print() {
    let Some(p) = load("04") else { return };
    let b = &p.apply[0];
    assert_eq!((b.height, b.events.len()), (8, 1));
    let e = &b.events[0];
    assert_eq!(e.event_type, EventType::PrintEvent);
    assert_eq!(e.data["value"], json!("Hello World"));
    assert!(e.data.get("rawValue").is_none());
    assert_eq!((e.tx_index, e.event_index), (1, 0));
    assert_eq!(
        e.contract_id.as_deref(),
        Some("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4")
    );
    assert_eq!(
        e.affected_addresses,
        vec!["ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM"]
    );
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f05_devnet_stx_transfer() {
    let Some(p) = load("05") else { return };
    let b = &p.apply[0];
    assert_eq!((b.height, b.events.len()), (13, 1));
    let e = &b.events[0];
    assert_eq!(e.event_type, EventType::StxTransferEvent);
    assert_eq!(e.data["amount"], json!("50"));
    assert_eq!(
        e.contract_id.as_deref(),
        Some("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4")
    );
    assert_eq!(
        e.affected_addresses,
        vec![
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5"
        ]
    );
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f06_devnet_coinbase_two_identical_mints() {
    let Some(p) = load("06") else { return };
    let b = &p.apply[0];
    assert_eq!(b.height, 4);
    // Two deployments carry no events; the coinbase carries two byte-identical mints.
    assert_eq!(types(&b.events), vec![EventType::StxMintEvent; 2]);
    assert_eq!(b.events[0].data, b.events[1].data);
    assert_eq!(b.events[0].data["amount"], json!("13888888889"));
    let idx: Vec<(i32, i32)> = b
        .events
        .iter()
        .map(|e| (e.tx_index, e.event_index))
        .collect();
    assert_eq!(idx, vec![(0, 0), (0, 1)]);
    for e in &b.events {
        assert_eq!(e.contract_id, None, "a coinbase calls no contract");
        assert_eq!(
            e.affected_addresses,
            vec![
                "SN3Z4MMRJ29FVZB38FGYPE94N1D8ZGF55R7YWH00A",
                "ST3Q96TFVE6E0Q91XVX6S8RWAJW5R8XTZ8YEBM8RQ"
            ]
        );
    }
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f07_devnet_one_tx_three_transfers() {
    let Some(p) = load("07") else { return };
    let b = &p.apply[0];
    assert_eq!((b.height, p.rollback.len()), (12, 0));
    assert_eq!(types(&b.events), vec![EventType::StxTransferEvent; 3]);
    let tx_hash = &b.events[0].tx_hash;
    assert!(b
        .events
        .iter()
        .all(|e| &e.tx_hash == tx_hash && e.tx_index == 1));
    let idx: Vec<i32> = b.events.iter().map(|e| e.event_index).collect();
    assert_eq!(idx, vec![0, 1, 2]);
    let recipients: Vec<&str> = b
        .events
        .iter()
        .map(|e| e.data["recipient"].as_str().unwrap())
        .collect();
    assert_eq!(
        recipients,
        vec![
            "ST2JHG361ZXG51QTKY2NQCVBPPRRE2KZB1HR05NNC",
            "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG",
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5"
        ]
    );
    assert!(b.events.iter().all(|e| e.data["amount"] == json!("1000")));
}

#[test]
#[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
fn f08_devnet_decoded_nft_mint() {
    let Some(p) = load("08") else { return };
    let b = &p.apply[0];
    assert_eq!((b.height, b.events.len()), (12, 1));
    let e = &b.events[0];
    assert_eq!(e.event_type, EventType::NftMintEvent);
    assert_eq!(e.data["asset_identifier"], json!(5));
    assert_eq!(
        e.data["asset_class_identifier"],
        json!("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4::doc-nft")
    );
    assert_eq!(
        e.contract_id.as_deref(),
        Some("ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4")
    );
    assert_eq!(
        e.affected_addresses,
        vec![
            "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5",
            "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM"
        ]
    );
}
