//! The one connection that appends to the log.
//!
//! A group of payloads is written in one transaction: read the head and the canonical
//! state of the blocks involved, plan the rows in memory ([`super::plan`]), then insert
//! them in a few multi-row statements. On PostgreSQL the transaction first takes an
//! advisory lock, so several server nodes appending to one database still produce one
//! gap-free order; on SQLite it begins `IMMEDIATE`, taking the write lock up front.

use super::connect::{establish_pg, establish_sqlite, Backend, Inner, SqliteConn};
use super::entry::{BodyAddresses, LogEntry};
use super::read::block_events;
use super::plan::{self, BlockState, EventDetail, Snapshot};
use super::rows::{BlockRow, LogRow};
use super::schema::{blocks, log_entries};
use super::StoreError;
use crate::model::Payload;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use std::collections::HashSet;
use std::sync::Arc;

pub use super::plan::IngestReport;

/// Key of the transaction-level advisory lock every appending node takes on PostgreSQL.
pub const PG_APPEND_LOCK: i64 = 0x7469_6d65_6c6f; // "timelo"

/// Rows per multi-row INSERT: below both backends' bind-parameter limits (PostgreSQL
/// 65,535; SQLite 32,766) for the widest row (12 columns).
const INSERT_CHUNK: usize = 1_000;
/// Page cache of the SQLite write connection (SQLite's default is 2 MiB). The address index
/// takes one insert per principal per event, spread over as many leaf pages as there are
/// busy principals; with the default cache a group re-reads most of them from the OS.
const SQLITE_WRITER_CACHE_KIB: u32 = 64 * 1024;
/// Values per `IN (…)` list when loading state.
const LOOKUP_CHUNK: usize = 1_000;

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
    Sqlite(SqliteConn),
}

macro_rules! on_conn {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            WriteConn::Pg(boxed) => {
                let $c = &mut **boxed;
                $body
            }
            WriteConn::Sqlite($c) => $body,
        }
    };
}

/// Holds the write connection; reconnects after a failure.
pub struct LogWriter {
    inner: Arc<Inner>,
    conn: Option<WriteConn>,
}

