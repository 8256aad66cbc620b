//! Catch-up over `/ws`: `since.seq` resume, the history→live handover under concurrent
//! ingestion, reorg rollbacks live, and `since.blockHeight` with a stale `blockHash`.

mod common;
use common::ws::{matches, seqs, WsClient};
use common::{Backend, TestApp, SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use timebank_realtime::synth;

async fn post(app: &TestApp, apply: Vec<Value>, rollback: Vec<Value>) -> Value {
    let (status, body) = app.post_payload(&synth::payload(apply, rollback)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Reads subscription `id` up to and including its `caught-up`, then until it holds
/// `total` entries; returns the entry messages and the `caught-up` seq.
async fn read_sub(ws: &mut WsClient, id: &str, total: usize) -> (Vec<Value>, i64) {
    let got = ws
        .collect_until(|by| {
            by.get(id).is_some_and(|m| m.iter().any(|x| x["type"] == "caught-up") && seqs(m).len() >= total)
        })
        .await;
    let msgs = got[id].clone();
    let caught = msgs.iter().position(|m| m["type"] == "caught-up").expect("caught-up");
    assert_eq!(msgs.iter().filter(|m| m["type"] == "caught-up").count(), 1, "caught-up is sent once");
    let seq = msgs[caught]["seq"].as_i64().expect("caught-up seq");
    let entries = msgs.into_iter().filter(|m| m["type"] != "caught-up").collect();
    (entries, seq)
}

async fn since_seq_resumes_with_exactly_the_missed_entries(backend: Backend) {
    // Tiny history pages, so the catch-up crosses many page boundaries.
    let db = common::TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.ws_history_page = 3).await;
    post(&app, vec![synth::block_with_transfers(1, 0, 0, 12)], vec![]).await;
    let cursor = app.head().await["headSeq"].as_i64().expect("headSeq");
    post(&app, vec![synth::block_with_transfers(2, 0, 0, 12), synth::block_with_transfers(3, 0, 0, 12)], vec![]).await;
    // A reorg while the client is away: block 3 is replaced.
    post(&app, vec![synth::block_with_transfers(3, 1, 0, 5)], vec![synth::block_with_transfers(3, 0, 0, 12)]).await;
    let head = app.head().await["headSeq"].as_i64().expect("headSeq");

    let filter = json!({"type": "user", "address": synth::address(1)});
    let events = app.all_events().await;
    let missed: Vec<&Value> =
        events.iter().filter(|e| e["seq"].as_i64() > Some(cursor) && matches(&filter, e)).collect();
    let rolled_back: Vec<i64> =
        missed.iter().filter(|e| e["rolledBack"] == true).filter_map(|e| e["seq"].as_i64()).collect();
    assert!(!rolled_back.is_empty());

    let mut ws = WsClient::connect(&app).await;
    let reply = ws.subscribe("s", filter.clone(), Some(json!({"seq": cursor}))).await;
    assert_eq!(reply["headSeq"], head);
    let (msgs, caught_up) = read_sub(&mut ws, "s", missed.len() + rolled_back.len()).await;
    assert_eq!(caught_up, head);
    let got_events: Vec<i64> = msgs.iter().filter(|m| m["type"] == "event").filter_map(|m| m["event"]["seq"].as_i64()).collect();
    let want_events: Vec<i64> = missed.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(got_events, want_events);
    let mut undone: Vec<i64> =
        msgs.iter().filter(|m| m["type"] == "rollback").filter_map(|m| m["rollback"]["rollbackOf"].as_i64()).collect();
    undone.sort_unstable();
    assert_eq!(undone, rolled_back, "a rollback for each missed event that was undone");
    let all = seqs(&msgs);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "increasing seq: {all:?}");
    assert!(all.iter().all(|s| *s > cursor && *s <= head));
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty());

    // Resuming at the head: nothing but caught-up, then live.
    ws.subscribe("t", filter, Some(json!({"seq": head}))).await;
    assert_eq!(ws.recv().await, json!({"type": "caught-up", "sub": "t", "seq": head}));
}
both_backends!(since_seq_resumes_with_exactly_the_missed_entries, since_seq_resumes_with_exactly_the_missed_entries);

