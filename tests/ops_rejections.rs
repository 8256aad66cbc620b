//! Ops refused (PROTOCOL §4, docs/protocol.md §5.5, §6), on both backends: missing,
//! forged and expired tokens; an op naming another address; malformed ops; oversize
//! `data`; too many open ops; a resend that differs; cancels that cannot be done; a flood.
//! Each is answered with its code, appends nothing, and leaves the connection (and another
//! one) working.

mod common;
use common::ops::*;
use common::ws::WsClient;
use common::{Backend, TestApp};
use serde_json::{json, Value};
use timebank_realtime::config::ServerConfig;

fn limits(c: &mut ServerConfig) {
    c.ws_max_ops_per_sec = 5;
    c.op_max_data_bytes = 64;
    c.op_max_open_per_address = 2;
}

/// Sends `msg`, expects an `error` with `code` (naming `op_id` when given), and checks that
/// the log did not move and that both `ws` and `observer` still answer.
async fn refused(app: &TestApp, ws: &mut WsClient, observer: &mut WsClient, msg: Value, code: &str) {
    let before = head_seq(app).await;
    ws.send(msg.clone()).await;
    let e = ws.recv().await;
    assert_eq!((e["type"].as_str(), e["code"].as_str()), (Some("error"), Some(code)), "{msg} → {e}");
    if let (Some(id), "op" | "op-cancel") = (msg["opId"].as_str(), msg["type"].as_str().unwrap_or("")) {
        assert_eq!(e["opId"], id, "the error names the op: {e}");
    }
    assert_eq!(head_seq(app).await, before, "{msg}: nothing appended");
    nothing_pending(ws).await;
    nothing_pending(observer).await;
}

