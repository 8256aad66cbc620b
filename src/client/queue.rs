//! An offline queue of ops in a file: what a program meant to send survives its own crash
//! or restart, and leaves in the order it was made.
//!
//! The file is a journal of JSON lines, `{"add":OP}` when an op is queued and
//! `{"done":"opId"}` once the server has answered it. Each line is written and flushed to
//! disk (`fsync`) before the call returns, so an op that [`OfflineQueue::push`] accepted is
//! never lost, and one the server answered is never sent again after a restart. The one
//! window between the two — the server committed the op, the program died before writing
//! `done` — is closed by the server: an `opId` is applied once per address, and a resend
//! is answered with the op's current status. So every op reaches the log exactly once.
//!
//! Opening reads the journal back; a last line cut short by a crash mid-write is dropped.
//! When answered lines outnumber the queued ones the journal is rewritten (to a temporary
//! file, then renamed over it), so its size stays proportional to what is queued.
//!
//! # Bounds
//!
//! At most [`QueueLimits::max_ops`] ops wait (then `push` answers [`QueueError::Full`]),
//! each at most [`QueueLimits::max_op_bytes`] of JSON.

use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

/// Ops that may wait in one queue.
pub const MAX_QUEUED_OPS: usize = 10_000;
/// Bytes of one queued op's JSON: above the server's own limit on an op's `data`, so the
/// server, not the queue, is what refuses an oversize op.
pub const MAX_QUEUED_OP_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub max_ops: usize,
    pub max_op_bytes: usize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits { max_ops: MAX_QUEUED_OPS, max_op_bytes: MAX_QUEUED_OP_BYTES }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("offline queue {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("offline queue {path} line {line}: {message}")]
    Corrupt { path: PathBuf, line: usize, message: String },
    #[error("the offline queue holds {0} ops, its limit")]
    Full(usize),
    #[error("an op of {0} bytes exceeds the offline queue's limit of {1}")]
    TooLarge(usize, usize),
    #[error("op {0} is already queued")]
    Duplicate(String),
    #[error("op could not be encoded: {0}")]
    Encode(String),
}

