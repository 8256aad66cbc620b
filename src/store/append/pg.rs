//! The PostgreSQL half of the appender: its connection, the BEGIN that takes the append
//! lock, and the group's rows written as column arrays.
//!
//! One statement per table, each column passed as one array and expanded by `unnest`. The
//! statement text stays the same whatever the row count, so the connection keeps it
//! prepared ([`Prepared`]) and parses it once, where a 1,000-row VALUES list would be a new
//! 12,000-parameter statement per chunk.

use super::group::Rows;
use crate::store::classify;
use crate::store::connect::{establish_pg, Inner};
use crate::store::notify::notify_sql;
use crate::store::prepared::{bind, Bind, Prepared};
use crate::store::rows::BlockRow;
use crate::store::schema::log_entries;
use crate::store::{DatabaseUrl, StoreError};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, SmallInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};

/// Key of the transaction-level advisory lock every appending node takes, so several nodes
/// appending to one database still produce one gap-free order.
pub const PG_APPEND_LOCK: i64 = 0x7469_6d65_6c6f; // "timelo"

/// `work_mem` of the appender's connection. `unnest` over the group's column arrays is a
/// function scan, which materialises its rows: a group's bodies (up to
/// `WRITER_MAX_BATCH_EVENTS` events of ~0.5–1 KiB) would spill past the 4 MB default to a
/// temporary file and be read back.
const WORK_MEM: &str = "64MB";

/// Opens the appender's connection, its socket driven by the database runtime.
pub(super) async fn open(inner: &Inner) -> Result<AsyncPgConnection, StoreError> {
    let handle = inner
        .db_runtime
        .handle()
        .ok_or_else(|| StoreError::Unavailable("database runtime stopped".into()))?;
    let DatabaseUrl::Postgres(url) = &inner.config.url else {
        return Err(StoreError::Config("a PostgreSQL appender needs a postgres:// URL".into()));
    };
    let mut conn = tokio::time::timeout(inner.config.connect_timeout, establish_pg(handle, url.clone()))
        .await
        .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    conn.batch_execute(&format!("SET work_mem = '{WORK_MEM}'"))
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // The log listener skips this connection's notifications (see `store::notify`).
    let pid: i32 = diesel::select(diesel::dsl::sql::<Integer>("pg_backend_pid()"))
        .get_result(&mut conn)
        .await
        .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    inner.appender_pid.store(pid, std::sync::atomic::Ordering::Release);
    Ok(conn)
}

const LOCK: &str = "SELECT pg_advisory_xact_lock(?)";
/// The `blocks` rows of the block identifiers in two arrays (heights, hashes), each looked
/// up by its key. `LIMIT 1` keeps the subquery from being merged into a join, so this is an
/// index probe per block whatever the planner's estimates (with `block_hash = ANY($1)`
/// PostgreSQL chose a sequential scan of `blocks`). Blocks above the highest stored height
/// are not looked for: a chain's new blocks, most of what a group names, cost one
/// comparison each instead of a probe.
const BLOCKS_BY_ID: &str = "SELECT b.block_hash, b.block_height, b.parent_hash, b.canonical, \
    b.last_seq, b.applied_seq FROM unnest(?::int8[], ?::text[]) AS wanted(height, hash) CROSS JOIN LATERAL \
    (SELECT * FROM blocks WHERE blocks.block_height = wanted.height AND blocks.block_hash = wanted.hash \
    LIMIT 1) AS b WHERE wanted.height <= (SELECT max(block_height) FROM blocks)";

/// BEGIN, the advisory lock, the head and the group's `blocks` rows, pipelined (sent
/// together, run in order): one round trip where a single delivery would wait for three.
/// The order holds: diesel-async sends a statement when its future is first polled (a
/// statement not yet prepared is sent once it is, before the next one is looked at), and
/// `try_join4` polls them in order.
pub(super) async fn begin(c: &mut AsyncPgConnection, ids: &[(i64, String)]) -> QueryResult<(Option<i64>, Vec<BlockRow>)> {
    let (heights, hashes): (Vec<i64>, Vec<&str>) = ids.iter().map(|(h, hash)| (*h, hash.as_str())).unzip();
    let c: &AsyncPgConnection = c;
    let begin = async move { (&mut &*c).batch_execute("BEGIN").await };
    let lock = async move { Prepared::new(LOCK, (bind::<BigInt, _>(PG_APPEND_LOCK),)).execute(&mut &*c).await };
    let head = async move { log_entries::table.select(diesel::dsl::max(log_entries::seq)).first(&mut &*c).await };
    let rows = async move {
        Prepared::new(BLOCKS_BY_ID, (bind::<Array<BigInt>, _>(heights), bind::<Array<Text>, _>(hashes)))
            .load(&mut &*c)
            .await
    };
    let ((), _, head, rows) = futures_util::future::try_join4(begin, lock, head, rows).await?;
    Ok((head, rows))
}

/// Writes a group's last rows and commits. A group that appended announces its new head
/// `seq` to the other nodes (`store::notify`) in the same round trip as the COMMIT: the
/// notification is part of the transaction, delivered only if it commits.
pub(super) async fn write_and_commit(c: &mut AsyncPgConnection, rows: Rows, new_head: Option<i64>) -> Result<(), super::GroupFailure> {
    write(c, rows).await?;
    let commit = match new_head {
        Some(head) => format!("{}; COMMIT", notify_sql(head)),
        None => "COMMIT".to_string(),
    };
    c.batch_execute(&commit).await.map_err(|e| super::GroupFailure::Commit(classify(e)))
}

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
/// `force_custom_plan`, see `establish_pg`, which the appender's lookups need) only costs
/// the server time (see docs/benchmarks.md). The connection's setting comes back for what
/// follows in the transaction (`SET LOCAL` also ends with it).
const GENERIC_PLANS: &str = "SET LOCAL plan_cache_mode = force_generic_plan";
const CUSTOM_PLANS: &str = "SET LOCAL plan_cache_mode = force_custom_plan";

/// The statements are pipelined (diesel-async sends a query when its future is first
/// polled, and `try_join3`/`try_join5` poll them in order): PostgreSQL runs them one
/// after the other in the transaction while this side builds the next one's arrays, and
/// the group waits for one round trip instead of one per statement.
pub(super) async fn write(c: &mut AsyncPgConnection, w: Rows) -> Result<(), StoreError> {
    let Rows { principals, log: rows, addresses, staged, new_blocks, blocks: block_upserts, ops } = w;
    if !ops.is_empty() {
        // Few rows (the op entries of one group); after the log rows they name.
        let mut c: &AsyncPgConnection = c;
        write_inner(&mut c, principals, rows, addresses, staged, new_blocks, block_upserts).await?;
        diesel_async::RunQueryDsl::execute(diesel::insert_into(crate::store::schema::op_log::table).values(ops), &mut c)
            .await
            .map_err(classify)?;
        return Ok(());
    }
    let mut c: &AsyncPgConnection = c;
    write_inner(&mut c, principals, rows, addresses, staged, new_blocks, block_upserts).await
}

#[allow(clippy::too_many_arguments)]
async fn write_inner(
    c: &mut &AsyncPgConnection,
    principals: Vec<crate::store::rows::PrincipalRow>,
    rows: Vec<crate::store::rows::LogRow>,
    addresses: Vec<crate::store::rows::AddressRow>,
    staged: bool,
    new_blocks: Vec<BlockRow>,
    block_upserts: Vec<BlockRow>,
) -> Result<(), StoreError> {
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