impl LogWriter {
    pub(crate) async fn open(inner: Arc<Inner>) -> Result<LogWriter, StoreError> {
        let mut writer = LogWriter { inner, conn: None };
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
                    let conn = tokio::time::timeout(self.inner.config.connect_timeout, fut)
                        .await
                        .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    WriteConn::Pg(Box::new(conn))
                }
                Backend::Sqlite(_) => {
                    let path = self
                        .inner
                        .sqlite_path()
                        .ok_or_else(|| StoreError::Config("SQLite path is not UTF-8".into()))?;
                    let mut conn = establish_sqlite(path, self.inner.config.sqlite_busy_timeout)
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    conn.batch_execute(&format!("PRAGMA cache_size = -{SQLITE_WRITER_CACHE_KIB}"))
                        .await
                        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
                    WriteConn::Sqlite(conn)
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
        let conn = self.connect().await?;
        let begin = match conn {
            WriteConn::Pg(_) => format!("BEGIN; SELECT pg_advisory_xact_lock({PG_APPEND_LOCK});"),
            WriteConn::Sqlite(_) => "BEGIN IMMEDIATE".to_string(),
        };
        if let Err(e) = on_conn!(conn, |c| c.batch_execute(&begin).await) {
            self.conn = None;
            return Err(classify(e));
        }
        phases.lap(Phase::Begin);
        match append_in_transaction(conn, payloads, &mut phases).await {
            Ok(appended) => match on_conn!(conn, |c| c.batch_execute("COMMIT").await) {
                Ok(()) => {
                    phases.lap(Phase::Commit);
                    phases.log(appended.entries.len());
                    Ok(appended)
                }
                Err(e) => {
                    // The outcome of a failed COMMIT is unknown to us; a fresh connection
                    // re-reads the head, and redelivery is idempotent.
                    self.conn = None;
                    Err(classify(e))
                }
            },
            Err(e) => {
                if on_conn!(conn, |c| c.batch_execute("ROLLBACK").await).is_err() {
                    self.conn = None;
                }
                Err(e)
            }
        }
    }
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

async fn append_in_transaction(
    conn: &mut WriteConn,
    payloads: Vec<Payload>,
    phases: &mut Phases,
) -> Result<Appended, StoreError> {
    let head: Option<i64> = on_conn!(conn, |c| log_entries::table
        .select(diesel::dsl::max(log_entries::seq))
        .first(c)
        .await)
    .map_err(classify)?;
    let snapshot = load_snapshot(conn, &payloads).await?;
    phases.lap(Phase::Load);
    let committed_at = chrono::Utc::now().timestamp_millis();
    let plan = plan::plan(head.unwrap_or(0), snapshot, payloads, committed_at)?;
    phases.lap(Phase::Plan);

    let plan::Plan { mut writes, reports, entries, head } = plan;
    // In key order, consecutive inserts into the address index land on the same or the
    // next leaf page instead of one page per principal at random.
    writes.addresses.sort_unstable_by(|a, b| (&a.address, a.seq).cmp(&(&b.address, b.seq)));
    match conn {
        WriteConn::Pg(c) => pg_write::write(c, writes).await?,
        // diesel's multi-row INSERT on SQLite exists only on the sync connection.
        WriteConn::Sqlite(c) => c
            .spawn_blocking(move |c| Ok(sync_write::write(c, writes)))
            .await
            .map_err(classify)??,
    }
    phases.lap(Phase::Write);
    Ok(Appended { reports, entries, head_seq: head })
}

async fn load_snapshot(conn: &mut WriteConn, payloads: &[Payload]) -> Result<Snapshot, StoreError> {
    let mut hashes: Vec<String> = Vec::new();
    let mut seen = HashSet::new();
    let mut rolled: HashSet<&str> = HashSet::new();
    for p in payloads {
        for b in p.rollback.iter().chain(p.apply.iter()) {
            if seen.insert(b.hash.as_str()) {
                hashes.push(b.hash.clone());
            }
        }
        for b in &p.rollback {
            rolled.insert(b.hash.as_str());
        }
    }
    let mut snapshot = Snapshot::default();
    for chunk in hashes.chunks(LOOKUP_CHUNK) {
        let rows: Vec<BlockRow> = on_conn!(conn, |c| blocks::table
            .filter(blocks::block_hash.eq_any(chunk))
            .select(BlockRow::as_select())
            .load(c)
            .await)
        .map_err(classify)?;
        for r in rows {
            snapshot.blocks.insert(
                r.block_hash,
                BlockState {
                    height: r.block_height,
                    parent_hash: r.parent_hash,
                    canonical: r.canonical,
                    last_seq: r.last_seq,
                    applied_seq: r.applied_seq,
                },
            );
        }
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
                .event_type
                .as_deref()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| StoreError::Corrupt(format!("entry {} has no event type", r.seq)))?;
            let addresses: BodyAddresses = serde_json::from_str(&r.body)
                .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", r.seq)))?;
            snapshot.details.insert(
                r.seq,
                EventDetail {
                    tx_hash: r.tx_hash.unwrap_or_default(),
                    event_type,
                    contract_id: r.contract_id,
                    affected_addresses: addresses.affected_addresses,
                    block_height: r.block_height,
                },
            );
        }
    }
    Ok(snapshot)
}

/// PostgreSQL: one statement per table, each column passed as one array and expanded by
/// `unnest`. The statement text stays the same whatever the row count, so it is parsed and
/// planned once, where a 1,000-row VALUES list is a new 12,000-parameter statement per chunk.
mod pg_write {
    use super::{classify, LOOKUP_CHUNK};
    use crate::store::plan::Writes;
    use crate::store::schema::blocks;
    use crate::store::StoreError;
    use diesel::sql_types::{Array, BigInt, Integer, Nullable, SmallInt, Text};
    use diesel::{ExpressionMethods, QueryDsl};
    use diesel_async::{AsyncPgConnection, RunQueryDsl};

    const INSERT_LOG: &str = "INSERT INTO log_entries (seq, kind, block_hash, block_height, tx_hash, \
        tx_index, event_index, event_type, contract_id, rollback_of, body, committed_at) \
        SELECT u.*, $12 FROM unnest($1::int8[], $2::int2[], $3::text[], $4::int8[], $5::text[], \
        $6::int4[], $7::int4[], $8::text[], $9::text[], $10::int8[], $11::text[]) AS u";
    const INSERT_ADDRESSES: &str =
        "INSERT INTO entry_addresses (address, seq) SELECT * FROM unnest($1::text[], $2::int8[])";

