//! The one connection that appends to the log.
//!
//! A group of payloads is written in one transaction: read the head and the canonical
//! state of the blocks involved, plan the rows in memory ([`super::plan`]), then insert
//! them in a few multi-row statements. On PostgreSQL the transaction first takes an
//! advisory lock, so several server nodes appending to one database still produce one
//! gap-free order; on SQLite it begins `IMMEDIATE`, taking the write lock up front.
//!
//! # Layout
//!
//! - this file: [`Appender`], which connects, runs a group and recovers from failures;
//! - `group`: one group inside its transaction, planned and written in stretches;
//! - `snapshot`: the stored state of the group's blocks, read before planning;
//! - `names`: principal and contract numbering, and the cache of numbers;
//! - `staging`: address rows staged in `address_recent` and merged into the index;
//! - `conn`: the connection, whose methods are the only place that tells the backends apart;
//! - `pg`, `sqlite`: the two backends' halves (BEGIN, row writing, COMMIT; SQLite's WAL
//!   restart);
//! - `phases`: where a group's time goes, at debug level;
//! - `ops`, `op_append`: the ops rules fed by every transaction, and ops messages appended
//!   with the decisions they cause.

mod conn;
mod group;
mod names;
mod op_append;
mod ops;
mod pg;
mod phases;
mod snapshot;
mod sqlite;
mod staging;

pub use super::plan::IngestReport;
pub use op_append::{OpCommand, OpReply};
pub use ops::{rederive_decisions, OpsFeed, OpsSettings, OpsShared};
pub use pg::PG_APPEND_LOCK;

use super::checkpoint::{Checkpointer, Restart};
use super::connect::Inner;
use super::{classify, StoreError};
use diesel::OptionalExtension;
use crate::model::LogEntry;
use crate::model::Payload;
use conn::WriteConn;
use group::{GroupStart, WantedBlocks};
use names::NameCache;
use phases::{Phase, Phases};
use staging::Staging;
use std::sync::Arc;

/// The result of one committed group.
#[derive(Debug)]
pub struct Appended {
    /// One report per payload, in the order given.
    pub reports: Vec<IngestReport>,
    /// Every entry committed, in `seq` order.
    pub entries: Vec<LogEntry>,
    pub head_seq: i64,
}

/// How a group that did not commit ended.
pub(super) enum GroupFailure {
    /// A statement failed: the transaction is still open (on PostgreSQL, aborted).
    Statement(StoreError),
    /// COMMIT failed, or its answer was lost: whether the group is stored is unknown.
    Commit(StoreError),
}

impl From<StoreError> for GroupFailure {
    fn from(e: StoreError) -> GroupFailure {
        GroupFailure::Statement(e)
    }
}

/// Holds the connection that appends; reconnects after a failure. The event-store writer
/// actor owns the only one.
pub struct Appender {
    inner: Arc<Inner>,
    conn: Option<WriteConn>,
    names: NameCache,
    /// SQLite: copies committed pages back into the database file off the commit path.
    checkpointer: Option<Checkpointer>,
    /// Rows in `address_recent` as of the last commit; `None` until counted (after a
    /// connect, or a commit whose outcome is unknown).
    staged: Option<u64>,
    /// The ops rules, when ops are enabled: fed every entry this appender commits, and
    /// brought up to the head (entries of other nodes, or of the log at startup) under the
    /// append lock before each transaction decides anything.
    ops: Option<Arc<OpsShared>>,
}

/// The result of one committed ops transaction.
#[derive(Debug)]
pub struct OpsAppended {
    /// One reply per command, in the order given.
    pub replies: Vec<OpReply>,
    /// Every entry committed, in `seq` order.
    pub entries: Vec<LogEntry>,
}

impl Appender {
    pub(crate) async fn open(inner: Arc<Inner>, ops: Option<Arc<OpsShared>>) -> Result<Appender, StoreError> {
        let mut appender =
            Appender { inner, conn: None, names: NameCache::default(), checkpointer: None, staged: None, ops };
        appender.connect().await?;
        Ok(appender)
    }

    async fn connect(&mut self) -> Result<&mut WriteConn, StoreError> {
        if self.conn.is_none() {
            let conn = WriteConn::open(&self.inner).await?;
            if conn.is_sqlite() && self.checkpointer.is_none() {
                let path = self.inner.sqlite_path().ok_or_else(|| StoreError::Config("SQLite path is not UTF-8".into()))?;
                let config = &self.inner.config;
                let checkpointer = Checkpointer::start(&path, config.sqlite_busy_timeout, config.sqlite_wal_limit_bytes)
                    .map_err(StoreError::Unavailable)?;
                self.checkpointer = Some(checkpointer);
            }
            self.conn = Some(conn);
        }
        self.conn.as_mut().ok_or_else(|| StoreError::Unavailable("no write connection".into()))
    }

    /// Appends a group of payloads atomically: all of them or none.
    pub async fn append(&mut self, payloads: Vec<Payload>) -> Result<Appended, StoreError> {
        let result = self.append_group(payloads).await;
        if result.is_err() {
            self.forget_ops();
        }
        result
    }

    /// After a failed transaction the rules may have seen entries that are not stored:
    /// they read the log again from its start before the next one.
    fn forget_ops(&mut self) {
        if let Some(ops) = &self.ops {
            ops.reset();
        }
    }

