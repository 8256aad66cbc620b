//! The one connection that appends to the log.
//!
//! A group of payloads is written in one transaction: read the head and the canonical
//! state of the blocks involved, plan the rows in memory (`super::plan`), then insert
//! them in a few multi-row statements. On PostgreSQL the transaction first takes an
//! advisory lock, so several server nodes appending to one database still produce one
//! gap-free order; on SQLite it begins `IMMEDIATE`, taking the write lock up front.

use super::checkpoint::{Checkpointer, Restart};
use super::connect::{establish_pg, establish_sqlite_writer, Backend, Inner, RunInline, SqliteWriteConn as SqliteConn};
use super::entry::{BodyFields, LogEntry};
use super::read::block_events;
use super::plan::{self, BlockState, EventDetail, FastMap, FastSet, Snapshot};
use super::prepared::{bind, Prepared};
use super::rows::{AddressRow, BlockRow, LogRow, PrincipalRow};
use super::schema::{address_recent, log_entries, principals};
use super::StoreError;
use crate::model::{EventType, Payload};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::collections::BTreeSet;
use std::sync::Arc;

pub use super::plan::IngestReport;

/// Key of the transaction-level advisory lock every appending node takes on PostgreSQL.
pub const PG_APPEND_LOCK: i64 = 0x7469_6d65_6c6f; // "timelo"

/// Rows per multi-row INSERT of new principals on SQLite: below its bind-parameter limit
/// (32,766).
const INSERT_CHUNK: usize = 1_000;
/// Page cache of the SQLite write connection (SQLite's default is 2 MiB). The address index
/// takes one insert per principal per event, spread over as many leaf pages as there are
/// busy principals; with the default cache a group re-reads most of them from the OS.
const SQLITE_WRITER_CACHE_KIB: u32 = 64 * 1024;
/// `work_mem` of the PostgreSQL write connection. `unnest` over the group's column arrays
/// is a function scan, which materialises its rows: a group's bodies (up to
/// `WRITER_MAX_BATCH_EVENTS` events of ~0.5–1 KiB) would spill past the 4 MB default to a
/// temporary file and be read back.
const PG_WRITER_WORK_MEM: &str = "64MB";
/// Values per `IN (…)` list when loading state.
const LOOKUP_CHUNK: usize = 1_000;
/// Principal and contract numbers the writer remembers. Past this many it forgets them
/// all and looks up again, a query per group for the names it has not seen since.
const NAME_CACHE: usize = 262_144;

/// The result of one committed group.
#[derive(Debug)]
pub struct Appended {
    /// One report per payload, in the order given.
    pub reports: Vec<IngestReport>,
    /// Every entry committed, in `seq` order.
    pub entries: Vec<LogEntry>,
    pub head_seq: i64,
}

enum WriteConn {
    /// Boxed: five times the size of the SQLite handle.
    Pg(Box<AsyncPgConnection>),
    /// The connection, on a thread of its own, and the handle that runs its next job on
    /// the writer's thread instead.
    Sqlite(SqliteConn, RunInline),
}

macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            WriteConn::Pg(boxed) => {
                let $c = &mut **boxed;
                $body
            }
            WriteConn::Sqlite($c, _) => $body,
        }
    };
}

/// Holds the write connection; reconnects after a failure.
pub struct LogWriter {
    inner: Arc<Inner>,
    conn: Option<WriteConn>,
    /// Committed `principals` rows: name → number. Numbers are never changed, so an entry
    /// stays true; only rows of committed transactions get here.
    names: FastMap<String, i64>,
    /// SQLite: copies committed pages back into the database file off the commit path.
    checkpointer: Option<Checkpointer>,
    /// Rows in `address_recent` as of the last commit; `None` until counted (after a
    /// connect, or a commit whose outcome is unknown).
    staged: Option<u64>,
}

impl LogWriter {
    pub(crate) async fn open(inner: Arc<Inner>) -> Result<LogWriter, StoreError> {
        let mut writer = LogWriter { inner, conn: None, names: FastMap::default(), checkpointer: None, staged: None };
        writer.connect().await?;
        Ok(writer)
    }

    async fn connect(&mut self) -> Result<&mut WriteConn, StoreError> {
        if self.conn.is_none() {
            let conn = match &self.inner.backend {
                Backend::Pg(_) => {
                    let handle = self
                        .inner
                        .db_runtime
                        .handle()
                        .ok_or_else(|| StoreError::Unavailable("database runtime stopped".into()))?;
                    let url = match &self.inner.config.url {
                        super::DatabaseUrl::Postgres(u) => u.clone(),
                        super::DatabaseUrl::Sqlite(_) => unreachable!("backend matches url"),
                    };
                    let fut = establish_pg(handle, url);
                    let mut conn = tokio::time::timeout(self.inner.config.connect_timeout, fut)
                        .await
                        .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    conn.batch_execute(&format!("SET work_mem = '{PG_WRITER_WORK_MEM}'"))
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    WriteConn::Pg(Box::new(conn))
                }
                Backend::Sqlite(_) => {
                    let path = self
                        .inner
                        .sqlite_path()
                        .ok_or_else(|| StoreError::Config("SQLite path is not UTF-8".into()))?;
                    let (mut conn, inline) = establish_sqlite_writer(path.clone(), self.inner.config.sqlite_busy_timeout)
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    // Checkpoints run beside the writer (super::checkpoint); when the WAL
                    // starts over, a file that grew past the limit is cut back to it.
                    conn.batch_execute(&format!(
                        "PRAGMA cache_size = -{SQLITE_WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 0; \
                         PRAGMA journal_size_limit = {};",
                        self.inner.config.sqlite_wal_limit_bytes
                    ))
                    .await
                    .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    if self.checkpointer.is_none() {
                        let config = &self.inner.config;
                        let checkpointer =
                            Checkpointer::start(&path, config.sqlite_busy_timeout, config.sqlite_wal_limit_bytes)
                                .map_err(StoreError::Unavailable)?;
                        self.checkpointer = Some(checkpointer);
                    }
                    WriteConn::Sqlite(conn, inline)
                }
            };
            self.conn = Some(conn);
        }
        self.conn
            .as_mut()
            .ok_or_else(|| StoreError::Unavailable("no write connection".into()))
    }

