//! Idempotency, partial redelivery and reorgs (PROTOCOL §1), with payloads built in code.

mod common;
use common::{all_entries, open_store, Backend, TestApp};
use serde_json::Value;
use std::collections::BTreeSet;
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{self, block_hash, block_with_transfers, payload};

async fn ok(app: &TestApp, p: &Value) -> Value {
    let (status, report) = app.post_payload(p).await;
    assert_eq!(status, 200, "{report}");
    report
}

fn seqs(events: &[Value]) -> Vec<i64> {
    events.iter().map(|e| e["seq"].as_i64().expect("seq")).collect()
}

async fn redelivery_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = payload(vec![block_with_transfers(1, 0, 0, 4), block_with_transfers(2, 0, 0, 12)], vec![]);
    let first = ok(&app, &p).await;
    assert_eq!((first["appliedBlocks"].as_u64(), first["events"].as_u64()), (Some(2), Some(16)));
    let head = app.head().await;
    let events = app.all_events().await;
    for _ in 0..3 {
        let again = ok(&app, &p).await;
        assert_eq!(again["events"], 0, "{again}");
        assert_eq!(again["duplicateEvents"], 16, "{again}");
        assert_eq!(again["appliedBlocks"], 0, "{again}");
        assert_eq!(again["headSeq"], head["headSeq"], "{again}");
    }
    assert_eq!(app.head().await, head);
    assert_eq!(app.all_events().await, events);
}
both_backends!(redelivery_is_idempotent, redelivery_is_idempotent);

/// Two predicates match different transactions of one block: identity is per event.
async fn second_predicate_stores_only_new_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (a, b, c) = (synth::address(0), synth::address(1), synth::address(2));
    let tx = |i: usize, n: u64| {
        let events = (0..n).map(|k| synth::stx_transfer(a, b, 100 * i as u64 + k)).collect();
        synth::transaction(3, 0, i, c, None, events)
    };
    let first = ok(&app, &payload(vec![synth::block(3, 0, 0, vec![tx(0, 2), tx(1, 3)])], vec![])).await;
    assert_eq!(first["events"], 5, "{first}");
    let second = ok(&app, &payload(vec![synth::block(3, 0, 0, vec![tx(1, 3), tx(2, 1)])], vec![])).await;
    assert_eq!(second["events"], 1, "{second}");
    assert_eq!(second["duplicateEvents"], 3, "{second}");
    assert_eq!(second["appliedBlocks"], 0, "the block was already canonical: {second}");

    let events = app.all_events().await;
    let ids: Vec<(i64, i64)> = events
        .iter()
        .map(|e| (e["txIndex"].as_i64().unwrap_or(-1), e["eventIndex"].as_i64().unwrap_or(-1)))
        .collect();
    assert_eq!(ids, [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (2, 0)]);
    assert_eq!(events[5]["txHash"], synth::tx_hash(3, 0, 2));
    assert_eq!(events[5]["data"]["amount"], "200");
    assert!(events.iter().all(|e| e["blockHash"] == block_hash(3, 0)));
}
both_backends!(second_predicate_stores_only_new_events, second_predicate_stores_only_new_events);

