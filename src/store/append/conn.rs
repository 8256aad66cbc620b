//! The appender's connection: the PostgreSQL and SQLite halves behind one type.
//!
//! Statements both backends run alike are written once, with
//! [`on_backend!`](crate::store::backend::on_backend) over `WriteConn.0`; what differs per
//! backend is a method here, and each method is the only place that tells the halves apart.

use super::group::Rows;
use super::sqlite::{self, Queued, SqliteAppender};
use super::{pg, GroupFailure};
use crate::store::backend::{on_backend, Backend};
use crate::store::connect::Inner;
use crate::store::rows::BlockRow;
use crate::store::StoreError;
use diesel::QueryResult;
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection};
use std::time::Duration;

/// Boxed on PostgreSQL: five times the size of the SQLite half.
pub(super) struct WriteConn(pub(super) Backend<Box<AsyncPgConnection>, SqliteAppender>);

impl WriteConn {
    pub(super) async fn open(inner: &Inner) -> Result<WriteConn, StoreError> {
        Ok(WriteConn(match &inner.backend {
            Backend::Pg(_) => Backend::Pg(Box::new(pg::open(inner).await?)),
            Backend::Sqlite(_) => Backend::Sqlite(sqlite::open(inner).await?),
        }))
    }

    pub(super) fn is_sqlite(&self) -> bool {
        !self.0.is_postgres()
    }

    /// Begins the group's transaction, taking the append lock, and reads the head and the
    /// `blocks` rows of `ids` (height, hash) that exist.
    pub(super) async fn begin(&mut self, ids: Vec<(i64, String)>) -> QueryResult<(Option<i64>, Vec<BlockRow>)> {
        match &mut self.0 {
            Backend::Pg(c) => pg::begin(c, &ids).await,
            Backend::Sqlite(w) => sqlite::begin(w, ids).await,
        }
    }

    /// Log rows of a group's first stretch, given the size of the others.
    pub(super) fn first_stretch_rows(&self, stretch: usize) -> usize {
        match &self.0 {
            Backend::Pg(_) => stretch,
            Backend::Sqlite(_) => stretch.min(sqlite::FIRST_STRETCH_ROWS),
        }
    }

    /// The statement that empties `address_recent` after a merge. PostgreSQL: TRUNCATE, not
    /// DELETE, so no dead rows wait for VACUUM; it locks the table until COMMIT, so an
    /// address query waits for the merging group, once per merge. SQLite runs a DELETE
    /// without WHERE as a truncation.
    pub(super) fn empty_recent_sql(&self) -> &'static str {
        match &self.0 {
            Backend::Pg(_) => "TRUNCATE address_recent",
            Backend::Sqlite(_) => "DELETE FROM address_recent",
        }
    }

    /// Writes one stretch of the group while `plan_next` plans the next. PostgreSQL runs
    /// the stretch's statements while this side plans; SQLite's thread takes the stretch
    /// and the appender plans without waiting for it (`queued` holds its answer).
    pub(super) async fn write_stretch(
        &mut self,
        rows: Rows,
        queued: &mut Queued,
        plan_next: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        match &mut self.0 {
            Backend::Pg(c) => {
                let written = pg::write(c, rows);
                let planned = async { plan_next() };
                let (written, planned) = futures_util::future::join(written, planned).await;
                written?;
                planned
            }
            Backend::Sqlite(w) => {
                queued.push(w, rows);
                plan_next()
            }
        }
    }

    /// Writes the group's last rows and commits; `new_head`: the head `seq` after the
    /// group when it appended entries (PostgreSQL notifies the other nodes of it).
    pub(super) async fn write_and_commit(&mut self, rows: Rows, queued: Queued, new_head: Option<i64>) -> Result<(), GroupFailure> {
        match &mut self.0 {
            Backend::Pg(c) => pg::write_and_commit(c, rows, new_head).await,
            Backend::Sqlite(w) => sqlite::write_and_commit(w, rows, queued).await,
        }
    }

    pub(super) async fn rollback(&mut self) -> QueryResult<()> {
        on_backend!(&mut self.0, |c| c.batch_execute("ROLLBACK").await)
    }

    /// SQLite: makes the WAL start over, waiting up to `wait`; false when it could not.
    pub(super) async fn restart_wal(&mut self, wait: Duration, busy_timeout: Duration) -> bool {
        match &mut self.0 {
            Backend::Pg(_) => false,
            Backend::Sqlite(w) => sqlite::restart_wal(w, wait, busy_timeout).await,
        }
    }
}
