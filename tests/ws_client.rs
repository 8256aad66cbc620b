//! The library's WebSocket client against a real server: it receives exactly the ingested
//! entries, resumes after a dropped connection and after `resync` from its last `seq`
//! with no gap and no duplicate, and `tail` prints the expected lines.

mod common;
use common::{Backend, TestApp, TestDb};
use serde_json::Value;
use std::time::Duration;
use timebank_realtime::client::{Backoff, Client, ClientConfig, ClientEvent, OUT_OF_ORDER};
use timebank_realtime::protocol::{Filter, Since};
use timebank_realtime::synth;

const WAIT: Duration = Duration::from_secs(30);

fn config() -> ClientConfig {
    ClientConfig {
        backoff: Backoff { base: Duration::from_millis(50), cap: Duration::from_secs(1), max_attempts: Some(20) },
        ..ClientConfig::default()
    }
}

fn url(app: &TestApp) -> String {
    format!("ws://127.0.0.1:{}/ws", app.port)
}

async fn ingest_blocks(app: &TestApp, heights: std::ops::RangeInclusive<i64>, events: usize) {
    for height in heights {
        let p = synth::payload(vec![synth::block_with_transfers(height, 0, 0, events)], vec![]);
        assert_eq!(app.post_payload(&p).await.0, 200);
    }
}

async fn next(client: &mut Client) -> ClientEvent {
    tokio::time::timeout(WAIT, client.next()).await.expect("an event in time").expect("client alive")
}

/// Reads until `sub` has `n` entries; returns their (seq, object) and every other event.
async fn collect(client: &mut Client, sub: &str, n: usize) -> (Vec<(i64, Value)>, Vec<ClientEvent>) {
    let mut entries = Vec::new();
    let mut others = Vec::new();
    while entries.len() < n {
        match next(client).await {
            ClientEvent::Event { sub: s, seq, raw } | ClientEvent::Rollback { sub: s, seq, raw } if s == sub => {
                entries.push((seq, serde_json::from_str(raw.get()).expect("raw JSON")));
            }
            ClientEvent::Error { code, message, .. } if code == OUT_OF_ORDER => panic!("order violated: {message}"),
            other => others.push(other),
        }
    }
    (entries, others)
}

async fn wait_caught_up(client: &mut Client, sub: &str) {
    loop {
        match next(client).await {
            ClientEvent::CaughtUp { sub: s, .. } if s == sub => return,
            ClientEvent::Error { code, message, .. } => panic!("{code}: {message}"),
            _ => {}
        }
    }
}

async fn receives_exactly_the_ingested_entries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ingest_blocks(&app, 1..=2, 15).await;
    let mut client = Client::connect(&url(&app), config()).expect("url");
    client.subscribe("live", Filter::All, None);
    wait_caught_up(&mut client, "live").await;
    client.subscribe("hist", Filter::User { address: synth::address(1).into() }, Some(Since::Seq(0)));
    ingest_blocks(&app, 3..=5, 15).await;

    let stored = app.all_events().await;
    let head_before = stored[29]["seq"].as_i64().expect("seq");
    let live: Vec<&Value> = stored.iter().filter(|e| e["seq"].as_i64() > Some(head_before)).collect();
    let mine: Vec<&Value> = stored
        .iter()
        .filter(|e| e["affectedAddresses"].as_array().is_some_and(|a| a.iter().any(|x| x == synth::address(1))))
        .collect();
    let mut by_sub: std::collections::BTreeMap<String, Vec<(i64, Value)>> = Default::default();
    while by_sub.get("live").map_or(0, Vec::len) < live.len() || by_sub.get("hist").map_or(0, Vec::len) < mine.len() {
        match next(&mut client).await {
            ClientEvent::Event { sub, seq, raw } => {
                by_sub.entry(sub).or_default().push((seq, serde_json::from_str(raw.get()).expect("raw JSON")))
            }
            ClientEvent::Error { code, message, .. } => panic!("{code}: {message}"),
            _ => {}
        }
    }
    let objects = |sub: &str| by_sub[sub].iter().map(|(_, v)| v).collect::<Vec<_>>();
    assert_eq!(objects("live"), live, "exactly the stored objects, in order");
    assert_eq!(objects("hist"), mine, "history then live, exactly once");
    assert!(by_sub.values().flatten().all(|(seq, v)| v["seq"] == *seq));
    assert!(
        tokio::time::timeout(Duration::from_millis(300), async {
            loop {
                if let Some(ClientEvent::Event { .. }) = client.next().await {
                    return;
                }
            }
        })
        .await
        .is_err(),
        "nothing more"
    );
}
both_backends!(receives_exactly_the_ingested_entries, receives_exactly_the_ingested_entries);

