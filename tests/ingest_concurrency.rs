//! Many deliveries at once: the writer group-commits them, and the log must still be one
//! gap-free sequence with every event stored exactly once.

mod common;
use common::{all_entries, open_store, Backend, TestApp};
use futures_util::future::join_all;
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{block_hash, block_with_transfers, payload};

const DELIVERIES: i64 = 50;

fn events_in(h: i64) -> usize {
    (h % 7 + 1) as usize * 3
}

async fn fifty_concurrent_deliveries(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payloads: Vec<Value> =
        (1..=DELIVERIES).map(|h| payload(vec![block_with_transfers(h, 0, 0, events_in(h))], vec![])).collect();
    let results = join_all(payloads.iter().map(|p| app.post_payload(p))).await;
    for (h, (status, report)) in (1..).zip(&results) {
        assert_eq!(*status, 200, "block {h}: {report}");
        assert_eq!(report["events"], events_in(h), "block {h}: {report}");
        assert_eq!(report["appliedBlocks"], 1, "block {h}: {report}");
    }

    // Every entry, all kinds: seq runs 1..=head without a gap.
    let head = app.head().await["headSeq"].as_i64().expect("headSeq");
    let store = open_store(&app.db.url).await;
    let entries = all_entries(&store).await;
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>());
    let total: usize = (1..=DELIVERIES).map(events_in).sum();
    assert_eq!(entries.len(), total + DELIVERIES as usize, "one entry per event plus one marker per block");
    let markers: HashSet<&str> =
        entries.iter().filter(|e| e.kind == EntryKind::BlockApplied).map(|e| e.block_hash.as_str()).collect();
    assert_eq!(markers.len(), DELIVERIES as usize);

    // Every event exactly once.
    let events = app.all_events().await;
    assert_eq!(events.len(), total);
    let ids: HashSet<(String, i64, i64)> = events
        .iter()
        .map(|e| {
            let hash = e["blockHash"].as_str().expect("blockHash").to_string();
            (hash, e["txIndex"].as_i64().expect("txIndex"), e["eventIndex"].as_i64().expect("eventIndex"))
        })
        .collect();
    assert_eq!(ids.len(), total);
    for h in 1..=DELIVERIES {
        let n = events.iter().filter(|e| e["blockHash"] == block_hash(h, 0)).count();
        assert_eq!(n, events_in(h), "block {h}");
    }

    // Each report's headSeq is the head just after its payload. Several payloads may share
    // a commit, but within it they are laid out one after another, so the reports' heads are
    // distinct and the entries between one head and the next are exactly that payload's.
    let by_head: BTreeMap<i64, i64> = (1..=DELIVERIES)
        .zip(&results)
        .map(|(h, (_, r))| (r["headSeq"].as_i64().expect("headSeq"), h))
        .collect();
    assert_eq!(by_head.len(), DELIVERIES as usize, "distinct headSeqs");
    assert_eq!(by_head.keys().last().copied(), Some(head));
    let mut prev = 0;
    for (&report_head, &h) in &by_head {
        let own: Vec<_> = entries.iter().filter(|e| e.seq > prev && e.seq <= report_head).collect();
        assert_eq!(own.len(), events_in(h) + 1, "block {h}");
        assert!(own.iter().all(|e| e.block_hash == block_hash(h, 0)), "block {h}");
        prev = report_head;
    }
}
both_backends!(fifty_concurrent_deliveries, fifty_concurrent_deliveries);

async fn same_payload_twenty_times_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = payload(vec![block_with_transfers(7, 0, 0, 12), block_with_transfers(8, 0, 0, 3)], vec![]);
    let results = join_all((0..20).map(|_| app.post_payload(&p))).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let storing: Vec<&Value> = results.iter().map(|(_, r)| r).filter(|r| r["events"] != 0).collect();
    assert_eq!(storing.len(), 1, "exactly one delivery stores: {results:?}");
    assert_eq!(storing[0]["events"], 15);
    assert_eq!(storing[0]["appliedBlocks"], 2);
    let head = app.head().await["headSeq"].clone();
    for (_, r) in &results {
        if r["events"] == 0 {
            assert_eq!(r["duplicateEvents"], 15, "{r}");
            assert_eq!(r["appliedBlocks"], 0, "{r}");
        }
        // Duplicates are answered no earlier than the delivery that stored the block.
        assert_eq!(r["headSeq"], head, "{r}");
    }
    assert_eq!(app.all_events().await.len(), 15);
    assert_eq!(head, 17, "15 events and 2 block markers");
}
both_backends!(same_payload_twenty_times_at_once, same_payload_twenty_times_at_once);

/// Applies and rollbacks of the same blocks racing each other: whatever order the writer
/// commits them in (several per transaction), the log stays consistent with itself.
async fn racing_reorgs_keep_the_log_consistent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut payloads = Vec::new();
    for h in 1..=5 {
        let b0 = block_with_transfers(h, 0, 0, 3);
        let b1 = block_with_transfers(h, 1, 0, 2);
        payloads.push(payload(vec![b0.clone()], vec![]));
        payloads.push(payload(vec![b1.clone()], vec![b0.clone()]));
        payloads.push(payload(vec![b0.clone()], vec![b1.clone()]));
        payloads.push(payload(vec![], vec![b0.clone()]));
        payloads.push(payload(vec![b0.clone()], vec![]));
        payloads.push(payload(vec![b1], vec![]));
    }
    let results = join_all(payloads.iter().map(|p| app.post_payload(p))).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");

    let store = open_store(&app.db.url).await;
    let entries = all_entries(&store).await;
    let head = app.head().await["headSeq"].as_i64().expect("headSeq");
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>());

    let view = store.canonical_view().await.expect("view");
    assert_eq!(view, store.canonical_view_from_log().await.expect("view from log"));

    // Each rollback undoes an earlier event, and no event is undone twice.
    let mut undone = HashSet::new();
    for r in entries.iter().filter(|e| e.kind == EntryKind::Rollback) {
        let original = r.rollback_of.expect("rollbackOf");
        assert!(original < r.seq);
        assert!(entries.iter().any(|e| e.seq == original && e.kind == EntryKind::Event && e.block_hash == r.block_hash));
        assert!(undone.insert(original), "seq {original} rolled back twice");
    }
    // A canonical block has all its events canonical; any other block has none.
    for (hash, (height, canonical)) in &view.blocks {
        let n = view.events.keys().filter(|(h, _, _)| h == hash).count();
        let full = if *hash == block_hash(*height, 0) { 3 } else { 2 };
        assert_eq!(n, if *canonical { full } else { 0 }, "{hash}");
    }
    let live = app.live_event_seqs().await;
    assert_eq!(live, view.events.values().copied().collect());
}
both_backends!(racing_reorgs_keep_the_log_consistent, racing_reorgs_keep_the_log_consistent);
