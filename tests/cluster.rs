//! Several server processes on one PostgreSQL database, as a deployment behind a load
//! balancer runs them: whichever node a block is delivered to, subscribers on every node
//! receive every entry once, in the log's one `seq` order — also when the connection that
//! listens for other nodes' commits is cut, and when a node dies and its clients move to
//! another.

mod common;
use common::node::Node;
use common::ws::{seqs, WsClient, RECV_TIMEOUT};
use common::{all_entries, open_store, Backend, TestDb};
use futures_util::future::join_all;
use serde_json::{json, Value};
use std::time::Duration;
use timebank_realtime::model::EntryKind;
use timebank_realtime::store::LISTENER_APPLICATION_NAME;
use timebank_realtime::synth::{block_with_transfers, payload};

/// A block of `events` STX transfers at `height`.
fn block(height: i64, events: usize) -> Value {
    payload(vec![block_with_transfers(height, 0, 0, events)], vec![])
}

/// The `seq`s of every entry a subscriber to everything receives (events and rollbacks),
/// in log order.
async fn delivered_seqs(url: &str) -> Vec<i64> {
    let store = open_store(url).await;
    all_entries(&store)
        .await
        .iter()
        .filter(|e| matches!(e.kind, EntryKind::Event | EntryKind::Rollback))
        .map(|e| e.seq)
        .collect()
}

/// Subscribes to everything, live only; returns the client once history is done.
async fn subscribe_all(port: u16, since: Option<i64>) -> WsClient {
    let mut ws = WsClient::connect_port(port).await;
    ws.subscribe("all", json!({"type": "all"}), since.map(|s| json!({"seq": s}))).await;
    let caught_up = ws.recv().await;
    assert_eq!(caught_up["type"], "caught-up", "{caught_up}");
    ws
}

/// Reads `event`/`rollback` frames until `count` arrived; panics naming what did arrive
/// if the stream stalls.
async fn receive(ws: &mut WsClient, count: usize) -> Vec<i64> {
    let mut got = Vec::new();
    while got.len() < count {
        match ws.recv_within(RECV_TIMEOUT).await {
            Some(m) => got.extend(seqs(&[m])),
            None => panic!("stalled after {} of {count} entries: {got:?}", got.len()),
        }
    }
    got
}