/// A seed whose first reconnect delay is long enough to ingest during the outage.
fn slow_first_reconnect(backoff: &Backoff) -> (u64, Duration) {
    (0..1000)
        .map(|seed| (seed, backoff.delay(1, &mut fastrand::Rng::with_seed(seed))))
        .find(|(_, d)| *d >= Duration::from_millis(700))
        .expect("some seed waits long enough")
}

async fn resumes_after_a_dropped_connection(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let backoff = Backoff { base: Duration::from_secs(1), cap: Duration::from_secs(1), max_attempts: Some(5) };
    let (seed, expected_delay) = slow_first_reconnect(&backoff);
    let mut client = Client::connect(&url(&app), ClientConfig { backoff, seed: Some(seed), ..ClientConfig::default() }).expect("url");
    client.subscribe("s", Filter::All, None);
    wait_caught_up(&mut client, "s").await;
    ingest_blocks(&app, 1..=3, 10).await;
    let (before, _) = collect(&mut client, "s", 30).await;

    client.drop_connection();
    match next(&mut client).await {
        ClientEvent::Reconnecting { attempt, delay } => {
            assert_eq!((attempt, delay), (1, expected_delay), "the seeded schedule")
        }
        other => panic!("unexpected {other:?}"),
    }
    // Entries committed while the client is away.
    ingest_blocks(&app, 4..=6, 10).await;
    let (after, others) = collect(&mut client, "s", 30).await;
    assert!(matches!(others.first(), Some(ClientEvent::Connected)), "{others:?}");
    let stored: Vec<i64> = app.all_events().await.iter().filter_map(|e| e["seq"].as_i64()).collect();
    let got: Vec<i64> = before.iter().chain(&after).map(|(s, _)| *s).collect();
    assert_eq!(got, stored, "no gap, no duplicate across the reconnect");
    // Live again after the resumed history.
    ingest_blocks(&app, 7..=7, 10).await;
    let (live, _) = collect(&mut client, "s", 10).await;
    assert!(live.first().map(|(s, _)| *s) > stored.last().copied());
}
both_backends!(resumes_after_a_dropped_connection, resumes_after_a_dropped_connection);

const STALL_BLOCKS: i64 = 60;
const STALL_EVENTS: usize = 200;

async fn resync_resubscribes_from_the_last_seq(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.ws_max_queued_entries = 100).await;
    let stalled_config = ClientConfig { event_buffer: 16, recv_buffer: Some(16 * 1024), ..config() };
    let mut stalled = Client::connect(&url(&app), stalled_config).expect("url");
    stalled.subscribe("s", Filter::All, None);
    wait_caught_up(&mut stalled, "s").await;
    let mut reader = Client::connect(&url(&app), config()).expect("url");
    reader.subscribe("r", Filter::All, None);
    wait_caught_up(&mut reader, "r").await;

    // `stalled`'s caller reads nothing while ~8 MB of frames are committed; `reader`
    // keeps up meanwhile.
    let total = STALL_BLOCKS as usize * STALL_EVENTS;
    let (reader_got, ()) = tokio::join!(collect(&mut reader, "r", total), ingest_blocks(&app, 1..=STALL_BLOCKS, STALL_EVENTS));
    let stored: Vec<i64> = app.all_events().await.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert_eq!(reader_got.0.iter().map(|(s, _)| *s).collect::<Vec<_>>(), stored, "the reader was not held back");

    let (got, others) = collect(&mut stalled, "s", total).await;
    let resyncs = others.iter().filter(|e| matches!(e, ClientEvent::Resync { .. })).count();
    println!("stalled client: {resyncs} resync(s), then everything");
    assert!(resyncs >= 1, "the server cut the stalled subscription: {others:?}");
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), stored, "exactly once, in order, after resubscribing");
}
both_backends!(resync_resubscribes_from_the_last_seq, resync_resubscribes_from_the_last_seq);

async fn tail_prints_the_filtered_entries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ingest_blocks(&app, 1..=2, 10).await;
    let filter_address = synth::address(2);
    let expected: Vec<Value> = app
        .all_events()
        .await
        .into_iter()
        .filter(|e| e["seq"].as_i64() > Some(3))
        .filter(|e| e["affectedAddresses"].as_array().is_some_and(|a| a.iter().any(|x| x == filter_address)))
        .collect();
    let args = vec![
        "tail".to_string(),
        "--url".into(),
        url(&app),
        "--filter".into(),
        format!("user:{filter_address}"),
        "--since".into(),
        "3".into(),
        "--max".into(),
        expected.len().to_string(),
    ];
    let run = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_timebank-realtime")).args(args).env("RUST_LOG", "warn").output()
    });
    let out = tokio::time::timeout(WAIT, run).await.expect("tail exits in time").expect("join").expect("tail runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(!expected.is_empty());
    assert_eq!(lines, expected);
}
both_backends!(tail_prints_the_filtered_entries, tail_prints_the_filtered_entries);