    pub(super) async fn write(c: &mut AsyncPgConnection, w: Writes) -> Result<(), StoreError> {
        let Writes { rows, addresses, block_upserts } = w;
        if let Some(first) = <[_]>::first(&rows) {
            let committed_at = first.committed_at;
            let n = rows.len();
            let (mut seq, mut kind, mut block_hash, mut block_height) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut tx_hash, mut tx_index, mut event_index, mut event_type) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut contract_id, mut rollback_of, mut body) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            for r in rows {
                // One group, one commit time (set by the planner for every row).
                debug_assert_eq!(r.committed_at, committed_at);
                seq.push(r.seq);
                kind.push(r.kind);
                block_hash.push(r.block_hash);
                block_height.push(r.block_height);
                tx_hash.push(r.tx_hash);
                tx_index.push(r.tx_index);
                event_index.push(r.event_index);
                event_type.push(r.event_type);
                contract_id.push(r.contract_id);
                rollback_of.push(r.rollback_of);
                body.push(r.body);
            }
            diesel::sql_query(INSERT_LOG)
                .bind::<Array<BigInt>, _>(seq)
                .bind::<Array<SmallInt>, _>(kind)
                .bind::<Array<Text>, _>(block_hash)
                .bind::<Array<BigInt>, _>(block_height)
                .bind::<Array<Nullable<Text>>, _>(tx_hash)
                .bind::<Array<Nullable<Integer>>, _>(tx_index)
                .bind::<Array<Nullable<Integer>>, _>(event_index)
                .bind::<Array<Nullable<Text>>, _>(event_type)
                .bind::<Array<Nullable<Text>>, _>(contract_id)
                .bind::<Array<Nullable<BigInt>>, _>(rollback_of)
                .bind::<Array<Text>, _>(body)
                .bind::<BigInt, _>(committed_at)
                .execute(c)
                .await
                .map_err(classify)?;
        }
        if !addresses.is_empty() {
            let (address, seq): (Vec<String>, Vec<i64>) = addresses.into_iter().map(|a| (a.address, a.seq)).unzip();
            diesel::sql_query(INSERT_ADDRESSES)
                .bind::<Array<Text>, _>(address)
                .bind::<Array<BigInt>, _>(seq)
                .execute(c)
                .await
                .map_err(classify)?;
        }
        // Replace rather than upsert, like the SQLite side: the same statements' effect.
        for chunk in block_upserts.chunks(LOOKUP_CHUNK) {
            let hashes: Vec<&str> = chunk.iter().map(|b| b.block_hash.as_str()).collect();
            diesel::delete(blocks::table.filter(blocks::block_hash.eq_any(hashes)))
                .execute(c)
                .await
                .map_err(classify)?;
            diesel::insert_into(blocks::table).values(chunk).execute(c).await.map_err(classify)?;
        }
        Ok(())
    }
}

/// SQLite: multi-row INSERTs of [`INSERT_CHUNK`] rows. diesel's multi-row INSERT on SQLite
/// exists only on the sync connection, so this runs on its blocking thread.
mod sync_write {
    use super::{classify, INSERT_CHUNK, LOOKUP_CHUNK};
    use crate::store::plan::Writes;
    use crate::store::schema::{blocks, entry_addresses, log_entries};
    use crate::store::StoreError;
    use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl, SqliteConnection};

    pub(super) fn write(c: &mut SqliteConnection, w: Writes) -> Result<(), StoreError> {
        for chunk in w.rows.chunks(INSERT_CHUNK) {
            diesel::insert_into(log_entries::table).values(chunk).execute(c).map_err(classify)?;
        }
        for chunk in w.addresses.chunks(INSERT_CHUNK) {
            diesel::insert_into(entry_addresses::table).values(chunk).execute(c).map_err(classify)?;
        }
        // Replace rather than upsert: diesel's multi-row upsert has no SQLite form.
        for chunk in w.block_upserts.chunks(LOOKUP_CHUNK) {
            let hashes: Vec<&str> = chunk.iter().map(|b| b.block_hash.as_str()).collect();
            diesel::delete(blocks::table.filter(blocks::block_hash.eq_any(hashes))).execute(c).map_err(classify)?;
            diesel::insert_into(blocks::table).values(chunk).execute(c).map_err(classify)?;
        }
        Ok(())
    }
}