async fn every_refusal_has_its_code_and_appends_nothing(backend: Backend) {
    let app = spawn(backend, limits).await;
    let mut observer = device(&app, BOB, None).await;

    // No token, a forged one, an expired one: the connection opens anonymous.
    let mut anonymous = WsClient::connect(&app).await;
    refused(&app, &mut anonymous, &mut observer, op("a", "exchange:1", json!({"a": 1}), None), "unauthorized").await;
    refused(&app, &mut anonymous, &mut observer, json!({"type": "op-cancel", "opId": "a"}), "unauthorized").await;
    refused(&app, &mut anonymous, &mut observer, json!({"type": "subscribe", "id": "o", "filter": {"type": "ops"}}), "unauthorized").await;
    let forged = token("another-secret-another-secret-another!", json!({"sub": ALICE, "exp": now() + 600}));
    let expired = token(JWT_SECRET, json!({"sub": ALICE, "exp": now() - 10}));
    for bad in [forged, expired] {
        let mut ws = WsClient::connect_with(&app, &format!("?token={bad}"), &[]).await;
        assert_eq!(ws.recv().await["code"], "unauthorized");
        refused(&app, &mut ws, &mut observer, op("a", "exchange:1", json!({"a": 1}), None), "unauthorized").await;
        refused(&app, &mut ws, &mut observer, json!({"type": "subscribe", "id": "o", "filter": {"type": "ops"}}), "unauthorized").await;
    }

    let mut alice = signed_in(&app, ALICE).await;
    // Ops are the token's address's: naming another address is not part of an op, and the
    // ops filter names none.
    let mut foreign = op("f", "exchange:1", json!({"a": 1}), None);
    foreign["address"] = json!(BOB);
    refused(&app, &mut alice, &mut observer, foreign, "invalid_op").await;
    let other_filter = json!({"type": "subscribe", "id": "o", "filter": {"type": "ops", "address": BOB}});
    refused(&app, &mut alice, &mut observer, other_filter, "invalid_filter").await;
    // Malformed ops.
    for bad in [
        json!({"type": "op", "opId": "m", "kind": "set", "entity": "exchange:1", "data": [1]}),
        json!({"type": "op", "kind": "set", "entity": "exchange:1", "data": {"a": 1}}),
        json!({"type": "op", "opId": "m m", "kind": "set", "entity": "exchange:1", "data": {"a": 1}}),
        json!({"type": "op", "opId": "m", "kind": "set", "entity": "exchange:1", "data": {"a": {"nested": 1}}}),
        json!({"type": "op", "opId": "m", "kind": "set", "entity": "exchange:1", "data": {"a": 1}, "baseVersion": -1}),
        json!({"type": "op-cancel"}),
    ] {
        refused(&app, &mut alice, &mut observer, bad, "invalid_op").await;
    }
    // Oversize data (64 bytes here).
    let big = op("big", "exchange:1", json!({"note": "x".repeat(80)}), None);
    refused(&app, &mut alice, &mut observer, big, "op_too_large").await;

    // Open ops: two stand, the third is refused before it reaches the log.
    let mut alice2 = signed_in(&app, ALICE).await;
    for id in ["o1", "o2"] {
        assert_eq!(send_op(&mut alice2, op(id, "exchange:1", json!({"a": 1}), Some("0xabc"))).await["type"], "op-ack");
    }
    refused(&app, &mut alice2, &mut observer, op("o3", "exchange:2", json!({"a": 1}), None), "too_many_open_ops").await;
    // A resend that differs; cancels of unknown ops and of ops with a txHash.
    let mut alice3 = signed_in(&app, ALICE).await;
    refused(&app, &mut alice3, &mut observer, op("o1", "exchange:1", json!({"a": 2}), Some("0xabc")), "op_mismatch").await;
    refused(&app, &mut alice3, &mut observer, json!({"type": "op-cancel", "opId": "nope"}), "invalid_op").await;
    refused(&app, &mut alice3, &mut observer, json!({"type": "op-cancel", "opId": "o1"}), "invalid_op").await;
    // The same opId is another op for another address.
    let mut bob = signed_in(&app, BOB).await;
    let ack = send_op(&mut bob, op("o1", "exchange:9", json!({"b": 1}), None)).await;
    assert_eq!((ack["type"].as_str(), ack["status"].as_str()), (Some("op-ack"), Some("pending")), "{ack}");
    // An exact resend is answered with the status and appends nothing.
    let before = head_seq(&app).await;
    let again = send_op(&mut alice3, op("o1", "exchange:1", json!({"a": 1}), Some("0xabc"))).await;
    assert_eq!((again["type"].as_str(), again["status"].as_str()), (Some("op-ack"), Some("pending")));
    assert_eq!(head_seq(&app).await, before);
    let ops_before = op_entries(&app).await;
    assert_eq!(ops_before.iter().filter(|(k, _)| *k == 5).count(), 3, "o1, o2 of Alice and o1 of Bob");
}
both_backends!(refusals, every_refusal_has_its_code_and_appends_nothing);

/// A flood of ops on one connection: past `WS_MAX_OPS_PER_SEC` each is `rate_limited`;
/// exactly the acknowledged ones are in the log; the connection and another keep working.
async fn a_flood_is_rate_limited(backend: Backend) {
    let app = spawn(backend, |c| c.ws_max_ops_per_sec = 5).await;
    let mut observer = device(&app, BOB, None).await;
    let mut ws = signed_in(&app, ALICE).await;
    for i in 0..40 {
        ws.send(op(&format!("flood-{i}"), &format!("exchange:{i}"), json!({"a": i}), None)).await;
    }
    let (mut acked, mut limited) = (Vec::new(), 0);
    while acked.len() + limited < 40 {
        let m = ws.recv().await;
        match (m["type"].as_str(), m["code"].as_str()) {
            (Some("op-ack"), _) => acked.push(m["opId"].as_str().expect("opId").to_string()),
            (Some("error"), Some("rate_limited")) => limited += 1,
            _ => panic!("unexpected {m}"),
        }
    }
    assert!(limited > 0 && !acked.is_empty(), "acked {acked:?}, limited {limited}");
    let mut logged: Vec<String> =
        op_entries(&app).await.into_iter().filter(|(k, _)| *k == 5).map(|(_, b)| b["opId"].as_str().unwrap_or("").to_string()).collect();
    logged.sort();
    acked.sort();
    assert_eq!(logged, acked, "the log holds exactly the acknowledged ops");
    nothing_pending(&mut ws).await;
    nothing_pending(&mut observer).await;
}
both_backends!(flood, a_flood_is_rate_limited);