async fn handover_under_concurrent_ingestion_has_no_gap_and_no_duplicate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    const BLOCKS: i64 = 40;
    let filters = [
        json!({"type": "all"}),
        json!({"type": "user", "address": synth::address(2)}),
        json!({"type": "event-type", "eventType": "stx_transfer_event"}),
        json!({"type": "all"}),
    ];
    // Subscriptions are staggered by what the log holds, not by the clock: subscriber `i`
    // subscribes once the webhook has answered for `i` quarters of the blocks, while the
    // ingestion goes on; the last block waits until every subscriber is subscribed, so
    // each later subscriber's handover falls strictly inside the ingestion.
    let (posted_tx, mut posted) = tokio::sync::watch::channel(0i64);
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel::<()>();
    let client = app.client.clone();
    let url = format!("{}/api/webhooks/chainhook", app.base);
    let ingest = actix_web::rt::spawn(async move {
        let mut subscribed = Some(subscribed);
        for height in 1..=BLOCKS {
            if height == BLOCKS {
                if let Some(all) = subscribed.take() {
                    all.await.expect("every subscriber subscribed");
                }
            }
            let body = synth::payload(vec![synth::block_with_transfers(height, 0, 0, 15)], vec![]);
            let res = client
                .post(&url)
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .expect("post");
            assert_eq!(res.status().as_u16(), 200);
            posted_tx.send_replace(height);
        }
    });
    let mut clients = Vec::new();
    for (i, f) in filters.iter().enumerate() {
        let blocks = BLOCKS * i as i64 / filters.len() as i64;
        posted.wait_for(|posted| *posted >= blocks).await.expect("ingest task runs");
        let mut ws = WsClient::connect(&app).await;
        ws.subscribe("s", f.clone(), Some(json!({"seq": 0}))).await;
        clients.push(ws);
    }
    subscribed_tx.send(()).expect("ingest task waits");
    ingest.await.expect("ingest task");
    let events = app.all_events().await;
    assert_eq!(events.len(), 15 * BLOCKS as usize);
    let head = app.head().await["headSeq"].as_i64().expect("headSeq");
    let mut handovers = Vec::new();
    for (ws, f) in clients.iter_mut().zip(&filters) {
        let want: Vec<i64> = events.iter().filter(|e| matches(f, e)).filter_map(|e| e["seq"].as_i64()).collect();
        let (msgs, caught_up) = read_sub(ws, "s", want.len()).await;
        handovers.push(caught_up);
        assert_eq!(seqs(&msgs), want, "filter {f}: every matching entry exactly once, in order");
        assert!(ws.drain(Duration::from_millis(200)).await.is_empty(), "no duplicate after the last entry");
    }
    println!("handover seqs {handovers:?} of head {head}");
    assert!(
        handovers[1..].iter().all(|s| *s > 0 && *s < head),
        "the later subscriptions handed over mid-ingestion (history and live both used): {handovers:?}"
    );
}
both_backends!(
    handover_under_concurrent_ingestion_has_no_gap_and_no_duplicate,
    handover_under_concurrent_ingestion_has_no_gap_and_no_duplicate
);

