//! SQLite checkpoints on a thread of their own.
//!
//! In WAL mode a commit appends the transaction's pages to the WAL and syncs it; the
//! checkpoint copies them back into the database file. Left to SQLite, the checkpoint runs
//! inside the COMMIT that crosses 1,000 WAL pages, on the appender's thread, so the appender
//! waits for it (a third of a large group's time). Here the write connection never
//! checkpoints (`wal_autocheckpoint = 0`); it reports how much it committed, and this
//! thread, with its own connection, copies pages back while the appender builds the next
//! group: a PASSIVE checkpoint once [`CHECKPOINT_AFTER_BYTES`] have been committed since
//! the last one (or a second after the last commit).
//!
//! A PASSIVE checkpoint never blocks the appender, but SQLite only rewinds the WAL when a
//! write transaction starts with every frame copied back, which an appender that never
//! pauses does not give it: the WAL would grow for as long as ingestion goes on. Once the
//! WAL holds `SQLITE_WAL_LIMIT_MB` of frames, the appender, between two transactions, runs a
//! RESTART checkpoint itself ([`Checkpointer::restart_due`]): it copies what the thread
//! has not (about the last group), and the next transaction starts the WAL over. The WAL
//! stays within about that limit (64 MiB by default) plus one group. If the thread's
//! checkpoints fall behind (a disk slow to sync) or the RESTART keeps finding readers on
//! old frames, the appender, past twice the limit by its own count, waits for the RESTART,
//! holding back ingestion: the WAL stays bounded whatever the disk does.

use super::sqlite_pragmas::{pragmas, SqliteRole};
use diesel::connection::SimpleConnection;
use diesel::sql_types::Integer;
use diesel::{Connection, QueryableByName, RunQueryDsl, SqliteConnection};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::time::Duration;

/// Committed bytes (estimated from the entries) that wake the checkpointer. SQLite's own
/// default is 1,000 pages, about as much.
pub(crate) const CHECKPOINT_AFTER_BYTES: u64 = 4 << 20;
/// Committed bytes since the last restart, in WAL limits, past which the appender waits for
/// its RESTART checkpoint instead of trying it ([`Restart::Wait`]). The appender's count is
/// an estimate below what the WAL takes (whole pages), so the WAL stays within about
/// three limits.
const RESTART_WAIT_AFTER_LIMITS: u64 = 2;
/// How long committed pages may wait for a checkpoint when commits stop coming.
const IDLE_CHECKPOINT: Duration = Duration::from_secs(1);

#[derive(QueryableByName)]
pub(crate) struct CheckpointResult {
    #[diesel(sql_type = Integer)]
    pub busy: i32,
    /// Frames in the WAL.
    #[diesel(sql_type = Integer)]
    log: i32,
    /// Frames copied back into the database file.
    #[diesel(sql_type = Integer)]
    checkpointed: i32,
}

#[derive(QueryableByName)]
struct PageSize {
    #[diesel(sql_type = Integer)]
    page_size: i32,
}

/// The appender's handle: dropping it stops the thread.
pub(crate) struct Checkpointer {
    pending: Arc<AtomicU64>,
    wake: SyncSender<()>,
    /// Set by the thread when the WAL has grown past its limit.
    restart: Arc<AtomicBool>,
    /// Committed bytes that wake the thread: [`CHECKPOINT_AFTER_BYTES`], or half the WAL
    /// limit when that is smaller.
    wake_after: u64,
    /// Committed bytes (the appender's estimate) since the WAL last started over.
    since_restart: AtomicU64,
    wal_limit: u64,
}

/// What the appender does about the WAL after a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Restart {
    /// Nothing: the WAL is within its limit.
    No,
    /// Try a RESTART checkpoint, giving up soon if readers or the thread's checkpoint are
    /// in its way (the next commit tries again).
    Try,
    /// The WAL is well past its limit: the thread's checkpoints fell behind (a slow disk)
    /// or tries kept failing. Wait for the RESTART as long as for any lock, holding back
    /// ingestion meanwhile, so that the WAL stays bounded.
    Wait,
}