    /// Appends a group of payloads atomically: all of them or none.
    pub async fn append(&mut self, payloads: Vec<Payload>) -> Result<Appended, StoreError> {
        let mut phases = Phases::start(payloads.len());
        self.connect().await?;
        let Some(conn) = self.conn.as_mut() else {
            return Err(StoreError::Unavailable("no write connection".into()));
        };
        let WantedBlocks { ids, rolled } = WantedBlocks::of(&payloads);
        let started = match conn {
            WriteConn::Pg(c) => pg_begin(c, &ids).await,
            WriteConn::Sqlite(c, inline) => {
                // The writer waits for BEGIN (tens of µs) with nothing else to do: it runs
                // it on its own thread, sparing two hand-overs (see `ConnThread`).
                inline.next_job();
                sqlite_begin(c, ids).await
            }
        };
        let (head, block_rows) = match started {
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
        match append_in_transaction(conn, &self.names, payloads, start, staging, &mut phases).await {
            Ok((appended, numbered, staged)) => {
                self.staged = staged;
                phases.log(appended.entries.len());
                if self.names.len() + numbered.len() > NAME_CACHE {
                    self.names.clear();
                }
                self.names.extend(numbered);
                if let Some(checkpointer) = &self.checkpointer {
                    checkpointer.committed(committed_bytes(&appended.entries));
                    let busy_timeout = self.inner.config.sqlite_busy_timeout;
                    let wait = match checkpointer.restart_due() {
                        Restart::No => None,
                        Restart::Try => Some(std::time::Duration::from_millis(WAL_RESTART_WAIT_MS)),
                        Restart::Wait => Some(busy_timeout),
                    };
                    if let Some(wait) = wait {
                        if restart_wal(conn, wait, busy_timeout).await {
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
                if on_conn!(conn, |c| c.batch_execute("ROLLBACK").await).is_err() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }
}

/// How long the writer's RESTART checkpoint waits, when it only tries ([`Restart::Try`]),
/// for readers still on old WAL frames before it gives up until the next commit
/// (ingestion waits meanwhile).
const WAL_RESTART_WAIT_MS: u64 = 100;

/// Makes the SQLite WAL start over (see [`super::checkpoint`]), between transactions,
/// waiting up to `wait` for readers on old frames and the checkpoint thread. False when it
/// could not (still busy after `wait`, or an error): the next commit tries again.
async fn restart_wal(conn: &mut WriteConn, wait: std::time::Duration, busy_timeout: std::time::Duration) -> bool {
    let WriteConn::Sqlite(c, _) = conn else { return false };
    let restore = format!("PRAGMA busy_timeout = {}", busy_timeout.as_millis());
    let wait_ms = wait.as_millis();
    let done = c
        .spawn_blocking(move |c| {
            use diesel::connection::SimpleConnection;
            c.batch_execute(&format!("PRAGMA busy_timeout = {wait_ms}"))?;
            let result = super::checkpoint::checkpoint(c, "RESTART");
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

/// About what a group's commit adds to the WAL: the bodies, plus rows' other columns and
/// index entries.
fn committed_bytes(entries: &[LogEntry]) -> u64 {
    entries.iter().map(|e| e.body.len() as u64 + 256).sum()
}

#[derive(Clone, Copy)]
enum Phase {
    Begin,
    Load,
    Plan,
    Write,
    Commit,
}

/// Where a group commit's time goes, logged at debug level (`RUST_LOG=timebank_realtime=debug`).
/// `plan_us` is the first stretch's planning; the later stretches are planned while earlier
/// ones are written, inside `write_us`. `commit_us` holds the last stretch's rows with the
/// COMMIT (one call on SQLite).
struct Phases {
    payloads: usize,
    last: std::time::Instant,
    micros: [u128; 5],
}

impl Phases {
    fn start(payloads: usize) -> Phases {
        Phases { payloads, last: std::time::Instant::now(), micros: [0; 5] }
    }

    fn lap(&mut self, phase: Phase) {
        let now = std::time::Instant::now();
        self.micros[phase as usize] += now.duration_since(self.last).as_micros();
        self.last = now;
    }

    fn log(&self, entries: usize) {
        let [begin_us, load_us, plan_us, write_us, commit_us] = self.micros;
        tracing::debug!(payloads = self.payloads, entries, begin_us, load_us, plan_us, write_us, commit_us, "group appended");
    }
}

/// A failed statement on a connection that is gone means the store is down.
fn classify(e: diesel::result::Error) -> StoreError {
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_string())
        }
        E::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
        other => StoreError::Query(other),
    }
}

/// Staged address rows.
///
/// Each entry has one address row per principal it touches, keyed `(principal, seq)`. A
/// group of a busy dApp touches thousands of principals, so inserted straight into the
/// index its rows land on as many leaf pages, and SQLite writes every page a commit dirtied
/// to the WAL (4 KiB for a 16-byte row), then copies it into the database file: with 10,000
/// principals that was over half of ingest time. So the writer inserts them into the small
/// `address_recent` instead, and once it holds `limit` rows, moves them all into
/// `address_entries` in one sorted pass, in the next group's transaction: each index page
/// is then written once per merge instead of once per group. Readers look in both tables
/// ([`super::read::touches`]); a merge is atomic, so each row is in exactly one.
#[derive(Clone, Copy)]
struct Staging {
    /// Rows staged before a merge; 0: no staging, rows go straight into the index.
    limit: u64,
    /// Rows staged now, if known.
    staged: Option<u64>,
}

const MERGE_ADDRESSES: &str =
    "INSERT INTO address_entries (principal, seq) SELECT principal, seq FROM address_recent ORDER BY principal, seq";
/// PostgreSQL: TRUNCATE, not DELETE, so no dead rows wait for VACUUM. It locks the table
/// until COMMIT: an address query waits for the merging group, once per `limit` rows.
const EMPTY_RECENT_PG: &str = "TRUNCATE address_recent";
/// SQLite runs a DELETE without WHERE as a truncation.
const EMPTY_RECENT_SQLITE: &str = "DELETE FROM address_recent";

/// Moves every staged address row into the index, when `staging` says it is time. Returns
/// the rows staged afterwards (`None` without staging).
async fn merge_addresses(conn: &mut WriteConn, staging: Staging) -> Result<Option<u64>, StoreError> {
    if staging.limit == 0 {
        return Ok(None);
    }
    let staged = match staging.staged {
        Some(n) => n,
        None => {
            let n: i64 = on_conn!(conn, |c| address_recent::table.count().get_result(c).await).map_err(classify)?;
            n.max(0) as u64
        }
    };
    if staged < staging.limit {
        return Ok(Some(staged));
    }
    let empty = match conn {
        WriteConn::Pg(_) => EMPTY_RECENT_PG,
        WriteConn::Sqlite(..) => EMPTY_RECENT_SQLITE,
    };
    on_conn!(conn, |c| c.batch_execute(&format!("{MERGE_ADDRESSES}; {empty};")).await).map_err(classify)?;
    tracing::debug!(rows = staged, "address rows merged");
    Ok(Some(0))
}

/// Log rows per stretch of a group that is written while the next stretch is planned: at
/// least this many, else an eighth of the group. Each stretch costs the writer one more
/// trip to the database (a round trip on PostgreSQL, a hand-over to the connection's thread
/// on SQLite).
const STRETCH_MIN_ROWS: usize = 256;
const STRETCHES_PER_GROUP: usize = 8;
/// SQLite: log rows of a group's first stretch. SQLite's thread waits while it is planned;
/// once the first is handed over, the planner keeps ahead of the thread (it is about twice
/// as fast), so the later stretches can be long. 1-event blocks, A/B: +4% (64 and 1,024 in
/// flight); PostgreSQL, whose stretches go in lockstep with the planner, gained nothing.
const SQLITE_FIRST_STRETCH_ROWS: usize = 64;

/// How a group that did not commit ended.
enum GroupFailure {
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

/// Appends inside the open transaction and commits it. Also returns the principal numbers
/// this group looked up or made, for the cache, and the address rows staged after it.
///
/// The group is planned in stretches of payloads: while one stretch's rows are written,
/// the next is planned, so the database (or SQLite's thread) and the planner work at once
/// instead of in turn. Block rows go last, once the whole group is planned. It is still one
/// transaction, and the rows are the ones planning the group at once would give.
async fn append_in_transaction(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    payloads: Vec<Payload>,
    start: GroupStart,
    staging: Staging,
    phases: &mut Phases,
) -> Result<(Appended, FastMap<String, i64>, Option<u64>), GroupFailure> {
    let head = start.head;
    let snapshot = load_snapshot(conn, start).await?;
    let mut staged = merge_addresses(conn, staging).await?;
    phases.lap(Phase::Load);
    let committed_at = chrono::Utc::now().timestamp_millis();
    let expected_rows: usize = payloads.iter().map(|p| p.apply_event_count() + p.apply.len()).sum();
    let stretch = (expected_rows / STRETCHES_PER_GROUP).max(STRETCH_MIN_ROWS);
    let mut planner = plan::Planner::new(head, snapshot, &payloads, committed_at);
    let mut payloads = payloads.into_iter();
    let first = match conn {
        WriteConn::Sqlite(..) => stretch.min(SQLITE_FIRST_STRETCH_ROWS),
        WriteConn::Pg(_) => stretch,
    };
    plan_stretch(&mut planner, &mut payloads, first)?;
    phases.lap(Phase::Plan);

    let mut numbered = FastMap::default();
    let mut queued = Queued::default();
    loop {
        let last = payloads.len() == 0;
        let taken = planner.take_rows();
        let mut rows = numbered_rows(conn, known, &mut numbered, taken, staged.is_some()).await?;
        staged = staged.map(|n| n + rows.addresses.len() as u64);
        if last {
            let plan = planner.finish()?;
            let plan::Plan { writes, reports, entries, head } = plan;
            debug_assert!(writes.rows.is_empty() && writes.addresses.is_empty());
            rows.new_blocks = writes.new_blocks;
            rows.blocks = writes.block_upserts;
            phases.lap(Phase::Write);
            write_and_commit(conn, rows, queued).await?;
            phases.lap(Phase::Commit);
            return Ok((Appended { reports, entries, head_seq: head }, numbered, staged));
        }
        match conn {
            WriteConn::Pg(c) => {
                let written = pg_write::write(c, rows);
                let planned = async { plan_stretch(&mut planner, &mut payloads, stretch) };
                let (written, planned) = futures_util::future::join(written, planned).await;
                written?;
                planned?;
            }
            WriteConn::Sqlite(c, _) => {
                queued.push(c, rows);
                plan_stretch(&mut planner, &mut payloads, stretch)?;
            }
        }
    }
}

/// SQLite: stretches of a group handed to the connection's thread and not yet answered.
///
/// The thread runs them in order ([`super::connect::ConnThread`]), so the writer plans the
/// next stretch meanwhile instead of waiting for each: the connection's thread goes from one
/// stretch to the next, and the writer waits once, for the COMMIT. A lookup the writer makes
/// meanwhile (new principals) runs after the stretches handed over before it, as when each
/// was awaited. After a failed stretch the later ones and the COMMIT are skipped
/// (`failed`), and the group fails with the first error.
#[derive(Default)]
struct Queued {
    written: Vec<futures_util::future::BoxFuture<'static, QueryResult<Result<(), StoreError>>>>,
    failed: Arc<std::sync::atomic::AtomicBool>,
}

impl Queued {
    fn push(&mut self, c: &mut SqliteConn, rows: Rows) {
        let failed = self.failed.clone();
        self.written.push(c.spawn_blocking(move |c| Ok(sync_write::write_unless_failed(c, rows, &failed))));
    }

    /// The first error of the stretches handed over, once all have run.
    async fn first_error(self) -> Result<(), StoreError> {
        for written in self.written {
            written.await.map_err(classify)??;
        }
        Ok(())
    }
}

/// Plans payloads until `rows` log rows wait to be written or the payloads run out.
fn plan_stretch(
    planner: &mut plan::Planner,
    payloads: &mut std::vec::IntoIter<Payload>,
    rows: usize,
) -> Result<(), StoreError> {
    while planner.pending_rows() < rows {
        match payloads.next() {
            Some(payload) => planner.push(payload)?,
            None => break,
        }
    }
    Ok(())
}

/// A stretch's rows with their keys numbered: contract ids and principals get the numbers
/// `known` or `numbered` hold, or new ones (added to `numbered`, and their `principals`
/// rows to the result).
async fn numbered_rows(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    numbered: &mut FastMap<String, i64>,
    taken: plan::Taken<'_>,
    staged: bool,
) -> Result<Rows, StoreError> {
    let plan::Taken { mut rows, addresses, entries } = taken;
    let new_principals = number_names(conn, known, numbered, entries, &addresses).await?;
    let number = |name: &str| {
        known.get(name).or_else(|| numbered.get(name)).copied().ok_or_else(|| {
            StoreError::Corrupt(format!("principal {name} has no number"))
        })
    };
    debug_assert!(rows.iter().zip(entries).all(|(r, e)| r.seq == e.seq) && rows.len() == entries.len());
    for (row, entry) in rows.iter_mut().zip(entries) {
        if let Some(contract) = &entry.contract_id {
            row.contract_key = Some(number(contract)?);
        }
    }
    let mut address_rows = addresses
        .iter()
        .map(|(name, seq)| Ok(AddressRow { principal: number(name)?, seq: *seq }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // In key order, consecutive inserts into the address index land on the same or the
    // next leaf page instead of one page per principal at random.
    address_rows.sort_unstable_by_key(|a| (a.principal, a.seq));
    Ok(Rows { principals: new_principals, log: rows, addresses: address_rows, staged, new_blocks: Vec::new(), blocks: Vec::new() })
}

/// Inserts a group's last rows and commits. On SQLite both happen in one call on the
/// connection's thread, after the stretches `queued` there, and only if none of them failed.
async fn write_and_commit(conn: &mut WriteConn, rows: Rows, queued: Queued) -> Result<(), GroupFailure> {
    match conn {
        WriteConn::Pg(c) => {
            pg_write::write(c, rows).await?;
            c.batch_execute("COMMIT").await.map_err(|e| GroupFailure::Commit(classify(e)))
        }
        WriteConn::Sqlite(c, _) => {
            let failed = queued.failed.clone();
            let committed = c
                .spawn_blocking(move |c| {
                    use diesel::connection::SimpleConnection;
                    if let Err(e) = sync_write::write_unless_failed(c, rows, &failed) {
                        return Ok(Err(GroupFailure::Statement(e)));
                    }
                    if std::sync::atomic::AtomicBool::load(&failed, std::sync::atomic::Ordering::Acquire) {
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
    }
}

/// Every row one group commit inserts, keys numbered.
struct Rows {
    principals: Vec<PrincipalRow>,
    log: Vec<LogRow>,
    addresses: Vec<AddressRow>,
    /// Whether `addresses` go into `address_recent` (else into `address_entries`).
    staged: bool,
    /// Blocks without a stored row: inserted.
    new_blocks: Vec<BlockRow>,
    /// Blocks with a stored row: upserted.
    blocks: Vec<BlockRow>,
}

/// Numbers every contract id of `entries` and principal of `addresses` that neither `known`
/// nor `numbered` holds: the ones `principals` holds already, and the next free numbers for
/// new ones (in name order), all added to `numbered`. Returns the `principals` rows to
/// insert for the new ones. Inside the append transaction, which serialises appends, so
/// numbers stay unique; rows of earlier stretches of the group are inserted by then.
async fn number_names(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    numbered: &mut FastMap<String, i64>,
    entries: &[LogEntry],
    addresses: &[(String, i64)],
) -> Result<Vec<PrincipalRow>, StoreError> {
    let missing: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.contract_id.as_deref())
        .chain(addresses.iter().map(|(name, _)| name.as_str()))
        .filter(|name| !known.contains_key(*name) && !numbered.contains_key(*name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let missing: Vec<&str> = missing.into_iter().collect();
    let mut found_rows = 0;
    for chunk in missing.chunks(LOOKUP_CHUNK) {
        let found: Vec<(i64, String)> = on_conn!(conn, |c| principals::table
            .filter(principals::name.eq_any(chunk))
            .select((principals::id, principals::name))
            .load(c)
            .await)
        .map_err(classify)?;
        found_rows += found.len();
        numbered.extend(found.into_iter().map(|(id, name)| (name, id)));
    }
    let mut new = Vec::new();
    if found_rows < missing.len() {
        let max: Option<i64> =
            on_conn!(conn, |c| principals::table.select(diesel::dsl::max(principals::id)).first(c).await)
                .map_err(classify)?;
        let mut next = max.unwrap_or(0);
        for name in missing {
            if !numbered.contains_key(name) {
                next += 1;
                numbered.insert(name.to_string(), next);
                new.push(PrincipalRow { id: next, name: name.to_string() });
            }
        }
    }
    Ok(new)
}

/// The blocks a group's payloads name, each once, in order of first mention.
struct WantedBlocks {
    /// Block identifiers, (height, hash).
    ids: Vec<(i64, String)>,
    /// The ones some payload rolls back.
    rolled: FastSet<String>,
}

impl WantedBlocks {
    fn of(payloads: &[Payload]) -> WantedBlocks {
        let mut ids: Vec<(i64, String)> = Vec::new();
        let mut seen = FastSet::default();
        let mut rolled = FastSet::default();
        for p in payloads {
            for b in p.rollback.iter().chain(p.apply.iter()) {
                if seen.insert((b.height, b.hash.as_str())) {
                    ids.push((b.height, b.hash.clone()));
                }
            }
            for b in &p.rollback {
                rolled.insert(b.hash.clone());
            }
        }
        WantedBlocks { ids, rolled }
    }
}

/// What a group reads as its transaction begins.
struct GroupStart {
    /// The log's head `seq` (0 when empty).
    head: i64,
    /// The `blocks` rows of the group's blocks that exist.
    block_rows: Vec<BlockRow>,
    rolled: FastSet<String>,
}

const PG_LOCK: &str = "SELECT pg_advisory_xact_lock(?)";
/// The `blocks` rows of the block identifiers in two arrays (heights, hashes), each looked
/// up by its key. `LIMIT 1` keeps the subquery from being merged into a join. With
/// `block_hash = ANY($1)` instead, a profile of 1-event blocks (hundreds of blocks per
/// group) showed PostgreSQL spending a quarter of its time in a sequential scan of
/// `blocks`; this form is an index probe per block whatever the planner's estimates.
/// Blocks above the highest stored height are not looked for: a chain's new blocks, which
/// are most of what a group names, cost one comparison each instead of a probe.
const PG_BLOCKS_BY_ID: &str = "SELECT b.block_hash, b.block_height, b.parent_hash, b.canonical, \
    b.last_seq, b.applied_seq FROM unnest(?::int8[], ?::text[]) AS wanted(height, hash) CROSS JOIN LATERAL \
    (SELECT * FROM blocks WHERE blocks.block_height = wanted.height AND blocks.block_hash = wanted.hash \
    LIMIT 1) AS b WHERE wanted.height <= (SELECT max(block_height) FROM blocks)";

/// PostgreSQL: BEGIN, the advisory lock, the head and the group's `blocks` rows, pipelined
/// (sent together, run in order): one round trip where a single delivery waited for three.
/// The order holds: diesel-async sends a statement when its future is first polled (a
/// statement not yet prepared is sent once it is, before the next one is looked at), and
/// `try_join4` polls them in order.
async fn pg_begin(c: &mut AsyncPgConnection, ids: &[(i64, String)]) -> QueryResult<(Option<i64>, Vec<BlockRow>)> {
    let (heights, hashes): (Vec<i64>, Vec<&str>) = ids.iter().map(|(h, hash)| (*h, hash.as_str())).unzip();
    let c: &AsyncPgConnection = c;
    let begin = async move { (&mut &*c).batch_execute("BEGIN").await };
    let lock = async move {
        Prepared::new(PG_LOCK, (bind::<diesel::sql_types::BigInt, _>(PG_APPEND_LOCK),)).execute(&mut &*c).await
    };
    let head = async move { log_entries::table.select(diesel::dsl::max(log_entries::seq)).first(&mut &*c).await };
    let rows = async move {
        use diesel::sql_types::{Array, BigInt, Text};
        Prepared::new(PG_BLOCKS_BY_ID, (bind::<Array<BigInt>, _>(heights), bind::<Array<Text>, _>(hashes)))
            .load(&mut &*c)
            .await
    };
    let ((), _, head, rows) = futures_util::future::try_join4(begin, lock, head, rows).await?;
    Ok((head, rows))
}

/// The `blocks` rows of the block identifiers in a JSON array of `[height, hash]` (SQLite).
const SQLITE_BLOCKS_BY_ID: &str = "SELECT block_hash, block_height, parent_hash, canonical, last_seq, \
    applied_seq FROM blocks WHERE (block_height, block_hash) IN \
    (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?))";

/// The log's head and the highest stored block height (SQLite), in one statement.
const SQLITE_HEAD_AND_TOP: &str =
    "SELECT (SELECT max(seq) FROM log_entries) AS head, (SELECT max(block_height) FROM blocks) AS top";

#[derive(QueryableByName)]
struct HeadAndTop {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    head: Option<i64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::BigInt>)]
    top: Option<i64>,
}

/// SQLite: `BEGIN IMMEDIATE` (the write lock up front), the head and the group's `blocks`
/// rows, in one trip to the connection's thread. Blocks above the highest stored height (a
/// chain's new blocks, most of what a group names) cannot have a row and are not looked
/// for: the highest height comes with the head, and only the blocks at or below it, usually
/// none, are looked up, by key. Handing SQLite every identifier to compare there cost 150–
/// 280 µs of JSON parsing a group of ~800 1-event blocks, while the writer waited.
/// diesel writes `IN (?, ?, …)` for a list on SQLite, a new statement per length; one JSON
/// array bind keeps one statement prepared.
async fn sqlite_begin(c: &mut SqliteConn, ids: Vec<(i64, String)>) -> QueryResult<(Option<i64>, Vec<BlockRow>)> {
    c.spawn_blocking(move |c| {
        use diesel::connection::SimpleConnection;
        c.batch_execute("BEGIN IMMEDIATE")?;
        let HeadAndTop { head, top } = diesel::RunQueryDsl::get_result(Prepared::new(SQLITE_HEAD_AND_TOP, ()), c)?;
        let mut rows = Vec::new();
        let Some(top) = top else { return Ok((head, rows)) };
        let stored: Vec<&(i64, String)> = ids.iter().filter(|(height, _)| *height <= top).collect();
        for chunk in stored.chunks(LOOKUP_CHUNK) {
            let list =
                serde_json::to_string(chunk).map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
            let query = Prepared::new(SQLITE_BLOCKS_BY_ID, (bind::<diesel::sql_types::Text, _>(list),));
            let found: Vec<BlockRow> = diesel::RunQueryDsl::load(query, c)?;
            rows.extend(found);
        }
        Ok((head, rows))
    })
    .await
}

/// The canonical state of a group's blocks, from the rows read as it began.
async fn load_snapshot(conn: &mut WriteConn, start: GroupStart) -> Result<Snapshot, StoreError> {
    let GroupStart { block_rows, rolled, .. } = start;
    let mut snapshot = Snapshot::default();
    for r in block_rows {
        snapshot.blocks.insert(
            r.block_hash,
            BlockState {
                stored: true,
                height: r.block_height,
                parent_hash: r.parent_hash,
                canonical: r.canonical,
                last_seq: r.last_seq,
                applied_seq: r.applied_seq,
            },
        );
    }
    // The events of each canonical block: its event entries since its latest application.
    // Only blocks seen before (redeliveries, rollbacks) get here, never a new block.
    for (hash, b) in snapshot.blocks.iter().filter(|(_, b)| b.canonical) {
        let rows: Vec<(i64, Option<i32>, Option<i32>)> =
            on_conn!(conn, |c| block_events(hash, b.applied_seq, b.last_seq).load(c).await).map_err(classify)?;
        let events = snapshot.events.entry(hash.clone()).or_default();
        for (seq, tx_index, event_index) in rows {
            match (tx_index, event_index) {
                (Some(t), Some(e)) => events.insert((t, e), seq),
                _ => return Err(StoreError::Corrupt(format!("event entry {seq} has no identity"))),
            };
        }
    }
    // Rollbacks repeat the undone event's type, contract and addresses: load those for
    // the canonical events of every block that some payload rolls back.
    let to_detail: Vec<i64> = snapshot
        .events
        .iter()
        .filter(|(hash, _)| rolled.contains(hash.as_str()))
        .flat_map(|(_, evs)| evs.values().copied())
        .collect();
    for chunk in to_detail.chunks(LOOKUP_CHUNK) {
        let rows: Vec<LogRow> = on_conn!(conn, |c| log_entries::table
            .filter(log_entries::seq.eq_any(chunk))
            .select(LogRow::as_select())
            .load(c)
            .await)
        .map_err(classify)?;
        for r in rows {
            let event_type = r
                .type_code
                .and_then(EventType::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("entry {} has no event type", r.seq)))?;
            let fields: BodyFields = serde_json::from_str(&r.body)
                .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", r.seq)))?;
            snapshot.details.insert(
                r.seq,
                EventDetail {
                    tx_hash: fields.tx_hash.unwrap_or_default(),
                    event_type,
                    contract_id: fields.contract_id,
                    affected_addresses: fields.affected_addresses,
                    block_height: r.block_height,
                },
            );
        }
    }
    Ok(snapshot)
}

/// PostgreSQL: one statement per table, each column passed as one array and expanded by
/// `unnest`. The statement text stays the same whatever the row count, so the connection
/// keeps it prepared ([`Prepared`](super::super::prepared::Prepared)) and parses it once,
/// where a 1,000-row VALUES list is a new 12,000-parameter statement per chunk.
mod pg_write {
    use super::{classify, Rows};
    use crate::store::prepared::{bind, Bind, Prepared};
    use crate::store::rows::BlockRow;
    use crate::store::StoreError;
    use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, SmallInt, Text};
    use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

    const INSERT_LOG: &str = "INSERT INTO log_entries (seq, kind, block_hash, block_height, \
        tx_index, event_index, rollback_of, body, committed_at, type_code, contract_key) \
        SELECT u.seq, u.kind, u.block_hash, u.block_height, u.tx_index, u.event_index, \
        u.rollback_of, u.body, ?, u.type_code, u.contract_key \
        FROM unnest(?::int8[], ?::int2[], ?::text[], ?::int8[], ?::int4[], ?::int4[], \
        ?::int8[], ?::text[], ?::int2[], ?::int8[]) \
        AS u(seq, kind, block_hash, block_height, tx_index, event_index, rollback_of, body, \
        type_code, contract_key)";
    const INSERT_ADDRESSES: &str =
        "INSERT INTO address_entries (principal, seq) SELECT * FROM unnest(?::int8[], ?::int8[])";
    const INSERT_RECENT: &str =
        "INSERT INTO address_recent (principal, seq) SELECT * FROM unnest(?::int8[], ?::int8[])";
    const INSERT_PRINCIPALS: &str =
        "INSERT INTO principals (id, name) SELECT * FROM unnest(?::int8[], ?::text[])";
    /// Blocks the group found no row for, inside its transaction: a conflict here is a bug,
    /// and fails the group.
    const INSERT_BLOCKS: &str = "INSERT INTO blocks (block_hash, block_height, parent_hash, canonical, \
        last_seq, applied_seq) SELECT * FROM unnest(?::text[], ?::int8[], ?::text[], ?::bool[], \
        ?::int8[], ?::int8[])";
    /// A group names each block once (the planner's touched list).
    const UPSERT_BLOCKS: &str = "INSERT INTO blocks (block_hash, block_height, parent_hash, canonical, \
        last_seq, applied_seq) SELECT * FROM unnest(?::text[], ?::int8[], ?::text[], ?::bool[], \
        ?::int8[], ?::int8[]) ON CONFLICT (block_height, block_hash) DO UPDATE SET \
        parent_hash = EXCLUDED.parent_hash, \
        canonical = EXCLUDED.canonical, last_seq = EXCLUDED.last_seq, applied_seq = EXCLUDED.applied_seq";

    /// The inserts run with generic plans. Each is an INSERT … SELECT over `unnest`, which
    /// has one plan whatever its values, so planning it anew with them (the connection's
    /// `force_custom_plan`, see `establish_pg`, which the writer's lookups need) only cost
    /// the server time: 1-event blocks at 1,024 in flight, A/B, PostgreSQL's CPU −15%
    /// (2.96–3.45 → 2.64–2.85 s per 200,000 payloads), 43–54k → 55–60k events/s; 100-event
    /// blocks unchanged. The connection's setting comes back for what follows in the
    /// transaction (`SET LOCAL` also ends with it).
    const GENERIC_PLANS: &str = "SET LOCAL plan_cache_mode = force_generic_plan";
    const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

    /// The statements are pipelined (diesel-async sends a query when its future is first
    /// polled, and `try_join3`/`try_join5` poll them in order): PostgreSQL runs them one
    /// after the other in the transaction while this side builds the next one's arrays, and
    /// the group waits for one round trip instead of one per statement.
    pub(super) async fn write(c: &mut AsyncPgConnection, w: Rows) -> Result<(), StoreError> {
        let Rows { principals, log: rows, addresses, staged, new_blocks, blocks: block_upserts } = w;
        let c: &AsyncPgConnection = c;
        let new_principals = async move {
            if !principals.is_empty() {
                let (id, name): (Vec<i64>, Vec<String>) = principals.into_iter().map(|p| (p.id, p.name)).unzip();
                Prepared::new(INSERT_PRINCIPALS, (bind::<Array<BigInt>, _>(id), bind::<Array<Text>, _>(name)))
                    .execute(&mut &*c)
                    .await
                    .map_err(classify)?;
            }
            Ok::<(), StoreError>(())
        };
        let log = async move {
            if let Some(first) = <[_]>::first(&rows) {
                let committed_at = first.committed_at;
                let n = rows.len();
                let (mut seq, mut kind, mut block_hash, mut block_height) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut tx_index, mut event_index, mut rollback_of, mut body) =
                    (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
                let (mut type_code, mut contract_key) = (Vec::with_capacity(n), Vec::with_capacity(n));
                for r in rows {
                    // One group, one commit time (set by the planner for every row).
                    debug_assert_eq!(r.committed_at, committed_at);
                    seq.push(r.seq);
                    kind.push(r.kind);
                    block_hash.push(r.block_hash);
                    block_height.push(r.block_height);
                    tx_index.push(r.tx_index);
                    event_index.push(r.event_index);
                    rollback_of.push(r.rollback_of);
                    body.push(r.body);
                    type_code.push(r.type_code);
                    contract_key.push(r.contract_key);
                }
                let binds = (
                    bind::<BigInt, _>(committed_at),
                    bind::<Array<BigInt>, _>(seq),
                    bind::<Array<SmallInt>, _>(kind),
                    bind::<Array<Text>, _>(block_hash),
                    bind::<Array<BigInt>, _>(block_height),
                    bind::<Array<Nullable<Integer>>, _>(tx_index),
                    bind::<Array<Nullable<Integer>>, _>(event_index),
                    bind::<Array<Nullable<BigInt>>, _>(rollback_of),
                    bind::<Array<Text>, _>(body),
                    bind::<Array<Nullable<SmallInt>>, _>(type_code),
                    bind::<Array<Nullable<BigInt>>, _>(contract_key),
                );
                Prepared::new(INSERT_LOG, binds)
                    .execute(&mut &*c)
                    .await
                    .map_err(classify)?;
            }
            Ok::<(), StoreError>(())
        };
        let address_rows = async move {
            if !addresses.is_empty() {
                let (principal, seq): (Vec<i64>, Vec<i64>) = addresses.into_iter().map(|a| (a.principal, a.seq)).unzip();
                let sql = if staged { INSERT_RECENT } else { INSERT_ADDRESSES };
                Prepared::new(sql, (bind::<Array<BigInt>, _>(principal), bind::<Array<BigInt>, _>(seq)))
                    .execute(&mut &*c)
                    .await
                    .map_err(classify)?;
            }
            Ok::<(), StoreError>(())
        };
        let new_block_rows = async move {
            if !new_blocks.is_empty() {
                Prepared::new(INSERT_BLOCKS, block_binds(new_blocks)).execute(&mut &*c).await.map_err(classify)?;
            }
            Ok::<(), StoreError>(())
        };
        let block_rows = async move {
            if !block_upserts.is_empty() {
                Prepared::new(UPSERT_BLOCKS, block_binds(block_upserts)).execute(&mut &*c).await.map_err(classify)?;
            }
            Ok::<(), StoreError>(())
        };
        let generic = async move { (&mut &*c).batch_execute(GENERIC_PLANS).await.map_err(classify) };
        let custom = async move { (&mut &*c).batch_execute(CUSTOM_PLANS).await.map_err(classify) };
        let inserts = futures_util::future::try_join5(new_principals, log, address_rows, new_block_rows, block_rows);
        futures_util::future::try_join3(generic, inserts, custom).await?;
        Ok(())
    }

    /// The six columns of `blocks` rows as arrays, in the order of [`INSERT_BLOCKS`].
    #[allow(clippy::type_complexity)]
    fn block_binds(
        rows: Vec<BlockRow>,
    ) -> (
        Bind<Array<Text>, Vec<String>>,
        Bind<Array<BigInt>, Vec<i64>>,
        Bind<Array<Nullable<Text>>, Vec<Option<String>>>,
        Bind<Array<Bool>, Vec<bool>>,
        Bind<Array<BigInt>, Vec<i64>>,
        Bind<Array<BigInt>, Vec<i64>>,
    ) {
        let n = rows.len();
        let (mut hash, mut height, mut parent) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let (mut canonical, mut last, mut applied) = (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        for b in rows {
            hash.push(b.block_hash);
            height.push(b.block_height);
            parent.push(b.parent_hash);
            canonical.push(b.canonical);
            last.push(b.last_seq);
            applied.push(b.applied_seq);
        }
        (bind(hash), bind(height), bind(parent), bind(canonical), bind(last), bind(applied))
    }
}

/// SQLite: multi-row INSERTs of fixed sizes (log, address and block rows, written by
/// [`crate::store::multi_insert`]) or of [`INSERT_CHUNK`] rows (new principals, by diesel).
/// It runs on the connection's own thread (`ConnThread`).
mod sync_write {
    use super::{classify, Rows, INSERT_CHUNK};
    use crate::store::multi_insert::{AddressRows, BlockUpdates, Insert, LogRows, NewBlocks, RecentAddressRows};
    use crate::store::schema::principals;
    use crate::store::StoreError;
    use diesel::{RunQueryDsl, SqliteConnection};
    use std::sync::atomic::{AtomicBool, Ordering};

    /// Runs the statement `$stmt` (a multi-row INSERT of the slice `$chunk`) over `$rows` in
    /// fixed sizes (512 rows, then the rest in powers of two). Each size is one statement
    /// text, prepared once per connection and kept in diesel's cache (ten sizes per table);
    /// a statement of any other size would be parsed anew each time (7,168 placeholders for
    /// 512 log rows). Measured: +10–20% on SQLite ingest.
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
    pub(super) fn write_unless_failed(c: &mut SqliteConnection, w: Rows, failed: &AtomicBool) -> Result<(), StoreError> {
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

    pub(super) fn write(c: &mut SqliteConnection, w: Rows) -> Result<(), StoreError> {
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
        Ok(())
    }
}
