//! Ops with two nodes on one database (cluster mode), on both backends: an op appended on
//! one node reaches the address's connections on the other; a resend of it to the other
//! node is answered from the log (the node's rules are brought up to the head under the
//! append lock before deciding) and appends nothing; a block posted to either node
//! confirms the op on the connections of both; the log's decisions stay a function of it.

mod common;
use common::ops::*;
use common::Backend;
use serde_json::json;
use timebank_realtime::synth;

async fn ops_cross_nodes(backend: Backend) {
    let a = spawn(backend, |_| {}).await;
    let b = node_beside(&a, |_| {}).await;
    let mut on_a = device(&a, ALICE, None).await;
    let mut on_b = device(&b, ALICE, None).await;
    let mut bob_on_b = device(&b, BOB, None).await;
    let hash = synth::tx_hash(50, 0, 0);
    let msg = op("x1", "exchange:5", json!({"status": "done"}), None);
    let ack = send_op(&mut on_a, msg.clone()).await;
    assert_eq!(ack["status"], "pending", "{ack}");
    statuses_until(&mut on_b, "x1", "pending", None).await;

    // The resend reaches node b: the op is known there, so nothing is appended, and adding
    // its first txHash on b appends one op-tx.
    let before = head_seq(&a).await;
    let again = send_op(&mut on_b, msg.clone()).await;
    assert_eq!((again["type"].as_str(), again["seq"].as_i64()), (Some("op-ack"), ack["seq"].as_i64()), "{again}");
    assert_eq!(head_seq(&a).await, before);
    let mut with_tx = msg.clone();
    with_tx["txHash"] = json!(hash);
    assert_eq!(send_op(&mut on_b, with_tx).await["type"], "op-ack");
    statuses_until(&mut on_a, "x1", "pending", None).await;

    // The confirming block, posted to node a, confirms on both nodes' connections.
    post(&a, vec![block_at(50, 0, 0, 1_700_000_050, vec![tx(50, 0, 0, &hash, ALICE, true, vec![])])], vec![]).await;
    for d in [&mut on_a, &mut on_b] {
        statuses_until(d, "x1", "confirmed", None).await;
    }
    nothing_pending(&mut bob_on_b).await;
    let ops = op_entries(&a).await;
    assert_eq!(ops.iter().filter(|(k, _)| *k == 5).count(), 1, "the op once: {ops:?}");
    assert_eq!(ops.iter().filter(|(k, _)| *k == 6).count(), 1, "its txHash once: {ops:?}");
    decisions_are_a_function_of_the_log(&a, |_| {}).await;
    b.stop().await;
}
both_backends!(ops_cross_nodes, ops_cross_nodes);
