//! The projection engine's own database connection: synchronous, one per engine.
//!
//! Folding is CPU work between statements, and SQLite's multi-row INSERT exists only on
//! diesel's sync connection; so the engine runs on a thread of its own with a sync
//! connection (PostgreSQL through `AsyncConnectionWrapper`, which brings a small runtime
//! of its own on a plain thread) and the same diesel statements serve both backends.
//!
//! Transactions: PostgreSQL takes the projection row `FOR UPDATE`; SQLite begins
//! `IMMEDIATE` (takes the write lock up front, so no lock upgrade can fail half-way).

use super::schema::{projection_rows, projection_snapshots, projections};
use super::ProjectionError;
use crate::store::backend::{on_backend, Backend};
use crate::store::read::log_queries;
use crate::store::sqlite_pragmas::{pragmas, SqliteRole};
use crate::store::{DatabaseUrl, PG_PAGED_READ_SETTINGS};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sqlite::SqliteConnection;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use std::time::Duration;

type PgSync = AsyncConnectionWrapper<AsyncPgConnection>;

/// Rows per multi-row INSERT (4 columns: far below both backends' bind limits).
const INSERT_CHUNK: usize = 4_000;
/// Values per `IN (…)` list.
const LOOKUP_CHUNK: usize = 1_000;

/// The engine's connection to either backend.
pub struct Db(Backend<Box<PgSync>, Box<SqliteConnection>>);

/// A projection's row in `projections`.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = projections, treat_none_as_default_value = false, treat_none_as_null = true)]
pub struct Meta {
    pub name: String,
    pub code_version: i64,
    pub active_generation: i64,
    pub checkpoint: i64,
    pub building_generation: Option<i64>,
    pub building_code_version: Option<i64>,
    pub building_checkpoint: Option<i64>,
    pub last_generation: i64,
}

impl Meta {
    /// The row of a projection seen for the first time: generation 1, nothing folded.
    pub fn new(name: &str, code_version: i64) -> Meta {
        Meta {
            name: name.to_string(),
            code_version,
            active_generation: 1,
            checkpoint: 0,
            building_generation: None,
            building_code_version: None,
            building_checkpoint: None,
            last_generation: 1,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = projection_rows, treat_none_as_default_value = false)]
struct RowInsert<'a> {
    projection: &'a str,
    generation: i64,
    key: &'a str,
    value: &'a str,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = projection_snapshots, treat_none_as_default_value = false)]
pub struct Snapshot {
    pub projection: String,
    pub generation: i64,
    pub code_version: i64,
    pub seq: i64,
}

/// A log row as the engine reads it: the body holds everything else.
#[derive(Debug, Clone, Queryable)]
pub struct RawEntry {
    pub seq: i64,
    pub kind: i16,
    pub rollback_of: Option<i64>,
    pub body: String,
}

impl Db {
    /// Opens a connection. Call from a plain thread, never from inside a tokio runtime.
    pub fn open(url: &DatabaseUrl, busy_timeout: Duration) -> Result<Db, ProjectionError> {
        match url {
            DatabaseUrl::Postgres(u) => {
                let mut c = PgSync::establish(u)
                    .map_err(|e| ProjectionError::Unavailable(e.to_string()))?;
                // The engine pages through the log (`log_queries`): planned as index walks.
                c.batch_execute(PG_PAGED_READ_SETTINGS)?;
                Ok(Db(Backend::Pg(Box::new(c))))
            }
            DatabaseUrl::Sqlite(path) => {
                let path = path
                    .to_str()
                    .ok_or_else(|| ProjectionError::Config("SQLite path is not UTF-8".into()))?;
                let mut c = SqliteConnection::establish(path)
                    .map_err(|e| ProjectionError::Unavailable(e.to_string()))?;
                c.batch_execute(&pragmas(SqliteRole::Projections, busy_timeout, 0))?;
                Ok(Db(Backend::Sqlite(Box::new(c))))
            }
        }
    }