    /// Feeds the rules the stored entries they have not seen, without the append lock, so
    /// that the part read under it (other nodes' latest entries) stays short.
    async fn ops_catch_up_unlocked(&mut self) -> Result<(), StoreError> {
        let Some(ops) = self.ops.clone() else { return Ok(()) };
        let Some(conn) = self.conn.as_mut() else { return Ok(()) };
        let head: Option<i64> = crate::store::backend::on_backend!(&mut conn.0, |c| {
            diesel_async::RunQueryDsl::get_result(crate::store::read::log_queries::last_seq(), c).await.optional()
        })
        .map_err(classify)?;
        op_append::catch_up(conn, &ops, head.unwrap_or(0)).await
    }

    /// Appends a batch of ops messages in one transaction, each answered per docs/ops.md;
    /// refused messages append nothing.
    pub async fn append_ops(&mut self, commands: Vec<OpCommand>) -> Result<OpsAppended, StoreError> {
        let Some(ops) = self.ops.clone() else {
            return Err(StoreError::Config("ops are not enabled".into()));
        };
        let result = self.append_ops_in(ops, commands).await;
        if result.is_err() {
            self.forget_ops();
        }
        result
    }

    async fn append_ops_in(&mut self, ops: Arc<OpsShared>, commands: Vec<OpCommand>) -> Result<OpsAppended, StoreError> {
        self.connect().await?;
        self.ops_catch_up_unlocked().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Unavailable("no write connection".into()));
        };
        let head = match conn.begin(Vec::new()).await {
            Ok((head, _)) => head.unwrap_or(0),
            Err(e) => {
                self.conn = None;
                return Err(classify(e));
            }
        };
        let committed_at = chrono::Utc::now().timestamp_millis();
        let planned = async {
            op_append::catch_up(conn, &ops, head).await?;
            op_append::plan_ops(conn, &ops, head, commands, committed_at).await
        }
        .await;
        let (replies, rows, new_head) = match planned {
            Ok(p) => p,
            Err(e) => {
                if conn.rollback().await.is_err() {
                    self.conn = None;
                }
                return Err(e);
            }
        };
        let entries = rows.entries;
        let write = group::Rows {
            principals: Vec::new(),
            log: rows.log,
            addresses: Vec::new(),
            staged: false,
            new_blocks: Vec::new(),
            blocks: Vec::new(),
            ops: rows.ops,
        };
        let notify = (!entries.is_empty()).then_some(new_head);
        match conn.write_and_commit(write, sqlite::Queued::default(), notify).await {
            Ok(()) => Ok(OpsAppended { replies, entries }),
            Err(GroupFailure::Commit(e)) => {
                self.conn = None;
                self.staged = None;
                Err(e)
            }
            Err(GroupFailure::Statement(e)) => {
                if conn.rollback().await.is_err() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }

    async fn append_group(&mut self, payloads: Vec<Payload>) -> Result<Appended, StoreError> {
        let mut phases = Phases::start(payloads.len());
        self.connect().await?;
        self.ops_catch_up_unlocked().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Unavailable("no write connection".into()));
        };
        let WantedBlocks { ids, rolled } = WantedBlocks::of(&payloads);
        let (head, block_rows) = match conn.begin(ids).await {
            Ok(started) => started,
            Err(e) => {
                // Dropping the connection also ends a transaction begun before the failure.
                self.conn = None;
                return Err(classify(e));
            }
        };
        phases.lap(Phase::Begin);
        let staging = Staging { limit: self.inner.config.address_merge_rows(), staged: self.staged };
        let start = GroupStart { head: head.unwrap_or(0), block_rows, rolled };
        let ops = self.ops.as_deref();
        match group::append_in_transaction(conn, self.names.known(), payloads, start, staging, ops, &mut phases).await {
            Ok((appended, numbered, staged)) => {
                self.staged = staged;
                phases.log(appended.entries.len());
                self.names.remember(numbered);
                if let Some(checkpointer) = &self.checkpointer {
                    checkpointer.committed(committed_bytes(&appended.entries));
                    let busy_timeout = self.inner.config.sqlite_busy_timeout;
                    let wait = match checkpointer.restart_due() {
                        Restart::No => None,
                        Restart::Try => Some(sqlite::WAL_RESTART_WAIT),
                        Restart::Wait => Some(busy_timeout),
                    };
                    if let Some(wait) = wait {
                        if conn.restart_wal(wait, busy_timeout).await {
                            checkpointer.restarted();
                        }
                    }
                }
                Ok(appended)
            }
            Err(GroupFailure::Commit(e)) => {
                // The outcome of a failed COMMIT is unknown to us; a fresh connection
                // re-reads the head, and redelivery is idempotent.
                self.conn = None;
                self.staged = None;
                Err(e)
            }
            Err(GroupFailure::Statement(e)) => {
                if conn.rollback().await.is_err() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }
}

/// About what a group's commit adds to the WAL: the bodies, plus rows' other columns and
/// index entries.
fn committed_bytes(entries: &[LogEntry]) -> u64 {
    entries.iter().map(|e| e.body.len() as u64 + 256).sum()
}
