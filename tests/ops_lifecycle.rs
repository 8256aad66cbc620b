//! The lifecycle of an op (PROTOCOL §4) over real sockets, on both backends: op → op-ack →
//! the confirming block posted to the webhook → `confirmed` on every connection of the
//! op's address and on none of another's; `final` at the configured depth; `tx_failed`;
//! `tx_mismatch`; `expired` by block time; a reorg after confirmation back to `pending`
//! and `confirmed` again on the new fork; an op whose transaction a second predicate
//! delivers for a block already canonical; and a device that was offline catching up with
//! `since.seq`. Each test ends by re-deriving every decision from the log with fresh rules.

mod common;
use common::ops::*;
use common::Backend;
use serde_json::json;
use timebank_realtime::synth;

const T0: i64 = 1_700_000_000;

async fn confirmed_on_every_device_of_the_address_only(backend: Backend) {
    let depth = |c: &mut timebank_realtime::config::ServerConfig| c.op_final_depth = 2;
    let app = spawn(backend, depth).await;
    let mut phone = device(&app, ALICE, None).await;
    let mut laptop = device(&app, ALICE, None).await;
    let mut bob = device(&app, BOB, None).await;
    let hash = synth::tx_hash(10, 0, 0);
    let (ack, early) = send_op_seen(&mut phone, op("a1", "exchange:1", json!({"status": "done"}), Some(&hash))).await;
    assert_eq!(ack["type"], "op-ack", "{ack}");
    assert_eq!((ack["opId"].as_str(), ack["status"].as_str(), ack["entity"].as_str()), (Some("a1"), Some("pending"), Some("exchange:1")));
    assert_eq!(ack["version"], 0);
    let op_seq = ack["seq"].as_i64().expect("seq");
    if early.is_empty() {
        assert_eq!(statuses_until(&mut phone, "a1", "pending", None).await.last().expect("one")["seq"], op_seq);
    } else {
        assert_eq!(early.iter().map(|o| o["seq"].clone()).collect::<Vec<_>>(), [json!(op_seq)]);
    }
    let s = statuses_until(&mut laptop, "a1", "pending", None).await;
    assert_eq!(s.last().expect("one")["seq"], op_seq);

    post(&app, vec![block_at(10, 0, 0, T0, vec![tx(10, 0, 0, &hash, ALICE, true, vec![])])], vec![]).await;
    for d in [&mut phone, &mut laptop] {
        let s = statuses_until(d, "a1", "confirmed", None).await;
        let c = s.last().expect("confirmed");
        assert_eq!((c["txHash"].as_str(), c["blockHeight"].as_i64()), (Some(hash.as_str()), Some(10)));
        assert_eq!(c["data"], json!({"status": "done"}));
    }
    post(&app, vec![block_at(11, 0, 0, T0 + 1, vec![])], vec![]).await;
    post(&app, vec![block_at(12, 0, 0, T0 + 2, vec![])], vec![]).await;
    for d in [&mut phone, &mut laptop] {
        let s = statuses_until(d, "a1", "final", None).await;
        assert_eq!(s.len(), 1, "nothing between confirmed and final: {s:?}");
        assert_eq!(s[0]["blockHeight"], 10);
    }
    // Bob saw nothing live, and his history holds nothing of Alice's.
    nothing_pending(&mut bob).await;
    assert!(history(&app, BOB, 0).await.is_empty());
    let alice = history(&app, ALICE, 0).await;
    let states: Vec<&str> = alice.iter().map(|o| o["status"].as_str().unwrap_or("")).collect();
    assert_eq!(states, ["pending", "confirmed", "final"]);
    decisions_are_a_function_of_the_log(&app, depth).await;
}
both_backends!(confirmed_on_every_device, confirmed_on_every_device_of_the_address_only);

async fn failed_and_foreign_transactions_revert(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let mut d = device(&app, ALICE, None).await;
    let (failed, foreign) = (synth::tx_hash(5, 0, 0), synth::tx_hash(5, 0, 1));
    assert_eq!(send_op(&mut d, op("f1", "exchange:1", json!({"a": 1}), Some(&failed))).await["type"], "op-ack");
    assert_eq!(send_op(&mut d, op("m1", "exchange:2", json!({"a": 1}), Some(&foreign))).await["type"], "op-ack");
    let txs = vec![tx(5, 0, 0, &failed, ALICE, false, vec![]), tx(5, 0, 1, &foreign, BOB, true, vec![])];
    post(&app, vec![block_at(5, 0, 0, T0, txs)], vec![]).await;
    let s = statuses_until(&mut d, "m1", "reverted", Some("tx_mismatch")).await;
    let f = s.iter().find(|o| o["opId"] == "f1" && o["status"] == "reverted").expect("f1 reverted");
    assert_eq!((f["reason"].as_str(), f["blockHeight"].as_i64()), (Some("tx_failed"), Some(5)));
    // A settled op answers a resend with its status and appends nothing.
    let before = head_seq(&app).await;
    let again = send_op(&mut d, op("f1", "exchange:1", json!({"a": 1}), Some(&failed))).await;
    assert_eq!((again["status"].as_str(), again["reason"].as_str()), (Some("reverted"), Some("tx_failed")));
    assert_eq!(head_seq(&app).await, before);
    decisions_are_a_function_of_the_log(&app, |_| {}).await;
}
both_backends!(failed_and_foreign, failed_and_foreign_transactions_revert);

