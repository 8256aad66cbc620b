//! Live delivery over `/ws`: each filter gets exactly the entries a user expects, the
//! subscriptions of one socket are independent, and bad messages get errors while the
//! connection stays usable.

mod common;
use common::ws::{matches, seqs, WsClient};
use common::{Backend, TestApp};
use serde_json::{json, Value};
use std::time::Duration;
use timebank_realtime::synth;

/// Block `height` on fork 0 (3 events): an STX transfer, and a contract call whose print event names
/// `address(3)` and which moves STX inside the call.
fn mixed_block(height: i64) -> Value {
    let plain = synth::transaction(
        height,
        0,
        0,
        synth::address(0),
        None,
        vec![synth::stx_transfer(synth::address(0), synth::address(1), 5)],
    );
    let call = synth::transaction(
        height,
        0,
        1,
        synth::address(2),
        Some(synth::CONTRACT),
        vec![
            synth::print_event(synth::CONTRACT, json!({"action": "offer", "user": synth::address(3)})),
            synth::stx_transfer(synth::address(2), synth::address(0), 7),
        ],
    );
    synth::block(height, 0, 0, vec![plain, call])
}

fn filters() -> Vec<(&'static str, Value)> {
    vec![
        ("all", json!({"type": "all"})),
        ("user1", json!({"type": "user", "address": synth::address(1)})),
        ("user3", json!({"type": "user", "address": synth::address(3)})),
        ("contract", json!({"type": "contract", "contractId": synth::CONTRACT})),
        ("contract-print", json!({"type": "contract", "contractId": synth::CONTRACT, "eventType": "print_event"})),
        ("transfers", json!({"type": "event-type", "eventType": "stx_transfer_event"})),
        ("nobody", json!({"type": "contract", "contractId": "ST000000000000000000002AMW42H.none"})),
    ]
}

async fn each_filter_gets_exactly_its_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Something before the subscriptions, which live-only subscriptions must not get.
    assert_eq!(app.post_payload(&synth::payload(vec![mixed_block(1)], vec![])).await.0, 200);
    let head_before = app.head().await["headSeq"].as_i64().expect("headSeq");

    let mut ws = WsClient::connect(&app).await;
    for (id, filter) in filters() {
        let reply = ws.subscribe(id, filter, None).await;
        assert_eq!(reply["headSeq"], head_before, "{reply}");
        assert_eq!(reply["headBlockHeight"], 1);
        let caught_up = ws.recv().await;
        assert_eq!(caught_up, json!({"type": "caught-up", "sub": id, "seq": head_before}));
    }
    for height in 2..=4 {
        assert_eq!(app.post_payload(&synth::payload(vec![mixed_block(height)], vec![])).await.0, 200);
    }

    let events = app.all_events().await;
    let live: Vec<&Value> = events.iter().filter(|e| e["seq"].as_i64() > Some(head_before)).collect();
    let expected: Vec<(&str, Vec<i64>)> = filters()
        .into_iter()
        .map(|(id, f)| (id, live.iter().filter(|e| matches(&f, e)).filter_map(|e| e["seq"].as_i64()).collect()))
        .collect();
    assert_eq!(expected[0].1.len(), 9, "3 events per block, 3 blocks");
    assert_eq!(expected[4].1.len(), 3, "one print per block");
    assert!(expected[6].1.is_empty());

    let got = ws
        .collect_until(|by| expected.iter().all(|(id, want)| by.get(*id).map_or(0, |m| seqs(m).len()) >= want.len()))
        .await;
    for (id, want) in &expected {
        let msgs = got.get(*id).cloned().unwrap_or_default();
        assert_eq!(&seqs(&msgs), want, "subscription {id}");
        for m in &msgs {
            assert_eq!(m["type"], "event");
            let obj = &m["event"];
            let stored = events.iter().find(|e| e["seq"] == obj["seq"]).expect("stored event");
            assert_eq!(obj, stored, "the wire carries the stored event object");
        }
    }
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty(), "no extra message");
}
both_backends!(each_filter_gets_exactly_its_events, each_filter_gets_exactly_its_events);

