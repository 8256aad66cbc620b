//! The outgoing bound: a client that stops reading gets `resync` (never a silent gap),
//! and it stalls neither its topic nor the other clients.

mod common;
use common::ws::{seqs, Ending, WsClient};
use common::{Backend, TestApp, TestDb};
use serde_json::json;
use std::time::{Duration, Instant};
use timebank_realtime::synth;

const BLOCKS: i64 = 60;
const EVENTS_PER_BLOCK: usize = 200;

async fn a_stalled_client_gets_resync_and_stalls_nobody(backend: Backend) {
    let db = TestDb::new(backend).await;
    // No TCP_USER_TIMEOUT: the stall lasts as long as the ingestion below, which on a busy
    // machine can outlast the default; cutting off a client that stops reading is the next
    // test's subject, the bound on queued entries this one's.
    let app = TestApp::spawn_with(db, |c| {
        c.ws_max_queued_entries = 100;
        c.tcp_user_timeout_secs = 0;
    })
    .await;
    let mut slow = WsClient::connect_small_buffer(&app).await;
    slow.subscribe("s", json!({"type": "all"}), None).await;
    assert_eq!(slow.recv().await["type"], "caught-up");
    let mut fast = WsClient::connect(&app).await;
    fast.subscribe("f", json!({"type": "all"}), None).await;
    assert_eq!(fast.recv().await["type"], "caught-up");

    // `slow` reads nothing from here on: ~8 MB of frames fill its small receive buffer and
    // the server's send buffer (at most a few MiB).
    let total = BLOCKS as usize * EVENTS_PER_BLOCK;
    let fast_reader = async {
        let got = fast.collect_until(|by| by.get("f").map_or(0, |m| m.len()) >= total).await;
        seqs(&got["f"])
    };
    let ingest = async {
        for height in 1..=BLOCKS {
            let p = synth::payload(vec![synth::block_with_transfers(height, 0, 0, EVENTS_PER_BLOCK)], vec![]);
            assert_eq!(app.post_payload(&p).await.0, 200);
        }
    };
    let (fast_seqs, ()) = tokio::join!(fast_reader, ingest);
    let all: Vec<i64> = app.all_events().await.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(all.len(), total);
    assert_eq!(fast_seqs, all, "the fast client got everything while the slow one stalled");

    // The slow client now reads: a gap-free prefix, then resync naming its last entry.
    let mut received = Vec::new();
    let resync = loop {
        let m = slow.recv().await;
        match m["type"].as_str() {
            Some("event") => received.push(m["event"]["seq"].as_i64().expect("seq")),
            Some("resync") => break m,
            other => panic!("unexpected {other:?}: {m}"),
        }
    };
    println!("slow client got {} of {} entries before resync", received.len(), all.len());
    assert!(received.len() < all.len(), "the bound was hit");
    assert_eq!(received[..], all[..received.len()], "no gap before the resync");
    assert_eq!(resync["sub"], "s");
    assert_eq!(resync["reason"], "slow_consumer");
    let last = received.last().copied().unwrap_or(0);
    assert_eq!(resync["seq"], last, "resync names the last seq delivered");
    assert!(slow.drain(Duration::from_millis(300)).await.is_empty(), "the subscription ended");

    // Resuming from the resync seq gives exactly the rest.
    slow.subscribe("s", json!({"type": "all"}), Some(json!({"seq": last}))).await;
    let rest = slow.collect_until(|by| by.get("s").is_some_and(|m| m.iter().any(|x| x["type"] == "caught-up"))).await;
    assert_eq!(seqs(&rest["s"]), all[received.len()..]);
}
both_backends!(a_stalled_client_gets_resync_and_stalls_nobody, a_stalled_client_gets_resync_and_stalls_nobody);

/// A client that stops reading is disconnected once the server's frames have waited
/// `TCP_USER_TIMEOUT_SECS` for its shut receive window, and resuming from the last entry it
/// did read gets exactly the rest.
async fn a_client_that_stops_reading_is_disconnected(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.tcp_user_timeout_secs = 1).await;
    let mut slow = WsClient::connect_small_buffer(&app).await;
    slow.subscribe("s", json!({"type": "all"}), None).await;
    assert_eq!(slow.recv().await["type"], "caught-up");
    let (server_port, client_port) = (app.port, slow.local_port());
    assert!(server_end_open(server_port, client_port), "the kernel lists the server's end");
    let blocks = 10;
    for height in 1..=blocks {
        let p = synth::payload(vec![synth::block_with_transfers(height, 0, 0, EVENTS_PER_BLOCK)], vec![]);
        assert_eq!(app.post_payload(&p).await.0, 200);
    }
    let all: Vec<i64> = app.all_events().await.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(all.len(), blocks as usize * EVENTS_PER_BLOCK);

    // Once the server's kernel dropped its end (the timeout passed with the window shut),
    // the client reads again: what its own socket buffer held, then the reset of the
    // connection. Reading earlier would open the window and keep the connection alive.
    let deadline = Instant::now() + Duration::from_secs(30);
    while server_end_open(server_port, client_port) {
        assert!(Instant::now() < deadline, "the server never dropped the stalled connection");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (got, ending) = slow.read_to_end(Duration::from_secs(10)).await;
    assert!(matches!(ending, Ending::Error(_)), "the server dropped the connection: {ending:?}");
    let received = seqs(&got);
    println!("stalled client read {} of {} entries, then {ending:?}", received.len(), all.len());
    assert!(received.len() < all.len(), "frames were left undelivered");
    assert_eq!(received[..], all[..received.len()], "what it got has no gap");

    let last = received.last().copied().unwrap_or(0);
    let mut again = WsClient::connect(&app).await;
    again.subscribe("s", json!({"type": "all"}), Some(json!({"seq": last}))).await;
    let rest = again.collect_until(|by| by.get("s").is_some_and(|m| m.iter().any(|x| x["type"] == "caught-up"))).await;
    assert_eq!(seqs(&rest["s"]), all[received.len()..], "resuming gets exactly the rest");
}
both_backends!(a_client_that_stops_reading_is_disconnected, a_client_that_stops_reading_is_disconnected);

/// Whether the kernel still holds the server's end (`server_port`) of the loopback
/// connection from `client_port`, in any state short of closed (Linux's `/proc/net/tcp`;
/// TCP_USER_TIMEOUT, what drops it, is Linux's too).
fn server_end_open(server_port: u16, client_port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp is readable");
    let (local, remote) = (format!("0100007F:{server_port:04X}"), format!("0100007F:{client_port:04X}"));
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace().skip(1);
        fields.next() == Some(local.as_str()) && fields.next() == Some(remote.as_str())
    })
}
