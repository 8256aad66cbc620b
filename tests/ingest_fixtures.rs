//! The real Chainhook payloads of `../shared/fixtures/chainhook/`, POSTed verbatim: what is
//! stored must match the fixture one for one, and redelivery must store nothing new.

mod common;
use common::{apply_events, Backend, PayloadEvent, TestApp, SECRET};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;

const FIXTURES: [&str; 8] = [
    "01_sdk_occurrence_all_event_types_decoded_with_rollback.json",
    "02_testnet_bns_name_revoke_print_events_and_failed_tx.json",
    "03_mainnet_arkadiko_print_ftmint_stxtransfer_operations.json",
    "04_devnet_print_event_decoded_value.json",
    "05_devnet_stx_transfer_with_operations.json",
    "06_devnet_block_height_coinbase_stxmint_and_deploys.json",
    "07_devnet_one_tx_three_stx_transfers.json",
    "08_devnet_nft_mint_decoded_asset_id.json",
];

struct Fixture {
    name: &'static str,
    text: String,
    json: Value,
}

fn load_all(dir: &Path) -> Vec<Fixture> {
    FIXTURES
        .iter()
        .map(|name| {
            let text = std::fs::read_to_string(dir.join(name)).expect("fixture readable");
            let json = serde_json::from_str(&text).expect("fixture is JSON");
            Fixture { name, text, json }
        })
        .collect()
}

async fn post_text(app: &TestApp, text: &str) -> (u16, Value) {
    let res = app.post_raw(text.to_string(), Some(&format!("Bearer {SECRET}"))).await;
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn events_after(app: &TestApp, after: i64) -> Vec<Value> {
    let (status, page) = app.get_json(&format!("/api/events?afterSeq={after}&limit=1000")).await;
    assert_eq!(status, 200, "{page}");
    page["events"].as_array().cloned().expect("events array")
}

fn distinct_apply_blocks(payload: &Value) -> usize {
    let hashes: std::collections::HashSet<&str> = payload["apply"]
        .as_array()
        .expect("apply")
        .iter()
        .filter_map(|b| b["block_identifier"]["hash"].as_str())
        .collect();
    hashes.len()
}

/// The stored event against the fixture event it came from.
fn assert_matches(fixture: &str, stored: &Value, want: &PayloadEvent) {
    let ctx = format!("{fixture}: {stored}");
    assert_eq!(stored["txHash"], want.tx_hash.as_str(), "{ctx}");
    assert_eq!(stored["txIndex"], want.tx_index, "{ctx}");
    assert_eq!(stored["eventIndex"], want.event_index, "{ctx}");
    assert_eq!(stored["blockHash"], want.block_hash.as_str(), "{ctx}");
    assert_eq!(stored["blockHeight"], want.block_height, "{ctx}");
    assert_eq!(stored["timestamp"], want.timestamp, "{ctx}");
    assert_eq!(stored["eventType"], want.expected_event_type(), "{ctx}");
    assert_eq!(stored["success"], want.success, "{ctx}");
    assert_eq!(stored["contractId"], json!(want.expected_contract_id()), "{ctx}");
    assert!(stored.get("rolledBack").is_none(), "{ctx}");
    // Every data field survives: decoded fields as sent, hex `raw_x` kept as `rawX`.
    let data = want.data.as_object().expect("fixture data is an object");
    for (key, value) in data {
        if let Some(rest) = key.strip_prefix("raw_") {
            let camel: String = rest
                .split('_')
                .enumerate()
                .map(|(i, w)| if i == 0 { w.to_string() } else { w[..1].to_uppercase() + &w[1..] })
                .collect();
            let camel = format!("raw{}{}", camel[..1].to_uppercase(), &camel[1..]);
            assert_eq!(&stored["data"][&camel], value, "{ctx}: {key} kept as {camel}");
            assert!(stored["data"].get(key).is_none(), "{ctx}: {key} replaced by its decoded form");
            assert!(stored["data"].get("decodeError").is_none(), "{ctx}: hex decodes");
        } else {
            assert_eq!(&stored["data"][key], value, "{ctx}: data.{key}");
        }
    }
    if let Some(sender) = want.sender.as_deref().filter(|s| !s.is_empty()) {
        let affected = stored["affectedAddresses"].as_array().expect("affectedAddresses");
        assert!(affected.iter().any(|a| a == sender), "{ctx}: tx sender {sender} affected");
    }
}

fn counts_by_type<'a>(types: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for t in types {
        *out.entry(t.to_string()).or_insert(0) += 1;
    }
    out
}

