//! The order in which committed entries reach the supervisor's listeners (topics, the
//! projector): every `seq` once, ascending, none skipped — whichever node appended it.
//!
//! Entries come from two sources. This node's writer hands over what it committed
//! ([`Sequencer::committed`]); of what other nodes appended on the shared database, only
//! the new head `seq` is known (a notification, or a periodic check: [`Sequencer::head_seen`]),
//! and the entries are read from the store by `seq`. `routed_upto` is the last `seq` handed
//! to listeners. A batch of this node's writer that does not follow it (another node
//! appended in between) is held while the missing range is read, then routed after it.
//!
//! Pure state: the supervisor performs the reads this asks for ([`Next::Read`]) and hands
//! the answers back ([`Sequencer::read_done`]), so the rules are unit-tested without I/O.

use crate::model::LogEntry;
use std::collections::VecDeque;
use std::sync::Arc;

/// Entries of this node's writer held while a gap before them is read. Past it, a batch
/// is not kept: it is committed, so it is read back from the store like any other node's.
pub const MAX_HELD_ENTRIES: usize = 50_000;

/// What the supervisor does next.
#[derive(Debug, PartialEq)]
pub enum Next {
    /// Hand these entries, which follow the previous ones, to the listeners.
    Route(Arc<[LogEntry]>),
    /// Read up to `limit` entries after `after` from the store; answer with `read_done`.
    Read { after: i64, limit: i64 },
    /// Nothing until more is known (or a read is under way).
    Idle,
}

/// Counters of what the sequencer did (observable state for `/readyz` and metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SequencerStats {
    /// The last `seq` handed to listeners.
    pub routed_upto: i64,
    /// The highest `seq` known to be committed.
    pub known_head: i64,
    /// Store reads that routed entries this node's writer did not commit.
    pub gap_fills: u64,
    /// Entries those reads routed.
    pub filled_entries: u64,
    /// Writer batches not held (over [`MAX_HELD_ENTRIES`]) and read back instead.
    pub dropped_batches: u64,
}

pub struct Sequencer {
    stats: SequencerStats,
    /// This node's batches waiting for the range before them, in `seq` order.
    held: VecDeque<Arc<[LogEntry]>>,
    held_entries: usize,
    max_held: usize,
    /// Entries per store read.
    page: i64,
    reading: bool,
}

impl Sequencer {
    /// `head`: the log's head when the node starts, where routing begins.
    pub fn new(head: i64, page: i64, max_held: usize) -> Sequencer {
        Sequencer {
            stats: SequencerStats { routed_upto: head, known_head: head, ..Default::default() },
            held: VecDeque::new(),
            held_entries: 0,
            max_held,
            page: page.max(1),
            reading: false,
        }
    }

    pub fn routed_upto(&self) -> i64 {
        self.stats.routed_upto
    }

    pub fn stats(&self) -> SequencerStats {
        self.stats
    }

    /// This node's writer committed `entries` (contiguous, ascending).
    pub fn committed(&mut self, entries: Arc<[LogEntry]>) {
        let Some(last) = entries.last().map(|e| e.seq) else { return };
        self.stats.known_head = self.stats.known_head.max(last);
        if last <= self.stats.routed_upto {
            return;
        }
        if self.held_entries + entries.len() > self.max_held && !self.held.is_empty() {
            self.stats.dropped_batches += 1;
            return;
        }
        self.held_entries += entries.len();
        let at = self.held.partition_point(|b| b.first().map_or(0, |e| e.seq) < entries[0].seq);
        self.held.insert(at, entries);
    }

    /// Some node committed up to `head`.
    pub fn head_seen(&mut self, head: i64) {
        self.stats.known_head = self.stats.known_head.max(head);
    }