async fn reorg_leaves_exactly_the_new_fork(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ok(&app, &payload(vec![block_with_transfers(1, 0, 0, 3)], vec![])).await;
    let before = app.head().await["headSeq"].as_i64().expect("headSeq");
    let originals = seqs(&app.all_events().await);

    let reorg = payload(
        vec![block_with_transfers(1, 1, 0, 2), block_with_transfers(2, 1, 1, 4)],
        vec![block_with_transfers(1, 0, 0, 3)],
    );
    let report = ok(&app, &reorg).await;
    assert_eq!(report["rolledBackBlocks"], 1, "{report}");
    assert_eq!(report["appliedBlocks"], 2, "{report}");
    assert_eq!(report["events"], 6, "{report}");
    assert_eq!(report["duplicateEvents"], 0, "{report}");

    let head = app.head().await;
    assert_eq!(head["headBlockHash"], block_hash(2, 1));
    assert_eq!(head["headBlockHeight"], 2);
    assert_eq!(head["headSeq"], report["headSeq"]);

    // /api/events: the originals, now marked, then the new fork's events.
    let events = app.all_events().await;
    assert_eq!(events.len(), 9);
    for e in &events[..3] {
        assert_eq!(e["blockHash"], block_hash(1, 0));
        assert_eq!(e["rolledBack"], true, "{e}");
    }
    for e in &events[3..] {
        assert!(e.get("rolledBack").is_none(), "{e}");
    }
    let new_blocks: Vec<&str> = events[3..].iter().filter_map(|e| e["blockHash"].as_str()).collect();
    assert_eq!(new_blocks.iter().filter(|h| **h == block_hash(1, 1)).count(), 2);
    assert_eq!(new_blocks.iter().filter(|h| **h == block_hash(2, 1)).count(), 4);

    // The log: one rollback entry per original, all before any new event; nothing deleted.
    let store = open_store(&app.db.url).await;
    let entries = all_entries(&store).await;
    let rollbacks: Vec<_> = entries.iter().filter(|e| e.kind == EntryKind::Rollback).collect();
    let undone: BTreeSet<i64> = rollbacks.iter().filter_map(|r| r.rollback_of).collect();
    assert_eq!(undone, originals.iter().copied().collect());
    let first_new = seqs(&events[3..])[0];
    assert!(rollbacks.iter().all(|r| r.seq > before && r.seq < first_new));
    for r in &rollbacks {
        let body: Value = serde_json::from_str(&r.body).expect("rollback body");
        assert_eq!(body["blockHash"], block_hash(1, 0));
        assert_eq!(body["eventType"], "stx_transfer_event");
        assert_eq!(body["rollbackOf"], r.rollback_of.unwrap_or(0));
    }
    assert!(originals.iter().all(|s| entries.iter().any(|e| e.seq == *s && e.kind == EntryKind::Event)));
}
both_backends!(reorg_leaves_exactly_the_new_fork, reorg_leaves_exactly_the_new_fork);

async fn rollback_of_unknown_block_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    ok(&app, &payload(vec![block_with_transfers(1, 0, 0, 2)], vec![])).await;
    let head = app.head().await;
    let events = app.all_events().await;
    let report = ok(&app, &payload(vec![], vec![block_with_transfers(5, 7, 7, 3)])).await;
    assert_eq!(report["rolledBackBlocks"], 0, "{report}");
    assert_eq!(report["events"], 0, "{report}");
    assert_eq!(report["headSeq"], head["headSeq"], "{report}");
    // A block that is known but already rolled back is not undone twice either.
    let undo = payload(vec![], vec![block_with_transfers(1, 0, 0, 2)]);
    assert_eq!(ok(&app, &undo).await["rolledBackBlocks"], 1);
    let head = app.head().await;
    let again = ok(&app, &undo).await;
    assert_eq!(again["rolledBackBlocks"], 0, "{again}");
    assert_eq!(app.head().await, head);
    assert_eq!(app.all_events().await.len(), events.len());
}
both_backends!(rollback_of_unknown_block_changes_nothing, rollback_of_unknown_block_changes_nothing);