async fn ops_expire_by_block_time(backend: Backend) {
    let expiry = |c: &mut timebank_realtime::config::ServerConfig| {
        c.op_expiry_secs = 60;
        c.op_tx_wait_secs = 30;
    };
    let app = spawn(backend, expiry).await;
    let mut d = device(&app, ALICE, None).await;
    post(&app, vec![block_at(1, 0, 0, T0, vec![])], vec![]).await;
    let never = synth::tx_hash(99, 0, 0);
    send_op(&mut d, op("with-tx", "exchange:1", json!({"a": 1}), Some(&never))).await;
    send_op(&mut d, op("no-tx", "exchange:2", json!({"a": 1}), None)).await;
    // 30 s is not past the wait (strictly later is); 31 s ends the op without a txHash.
    post(&app, vec![block_at(2, 0, 0, T0 + 30, vec![])], vec![]).await;
    post(&app, vec![block_at(3, 0, 0, T0 + 31, vec![])], vec![]).await;
    let s = statuses_until(&mut d, "no-tx", "reverted", Some("expired")).await;
    assert!(s.iter().all(|o| o["opId"] != "with-tx" || o["status"] == "pending"), "{s:?}");
    post(&app, vec![block_at(4, 0, 0, T0 + 61, vec![])], vec![]).await;
    statuses_until(&mut d, "with-tx", "reverted", Some("expired")).await;
    decisions_are_a_function_of_the_log(&app, expiry).await;
}
both_backends!(expiry, ops_expire_by_block_time);

async fn a_reorg_sends_the_op_back_to_pending_then_confirms_it_on_the_new_fork(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let mut d = device(&app, ALICE, None).await;
    let hash = synth::tx_hash(20, 0, 3);
    send_op(&mut d, op("r1", "exchange:7", json!({"a": 1}), Some(&hash))).await;
    post(&app, vec![block_at(20, 0, 0, T0, vec![tx(20, 0, 0, &hash, ALICE, true, vec![])])], vec![]).await;
    statuses_until(&mut d, "r1", "confirmed", None).await;
    let old = block_at(20, 0, 0, T0, vec![tx(20, 0, 0, &hash, ALICE, true, vec![])]);
    let new = block_at(20, 1, 0, T0 + 5, vec![tx(20, 1, 0, &hash, ALICE, true, vec![])]);
    post(&app, vec![new], vec![old]).await;
    let s = statuses_until(&mut d, "r1", "confirmed", None).await;
    let statuses: Vec<(&str, Option<&str>)> = s.iter().map(|o| (o["status"].as_str().unwrap_or(""), o["reason"].as_str())).collect();
    assert_eq!(statuses, [("pending", Some("rolled_back")), ("confirmed", None)]);
    assert_eq!(s[0]["blockHash"], synth::block_hash(20, 0));
    assert_eq!(s[1]["blockHash"], synth::block_hash(20, 1));
    decisions_are_a_function_of_the_log(&app, |_| {}).await;
}
both_backends!(reorg, a_reorg_sends_the_op_back_to_pending_then_confirms_it_on_the_new_fork);

async fn a_second_predicates_share_of_a_block_confirms_its_ops(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let mut d = device(&app, ALICE, None).await;
    let (theirs, ours) = (synth::tx_hash(30, 0, 0), synth::tx_hash(30, 0, 1));
    send_op(&mut d, op("p1", "exchange:9", json!({"a": 1}), Some(&ours))).await;
    // One predicate matched another transaction of block 30; a second one matches the op's.
    post(&app, vec![block_at(30, 0, 0, T0, vec![tx(30, 0, 0, &theirs, BOB, true, vec![])])], vec![]).await;
    let second = block_at(30, 0, 0, T0, vec![tx(30, 0, 1, &ours, ALICE, true, vec![])]);
    post(&app, vec![second.clone()], vec![]).await;
    let s = statuses_until(&mut d, "p1", "confirmed", None).await;
    let c = s.last().expect("confirmed");
    assert_eq!((c["txHash"].as_str(), c["blockHeight"].as_i64()), (Some(ours.as_str()), Some(30)));
    // The second share is recorded once: its redelivery appends nothing.
    let before = head_seq(&app).await;
    post(&app, vec![second], vec![]).await;
    assert_eq!(head_seq(&app).await, before);
    decisions_are_a_function_of_the_log(&app, |_| {}).await;
}
both_backends!(second_predicate, a_second_predicates_share_of_a_block_confirms_its_ops);

