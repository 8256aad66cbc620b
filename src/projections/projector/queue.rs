//! The projector's work queue: committed batches waiting for the projection thread,
//! bounded by the entries they hold.
//!
//! # When it is full
//!
//! The actor that fills the queue runs on the path from the writer to the WebSocket
//! topics, so it must never wait for the projection thread. A batch that does not fit is
//! dropped, and so is everything queued: the queue switches to *behind*, holds nothing,
//! and drops every batch until the thread takes the signal. The thread then reads the
//! log from its checkpoints up to the head ([`Engine::catch_up`](crate::projections::Engine::catch_up)),
//! which holds every dropped entry: a batch is only ever queued after its entries are
//! committed, so whatever was dropped before the thread took the signal is at or below
//! the head it reads. Batches queued after that fold as usual; the engine skips entries
//! it already folded and reads any gap from the log. So the projections end up the same,
//! whatever was dropped, and memory stays within the bound: the queue never holds more
//! than its limit, and the thread holds one merged batch at most while it folds.

use crate::model::LogEntry;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

/// What the projection thread takes from the queue.
pub(super) enum Work {
    /// Batches in commit order, merged up to the thread's batch size.
    Batches(Vec<Arc<[LogEntry]>>),
    /// Batches were dropped: read the log up to its head before folding anything more.
    Behind,
    /// Nothing came within the wait asked for.
    TimedOut,
    /// The actor is gone: stop.
    Closed,
}

/// The queue's counters, as [`super::GetProjectorStats`] reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueStats {
    /// Entries queued now.
    pub pending_entries: usize,
    /// The bound on `pending_entries`.
    pub max_pending_entries: usize,
    /// The most entries queued at any one time.
    pub peak_pending_entries: usize,
    /// Batches dropped because the queue was full or behind (their entries are read from
    /// the log instead).
    pub dropped_batches: u64,
    /// Times the thread read the log after batches were dropped.
    pub catch_ups: u64,
    /// Whether batches were dropped that the thread has not started reading from the log.
    pub behind: bool,
}

struct State {
    batches: VecDeque<Arc<[LogEntry]>>,
    stats: QueueStats,
    closed: bool,
}

pub(super) struct WorkQueue {
    state: Mutex<State>,
    ready: Condvar,
}

impl WorkQueue {
    pub(super) fn new(max_pending_entries: usize) -> WorkQueue {
        WorkQueue {
            state: Mutex::new(State {
                batches: VecDeque::new(),
                stats: QueueStats {
                    max_pending_entries,
                    ..QueueStats::default()
                },
                closed: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // No code that can panic runs between two updates under the lock, so a poisoned
        // lock still guards a consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a committed batch, or drops it (and everything queued) when it does not
    /// fit. Never waits for the thread.
    pub(super) fn push(&self, batch: Arc<[LogEntry]>) {
        let mut s = self.lock();
        if s.closed || batch.is_empty() {
            return;
        }
        if s.stats.behind {
            s.stats.dropped_batches += 1;
            return;
        }
        if s.stats.pending_entries + batch.len() > s.stats.max_pending_entries {
            // The thread reads all of it from the log instead.
            s.stats.dropped_batches += 1 + s.batches.len() as u64;
            s.batches.clear();
            s.stats.pending_entries = 0;
            s.stats.behind = true;
        } else {
            s.stats.pending_entries += batch.len();
            s.stats.peak_pending_entries = s.stats.peak_pending_entries.max(s.stats.pending_entries);
            s.batches.push_back(batch);
        }
        drop(s);
        self.ready.notify_one();
    }

    /// Waits for work (at most `wait`, when given). Takes queued batches up to
    /// `max_entries` entries (at least one batch).
    pub(super) fn take(&self, wait: Option<Duration>, max_entries: usize) -> Work {
        let mut s = self.lock();
        let deadline = wait.map(|w| std::time::Instant::now() + w);
        loop {
            if s.stats.behind {
                s.stats.behind = false;
                s.stats.catch_ups += 1;
                return Work::Behind;
            }
            if let Some(first) = s.batches.pop_front() {
                let mut taken = first.len();
                let mut batches = vec![first];
                while let Some(next) = s.batches.front() {
                    if taken + next.len() > max_entries {
                        break;
                    }
                    taken += next.len();
                    batches.extend(s.batches.pop_front());
                }
                s.stats.pending_entries -= taken;
                return Work::Batches(batches);
            }
            if s.closed {
                return Work::Closed;
            }
            s = match deadline {
                None => self.ready.wait(s).unwrap_or_else(|e| e.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Work::TimedOut;
                    }
                    self.ready.wait_timeout(s, left).unwrap_or_else(|e| e.into_inner()).0
                }
            };
        }
    }

    /// No more work will come: the thread stops once it has taken what is queued.
    pub(super) fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    pub(super) fn stats(&self) -> QueueStats {
        self.lock().stats
    }
}

#[cfg(test)]
#[path = "queue_tests.rs"]
mod tests;
