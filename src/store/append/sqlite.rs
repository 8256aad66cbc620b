//! The SQLite half of the appender: its connection on a thread of its own, the BEGIN that
//! takes the write lock, the group's rows as multi-row INSERTs, and the WAL restart.
//!
//! Log, address and block rows go in multi-row INSERTs of fixed sizes (written by
//! [`crate::store::multi_insert`]), new principals in chunks of [`INSERT_CHUNK`] rows (by
//! diesel). All of it runs on the connection's own thread ([`ConnThread`]), in the order
//! handed over.
//!
//! [`ConnThread`]: crate::store::conn_thread::ConnThread

use super::group::Rows;
use super::GroupFailure;
use crate::store::classify;
use crate::store::conn_thread::{RunInline, SqliteWriteConn};
use crate::store::connect::{establish_sqlite_appender, Inner};
use crate::store::multi_insert::{AddressRows, BlockUpdates, Insert, LogRows, NewBlocks, RecentAddressRows};
use crate::store::prepared::{bind, Prepared};
use crate::store::rows::BlockRow;
use crate::store::schema::principals;
use crate::store::sqlite_pragmas::{pragmas, SqliteRole};
use crate::store::StoreError;
use diesel::connection::SimpleConnection;
use diesel::{QueryResult, QueryableByName, RunQueryDsl, SqliteConnection};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Rows per multi-row INSERT of new principals: below SQLite's bind-parameter limit
/// (32,766).
const INSERT_CHUNK: usize = 1_000;
/// Block identifiers per lookup as a group begins.
const LOOKUP_CHUNK: usize = 1_000;
/// Log rows of a group's first stretch. SQLite's thread waits while it is planned; once the
/// first is handed over, the planner keeps ahead of the thread (it is about twice as fast),
/// so the later stretches can be long. PostgreSQL's stretches go in lockstep with the
/// planner, so it keeps one size.
pub(super) const FIRST_STRETCH_ROWS: usize = 64;
/// How long the RESTART checkpoint waits, when it only tries ([`Restart::Try`]), for readers
/// still on old WAL frames before it gives up until the next commit.
///
/// [`Restart::Try`]: crate::store::checkpoint::Restart::Try
pub(super) const WAL_RESTART_WAIT: Duration = Duration::from_millis(100);

/// The appender's SQLite connection, and the handle that runs its next job on the
/// appender's thread instead of the connection's.
pub(crate) struct SqliteAppender {
    conn: SqliteWriteConn,
    inline: RunInline,
}

impl std::ops::Deref for SqliteAppender {
    type Target = SqliteWriteConn;
    fn deref(&self) -> &SqliteWriteConn {
        &self.conn
    }
}

impl std::ops::DerefMut for SqliteAppender {
    fn deref_mut(&mut self) -> &mut SqliteWriteConn {
        &mut self.conn
    }
}

/// Opens the appender's connection on a thread of its own. Checkpoints run beside it
/// ([`crate::store::checkpoint`]), so it never checkpoints itself.
pub(super) async fn open(inner: &Inner) -> Result<SqliteAppender, StoreError> {
    let path = inner.sqlite_path().ok_or_else(|| StoreError::Config("SQLite path is not UTF-8".into()))?;
    let settings = &inner.config;
    let (mut conn, inline) = establish_sqlite_appender(path)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    let pragmas = pragmas(SqliteRole::Appender, settings.sqlite_busy_timeout, settings.sqlite_wal_limit_bytes);
    diesel_async::SimpleAsyncConnection::batch_execute(&mut conn, &pragmas)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    Ok(SqliteAppender { conn, inline })
}

/// The `blocks` rows of the block identifiers in a JSON array of `[height, hash]`. diesel
/// writes `IN (?, ?, …)` for a list on SQLite, a new statement per length; one JSON array
/// bind keeps one statement prepared.
const BLOCKS_BY_ID: &str = "SELECT block_hash, block_height, parent_hash, canonical, last_seq, \
    applied_seq FROM blocks WHERE (block_height, block_hash) IN \
    (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))";

