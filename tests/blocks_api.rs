//! `GET /api/blocks/{hash}[?height=N]`: the block entry keeps every delivered transaction,
//! failed ones included, even when they emitted no event.
mod common;
use common::{Backend, TestApp};
use serde_json::{json, Value};
use timebank_realtime::synth;

async fn failed_transaction_is_kept(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut failed = synth::transaction(7, 0, 1, synth::address(2), Some(synth::CONTRACT), vec![]);
    failed["metadata"]["success"] = json!(false);
    failed["metadata"]["result"] = json!("(err u2014)");
    let ok = synth::transaction(7, 0, 0, synth::address(0), None, vec![synth::stx_transfer(synth::address(0), synth::address(1), 5)]);
    let payload = synth::payload(vec![synth::block(7, 0, 0, vec![ok, failed])], vec![]);
    let (status, report) = app.post_payload(&payload).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 1);

    let (status, block) = app.get_json(&format!("/api/blocks/{}", synth::block_hash(7, 0))).await;
    assert_eq!(status, 200, "{block}");
    assert_eq!(block["blockHeight"], 7);
    assert_eq!(block["canonical"], true);
    let txs = block["transactions"].as_array().expect("transactions");
    assert_eq!(txs.len(), 2);
    let failed = txs.iter().find(|t| t["txIndex"] == 1).expect("failed tx kept");
    assert_eq!(failed["success"], false);
    assert_eq!(failed["result"], "(err u2014)");
    assert_eq!(failed["eventCount"], 0);
    assert_eq!(failed["sender"], synth::address(2));
    // With the height, the block is found by its key; under another height it is not there.
    let (status, by_key) = app.get_json(&format!("/api/blocks/{}?height=7", synth::block_hash(7, 0))).await;
    assert_eq!(status, 200, "{by_key}");
    assert_eq!(by_key, block);
    let (status, body) = app.get_json(&format!("/api/blocks/{}?height=8", synth::block_hash(7, 0))).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = app.get_json(&format!("/api/blocks/{}?height=seven", synth::block_hash(7, 0))).await;
    assert_eq!(status, 400, "{body}");

    // Rolled back: still there, no longer canonical.
    let rollback = synth::payload(vec![], vec![synth::block(7, 0, 0, vec![])]);
    let (status, _) = app.post_payload(&rollback).await;
    assert_eq!(status, 200);
    let (_, block) = app.get_json(&format!("/api/blocks/{}", synth::block_hash(7, 0))).await;
    assert_eq!(block["canonical"], false);

    let (status, body) = app.get_json("/api/blocks/0xunknown").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.get_json("/api/no-such-path").await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
}
both_backends!(failed_transaction_is_kept, failed_transaction_is_kept);

/// Two predicates matching different transactions of one block: the block entry lists the
/// transactions of both deliveries, each once, in the order they were delivered.
async fn transactions_of_every_predicate_are_listed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = synth::transaction(9, 0, 0, synth::address(0), None, vec![synth::stx_transfer(synth::address(0), synth::address(1), 5)]);
    let second = synth::transaction(9, 0, 2, synth::address(3), Some(synth::CONTRACT), vec![]);
    for txs in [vec![first.clone()], vec![second.clone()], vec![first, second]] {
        let (status, report) = app.post_payload(&synth::payload(vec![synth::block(9, 0, 0, txs)], vec![])).await;
        assert_eq!(status, 200, "{report}");
    }
    let (status, block) = app.get_json(&format!("/api/blocks/{}?height=9", synth::block_hash(9, 0))).await;
    assert_eq!(status, 200, "{block}");
    let indexes: Vec<&Value> = block["transactions"].as_array().expect("transactions").iter().map(|t| &t["txIndex"]).collect();
    assert_eq!(indexes, [&json!(0), &json!(2)]);
    assert_eq!(block["canonical"], true);
}
both_backends!(transactions_of_every_predicate, transactions_of_every_predicate_are_listed);

async fn fixture_02_failed_transaction(backend: Backend) {
    let Some(dir) = common::fixtures_dir() else { return };
    let raw = std::fs::read_to_string(dir.join("02_testnet_bns_name_revoke_print_events_and_failed_tx.json")).expect("fixture");
    let fixture: Value = serde_json::from_str(&raw).expect("fixture is JSON");
    let app = TestApp::spawn(backend).await;
    let (status, _) = app.post_payload(&fixture).await;
    assert_eq!(status, 200);
    let fixture_block = &fixture["apply"][0];
    let hash = fixture_block["block_identifier"]["hash"].as_str().expect("hash");
    let (_, block) = app.get_json(&format!("/api/blocks/{hash}")).await;
    let failed_in_fixture: Vec<&Value> = fixture_block["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .filter(|t| t["metadata"]["success"] == false)
        .collect();
    assert_eq!(failed_in_fixture.len(), 1, "fixture 02 has one failed transaction");
    let want = failed_in_fixture[0];
    let kept = block["transactions"]
        .as_array()
        .expect("transactions")
        .iter()
        .find(|t| t["txHash"] == want["transaction_identifier"]["hash"])
        .expect("failed transaction kept in the block entry");
    assert_eq!(kept["success"], false);
    assert_eq!(kept["result"], want["metadata"]["result"]);
    assert_eq!(kept["txIndex"], want["metadata"]["position"]["index"]);
    assert_eq!(block["transactions"].as_array().map(Vec::len), fixture_block["transactions"].as_array().map(Vec::len));
}
both_backends!(fixtures: fixture_02_failed_transaction, fixture_02_failed_transaction);