/// `{"apply":[B1],"rollback":[B1]}`: rollbacks go first whatever the JSON order, so B1 is
/// undone and applied again, with new seqs. Applies first would leave B1 rolled back.
async fn rollbacks_apply_before_applies_and_reapply_stores_anew(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b1 = block_with_transfers(1, 0, 0, 2);
    ok(&app, &payload(vec![b1.clone()], vec![])).await;
    let old = app.all_events().await;

    // A reorg whose JSON lists `apply` before `rollback`: the rollback still goes first,
    // so the rollback entries of B1 take lower seqs than the events of its replacement B1'.
    let b1_fork = block_with_transfers(1, 1, 0, 2);
    let body = format!(
        r#"{{"apply":[{b1_fork}],"rollback":[{b1}],"chainhook":{{"uuid":"x","is_streaming_blocks":true,"predicate":{{"scope":"block_height","higher_than":0}}}}}}"#
    );
    let res = app.post_raw(body, Some(&format!("Bearer {}", common::SECRET))).await;
    assert_eq!(res.status().as_u16(), 200);
    let report: Value = res.json().await.expect("report");
    assert_eq!(report["rolledBackBlocks"], 1, "{report}");
    assert_eq!(report["appliedBlocks"], 1, "{report}");
    assert_eq!(report["events"], 2, "{report}");
    let entries = common::all_entries(&common::open_store(&app.db.url).await).await;
    let rollback_seqs: Vec<i64> = entries.iter().filter(|e| e.rollback_of.is_some()).map(|e| e.seq).collect();
    let events = app.all_events().await;
    assert_eq!(events.len(), 4);
    assert!(events[..2].iter().all(|e| e["rolledBack"] == true));
    let new_seqs: Vec<i64> = events[2..].iter().map(|e| e["seq"].as_i64().expect("seq")).collect();
    assert_eq!(rollback_seqs.len(), 2);
    assert!(rollback_seqs.iter().max() < new_seqs.iter().min(), "{rollback_seqs:?} {new_seqs:?}");
    assert!(events[2..].iter().all(|e| e["blockHash"] == block_hash(1, 1)));
    assert_eq!(app.head().await["headBlockHash"], block_hash(1, 1));

    // A payload that rolls back and re-applies the same block leaves it as it was.
    let same = payload(vec![b1_fork.clone()], vec![b1_fork.clone()]);
    let r = ok(&app, &same).await;
    assert_eq!((r["rolledBackBlocks"].as_u64(), r["events"].as_u64(), r["duplicateEvents"].as_u64()), (Some(0), Some(0), Some(2)), "{r}");
    assert_eq!(app.all_events().await, events);

    // Rolled back by one payload, re-applied by a later one: applied again, new seqs.
    let r = ok(&app, &payload(vec![], vec![b1_fork.clone()])).await;
    assert_eq!(r["rolledBackBlocks"], 1, "{r}");
    let r = ok(&app, &payload(vec![b1.clone()], vec![])).await;
    assert_eq!((r["appliedBlocks"].as_u64(), r["events"].as_u64()), (Some(1), Some(2)), "{r}");
    let events = app.all_events().await;
    assert_eq!(events.len(), 6);
    let live: Vec<&Value> = events.iter().filter(|e| e.get("rolledBack").is_none()).collect();
    assert_eq!(live.len(), 2);
    for (new, old) in live.iter().zip(&old) {
        assert_eq!((&new["txIndex"], &new["eventIndex"], &new["blockHash"]), (&old["txIndex"], &old["eventIndex"], &old["blockHash"]));
        assert!(new["seq"].as_i64() > old["seq"].as_i64());
    }
    assert_eq!(app.head().await["headBlockHash"], block_hash(1, 0));
}
both_backends!(rollbacks_first, rollbacks_apply_before_applies_and_reapply_stores_anew);

/// After a run of reorgs the derived tables equal the canonical view rebuilt from the log.
async fn derived_tables_equal_log_replay(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let b = |h: i64, fork: u32, parent: u32, n: usize| block_with_transfers(h, fork, parent, n);
    ok(&app, &payload(vec![b(1, 0, 0, 2), b(2, 0, 0, 3), b(3, 0, 0, 1)], vec![])).await;
    ok(&app, &payload(vec![b(2, 1, 0, 2), b(3, 1, 1, 2), b(4, 1, 1, 5)], vec![b(3, 0, 0, 1), b(2, 0, 0, 3)])).await;
    ok(&app, &payload(vec![b(3, 1, 1, 2)], vec![])).await; // redelivery
    ok(&app, &payload(vec![b(3, 2, 1, 4)], vec![b(4, 1, 1, 5), b(3, 1, 1, 2)])).await;
    ok(&app, &payload(vec![], vec![b(9, 9, 9, 1)])).await; // unknown
    ok(&app, &payload(vec![b(4, 2, 2, 0)], vec![])).await; // a block without events

    let store = open_store(&app.db.url).await;
    let view = store.canonical_view().await.expect("canonical view");
    assert_eq!(view, store.canonical_view_from_log().await.expect("view from log"));

    let canonical: BTreeSet<String> =
        view.blocks.iter().filter(|(_, (_, c))| *c).map(|(h, _)| h.clone()).collect();
    let want: BTreeSet<String> = [(1, 0), (2, 1), (3, 2), (4, 2)].iter().map(|&(h, f)| block_hash(h, f)).collect();
    assert_eq!(canonical, want);
    assert_eq!(view.blocks.len(), 8, "every block ever applied is known: {:?}", view.blocks);
    // The canonical events are exactly the events /api/events does not mark rolled back.
    let live = app.live_event_seqs().await;
    assert_eq!(live, view.events.values().copied().collect());
    assert_eq!(live.len(), 2 + 2 + 4);
    let head = app.head().await;
    assert_eq!((head["headBlockHash"].as_str(), head["headBlockHeight"].as_i64()), (Some(block_hash(4, 2).as_str()), Some(4)));
}
both_backends!(derived_tables_equal_log_replay, derived_tables_equal_log_replay);