/// The log's head and the highest stored block height, in one statement.
const HEAD_AND_TOP: &str =
    "SELECT (SELECT max(seq) FROM log_entries) AS head, (SELECT max(block_height) FROM blocks) AS top";

#[derive(QueryableByName)]
struct HeadAndTop {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    head: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    top: Option<i64>,
}

/// `BEGIN IMMEDIATE` (the write lock up front), the head and the group's `blocks` rows, in
/// one job. Blocks above the highest stored height (a chain's new blocks, most of what a
/// group names) cannot have a row and are not looked for: the highest height comes with the
/// head, and only the blocks at or below it, usually none, are looked up, by key.
///
/// The appender waits for this job with nothing else to do, so it runs on the appender's
/// own thread ([`RunInline`]), sparing two hand-overs between threads.
pub(super) async fn begin(w: &mut SqliteAppender, ids: Vec<(i64, String)>) -> QueryResult<(Option<i64>, Vec<BlockRow>)> {
    w.inline.next_job();
    w.conn
        .spawn_blocking(move |c| {
            c.batch_execute("BEGIN IMMEDIATE")?;
            let HeadAndTop { head, top } = RunQueryDsl::get_result(Prepared::new(HEAD_AND_TOP, ()), c)?;
            let mut rows = Vec::new();
            let Some(top) = top else { return Ok((head, rows)) };
            let stored: Vec<&(i64, String)> = ids.iter().filter(|(height, _)| *height <= top).collect();
            for chunk in stored.chunks(LOOKUP_CHUNK) {
                let list =
                    serde_json::to_string(chunk).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
                let query = Prepared::new(BLOCKS_BY_ID, (bind::<diesel::sql_types::Text, _>(list),));
                let found: Vec<BlockRow> = RunQueryDsl::load(query, c)?;
                rows.extend(found);
            }
            Ok((head, rows))
        })
        .await
}

/// Stretches of a group handed to the connection's thread and not yet answered.
///
/// The thread runs them in order, so the appender plans the next stretch meanwhile instead
/// of waiting for each: the connection's thread goes from one stretch to the next, and the
/// appender waits once, for the COMMIT. A lookup the appender makes meanwhile (new
/// principals) runs after the stretches handed over before it, as when each was awaited.
/// After a failed stretch the later ones and the COMMIT are skipped (`failed`), and the
/// group fails with the first error.
#[derive(Default)]
pub(super) struct Queued {
    written: Vec<futures_util::future::BoxFuture<'static, QueryResult<Result<(), StoreError>>>>,
    failed: Arc<AtomicBool>,
}

impl Queued {
    pub(super) fn push(&mut self, w: &mut SqliteAppender, rows: Rows) {
        let failed = self.failed.clone();
        self.written.push(w.conn.spawn_blocking(move |c| Ok(write_unless_failed(c, rows, &failed))));
    }

    /// The first error of the stretches handed over, once all have run.
    async fn first_error(self) -> Result<(), StoreError> {
        for written in self.written {
            written.await.map_err(classify)??;
        }
        Ok(())
    }
}

/// Writes a group's last rows and commits, in one job after the stretches `queued`, and
/// only if none of them failed.
pub(super) async fn write_and_commit(w: &mut SqliteAppender, rows: Rows, queued: Queued) -> Result<(), GroupFailure> {
    let failed = queued.failed.clone();
    let committed = w
        .conn
        .spawn_blocking(move |c| {
            if let Err(e) = write_unless_failed(c, rows, &failed) {
                return Ok(Err(GroupFailure::Statement(e)));
            }
            if failed.load(Ordering::Acquire) {
                // The stretch that failed reports why, below.
                return Ok(Ok(false));
            }
            Ok(c.batch_execute("COMMIT").map(|()| true).map_err(|e| GroupFailure::Commit(classify(e))))
        })
        .await
        .map_err(|e| GroupFailure::Commit(classify(e)))??;
    // Every stretch has run by now (the thread keeps the order).
    queued.first_error().await?;
    if committed {
        Ok(())
    } else {
        Err(GroupFailure::Statement(StoreError::Corrupt("a stretch failed without an error".into())))
    }
}

