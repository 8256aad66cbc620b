//! Two servers appending to one database, as nodes of one deployment do: each writer takes
//! the store's append lock (PostgreSQL: a transaction-level advisory lock; SQLite: `BEGIN
//! IMMEDIATE`) before it reads the head and the state of its blocks, so the log stays one
//! gap-free order and a block delivered to both nodes is stored once.

mod common;
use common::{all_entries, open_store, Backend, TestApp};
use futures_util::future::join_all;
use serde_json::Value;
use std::collections::HashSet;
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{block_with_transfers, payload};

const BLOCKS: i64 = 40;

async fn two_nodes_share_one_log(backend: Backend) {
    let a = TestApp::spawn(backend).await;
    let b = a.spawn_beside().await;

    // Distinct blocks, sent to both nodes at once, half each.
    let distinct: Vec<Value> = (1..=BLOCKS).map(|h| payload(vec![block_with_transfers(h, 0, 0, 3)], vec![])).collect();
    let results = join_all(distinct.iter().enumerate().map(|(i, p)| {
        let node = if i % 2 == 0 { &a } else { &b };
        node.post_payload(p)
    }))
    .await;
    for (h, (status, report)) in (1..).zip(&results) {
        assert_eq!(*status, 200, "block {h}: {report}");
        assert_eq!(report["events"], 3, "block {h}: {report}");
    }

    // One block delivered to both nodes ten times over, all at once: stored once.
    let same = payload(vec![block_with_transfers(BLOCKS + 1, 0, 0, 5)], vec![]);
    let results = join_all((0..20).map(|i| if i % 2 == 0 { a.post_payload(&same) } else { b.post_payload(&same) })).await;
    assert!(results.iter().all(|(s, _)| *s == 200), "{results:?}");
    let stored: Vec<&Value> = results.iter().map(|(_, r)| r).filter(|r| r["events"] != 0).collect();
    assert_eq!(stored.len(), 1, "exactly one delivery stores: {results:?}");
    assert_eq!(stored[0]["events"], 5);

    // One gap-free log: every block once with its marker, whichever node wrote it.
    let store = open_store(&a.db.url).await;
    let entries = all_entries(&store).await;
    let head = entries.last().map_or(0, |e| e.seq);
    assert_eq!(entries.iter().map(|e| e.seq).collect::<Vec<_>>(), (1..=head).collect::<Vec<_>>());
    let events = 3 * BLOCKS as usize + 5;
    assert_eq!(entries.len(), events + BLOCKS as usize + 1, "each event and each block's marker once");
    let markers: HashSet<&str> =
        entries.iter().filter(|e| e.kind == EntryKind::BlockApplied).map(|e| e.block_hash.as_str()).collect();
    assert_eq!(markers.len(), BLOCKS as usize + 1);
    // Both nodes read the same log.
    assert_eq!(a.all_events().await.len(), events);
    assert_eq!(b.all_events().await.len(), events);
    assert_eq!(a.head().await["headSeq"], head);
    assert_eq!(b.head().await["headSeq"], head);
    b.stop().await;
}
both_backends!(two_nodes_share_one_log, two_nodes_share_one_log);