async fn an_offline_device_catches_up_by_seq(backend: Backend) {
    let app = spawn(backend, |c| c.op_final_depth = 1).await;
    let mut phone = device(&app, ALICE, None).await;
    let hash = synth::tx_hash(30, 0, 0);
    let (ack, mut seen) = send_op_seen(&mut phone, op("c1", "exchange:3", json!({"a": 1}), Some(&hash))).await;
    if seen.is_empty() {
        seen = statuses_until(&mut phone, "c1", "pending", None).await;
    }
    let last_seen = seen.last().expect("pending")["seq"].as_i64().expect("seq");
    assert_eq!(last_seen, ack["seq"].as_i64().expect("seq"));
    drop(phone);
    post(&app, vec![block_at(30, 0, 0, T0, vec![tx(30, 0, 0, &hash, ALICE, true, vec![])])], vec![]).await;
    post(&app, vec![block_at(31, 0, 0, T0 + 1, vec![])], vec![]).await;
    // Back online: every missed status change, in order, then live.
    let mut phone = signed_in(&app, ALICE).await;
    phone.subscribe("o", json!({"type": "ops"}), Some(json!({"seq": last_seen}))).await;
    let missed = statuses_until(&mut phone, "c1", "final", None).await;
    let states: Vec<&str> = missed.iter().map(|o| o["status"].as_str().unwrap_or("")).collect();
    assert_eq!(states, ["confirmed", "final"]);
    assert!(missed.windows(2).all(|w| w[0]["seq"].as_i64() < w[1]["seq"].as_i64()));
    // Live again: a new op's pending comes after the handover.
    let (_, seen) = send_op_seen(&mut phone, op("c2", "exchange:3", json!({"b": 1}), None)).await;
    if seen.is_empty() {
        statuses_until(&mut phone, "c2", "pending", None).await;
    }
}
both_backends!(offline_catch_up, an_offline_device_catches_up_by_seq);

/// The rules read entity changes with the entities projection's mapping: through a create,
/// an update and the rollback of the update, the version an `op-ack` reports is the
/// version the projection serves, and an op based on the undone version is judged stale.
async fn entity_versions_follow_the_projection_through_a_rollback(backend: Backend) {
    let app = spawn(backend, |_| {}).await;
    let mut d = device(&app, ALICE, None).await;
    let print = |verb: &str, fields: serde_json::Value| entity_print("offer", verb, 4, fields);
    let chain_tx = |h: i64, fork: u32, p| tx(h, fork, 0, &synth::tx_hash(h, fork, 0), synth::address(3), true, vec![p]);
    post(&app, vec![block_at(60, 0, 0, T0, vec![chain_tx(60, 0, print("created", json!({"price": 1})))])], vec![]).await;
    let updated = block_at(61, 0, 0, T0 + 1, vec![chain_tx(61, 0, print("updated", json!({"price": 2})))]);
    post(&app, vec![updated.clone()], vec![]).await;
    let mut stale = op("v2", "offer:4", json!({"price": 3}), None);
    stale["baseVersion"] = json!(2);
    assert_eq!(send_op(&mut d, stale).await["version"], 2);
    // The update is rolled back: version 3 in the projection and in the rules, and the
    // undo changed `price` after the op's base, by another transaction: chain-wins reverts.
    post(&app, vec![block_at(61, 1, 0, T0 + 2, vec![])], vec![updated]).await;
    statuses_until(&mut d, "v2", "reverted", Some("conflict")).await;
    let served = entity_at(&app, "offer", "4", 3, Some(&token_for(ALICE))).await;
    assert_eq!(served["fields"], json!({"price": 1}));
    let ack = send_op(&mut d, op("v3", "offer:4", json!({"note": "x"}), None)).await;
    assert_eq!((ack["version"].as_i64(), ack["status"].as_str()), (Some(3), Some("pending")), "{ack}");
    decisions_are_a_function_of_the_log(&app, |_| {}).await;
}
both_backends!(entity_versions, entity_versions_follow_the_projection_through_a_rollback);