/// Makes the WAL start over (see [`crate::store::checkpoint`]), between transactions,
/// waiting up to `wait` for readers on old frames and the checkpoint thread. False when it
/// could not (still busy after `wait`, or an error): the next commit tries again.
pub(super) async fn restart_wal(w: &mut SqliteAppender, wait: Duration, busy_timeout: Duration) -> bool {
    let restore = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
    let wait_ms = wait.as_millis();
    let done = w
        .conn
        .spawn_blocking(move |c| {
            c.batch_execute(&format!("PRAGMA busy_timeout = {wait_ms}"))?;
            let result = crate::store::checkpoint::checkpoint(c, "RESTART");
            c.batch_execute(&restore)?;
            result
        })
        .await;
    match done {
        Ok(r) => r.busy == 0,
        Err(e) => {
            tracing::warn!(error = %e, "WAL restart checkpoint failed");
            false
        }
    }
}

/// Runs the statement `$stmt` (a multi-row INSERT of the slice `$chunk`) over `$rows` in
/// fixed sizes (512 rows, then the rest in powers of two). Each size is one statement
/// text, prepared once per connection and kept in diesel's cache (ten sizes per table);
/// a statement of any other size would be parsed anew each time (7,168 placeholders for
/// 512 log rows).
macro_rules! in_fixed_chunks {
    ($c:expr, $rows:expr, |$chunk:ident| $stmt:expr) => {{
        let mut rest = &$rows[..];
        in_fixed_chunks!(@sizes $c, rest, $chunk, $stmt, [512, 256, 128, 64, 32, 16, 8, 4, 2, 1]);
    }};
    (@sizes $c:expr, $rest:ident, $chunk:ident, $stmt:expr, [$($n:literal),+]) => {$(
        while $rest.len() >= $n {
            let (head, tail) = $rest.split_at($n);
            let $chunk: &[_; $n] = head
                .try_into()
                .map_err(|_| StoreError::Corrupt(format!("a chunk of {} rows", $n)))?;
            $stmt.execute($c).map_err(classify)?;
            $rest = tail;
        }
    )+};
}

/// [`write`], unless a stretch of the group before this one failed; a failure here is
/// marked in `failed` for the stretches after it and the COMMIT, a panic included.
fn write_unless_failed(c: &mut SqliteConnection, w: Rows, failed: &AtomicBool) -> Result<(), StoreError> {
    if failed.load(Ordering::Acquire) {
        return Ok(());
    }
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(c, w)))
        .unwrap_or_else(|_| Err(StoreError::Corrupt("writing a stretch panicked".into())));
    if written.is_err() {
        failed.store(true, Ordering::Release);
    }
    written
}

fn write(c: &mut SqliteConnection, w: Rows) -> Result<(), StoreError> {
    for chunk in w.principals.chunks(INSERT_CHUNK) {
        diesel::insert_into(principals::table).values(chunk).execute(c).map_err(classify)?;
    }
    in_fixed_chunks!(c, w.log, |chunk| Insert(LogRows, chunk));
    if w.staged {
        in_fixed_chunks!(c, w.addresses, |chunk| Insert(RecentAddressRows, chunk));
    } else {
        in_fixed_chunks!(c, w.addresses, |chunk| Insert(AddressRows, chunk));
    }
    in_fixed_chunks!(c, w.new_blocks, |chunk| Insert(NewBlocks, chunk));
    // A group names each block once (the planner's touched list), so no chunk holds a
    // key twice.
    in_fixed_chunks!(c, w.blocks, |chunk| Insert(BlockUpdates, chunk));
    for chunk in w.ops.chunks(INSERT_CHUNK) {
        diesel::insert_into(crate::store::schema::op_log::table).values(chunk).execute(c).map_err(classify)?;
    }
    Ok(())
}