    /// Runs `f` in one transaction: committed if it returns `Ok`, rolled back otherwise.
    pub fn transaction<R>(
        &mut self,
        f: impl FnOnce(&mut Db) -> Result<R, ProjectionError>,
    ) -> Result<R, ProjectionError> {
        let begin = match &self.0 {
            Backend::Pg(_) => "BEGIN",
            Backend::Sqlite(_) => "BEGIN IMMEDIATE",
        };
        on_backend!(&mut self.0, |c| c.batch_execute(begin))?;
        match f(self) {
            Ok(r) => {
                on_backend!(&mut self.0, |c| c.batch_execute("COMMIT"))?;
                Ok(r)
            }
            Err(e) => {
                let _ = on_backend!(&mut self.0, |c| c.batch_execute("ROLLBACK"));
                Err(e)
            }
        }
    }

    /// The projection's row; inside a transaction on PostgreSQL it is locked until commit.
    pub fn meta(&mut self, name: &str) -> Result<Option<Meta>, ProjectionError> {
        let q = || projections::table.filter(projections::name.eq(name));
        Ok(match &mut self.0 {
            Backend::Pg(c) => q()
                .select(Meta::as_select())
                .for_update()
                .first(&mut **c)
                .optional()?,
            Backend::Sqlite(c) => q().select(Meta::as_select()).first(&mut **c).optional()?,
        })
    }

