//! Two devices of one address with overlapping ops on one entity (PROTOCOL §4 "Conflicts
//! between devices"), one entity kind per strategy, on both backends: each strategy gives
//! the outcome docs/ops.md documents, both devices see the same status changes, the
//! optimistic view and `pendingOps` show it to the address and to no other, and a server
//! restarted on the same log (the rules rebuilt from it) answers the same.
//!
//! The story, per kind K: the chain creates K:1 {status, hours} (version 1); device 1 sends
//! op1 {status:"a", hours:5} at base 1; another transaction changes `status` (version 2);
//! device 2 sends op2 {hours:7} at base 2.
//! - chain-wins: op1 is stale at the chain's change → reverted conflict; view status = chain.
//! - last-writer-wins: staleness ignored; op2 takes `hours`, op1 keeps `status` → both stand.
//! - merge: op1's `status` is stale, its `hours` overridden by op2 → reverted conflict.

mod common;
use common::ops::*;
use common::Backend;
use serde_json::{json, Value};
use timebank_realtime::config::ServerConfig;
use timebank_realtime::synth;

const T0: i64 = 1_700_000_000;

fn strategies(c: &mut ServerConfig) {
    c.op_strategies = "cw=chain-wins,lww=last-writer-wins,mg=merge".into();
}

/// The chain's part: K:1 created by one transaction, its `status` changed by another.
fn chain_block(height: i64, kind: &str, verb: &str, fields: Value) -> Value {
    let print = entity_print(kind, verb, 1, fields);
    let hash = synth::tx_hash(height, 0, 0);
    block_at(height, 0, 0, T0 + height, vec![tx(height, 0, 0, &hash, synth::address(3), true, vec![print])])
}

async fn statuses(ws: &mut common::ws::WsClient, until: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    while !until(&out) {
        let Some(m) = ws.recv_within(std::time::Duration::from_secs(10)).await else {
            panic!("only these status changes came: {out:?}");
        };
        if m["type"] == "op-status" {
            out.push(m["op"].clone());
        }
    }
    out
}

fn short(os: &[Value]) -> Vec<(String, String, String)> {
    os.iter()
        .map(|o| (o["opId"].as_str().unwrap_or("").into(), o["status"].as_str().unwrap_or("").into(), o["reason"].as_str().unwrap_or("").into()))
        .collect()
}

async fn each_strategy_gives_its_documented_outcome_on_both_devices(backend: Backend) {
    let app = spawn(backend, strategies).await;
    let mut d1 = device(&app, ALICE, None).await;
    let mut d2 = device(&app, ALICE, None).await;
    let mut bob = device(&app, BOB, None).await;
    let mut height = 100;
    let mut expected_views = Vec::new();
    for (kind, op1_reverted, view) in [
        ("cw", true, json!({"status": "closed", "hours": 7})),
        ("lww", false, json!({"status": "a", "hours": 7})),
        ("mg", true, json!({"status": "closed", "hours": 7})),
    ] {
        let entity = format!("{kind}:1");
        let (op1, op2) = (format!("{kind}-op1"), format!("{kind}-op2"));
        height += 1;
        post(&app, vec![chain_block(height, kind, "created", json!({"status": "open", "hours": 1}))], vec![]).await;
        let mut m1 = op(&op1, &entity, json!({"status": "a", "hours": 5}), None);
        m1["baseVersion"] = json!(1);
        // The op waits until the chain's version 1 is known to the rules: the webhook
        // answered after the commit that fed them.
        let (ack, mut s1) = send_op_seen(&mut d1, m1).await;
        assert_eq!((ack["status"].as_str(), ack["version"].as_i64()), (Some("pending"), Some(1)), "{ack}");
        height += 1;
        post(&app, vec![chain_block(height, kind, "updated", json!({"status": "closed"}))], vec![]).await;
        let mut m2 = op(&op2, &entity, json!({"hours": 7}), None);
        m2["baseVersion"] = json!(2);
        let (ack, mut s2) = send_op_seen(&mut d2, m2).await;
        assert_eq!(ack["status"], "pending", "{ack}");
        // Both devices: op1 pending, [op1 reverted conflict,] op2 pending, in one order.
        let want = if op1_reverted { 3 } else { 2 };
        let (n1, n2) = (s1.len(), s2.len());
        s1.extend(statuses(&mut d1, |s| n1 + s.len() >= want).await);
        s2.extend(statuses(&mut d2, |s| n2 + s.len() >= want).await);
        assert_eq!(s1, s2, "both devices see the same changes");
        let mut expected = vec![(op1.clone(), "pending".to_string(), String::new())];
        if op1_reverted && kind == "cw" {
            expected.push((op1.clone(), "reverted".into(), "conflict".into()));
            expected.push((op2.clone(), "pending".into(), String::new()));
        } else if op1_reverted {
            expected.push((op2.clone(), "pending".into(), String::new()));
            expected.push((op1.clone(), "reverted".into(), "conflict".into()));
        } else {
            expected.push((op2.clone(), "pending".into(), String::new()));
        }
        assert_eq!(short(&s1), expected, "{kind}");
        let body = entity_at(&app, kind, "1", 2, Some(&token_for(ALICE))).await;
        assert_eq!(body["fields"], json!({"status": "closed", "hours": 1}), "the chain's fields");
        assert_eq!(body["optimistic"], view, "{kind}: {body}");
        let pending: Vec<&str> = body["pendingOps"].as_array().expect("list").iter().filter_map(|o| o["opId"].as_str()).collect();
        let want_pending: Vec<&str> = if op1_reverted { vec![&op2] } else { vec![&op1, &op2] };
        assert_eq!(pending, want_pending);
        // Another address sees the chain alone; no token, no ops.
        let other = entity_at(&app, kind, "1", 2, Some(&token_for(BOB))).await;
        assert_eq!((other["pendingOps"].clone(), other["optimistic"].clone()), (json!([]), json!({"status": "closed", "hours": 1})));
        let anonymous = entity_at(&app, kind, "1", 2, None).await;
        assert_eq!(anonymous["pendingOps"], json!([]));
        expected_views.push((kind, body));
    }
    nothing_pending(&mut bob).await;
    let forged = token("not-the-secret-but-just-as-long-as-it", json!({"sub": ALICE, "exp": now() + 60}));
    assert_eq!(get_as(&app, "/api/entities/cw/1", Some(&forged)).await.0, 401);
    drop((d1, d2, bob));

    decisions_are_a_function_of_the_log(&app, strategies).await;
    // The rules rebuilt from the log at startup answer the same.
    let again = restart(&app, strategies).await;
    for (kind, before) in expected_views {
        let after = entity_at(&again, kind, "1", 2, Some(&token_for(ALICE))).await;
        assert_eq!((&after["optimistic"], &after["pendingOps"]), (&before["optimistic"], &before["pendingOps"]), "{kind}");
    }
    let mut d = signed_in(&again, ALICE).await;
    let resend = send_op(&mut d, {
        let mut m = op("cw-op1", "cw:1", json!({"status": "a", "hours": 5}), None);
        m["baseVersion"] = json!(1);
        m
    })
    .await;
    assert_eq!((resend["status"].as_str(), resend["reason"].as_str()), (Some("reverted"), Some("conflict")));
}
both_backends!(strategies_on_two_devices, each_strategy_gives_its_documented_outcome_on_both_devices);