/// Posts every fixture to a fresh app, checking each delivery; returns the app and, per
/// fixture, the events it stored.
async fn ingest_all(backend: Backend, fixtures: &[Fixture]) -> (TestApp, Vec<Vec<Value>>) {
    let app = TestApp::spawn(backend).await;
    let mut stored_per_fixture = Vec::new();
    for f in fixtures {
        let before = app.head().await["headSeq"].as_i64().expect("headSeq");
        let (want, repeats) = apply_events(&f.json);
        let (status, report) = post_text(&app, &f.text).await;
        assert_eq!(status, 200, "{}: {report}", f.name);
        assert_eq!(report["events"], want.len(), "{}: {report}", f.name);
        assert_eq!(report["duplicateEvents"], repeats, "{}: {report}", f.name);
        assert_eq!(report["appliedBlocks"], distinct_apply_blocks(&f.json), "{}: {report}", f.name);
        // Nothing was applied before, so a rollback here (fixture 01) finds nothing to undo.
        assert_eq!(report["rolledBackBlocks"], 0, "{}: {report}", f.name);
        assert_eq!(report["headSeq"], app.head().await["headSeq"], "{}", f.name);

        let stored = events_after(&app, before).await;
        assert_eq!(stored.len(), want.len(), "{}: one stored event per fixture event", f.name);
        for (s, w) in stored.iter().zip(&want) {
            assert_matches(f.name, s, w);
        }
        assert_eq!(
            counts_by_type(stored.iter().filter_map(|e| e["eventType"].as_str())),
            counts_by_type(want.iter().map(|w| w.expected_event_type())),
            "{}",
            f.name
        );
        stored_per_fixture.push(stored);
    }
    (app, stored_per_fixture)
}