/// What the queue needs of an op: its identity.
pub trait Queued: Serialize + for<'de> Deserialize<'de> + Clone {
    fn op_id(&self) -> &str;
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Line<T> {
    Add(T),
    Done(String),
}

pub struct OfflineQueue<T: Queued> {
    path: PathBuf,
    file: File,
    ops: VecDeque<T>,
    /// `done` lines in the journal (and the `add` lines they cancel): what a rewrite drops.
    answered: usize,
    limits: QueueLimits,
}

impl<T: Queued> OfflineQueue<T> {
    /// Opens (or creates) the journal at `path` and reads back what is still queued.
    pub fn open(path: impl AsRef<Path>, limits: QueueLimits) -> Result<OfflineQueue<T>, QueueError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| QueueError::Io { path: path.clone(), source };
        let mut ops: VecDeque<T> = VecDeque::new();
        let mut answered = 0;
        let mut valid_len: u64 = 0;
        let mut torn = false;
        if let Ok(existing) = File::open(&path) {
            let mut reader = BufReader::new(existing);
            let mut line_no = 0;
            let mut buf = String::new();
            loop {
                buf.clear();
                let n = reader.read_line(&mut buf).map_err(io)?;
                if n == 0 {
                    break;
                }
                line_no += 1;
                if !buf.ends_with('\n') {
                    // Cut short by a crash while it was written: never acknowledged.
                    torn = true;
                    break;
                }
                let line: Line<T> = serde_json::from_str(buf.trim_end()).map_err(|e| QueueError::Corrupt {
                    path: path.clone(),
                    line: line_no,
                    message: e.to_string(),
                })?;
                match line {
                    Line::Add(op) => ops.push_back(op),
                    Line::Done(id) => {
                        if let Some(i) = ops.iter().position(|o| o.op_id() == id) {
                            ops.remove(i);
                        }
                        answered += 1;
                    }
                }
                valid_len += n as u64;
            }
        }
        let file = OpenOptions::new().create(true).append(true).read(true).open(&path).map_err(io)?;
        if torn {
            file.set_len(valid_len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        let mut queue = OfflineQueue { path, file, ops, answered, limits };
        queue.compact_if_worth_it()?;
        Ok(queue)
    }

    /// The path of the journal.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queued ops, oldest first.
    pub fn ops(&self) -> impl ExactSizeIterator<Item = &T> {
        self.ops.iter()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The oldest op still waiting for the server's answer.
    pub fn front(&self) -> Option<&T> {
        self.ops.front()
    }

    /// Queues `op`; it is on disk when this returns.
    pub fn push(&mut self, op: T) -> Result<(), QueueError> {
        if self.ops.len() >= self.limits.max_ops {
            return Err(QueueError::Full(self.ops.len()));
        }
        if self.ops.iter().any(|o| o.op_id() == op.op_id()) {
            return Err(QueueError::Duplicate(op.op_id().to_string()));
        }
        let line = serde_json::to_string(&Line::Add(op.clone())).map_err(|e| QueueError::Encode(e.to_string()))?;
        if line.len() > self.limits.max_op_bytes {
            return Err(QueueError::TooLarge(line.len(), self.limits.max_op_bytes));
        }
        self.write_line(&line)?;
        self.ops.push_back(op);
        Ok(())
    }

    /// Records that the server answered `op_id` (an `op-ack`, or an error that a resend
    /// would only repeat): it leaves the queue for good. `false`: no such op was queued.
    pub fn done(&mut self, op_id: &str) -> Result<bool, QueueError> {
        let Some(i) = self.ops.iter().position(|o| o.op_id() == op_id) else {
            return Ok(false);
        };
        let line = serde_json::to_string(&Line::<T>::Done(op_id.to_string())).map_err(|e| QueueError::Encode(e.to_string()))?;
        self.write_line(&line)?;
        self.ops.remove(i);
        self.answered += 1;
        self.compact_if_worth_it()?;
        Ok(true)
    }

    fn write_line(&mut self, line: &str) -> Result<(), QueueError> {
        let io = |source| QueueError::Io { path: self.path.clone(), source };
        let mut bytes = Vec::with_capacity(line.len() + 1);
        bytes.extend_from_slice(line.as_bytes());
        bytes.push(b'\n');
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)
    }

    /// Rewrites the journal with only the queued ops once answered lines dominate it.
    fn compact_if_worth_it(&mut self) -> Result<(), QueueError> {
        if self.answered < 64 || self.answered < self.ops.len() {
            return Ok(());
        }
        let io = |source| QueueError::Io { path: self.path.clone(), source };
        let tmp = self.path.with_extension("compacting");
        let mut out = File::create(&tmp).map_err(io)?;
        for op in &self.ops {
            let line = serde_json::to_string(&Line::Add(op.clone())).map_err(|e| QueueError::Encode(e.to_string()))?;
            out.write_all(line.as_bytes()).map_err(io)?;
            out.write_all(b"\n").map_err(io)?;
        }
        out.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            if let Ok(d) = File::open(dir) {
                let _ = d.sync_all();
            }
        }
        self.file = OpenOptions::new().append(true).read(true).open(&self.path).map_err(io)?;
        self.answered = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Op {
        id: String,
        n: u32,
    }

    impl Queued for Op {
        fn op_id(&self) -> &str {
            &self.id
        }
    }

    fn op(n: u32) -> Op {
        Op { id: format!("op-{n}"), n }
    }

    fn ids(q: &OfflineQueue<Op>) -> Vec<u32> {
        q.ops().map(|o| o.n).collect()
    }

    #[test]
    fn queued_ops_survive_reopening_in_order_and_answered_ones_do_not_come_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.jsonl");
        {
            let mut q = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
            for n in 1..=5 {
                q.push(op(n)).unwrap();
            }
            assert!(q.done("op-2").unwrap());
            assert!(!q.done("op-9").unwrap());
        }
        let q: OfflineQueue<Op> = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
        assert_eq!(ids(&q), vec![1, 3, 4, 5]);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_dropped_and_the_journal_stays_usable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.jsonl");
        {
            let mut q = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
            q.push(op(1)).unwrap();
        }
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"add":{"id":"op-2","#).unwrap();
        drop(f);
        let mut q: OfflineQueue<Op> = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
        assert_eq!(ids(&q), vec![1]);
        q.push(op(3)).unwrap();
        drop(q);
        let q: OfflineQueue<Op> = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
        assert_eq!(ids(&q), vec![1, 3]);
    }

    #[test]
    fn a_corrupt_line_in_the_middle_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.jsonl");
        std::fs::write(&path, "{\"add\":{\"id\":\"a\",\"n\":1}}\nnot json\n{\"done\":\"a\"}\n").unwrap();
        match OfflineQueue::<Op>::open(&path, QueueLimits::default()) {
            Err(QueueError::Corrupt { line, .. }) => assert_eq!(line, 2),
            other => panic!("expected a corrupt line error, got {:?}", other.map(|q| q.len())),
        }
    }

    #[test]
    fn limits_refuse_without_changing_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.jsonl");
        let mut q = OfflineQueue::open(&path, QueueLimits { max_ops: 2, max_op_bytes: 64 }).unwrap();
        q.push(op(1)).unwrap();
        assert!(matches!(q.push(op(1)), Err(QueueError::Duplicate(_))));
        assert!(matches!(q.push(Op { id: "x".repeat(100), n: 2 }), Err(QueueError::TooLarge(..))));
        q.push(op(2)).unwrap();
        assert!(matches!(q.push(op(3)), Err(QueueError::Full(2))));
        drop(q);
        let q: OfflineQueue<Op> = OfflineQueue::open(&path, QueueLimits { max_ops: 2, max_op_bytes: 64 }).unwrap();
        assert_eq!(ids(&q), vec![1, 2]);
    }

    #[test]
    fn the_journal_is_rewritten_once_answered_lines_dominate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ops.jsonl");
        let mut q = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
        for n in 0..200 {
            q.push(op(n)).unwrap();
            if n % 10 != 0 {
                q.done(&format!("op-{n}")).unwrap();
            }
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(lines < 200, "{lines} lines for {} queued ops", q.len());
        drop(q);
        let q: OfflineQueue<Op> = OfflineQueue::open(&path, QueueLimits::default()).unwrap();
        assert_eq!(ids(&q), (0..200).filter(|n| n % 10 == 0).collect::<Vec<_>>());
    }
}