    /// The next step; call again after each [`Next::Route`].
    pub fn next_step(&mut self) -> Next {
        while let Some(batch) = self.held.front() {
            let (first, last) = match (batch.first(), batch.last()) {
                (Some(f), Some(l)) => (f.seq, l.seq),
                _ => (0, 0),
            };
            if last <= self.stats.routed_upto {
                self.pop_held();
                continue;
            }
            if first > self.stats.routed_upto + 1 {
                break;
            }
            let batch = self.pop_held();
            return Next::Route(self.take_fresh(batch));
        }
        if self.reading || self.stats.known_head <= self.stats.routed_upto {
            return Next::Idle;
        }
        let mut limit = self.page;
        if let Some(first) = self.held.front().and_then(|b| b.first()) {
            // Only the gap: what follows it is held already.
            limit = limit.min(first.seq - 1 - self.stats.routed_upto);
        }
        self.reading = true;
        Next::Read { after: self.stats.routed_upto, limit }
    }

    /// The answer to the last [`Next::Read`]: the entries read, in `seq` order (`None`
    /// when the read failed). Returns what to route, if anything; call [`Sequencer::next_step`]
    /// again after.
    pub fn read_done(&mut self, read: Option<Vec<LogEntry>>) -> Option<Arc<[LogEntry]>> {
        self.reading = false;
        let mut entries = read?;
        entries.retain(|e| e.seq > self.stats.routed_upto);
        let first = entries.first()?.seq;
        if first != self.stats.routed_upto + 1 {
            // The log's seqs are gap-free; should a row ever be missing, routing stops for
            // nobody: the store is the truth, and subscribers read it the same way.
            tracing::error!(after = self.stats.routed_upto, first, "the log has no entry at the next seq");
        }
        self.stats.gap_fills += 1;
        self.stats.filled_entries += entries.len() as u64;
        let batch: Arc<[LogEntry]> = entries.into();
        Some(self.take_fresh(batch))
    }

    fn pop_held(&mut self) -> Arc<[LogEntry]> {
        let batch = self.held.pop_front().unwrap_or_else(|| Arc::from(Vec::new()));
        self.held_entries -= batch.len();
        batch
    }