async fn fixtures_stored_one_for_one(backend: Backend) {
    let Some(dir) = common::fixtures_dir() else { return };
    let fixtures = load_all(&dir);
    let (app, stored) = ingest_all(backend, &fixtures).await;

    // 01: thirteen placeholder blocks share the identity (0x, tx 1, event 0): one block,
    // its first event (an STXTransferEvent inside a contract call) stored, 12 duplicates.
    assert_eq!(stored[0].len(), 1);
    assert_eq!(stored[0][0]["eventType"], "stx_transfer_event");
    assert_eq!(stored[0][0]["blockHash"], "0x");

    // 02: six print events of bns name-revoke; the failed tx (err 2014) has no events.
    let f02 = &fixtures[1].json;
    let txs = f02["apply"][0]["transactions"].as_array().expect("txs");
    let failed: Vec<&Value> = txs.iter().filter(|t| t["metadata"]["success"] == false).collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["metadata"]["result"], "(err 2014)");
    assert_eq!(failed[0]["metadata"]["receipt"]["events"], json!([]));
    let failed_hash = failed[0]["transaction_identifier"]["hash"].as_str().expect("hash");
    let e02 = &stored[1];
    assert_eq!(e02.len(), 6);
    for e in e02 {
        assert_eq!(e["success"], true, "{e}");
        assert_ne!(e["txHash"], failed_hash);
        assert_eq!(e["eventType"], "print_event");
        assert_eq!(e["contractId"], "ST000000000000000000002AMW42H.bns");
        let tx = txs.iter().find(|t| t["transaction_identifier"]["hash"] == e["txHash"]).expect("its tx");
        let meta = &e["data"]["value"]["attachment"]["metadata"];
        assert_eq!(meta["op"], "name-revoke", "{e}");
        // name-revoke(namespace, name): the print repeats the call's two buffer arguments.
        let args = &tx["metadata"]["kind"]["data"]["args"];
        assert_eq!(meta["namespace"], args[0], "{e}");
        assert_eq!(meta["name"], args[1], "{e}");
        assert_eq!(meta["namespace"], "0x627463"); // "btc"
        assert_eq!(meta["tx-sender"], tx["metadata"]["sender"], "{e}");
    }
    // First print: attachment-index is the uint 0x0b1b in the hex; the hash an empty buffer.
    assert_eq!(e02[0]["data"]["value"]["attachment"]["attachment-index"], 2843);
    assert_eq!(e02[0]["data"]["value"]["attachment"]["hash"], "0x");
    assert_eq!(e02[0]["txIndex"], 2);

    // 03: one arkadiko tx: FT mint, vault print, STX transfer, dao print, reserve print.
    let e03 = &stored[2];
    let types: Vec<&str> = e03.iter().filter_map(|e| e["eventType"].as_str()).collect();
    assert_eq!(types, ["ft_mint_event", "print_event", "stx_transfer_event", "print_event", "print_event"]);
    let sender = "SPWKDKPZ3QDPQGDADWJ3EWPAP14CB1N1HDQ897W5";
    let freddie = "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.arkadiko-freddie-v1-1";
    assert_eq!(e03[0]["contractId"], "SP2C2YFP12AJZB4MABJBAJ55XECVS7E4PMMZ89YZR.usda-token");
    assert_eq!(e03[0]["data"]["amount"], "130000000");
    let vault = &e03[1]["data"]["value"];
    assert_eq!(vault["action"], "created", "{vault}");
    assert_eq!(vault["type"], "vault");
    assert_eq!(vault["data"]["owner"], sender);
    assert_eq!(vault["data"]["collateral"], 300_000_000); // the STX sent to the reserve
    assert_eq!(vault["data"]["debt"], 130_000_000); // the USDA minted
    assert_eq!(vault["data"]["collateral-type"], "STX-A");
    assert_eq!(vault["data"]["created-at-block-height"], 34307); // this block
    assert_eq!(e03[1]["contractId"], freddie);
    assert_eq!(e03[2]["contractId"], freddie, "STX transfer inside a call: the called contract");
    assert_eq!(e03[2]["data"]["amount"], "300000000");
    let dao = &e03[3]["data"]["value"];
    assert_eq!((dao["action"].as_str(), dao["type"].as_str()), (Some("minted"), Some("token")));
    assert_eq!(dao["data"]["recipient"], sender);
    assert_eq!(dao["data"]["amount"], 130_000_000);
    assert_eq!(e03[4]["data"]["value"], json!({"result": {"success": true, "value": true}})); // 0x0703
    for e in e03 {
        assert!(e["affectedAddresses"].as_array().expect("array").iter().any(|a| a == sender));
    }

    // 04: a decoded print value, kept as is.
    assert_eq!(stored[3][0]["data"]["value"], "Hello World");
    // 05: one STX transfer of 50.
    assert_eq!(stored[4][0]["data"]["amount"], "50");
    // 06: the coinbase's two identical STX mints are two events; the deploys emit none.
    let e06 = &stored[5];
    assert_eq!(e06.len(), 2);
    assert_eq!(e06[0]["data"], e06[1]["data"]);
    assert_eq!((e06[0]["eventIndex"].as_i64(), e06[1]["eventIndex"].as_i64()), (Some(0), Some(1)));
    assert_eq!(e06[0]["contractId"], Value::Null, "a coinbase calls no contract");
    // 07: one tx, three transfers: same txHash, event indexes 0, 1, 2.
    let e07 = &stored[6];
    assert_eq!(e07.iter().map(|e| e["eventIndex"].as_i64().unwrap_or(-1)).collect::<Vec<_>>(), [0, 1, 2]);
    assert!(e07.iter().all(|e| e["txHash"] == e07[0]["txHash"]));
    // 08: NFT mint of token 5 of test-functions-v4::doc-nft.
    assert_eq!(stored[7][0]["eventType"], "nft_mint_event");
    assert_eq!(stored[7][0]["data"]["asset_identifier"], 5);
    assert_eq!(stored[7][0]["contractId"], "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.test-functions-v4");

    // The highest canonical block is 02's testnet block 100458.
    let head = app.head().await;
    assert_eq!(head["headBlockHeight"], 100458);
    assert_eq!(head["headBlockHash"], f02["apply"][0]["block_identifier"]["hash"]);
    let total: usize = stored.iter().map(Vec::len).sum();
    assert_eq!(app.all_events().await.len(), total);
}
both_backends!(fixtures: fixtures_stored_one_for_one, fixtures_stored_one_for_one);

async fn redelivery_stores_nothing_new(backend: Backend) {
    let Some(dir) = common::fixtures_dir() else { return };
    let fixtures = load_all(&dir);
    let (app, _) = ingest_all(backend, &fixtures).await;
    let head = app.head().await;
    let events = app.all_events().await;

    // Every fixture, 01 included, is all duplicates the second time. 01 rolls back the
    // very block (hash 0x) it applies: a block the same payload applies again is not
    // rolled back, so it stays canonical and its events are duplicates.
    for f in &fixtures {
        let (want, repeats) = apply_events(&f.json);
        let (status, report) = post_text(&app, &f.text).await;
        assert_eq!(status, 200, "{}: {report}", f.name);
        assert_eq!(report["events"], 0, "{}: {report}", f.name);
        assert_eq!(report["duplicateEvents"], want.len() + repeats, "{}: {report}", f.name);
        assert_eq!(report["appliedBlocks"], 0, "{}: {report}", f.name);
        assert_eq!(report["rolledBackBlocks"], 0, "{}: {report}", f.name);
        assert_eq!(report["headSeq"], head["headSeq"], "{}: {report}", f.name);
    }
    assert_eq!(app.head().await, head);
    assert_eq!(app.all_events().await, events);
}
both_backends!(fixtures: redelivery_stores_nothing_new, redelivery_stores_nothing_new);