async fn subscriptions_on_one_socket_are_independent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe("a", json!({"type": "user", "address": synth::address(1)}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    ws.subscribe("b", json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");

    assert_eq!(app.post_payload(&synth::payload(vec![mixed_block(1)], vec![])).await.0, 200);
    let got = ws.collect_until(|by| by.get("b").map_or(0, |m| m.len()) >= 3 && by.contains_key("a")).await;
    assert_eq!(seqs(&got["b"]).len(), 3);
    assert_eq!(seqs(&got["a"]).len(), 1);

    ws.send(json!({"type": "unsubscribe", "id": "a"})).await;
    assert_eq!(ws.recv().await, json!({"type": "unsubscribed", "id": "a"}));
    assert_eq!(app.post_payload(&synth::payload(vec![mixed_block(2)], vec![])).await.0, 200);
    let after = ws.collect_until(|by| by.get("b").map_or(0, |m| m.len()) >= 3).await;
    assert!(!after.contains_key("a"), "an ended subscription gets nothing: {after:?}");
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty());

    // The id is free again, and the new subscription starts from now.
    ws.subscribe("a", json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
}
both_backends!(subscriptions_on_one_socket_are_independent, subscriptions_on_one_socket_are_independent);

async fn bad_messages_get_errors_and_the_connection_stays_usable(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.ws_max_subscriptions = 2).await;
    let mut ws = WsClient::connect(&app).await;
    let cases = [
        ("{not json", "bad_json", Value::Null),
        ("[1,2]", "bad_json", Value::Null),
        (r#"{"type":"dance","id":"x"}"#, "unknown_type", json!("x")),
        (r#"{"type":"subscribe","id":"f","filter":{"type":"planet"}}"#, "invalid_filter", json!("f")),
        (r#"{"type":"subscribe","id":"f","filter":{"type":"user"}}"#, "invalid_filter", json!("f")),
        (r#"{"type":"subscribe","id":"f","filter":{"type":"event-type","eventType":"nope"}}"#, "invalid_filter", json!("f")),
        (r#"{"type":"subscribe","id":"f","filter":{"type":"all"},"since":{"seq":"x"}}"#, "invalid_filter", json!("f")),
        (r#"{"type":"unsubscribe","id":"ghost"}"#, "unknown_subscription", json!("ghost")),
    ];
    for (text, code, id) in cases {
        ws.send_text(text).await;
        let e = ws.recv().await;
        assert_eq!(e["type"], "error", "{text}: {e}");
        assert_eq!(e["code"], code, "{text}: {e}");
        assert_eq!(e.get("id").cloned().unwrap_or(Value::Null), id, "{text}: {e}");
    }
    ws.subscribe("s1", json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    ws.send(json!({"type": "subscribe", "id": "s1", "filter": {"type": "all"}})).await;
    let e = ws.recv().await;
    assert_eq!((e["code"].as_str(), e["id"].as_str()), (Some("duplicate_id"), Some("s1")), "{e}");
    ws.subscribe("s2", json!({"type": "event-type", "eventType": "print_event"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    ws.send(json!({"type": "subscribe", "id": "s3", "filter": {"type": "all"}})).await;
    assert_eq!(ws.recv().await["code"], "too_many_subscriptions");

    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}));
    // The first subscription still works after all this.
    assert_eq!(app.post_payload(&synth::payload(vec![mixed_block(1)], vec![])).await.0, 200);
    let got = ws.collect_until(|by| by.get("s1").map_or(0, |m| m.len()) >= 3 && by.contains_key("s2")).await;
    assert_eq!(seqs(&got["s1"]).len(), 3);
    assert_eq!(seqs(&got["s2"]).len(), 1);
}
both_backends!(bad_messages_get_errors_and_the_connection_stays_usable, bad_messages_get_errors_and_the_connection_stays_usable);