    /// Every projection row (for `GET /api/projections` and the CLI).
    pub fn all_meta(&mut self) -> Result<Vec<Meta>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| projections::table
            .select(Meta::as_select())
            .order(projections::name)
            .load(c))?)
    }

    pub fn insert_meta(&mut self, meta: &Meta) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::insert_into(projections::table)
            .values(meta)
            .execute(c))?;
        Ok(())
    }

    pub fn save_meta(&mut self, meta: &Meta) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::update(
            projections::table.filter(projections::name.eq(&meta.name))
        )
        .set(meta)
        .execute(c))?;
        Ok(())
    }

    pub fn load_row(
        &mut self,
        name: &str,
        generation: i64,
        key: &str,
    ) -> Result<Option<String>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| projection_rows::table
            .filter(projection_rows::projection.eq(name))
            .filter(projection_rows::generation.eq(generation))
            .filter(projection_rows::key.eq(key))
            .select(projection_rows::value)
            .first(c)
            .optional())?)
    }

    pub fn load_generation(
        &mut self,
        name: &str,
        generation: i64,
    ) -> Result<Vec<(String, String)>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| projection_rows::table
            .filter(projection_rows::projection.eq(name))
            .filter(projection_rows::generation.eq(generation))
            .order(projection_rows::key)
            .select((projection_rows::key, projection_rows::value))
            .load(c))?)
    }

    /// Writes (key, Some(state)) and deletes (key, None): delete then insert, since diesel's
    /// multi-row upsert has no SQLite form.
    pub fn write_rows(
        &mut self,
        name: &str,
        generation: i64,
        rows: &[(String, Option<String>)],
    ) -> Result<(), ProjectionError> {
        for chunk in rows.chunks(LOOKUP_CHUNK) {
            let keys: Vec<&str> = chunk.iter().map(|r| r.0.as_str()).collect();
            on_backend!(&mut self.0, |c| diesel::delete(
                projection_rows::table
                    .filter(projection_rows::projection.eq(name))
                    .filter(projection_rows::generation.eq(generation))
                    .filter(projection_rows::key.eq_any(&keys))
            )
            .execute(c))?;
        }
        let inserts: Vec<RowInsert<'_>> = rows
            .iter()
            .filter_map(|(k, v)| {
                v.as_deref().map(|value| RowInsert {
                    projection: name,
                    generation,
                    key: k,
                    value,
                })
            })
            .collect();
        for chunk in inserts.chunks(INSERT_CHUNK) {
            on_backend!(&mut self.0, |c| diesel::insert_into(projection_rows::table)
                .values(chunk)
                .execute(c))?;
        }
        Ok(())
    }

    /// Copies every row of generation `from` into generation `to` (one statement).
    pub fn copy_generation(
        &mut self,
        name: &str,
        from: i64,
        to: i64,
    ) -> Result<(), ProjectionError> {
        use diesel::sql_types::BigInt;
        on_backend!(&mut self.0, |c| diesel::insert_into(projection_rows::table)
            .values(
                projection_rows::table
                    .filter(projection_rows::projection.eq(name))
                    .filter(projection_rows::generation.eq(from))
                    .select((
                        projection_rows::projection,
                        to.into_sql::<BigInt>(),
                        projection_rows::key,
                        projection_rows::value,
                    )),
            )
            .into_columns((
                projection_rows::projection,
                projection_rows::generation,
                projection_rows::key,
                projection_rows::value,
            ))
            .execute(c))?;
        Ok(())
    }

    pub fn delete_generation(
        &mut self,
        name: &str,
        generation: i64,
    ) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::delete(
            projection_rows::table
                .filter(projection_rows::projection.eq(name))
                .filter(projection_rows::generation.eq(generation))
        )
        .execute(c))?;
        Ok(())
    }

    /// Generations holding rows that nothing points at (an abandoned build).
    pub fn generations(&mut self, name: &str) -> Result<Vec<i64>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| projection_rows::table
            .filter(projection_rows::projection.eq(name))
            .select(projection_rows::generation)
            .distinct()
            .load(c))?)
    }

    pub fn snapshots(&mut self, name: &str) -> Result<Vec<Snapshot>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| projection_snapshots::table
            .filter(projection_snapshots::projection.eq(name))
            .order(projection_snapshots::seq.asc())
            .select(Snapshot::as_select())
            .load(c))?)
    }

    pub fn add_snapshot(&mut self, s: &Snapshot) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::insert_into(projection_snapshots::table)
            .values(s)
            .execute(c))?;
        Ok(())
    }

    pub fn delete_snapshot(&mut self, name: &str, generation: i64) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::delete(
            projection_snapshots::table
                .filter(projection_snapshots::projection.eq(name))
                .filter(projection_snapshots::generation.eq(generation))
        )
        .execute(c))?;
        self.delete_generation(name, generation)
    }

    /// Forgets a projection entirely (row, every generation, snapshots): it builds anew
    /// from the whole log on the next start, like a projection added later.
    pub fn forget(&mut self, name: &str) -> Result<(), ProjectionError> {
        on_backend!(&mut self.0, |c| diesel::delete(
            projection_rows::table.filter(projection_rows::projection.eq(name))
        )
        .execute(c))?;
        on_backend!(&mut self.0, |c| diesel::delete(
            projection_snapshots::table.filter(projection_snapshots::projection.eq(name))
        )
        .execute(c))?;
        on_backend!(&mut self.0, |c| diesel::delete(
            projections::table.filter(projections::name.eq(name))
        )
        .execute(c))?;
        Ok(())
    }

    /// Up to `limit` log entries after `after`, in `seq` order.
    pub fn read_log(&mut self, after: i64, limit: i64) -> Result<Vec<RawEntry>, ProjectionError> {
        Ok(on_backend!(&mut self.0, |c| log_queries::entries_after(after, limit).load(c))?)
    }

    /// Bodies of the given entries (the events that rollback entries undo).
    pub fn log_bodies(&mut self, seqs: &[i64]) -> Result<Vec<(i64, String)>, ProjectionError> {
        let mut out = Vec::with_capacity(seqs.len());
        for chunk in seqs.chunks(LOOKUP_CHUNK) {
            let rows: Vec<(i64, String)> = on_backend!(&mut self.0, |c| log_queries::bodies(chunk).load(c))?;
            out.extend(rows);
        }
        Ok(out)
    }

    pub fn head(&mut self) -> Result<i64, ProjectionError> {
        let head: Option<i64> = on_backend!(&mut self.0, |c| log_queries::last_seq().first(c).optional())?;
        Ok(head.unwrap_or(0))
    }
}
