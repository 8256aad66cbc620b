//! Stopping a node (SIGTERM from Docker, Kubernetes or systemd; SIGINT from Ctrl-C) under
//! load: every webhook answered 200 is in the log and every other one got a refusal or a
//! broken connection (Chainhook resends those), no block is half-written, each WebSocket
//! client is told where its subscriptions stopped and to reconnect (close 1012), and the
//! process exits within its deadline.

mod common;
use common::node::Node;
use common::ws::{seqs, WsClient, RECV_TIMEOUT};
use common::{all_entries, open_store, Backend, TestDb};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{block_hash, block_with_transfers, payload};

const DEADLINE_SECS: u64 = 5;
/// Events per block.
const EVENTS: usize = 3;
const SENDERS: i64 = 4;

/// How a webhook ended: its status, or `None` for a transport error.
type Outcome = Option<u16>;

async fn subscribe_all(port: u16) -> (WsClient, i64) {
    let mut ws = WsClient::connect_port(port).await;
    let reply = ws.subscribe("all", json!({"type": "all"}), None).await;
    let caught_up = ws.recv().await;
    assert_eq!(caught_up["type"], "caught-up", "{caught_up}");
    (ws, reply["headSeq"].as_i64().expect("headSeq"))
}

async fn stop_under_load(backend: Backend, signal: &str) {
    let db = TestDb::new(backend).await;
    let deadline = DEADLINE_SECS.to_string();
    let mut node = Node::start(&db.url, &[("SHUTDOWN_DEADLINE_SECS", deadline.as_str())]).await;
    let (mut ws, handover) = subscribe_all(node.port).await;

    // Senders post distinct blocks, one after another each, until the node is gone.
    let accepted = Arc::new(AtomicUsize::new(0));
    let senders: Vec<_> = (0..SENDERS)
        .map(|k| {
            let base = node.base.clone();
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut outcomes: Vec<(i64, Outcome)> = Vec::new();
                for h in (1..).map(|i| i * SENDERS + k).take(2_000) {
                    let res = client
                        .post(format!("{base}/api/webhooks/chainhook"))
                        .header("authorization", format!("Bearer {}", common::SECRET))
                        .header("content-type", "application/json")
                        .body(payload(vec![block_with_transfers(h, 0, 0, EVENTS)], vec![]).to_string())
                        .send()
                        .await;
                    let outcome = res.ok().map(|r| r.status().as_u16());
                    if outcome == Some(200) {
                        accepted.fetch_add(1, Ordering::Relaxed);
                    }
                    outcomes.push((h, outcome));
                    if outcome.is_none() {
                        break; // the node no longer accepts connections
                    }
                }
                outcomes
            })
        })
        .collect();
    // Under load: stop once some deliveries were accepted.
    while accepted.load(Ordering::Relaxed) < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    node.signal(signal);

    let (messages, close) = ws.read_until_close(RECV_TIMEOUT).await;
    let status = node.wait_exit(Duration::from_secs(DEADLINE_SECS + 2)).await;
    let status = status.unwrap_or_else(|| panic!("the node exits within its {DEADLINE_SECS} s deadline"));
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    let mut outcomes: BTreeMap<i64, Outcome> = BTreeMap::new();
    for s in senders {
        outcomes.extend(s.await.expect("sender"));
    }

    // The log: whole blocks only, and every accepted one.
    let store = open_store(&db.url).await;
    let entries = all_entries(&store).await;
    let mut events_by_block: BTreeMap<&str, usize> = BTreeMap::new();
    for e in entries.iter().filter(|e| e.kind == EntryKind::Event) {
        *events_by_block.entry(e.block_hash.as_str()).or_default() += 1;
    }
    assert!(events_by_block.values().all(|&n| n == EVENTS), "no block half-written: {events_by_block:?}");
    let mut refused = 0;
    for (h, outcome) in &outcomes {
        match outcome {
            Some(200) => assert_eq!(events_by_block.get(block_hash(*h, 0).as_str()), Some(&EVENTS), "block {h} was acknowledged"),
            Some(s) => {
                assert!(!(200..300).contains(s), "block {h}: {s}");
                refused += 1;
            }
            None => refused += 1,
        }
    }
    assert!(refused >= 1, "the senders ran into the stop: {outcomes:?}");

    // The client: entries in order, then where its subscription stopped, then 1012.
    let (resync, delivered) = messages.split_last().expect("a resync before the close");
    assert_eq!(resync["type"], "resync", "{resync}");
    assert_eq!(resync["sub"], "all");
    assert_eq!(resync["reason"], "shutdown");
    let got = seqs(delivered);
    let last = resync["seq"].as_i64().expect("seq");
    assert_eq!(last, got.last().copied().unwrap_or(handover), "resync names the last seq delivered");
    let expected: Vec<i64> = entries
        .iter()
        .filter(|e| e.seq > handover && e.seq <= last && matches!(e.kind, EntryKind::Event | EntryKind::Rollback))
        .map(|e| e.seq)
        .collect();
    assert_eq!(got, expected, "every entry up to the resync, once, in order");
    assert_eq!(close, Some(1012), "service restart");
}

mod sigterm_under_load {
    use super::*;
    #[actix_web::test]
    async fn postgres() {
        stop_under_load(Backend::Postgres, "TERM").await
    }
    #[actix_web::test]
    async fn sqlite() {
        stop_under_load(Backend::Sqlite, "TERM").await
    }
}

#[actix_web::test]
async fn sigint_stops_the_same_way() {
    stop_under_load(Backend::Sqlite, "INT").await
}

#[actix_web::test]
async fn a_stopping_node_refuses_new_work_and_is_not_ready() {
    // Held open by a client that keeps its connection: the node drains meanwhile.
    let db = TestDb::new(Backend::Sqlite).await;
    let mut node = Node::start(&db.url, &[("SHUTDOWN_DEADLINE_SECS", "3")]).await;
    let (mut ws, _) = subscribe_all(node.port).await;
    let block = payload(vec![block_with_transfers(1, 0, 0, 1)], vec![]);
    // A kept-alive connection, opened before the stop.
    assert_eq!(node.post_payload(&block).await.map(|r| r.0).ok(), Some(200));
    node.signal("TERM");
    let (_, close) = ws.read_until_close(RECV_TIMEOUT).await;
    assert_eq!(close, Some(1012));
    // Whatever still reaches it is refused: 503 (closing the connection), or no connection.
    let again = payload(vec![block_with_transfers(2, 0, 0, 1)], vec![]);
    let outcomes: BTreeSet<Option<u16>> = [
        node.post_payload(&again).await.ok().map(|r| r.0),
        node.get("/readyz").await.ok().map(|r| r.0),
    ]
    .into_iter()
    .collect();
    assert!(outcomes.iter().all(|o| matches!(o, Some(503) | None)), "{outcomes:?}");
    assert!(node.wait_exit(Duration::from_secs(5)).await.is_some_and(|s| s.success()));
    let entries = all_entries(&open_store(&db.url).await).await;
    assert!(entries.iter().all(|e| e.block_hash == block_hash(1, 0)), "block 2 was refused: {entries:?}");
}
