//! A projector that falls behind a fast ingest keeps its queue within its bound, and its
//! projections end up equal to a replay from zero — on both backends, through the real
//! supervisor, writer and store. The projection thread is held at a gate while payloads
//! are ingested, so folding is slower than ingestion whatever the machine's speed.
mod common;
mod projection_support;

use actix::Actor;
use common::{Backend, TestDb};
use projection_support::{dump, open_store, run_replay};
use std::sync::Arc;
use std::time::{Duration, Instant};
use timebank_realtime::actors::{GetStats, Ingest, Supervisor, WriterConfig};
use timebank_realtime::chainhook::parse_payload;
use timebank_realtime::projections::projector::{FoldGate, GetProjectorStats, Projector, ProjectorConfig};
use timebank_realtime::projections::{read, EngineSettings, EntityMapping};
use timebank_realtime::store::Store;
use timebank_realtime::synth;

/// The queue's bound, in entries: three of the 21-entry batches below fit, the fourth not.
const MAX_PENDING: usize = 64;
const BLOCKS: i64 = 60;
const EVENTS_PER_BLOCK: usize = 20;

async fn ingest(supervisor: &actix::Addr<Supervisor>, apply: Vec<serde_json::Value>, rollback: Vec<serde_json::Value>) {
    let body = synth::payload(apply, rollback).to_string();
    let payload = parse_payload(body.as_bytes()).expect("synthetic payload parses");
    supervisor.send(Ingest { payload }).await.expect("supervisor answers").expect("payload stored");
}

async fn head(store: &Store) -> i64 {
    store.head().await.expect("head").head_seq
}

async fn projector_behind_a_fast_ingest_stays_bounded_and_ends_correct(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open_store(&db.url).await;
    let supervisor = Supervisor::new(store.clone(), WriterConfig::default(), head(&store).await).start();
    let gate = Arc::new(FoldGate::default());
    gate.close();
    let config = ProjectorConfig {
        max_pending_entries: MAX_PENDING,
        gate: Some(gate.clone()),
        ..ProjectorConfig::new(store.url().clone(), EntityMapping::default(), EngineSettings::default())
    };
    let projector = Projector::new(config, supervisor.clone()).start();
    // Answered once the projector has registered with the supervisor.
    assert_eq!(projector.send(GetProjectorStats).await.expect("projector answers").pending_entries, 0);

    // The first block reaches the thread, which stops at the gate with it in hand.
    ingest(&supervisor, vec![synth::block_mixed(1, EVENTS_PER_BLOCK, 30)], vec![]).await;
    assert!(gate.wait_holding(Duration::from_secs(30)), "the projection thread reached the gate");

    // A fast ingest meanwhile: a block per payload, and every tenth replaced by a fork.
    let mut largest_queue = 0;
    for height in 2..=BLOCKS {
        ingest(&supervisor, vec![synth::block_mixed(height, EVENTS_PER_BLOCK, 30)], vec![]).await;
        if height % 10 == 0 {
            let fork = synth::block_with_transfers(height, 1, 0, 10);
            ingest(&supervisor, vec![fork], vec![synth::block_mixed(height, EVENTS_PER_BLOCK, 30)]).await;
        }
        let stats = projector.send(GetProjectorStats).await.expect("projector answers");
        assert!(stats.pending_entries <= MAX_PENDING, "queue over its bound: {stats:?}");
        largest_queue = largest_queue.max(stats.pending_entries);
    }
    let head = head(&store).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while supervisor.send(GetStats).await.expect("supervisor answers").forwarded_seq < head {
        assert!(Instant::now() < deadline, "the supervisor did not forward every commit");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Asked after every batch was handed to the projector (one mailbox, in order).
    let stats = projector.send(GetProjectorStats).await.expect("projector answers");
    println!("while held: {stats:?}, largest queue seen {largest_queue}");
    assert!(stats.peak_pending_entries <= MAX_PENDING, "{stats:?}");
    assert!(stats.peak_pending_entries > MAX_PENDING / 2, "the queue filled up before dropping: {stats:?}");
    assert!(stats.dropped_batches > 0 && stats.behind, "batches beyond the bound were dropped: {stats:?}");
    let statuses = read::statuses(&store).await.expect("statuses");
    assert!(statuses.iter().all(|s| s.checkpoint < head), "nothing folded past the gate: {statuses:?}");

    // Released, the projector reads what it dropped from the log.
    gate.open();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let statuses = read::statuses(&store).await.expect("statuses");
        if statuses.len() == 3 && statuses.iter().all(|s| s.checkpoint == head) {
            break;
        }
        assert!(Instant::now() < deadline, "projections never reached head {head}: {statuses:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = projector.send(GetProjectorStats).await.expect("projector answers");
    assert!(stats.catch_ups >= 1 && !stats.behind && stats.pending_entries == 0, "{stats:?}");

    let live = dump(&db.url).await;
    assert!(live.len() > 30, "the log projects to accounts, contracts and entities: {}", live.len());
    run_replay(&db.url, None, 0).await;
    assert!(live == dump(&db.url).await, "the state folded live differs from a replay from zero");
}
both_backends!(
    projector_behind_a_fast_ingest_stays_bounded_and_ends_correct,
    projector_behind_a_fast_ingest_stays_bounded_and_ends_correct
);
