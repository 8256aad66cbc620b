//! Helpers of the projection tests: wait for the projector, dump served states, replay.
#![allow(dead_code)]

use crate::common::TestApp;
use serde_json::Value;
use std::time::{Duration, Instant};
use timebank_realtime::cli::replay::{replay, ReplayArgs};
use timebank_realtime::projections::{read, RebuildReport};
use timebank_realtime::store::{DatabaseUrl, Store, StoreConfig};

/// Waits until every built-in projection's checkpoint equals the log's head.
pub async fn wait_projected(app: &TestApp) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head = app.head().await["headSeq"].as_i64().expect("headSeq");
        let (status, body) = app.get_json("/api/projections").await;
        assert_eq!(status, 200, "{body}");
        let list = body["projections"].as_array().cloned().unwrap_or_default();
        if list.len() == 3 && list.iter().all(|p| p["checkpoint"].as_i64() == Some(head)) {
            return head;
        }
        assert!(
            Instant::now() < deadline,
            "projections did not reach head {head}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn open_store(url: &str) -> Store {
    Store::open(StoreConfig::new(DatabaseUrl::parse(url).expect("url")))
        .await
        .expect("store opens")
}

/// Every served state, (projection, key) → state JSON.
pub async fn dump(url: &str) -> Vec<(String, String, String)> {
    read::dump(&open_store(url).await).await.expect("dump")
}

pub async fn run_replay(url: &str, from_seq: Option<i64>, snapshot_every: i64) -> RebuildReport {
    let mut args = ReplayArgs::new(url);
    args.from_seq = from_seq;
    args.snapshot_every = snapshot_every;
    args.keep_snapshots = 10_000;
    replay(args).await.expect("replay succeeds")
}

pub async fn get(app: &TestApp, path: &str) -> Value {
    let (status, body) = app.get_json(path).await;
    assert_eq!(status, 200, "{path}: {body}");
    body
}