impl Checkpointer {
    /// Opens the checkpoint connection and starts the thread. `wal_limit`: WAL bytes past
    /// which the appender is asked to make the WAL start over.
    pub(crate) fn start(path: &str, busy_timeout: Duration, wal_limit: u64) -> Result<Checkpointer, String> {
        let mut conn = SqliteConnection::establish(path).map_err(|e| e.to_string())?;
        let page_size: PageSize = diesel::sql_query("PRAGMA page_size").get_result(&mut conn).map_err(|e| e.to_string())?;
        // A frame is a page plus a 24-byte header.
        let limit_frames = i32::try_from(wal_limit / (page_size.page_size.max(512) as u64 + 24)).unwrap_or(i32::MAX).max(1);
        conn.batch_execute(&pragmas(SqliteRole::Checkpointer, busy_timeout, wal_limit))
            .map_err(|e| e.to_string())?;
        let pending = Arc::new(AtomicU64::new(0));
        let restart = Arc::new(AtomicBool::new(false));
        let (wake, signals) = mpsc::sync_channel::<()>(1);
        let (counter, flag) = (pending.clone(), restart.clone());
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(conn, limit_frames, counter, flag, signals))
            .map_err(|e| e.to_string())?;
        Ok(Checkpointer {
            pending,
            wake,
            restart,
            wake_after: CHECKPOINT_AFTER_BYTES.min(wal_limit / 2).max(1),
            since_restart: AtomicU64::new(0),
            wal_limit,
        })
    }

    /// Whether the appender should run a RESTART checkpoint before its next transaction, and
    /// how hard: the thread found the WAL past its limit (try), or the appender committed
    /// [`RESTART_WAIT_AFTER_LIMITS`] limits since the last restart (wait). Until the appender reports [`Checkpointer::restarted`], the
    /// thread leaves the WAL to it.
    pub(crate) fn restart_due(&self) -> Restart {
        let since = self.since_restart.load(Ordering::Relaxed);
        if since >= RESTART_WAIT_AFTER_LIMITS * self.wal_limit {
            Restart::Wait
        } else if self.restart.load(Ordering::Relaxed) {
            Restart::Try
        } else {
            Restart::No
        }
    }

    /// The appender's RESTART checkpoint succeeded: the WAL starts over.
    pub(crate) fn restarted(&self) {
        self.restart.store(false, Ordering::Relaxed);
        self.since_restart.store(0, Ordering::Relaxed);
    }

    /// Called after each commit with the size of what it wrote.
    pub(crate) fn committed(&self, bytes: u64) {
        self.since_restart.fetch_add(bytes, Ordering::Relaxed);
        let total = self.pending.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if total >= self.wake_after {
            // Full means a wake-up is already queued.
            let _ = self.wake.try_send(());
        }
    }
}

fn run(
    mut conn: SqliteConnection,
    limit_frames: i32,
    pending: Arc<AtomicU64>,
    restart: Arc<AtomicBool>,
    signals: mpsc::Receiver<()>,
) {
    loop {
        match signals.recv_timeout(IDLE_CHECKPOINT) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) if pending.load(Ordering::Relaxed) > 0 => {}
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if restart.load(Ordering::Relaxed) {
            // The appender checkpoints next; running beside it would only make it wait.
            continue;
        }
        pending.store(0, Ordering::Relaxed);
        match checkpoint(&mut conn, "PASSIVE") {
            Ok(r) if r.log >= limit_frames => restart.store(true, Ordering::Relaxed),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "WAL checkpoint failed"),
        }
    }
}

/// Runs one checkpoint; `mode` is PASSIVE, FULL, RESTART or TRUNCATE.
pub(crate) fn checkpoint(conn: &mut SqliteConnection, mode: &str) -> Result<CheckpointResult, diesel::result::Error> {
    let r = diesel::sql_query(format!("PRAGMA wal_checkpoint({mode})")).get_result::<CheckpointResult>(conn)?;
    tracing::debug!(mode, busy = r.busy, frames = r.log, copied = r.checkpointed, "WAL checkpoint");
    Ok(r)
}