#[actix_web::test]
async fn subscribers_on_two_nodes_receive_every_entry_in_one_order() {
    let db = TestDb::new(Backend::Postgres).await;
    let a = Node::start(&db.url, &[]).await;
    let b = Node::start(&db.url, &[]).await;
    let mut on_a = subscribe_all(a.port, None).await;
    let mut on_b = subscribe_all(b.port, None).await;

    // Alternately to each node, all at once: the nodes' commits interleave.
    const BLOCKS: i64 = 60;
    let results = join_all((1..=BLOCKS).map(|h| {
        let node = if h % 2 == 0 { &a } else { &b };
        async move { node.post_payload(&block(h, 2)).await }
    }))
    .await;
    for (h, r) in (1..).zip(&results) {
        assert!(matches!(r, Ok((200, _))), "block {h}: {r:?}");
    }
    // And one after another, so each node's next commit follows the other's.
    for h in BLOCKS + 1..=BLOCKS + 10 {
        let node = if h % 2 == 0 { &a } else { &b };
        assert_eq!(node.post_payload(&block(h, 1)).await.map(|r| r.0).ok(), Some(200), "block {h}");
    }

    let expected = delivered_seqs(&db.url).await;
    assert_eq!(expected.len(), 2 * BLOCKS as usize + 10);
    assert_eq!(receive(&mut on_a, expected.len()).await, expected, "node A's subscriber");
    assert_eq!(receive(&mut on_b, expected.len()).await, expected, "node B's subscriber");
    // Nothing more (no duplicate after the last one).
    assert!(seqs(&on_a.drain(Duration::from_millis(300)).await).is_empty());
    assert!(seqs(&on_b.drain(Duration::from_millis(300)).await).is_empty());
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Runs `select` (a count of the listener connections of the test's database, `$1` being
/// their `application_name`).
async fn count_listeners(db: &TestDb, select: &str) -> i64 {
    use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
    let mut conn = AsyncPgConnection::establish(&db.url).await.expect("connect");
    let sql = format!(
        "SELECT {select} AS n FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"
    );
    let count: Count = diesel::sql_query(sql)
        .bind::<diesel::sql_types::Text, _>(LISTENER_APPLICATION_NAME)
        .get_result(&mut conn)
        .await
        .expect("pg_stat_activity");
    count.n
}

/// Waits until `n` listener connections are open on the test's database.
async fn listeners_open(db: &TestDb, n: i64) {
    let deadline = tokio::time::Instant::now() + RECV_TIMEOUT;
    while count_listeners(db, "count(*)").await != n {
        assert!(tokio::time::Instant::now() < deadline, "{n} listener connections within {RECV_TIMEOUT:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_terminated_listener_connection_loses_nothing() {
    let db = TestDb::new(Backend::Postgres).await;
    // No periodic check to fall back on: what the listener misses while it is down must
    // come from the catch-up when it reconnects.
    let quiet = [("CLUSTER_HEAD_CHECK_MS", "0")];
    let a = Node::start(&db.url, &quiet).await;
    let b = Node::start(&db.url, &quiet).await;
    let mut on_a = subscribe_all(a.port, None).await;

    for h in 1..=5 {
        assert_eq!(b.post_payload(&block(h, 2)).await.map(|r| r.0).ok(), Some(200));
    }
    assert_eq!(receive(&mut on_a, 10).await, delivered_seqs(&db.url).await);

    for round in 0..3 {
        // Each node reopens its listener: both are there again before each round.
        listeners_open(&db, 2).await;
        assert_eq!(count_listeners(&db, "count(pg_terminate_backend(pid))").await, 2, "round {round}");
        for h in 6 + 5 * round..11 + 5 * round {
            assert_eq!(b.post_payload(&block(h, 2)).await.map(|r| r.0).ok(), Some(200));
        }
    }
    listeners_open(&db, 2).await;
    let expected = delivered_seqs(&db.url).await;
    assert_eq!(expected.len(), 40);
    assert_eq!(receive(&mut on_a, expected.len() - 10).await, expected[10..]);
}

#[actix_web::test]
async fn clients_of_a_killed_node_resume_on_the_other_without_a_gap() {
    let db = TestDb::new(Backend::Postgres).await;
    let mut a = Node::start(&db.url, &[]).await;
    let b = Node::start(&db.url, &[]).await;
    let mut on_a = subscribe_all(a.port, None).await;

    // A stream of blocks, alternately to each node while A lives, then to B alone.
    let (killed_tx, killed_rx) = tokio::sync::watch::channel(false);
    let (a_base, b_base) = (a.base.clone(), b.base.clone());
    const BLOCKS: i64 = 80;
    let feeder = tokio::spawn(async move {
        let client = reqwest::Client::new();
        for h in 1..=BLOCKS {
            let base = if h % 2 == 0 && !*killed_rx.borrow() { &a_base } else { &b_base };
            let res = client
                .post(format!("{base}/api/webhooks/chainhook"))
                .header("authorization", format!("Bearer {}", common::SECRET))
                .header("content-type", "application/json")
                .body(block(h, 2).to_string())
                .send()
                .await;
            if !matches!(&res, Ok(r) if r.status() == 200) {
                // As Chainhook's retry through the load balancer: the other node takes it.
                let res = client
                    .post(format!("{b_base}/api/webhooks/chainhook"))
                    .header("authorization", format!("Bearer {}", common::SECRET))
                    .header("content-type", "application/json")
                    .body(block(h, 2).to_string())
                    .send()
                    .await;
                assert!(matches!(&res, Ok(r) if r.status() == 200), "block {h} on B: {res:?}");
            }
            // Paced, so the node dies mid-stream rather than after the last block.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });

    // Mid-stream, A dies.
    let mut got = receive(&mut on_a, 30).await;
    a.kill();
    let _ = killed_tx.send(true);
    let (rest, _) = on_a.read_to_end(RECV_TIMEOUT).await;
    got.extend(seqs(&rest));
    // The client goes to B, resuming after the last entry it received.
    let last = got.last().copied();
    let mut on_b = subscribe_all_from(b.port, last).await;
    feeder.await.expect("every block stored");
    let expected = delivered_seqs(&db.url).await;
    assert_eq!(expected.len(), 2 * BLOCKS as usize);
    let more = expected.len() - got.len();
    got.extend(receive(&mut on_b, more).await);
    assert_eq!(got, expected, "no gap, no duplicate across the move");
    assert!(seqs(&on_b.drain(Duration::from_millis(300)).await).is_empty());
}

/// Like [`subscribe_all`] with `since.seq`, collecting the history frames that come
/// before `caught-up` as the client's first entries.
async fn subscribe_all_from(port: u16, since: Option<i64>) -> WsClient {
    let mut ws = WsClient::connect_port(port).await;
    ws.send(json!({"type": "subscribe", "id": "all", "filter": {"type": "all"}, "since": {"seq": since.unwrap_or(0)}}))
        .await;
    let reply = ws.recv().await;
    assert_eq!(reply["type"], "subscribed", "{reply}");
    ws
}