    /// The entries of `batch` after `routed_upto`, which becomes its last.
    fn take_fresh(&mut self, batch: Arc<[LogEntry]>) -> Arc<[LogEntry]> {
        let skip = batch.iter().take_while(|e| e.seq <= self.stats.routed_upto).count();
        if let Some(last) = batch.last() {
            self.stats.routed_upto = self.stats.routed_upto.max(last.seq);
            self.stats.known_head = self.stats.known_head.max(last.seq);
        }
        if skip == 0 {
            batch
        } else {
            batch[skip..].into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EntryKind;

    fn entries(seqs: std::ops::RangeInclusive<i64>) -> Vec<LogEntry> {
        seqs.map(|seq| LogEntry {
            seq,
            kind: EntryKind::BlockApplied,
            block_height: seq,
            block_hash: format!("0x{seq:02x}"),
            event_type: None,
            contract_id: None,
            affected_addresses: Vec::new(),
            rollback_of: None,
            body: Arc::from("{}"),
        })
        .collect()
    }

    fn batch(seqs: std::ops::RangeInclusive<i64>) -> Arc<[LogEntry]> {
        entries(seqs).into()
    }

    fn seqs(next: Next) -> Vec<i64> {
        match next {
            Next::Route(b) => b.iter().map(|e| e.seq).collect(),
            other => panic!("expected a route, got {other:?}"),
        }
    }

    fn routed(b: Option<Arc<[LogEntry]>>) -> Vec<i64> {
        b.map(|b| b.iter().map(|e| e.seq).collect()).unwrap_or_default()
    }

    #[test]
    fn given_nothing_else_appended_when_the_writer_commits_then_its_batch_is_routed_without_a_read() {
        let mut s = Sequencer::new(3, 1000, MAX_HELD_ENTRIES);
        s.committed(batch(4..=6));
        assert_eq!(seqs(s.next_step()), vec![4, 5, 6]);
        assert_eq!(s.next_step(), Next::Idle);
        assert_eq!(s.routed_upto(), 6);
        assert_eq!(s.stats().gap_fills, 0);
    }

    #[test]
    fn given_another_node_appended_first_when_the_writer_commits_then_the_gap_is_read_before_its_batch() {
        let mut s = Sequencer::new(3, 1000, MAX_HELD_ENTRIES);
        s.committed(batch(7..=9));
        assert_eq!(s.next_step(), Next::Read { after: 3, limit: 3 });
        assert_eq!(s.next_step(), Next::Idle, "one read at a time");
        assert_eq!(routed(s.read_done(Some(entries(4..=6)))), vec![4, 5, 6]);
        assert_eq!(seqs(s.next_step()), vec![7, 8, 9]);
        assert_eq!(s.next_step(), Next::Idle);
        assert_eq!(s.stats().gap_fills, 1);
        assert_eq!(s.stats().filled_entries, 3);
    }

    #[test]
    fn given_a_notified_head_when_reading_then_reads_are_paged_until_the_head() {
        let mut s = Sequencer::new(0, 2, MAX_HELD_ENTRIES);
        s.head_seen(5);
        assert_eq!(s.next_step(), Next::Read { after: 0, limit: 2 });
        assert_eq!(routed(s.read_done(Some(entries(1..=2)))), vec![1, 2]);
        assert_eq!(s.next_step(), Next::Read { after: 2, limit: 2 });
        assert_eq!(routed(s.read_done(Some(entries(3..=4)))), vec![3, 4]);
        assert_eq!(s.next_step(), Next::Read { after: 4, limit: 2 });
        assert_eq!(routed(s.read_done(Some(entries(5..=5)))), vec![5]);
        assert_eq!(s.next_step(), Next::Idle);
    }

    #[test]
    fn given_a_read_under_way_when_the_writer_commits_next_then_its_batch_goes_at_once_and_the_read_adds_no_duplicate() {
        let mut s = Sequencer::new(0, 1000, MAX_HELD_ENTRIES);
        s.head_seen(3);
        assert_eq!(s.next_step(), Next::Read { after: 0, limit: 1000 });
        // The read's answer is late; the writer's own batch 1..=3 arrives meanwhile.
        s.committed(batch(1..=3));
        assert_eq!(seqs(s.next_step()), vec![1, 2, 3]);
        assert_eq!(routed(s.read_done(Some(entries(1..=4)))), vec![4], "only what follows");
        assert_eq!(s.routed_upto(), 4);
    }

    #[test]
    fn given_a_head_already_routed_when_seen_again_then_nothing_is_read() {
        let mut s = Sequencer::new(10, 1000, MAX_HELD_ENTRIES);
        s.head_seen(8);
        s.head_seen(10);
        assert_eq!(s.next_step(), Next::Idle);
        s.committed(batch(5..=10));
        assert_eq!(s.next_step(), Next::Idle);
    }

    #[test]
    fn given_a_failed_read_when_asked_again_then_the_same_range_is_read() {
        let mut s = Sequencer::new(0, 1000, MAX_HELD_ENTRIES);
        s.head_seen(2);
        assert_eq!(s.next_step(), Next::Read { after: 0, limit: 1000 });
        assert_eq!(s.read_done(None), None);
        assert_eq!(s.next_step(), Next::Read { after: 0, limit: 1000 });
        assert_eq!(s.read_done(Some(Vec::new())), None, "not visible yet");
        assert_eq!(s.routed_upto(), 0);
    }

    #[test]
    fn given_the_hold_is_full_when_the_writer_commits_more_then_that_batch_is_read_back() {
        let mut s = Sequencer::new(0, 1000, 4);
        s.committed(batch(3..=5));
        s.committed(batch(6..=8)); // past the bound: dropped, known through the head
        assert_eq!(s.stats().dropped_batches, 1);
        assert_eq!(s.next_step(), Next::Read { after: 0, limit: 2 });
        assert_eq!(routed(s.read_done(Some(entries(1..=2)))), vec![1, 2]);
        assert_eq!(seqs(s.next_step()), vec![3, 4, 5]);
        assert_eq!(s.next_step(), Next::Read { after: 5, limit: 1000 });
        assert_eq!(routed(s.read_done(Some(entries(6..=8)))), vec![6, 7, 8]);
        assert_eq!(s.next_step(), Next::Idle);
    }
}