async fn reorg_rollbacks_reach_live_subscribers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ws = WsClient::connect(&app).await;
    ws.subscribe("all", json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    ws.subscribe("u", json!({"type": "user", "address": synth::address(3)}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    post(&app, vec![synth::block_with_transfers(1, 0, 0, 4), synth::block_with_transfers(2, 0, 0, 4)], vec![]).await;
    post(&app, vec![synth::block_with_transfers(2, 1, 0, 2)], vec![synth::block_with_transfers(2, 0, 0, 4)]).await;
    let events = app.all_events().await;
    let undone: Vec<i64> = events.iter().filter(|e| e["rolledBack"] == true).filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(undone.len(), 4);
    let u_filter = json!({"type": "user", "address": synth::address(3)});
    let u_undone: Vec<i64> = events
        .iter()
        .filter(|e| e["rolledBack"] == true && matches(&u_filter, e))
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    let u_events = events.iter().filter(|e| matches(&u_filter, e)).count();
    // all: 8 + 2 events and 4 rollbacks.
    let got = ws
        .collect_until(|by| {
            by.get("all").map_or(0, |m| seqs(m).len()) >= 14 && by.get("u").map_or(0, |m| seqs(m).len()) >= u_events + u_undone.len()
        })
        .await;
    for (id, want_undone) in [("all", &undone), ("u", &u_undone)] {
        let msgs = &got[id];
        let all = seqs(msgs);
        assert!(all.windows(2).all(|w| w[0] < w[1]), "increasing: {all:?}");
        let mut got: Vec<i64> =
            msgs.iter().filter(|m| m["type"] == "rollback").filter_map(|m| m["rollback"]["rollbackOf"].as_i64()).collect();
        got.sort_unstable();
        assert_eq!(&got, want_undone, "{id}");
        for m in msgs.iter().filter(|m| m["type"] == "rollback") {
            assert_eq!(m["rollback"]["blockHash"], synth::block_hash(2, 0));
        }
    }
    assert!(!u_undone.is_empty());
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty());
}
both_backends!(reorg_rollbacks_reach_live_subscribers, reorg_rollbacks_reach_live_subscribers);

async fn since_block_height_with_a_stale_hash_rolls_back_the_abandoned_fork(backend: Backend) {
    let db = common::TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.ws_history_page = 2).await;
    post(&app, (1..=3).map(|h| synth::block_with_transfers(h, 0, 0, 3)).collect(), vec![]).await;
    let before = app.all_events().await;
    let held: Vec<i64> = before.iter().filter(|e| e["blockHeight"].as_i64() >= Some(2)).filter_map(|e| e["seq"].as_i64()).collect();
    // Reorg from height 2: fork 1 replaces blocks 2 and 3 and adds 4.
    post(
        &app,
        vec![synth::block_with_transfers(2, 1, 0, 2), synth::block_with_transfers(3, 1, 1, 2), synth::block_with_transfers(4, 1, 1, 2)],
        vec![synth::block_with_transfers(3, 0, 0, 3), synth::block_with_transfers(2, 0, 0, 3)],
    )
    .await;
    let events = app.all_events().await;
    let canonical_from = |h: i64| -> Vec<i64> {
        events
            .iter()
            .filter(|e| e["rolledBack"] != true && e["blockHeight"].as_i64() > Some(h))
            .filter_map(|e| e["seq"].as_i64())
            .collect()
    };

    let mut ws = WsClient::connect(&app).await;
    // Stale hash: rollbacks of what the client holds from blocks 2–3 of fork 0, then the
    // canonical events from the fork point (height 1) on.
    ws.subscribe("s", json!({"type": "all"}), Some(json!({"blockHeight": 3, "blockHash": synth::block_hash(3, 0)}))).await;
    let want_events = canonical_from(1);
    let (msgs, _) = read_sub(&mut ws, "s", held.len() + want_events.len()).await;
    let mut undone: Vec<i64> = msgs.iter().filter(|m| m["type"] == "rollback").filter_map(|m| m["rollback"]["rollbackOf"].as_i64()).collect();
    undone.sort_unstable();
    assert_eq!(undone, held);
    let got_events: Vec<i64> = msgs.iter().filter(|m| m["type"] == "event").filter_map(|m| m["event"]["seq"].as_i64()).collect();
    assert_eq!(got_events, want_events);
    let rollbacks_first = msgs.iter().take(held.len()).all(|m| m["type"] == "rollback");
    assert!(rollbacks_first, "rollbacks come first");
    let all = seqs(&msgs);
    assert!(all.windows(2).all(|w| w[0] < w[1]), "increasing: {all:?}");

    // A canonical hash (or none): just the canonical events above the height.
    ws.subscribe("t", json!({"type": "all"}), Some(json!({"blockHeight": 3, "blockHash": synth::block_hash(3, 1)}))).await;
    let (msgs, _) = read_sub(&mut ws, "t", canonical_from(3).len()).await;
    assert_eq!(seqs(&msgs), canonical_from(3));
    ws.subscribe("u", json!({"type": "all"}), Some(json!({"blockHeight": 2}))).await;
    let (msgs, _) = read_sub(&mut ws, "u", canonical_from(2).len()).await;
    assert_eq!(seqs(&msgs), canonical_from(2));

    // The same with a filter: only what the filter matches, rollbacks included.
    let user = json!({"type": "user", "address": synth::address(1)});
    let held_u: Vec<i64> = before
        .iter()
        .filter(|e| e["blockHeight"].as_i64() >= Some(2) && matches(&user, e))
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    let want_u: Vec<i64> = events
        .iter()
        .filter(|e| e["rolledBack"] != true && e["blockHeight"].as_i64() > Some(1) && matches(&user, e))
        .filter_map(|e| e["seq"].as_i64())
        .collect();
    assert!(!held_u.is_empty() && !want_u.is_empty());
    ws.subscribe("v", user, Some(json!({"blockHeight": 3, "blockHash": synth::block_hash(3, 0)}))).await;
    let (msgs, _) = read_sub(&mut ws, "v", held_u.len() + want_u.len()).await;
    let mut undone: Vec<i64> = msgs.iter().filter(|m| m["type"] == "rollback").filter_map(|m| m["rollback"]["rollbackOf"].as_i64()).collect();
    undone.sort_unstable();
    assert_eq!(undone, held_u);
    let got: Vec<i64> = msgs.iter().filter(|m| m["type"] == "event").filter_map(|m| m["event"]["seq"].as_i64()).collect();
    assert_eq!(got, want_u);
    assert!(ws.drain(Duration::from_millis(300)).await.is_empty());
}
both_backends!(
    since_block_height_with_a_stale_hash_rolls_back_the_abandoned_fork,
    since_block_height_with_a_stale_hash_rolls_back_the_abandoned_fork
);
