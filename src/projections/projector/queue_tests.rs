//! The projector's work queue, given/when/then, without I/O or threads.

use super::*;
use crate::model::EntryKind;

/// A committed batch of `n` entries starting at `first`.
fn batch(first: i64, n: usize) -> Arc<[LogEntry]> {
    (first..first + n as i64)
        .map(|seq| LogEntry {
            seq,
            kind: EntryKind::Event,
            block_height: 1,
            block_hash: "0x01".into(),
            event_type: None,
            contract_id: None,
            affected_addresses: Vec::new(),
            rollback_of: None,
            body: Arc::from("{}"),
        })
        .collect()
}

/// A queue bounded at `max` entries that was handed `batches` of these sizes.
fn given_queue(max: usize, batches: &[usize]) -> WorkQueue {
    let queue = WorkQueue::new(max);
    let mut next = 1;
    for &n in batches {
        queue.push(batch(next, n));
        next += n as i64;
    }
    queue
}

/// What the thread takes, without waiting: the `seq`s of each batch, or the signal.
fn taken(queue: &WorkQueue, max_entries: usize) -> Result<Vec<Vec<i64>>, &'static str> {
    match queue.take(Some(Duration::ZERO), max_entries) {
        Work::Batches(batches) => Ok(batches.iter().map(|b| b.iter().map(|e| e.seq).collect()).collect()),
        Work::Behind => Err("behind"),
        Work::TimedOut => Err("nothing"),
        Work::Closed => Err("closed"),
    }
}

#[test]
fn batches_are_taken_in_commit_order_merged_up_to_the_batch_size() {
    let queue = given_queue(100, &[2, 3, 4]);

    assert_eq!(taken(&queue, 5), Ok(vec![vec![1, 2], vec![3, 4, 5]]));
    assert_eq!(taken(&queue, 5), Ok(vec![vec![6, 7, 8, 9]]));
    assert_eq!(taken(&queue, 5), Err("nothing"));
    assert_eq!(queue.stats().pending_entries, 0);
}

#[test]
fn batch_larger_than_the_batch_size_is_taken_alone() {
    let queue = given_queue(100, &[8, 1]);

    assert_eq!(taken(&queue, 5).map(|b| b.len()), Ok(1));
    assert_eq!(taken(&queue, 5), Ok(vec![vec![9]]));
}

#[test]
fn queue_holds_batches_up_to_its_bound() {
    let queue = given_queue(10, &[4, 6]);

    let stats = queue.stats();
    assert_eq!((stats.pending_entries, stats.peak_pending_entries, stats.dropped_batches), (10, 10, 0));
    assert!(!stats.behind);
}

#[test]
fn full_queue_drops_the_batch_and_what_it_holds_and_signals_behind() {
    let queue = given_queue(10, &[4, 6, 1]);

    let stats = queue.stats();
    assert_eq!((stats.pending_entries, stats.peak_pending_entries, stats.dropped_batches), (0, 10, 3));
    assert!(stats.behind);
    assert_eq!(taken(&queue, 100), Err("behind"), "the thread reads the log before anything else");
    assert_eq!(taken(&queue, 100), Err("nothing"));
    assert_eq!(queue.stats().catch_ups, 1);
}

#[test]
fn behind_queue_drops_every_batch_until_the_thread_takes_the_signal() {
    let queue = given_queue(10, &[11, 1, 1]);
    assert_eq!(queue.stats().dropped_batches, 3);

    assert_eq!(taken(&queue, 100), Err("behind"));
    queue.push(batch(14, 2));

    assert_eq!(taken(&queue, 100), Ok(vec![vec![14, 15]]), "queued again once the thread reads the log");
    assert!(!queue.stats().behind);
}

#[test]
fn queued_entries_never_exceed_the_bound() {
    let queue = WorkQueue::new(50);
    let mut next = 1;
    for round in 0..200usize {
        let n = 1 + (round * 7) % 23;
        queue.push(batch(next, n));
        next += n as i64;
        if round % 5 == 0 {
            let _ = taken(&queue, 20);
        }
        assert!(queue.stats().pending_entries <= 50);
    }
    let stats = queue.stats();
    assert!(stats.peak_pending_entries <= 50 && stats.dropped_batches > 0, "{stats:?}");
}

#[test]
fn closed_queue_hands_over_what_it_holds_then_stops_the_thread() {
    let queue = given_queue(10, &[2]);

    queue.close();
    queue.push(batch(3, 1));

    assert_eq!(taken(&queue, 100), Ok(vec![vec![1, 2]]));
    assert_eq!(taken(&queue, 100), Err("closed"));
}
