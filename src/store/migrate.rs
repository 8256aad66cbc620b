//! Embedded migrations, one set per backend.
//!
//! diesel_migrations is synchronous, and diesel-async's own harness needs a multi-threaded
//! runtime (actix runs single-threaded ones), so migrations run on a plain thread of their
//! own: SQLite through a sync connection, PostgreSQL through `AsyncConnectionWrapper`,
//! which brings its own small runtime there.

use super::connect::{DatabaseUrl, Inner};
use super::StoreError;
use diesel::Connection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};

const PG_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");

/// Serializes concurrent `migrate` runs of several nodes on one PostgreSQL database.
const PG_MIGRATION_LOCK: i64 = 0x7469_6d65_6d67; // "timemg"

pub(crate) async fn run(inner: &Inner) -> Result<(), StoreError> {
    let url = inner.config.url.clone();
    let busy_timeout = inner.config.sqlite_busy_timeout;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("migrate".into())
        .spawn(move || {
            let _ = tx.send(run_blocking(&url, busy_timeout));
        })
        .map_err(|e| StoreError::Migration(format!("cannot start migration thread: {e}")))?;
    rx.await
        .map_err(|_| StoreError::Migration("migration thread ended without an answer".into()))?
}

fn run_blocking(url: &DatabaseUrl, busy_timeout: std::time::Duration) -> Result<(), StoreError> {
    match url {
        DatabaseUrl::Postgres(url) => {
            use diesel::connection::SimpleConnection;
            type Wrapper = diesel_async::async_connection_wrapper::AsyncConnectionWrapper<
                diesel_async::AsyncPgConnection,
            >;
            let mut conn = Wrapper::establish(url)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            conn.batch_execute(&format!("SELECT pg_advisory_lock({PG_MIGRATION_LOCK})"))
                .map_err(StoreError::Query)?;
            let result = conn
                .run_pending_migrations(PG_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| StoreError::Migration(e.to_string()));
            let _ = conn.batch_execute(&format!("SELECT pg_advisory_unlock({PG_MIGRATION_LOCK})"));
            result
        }
        DatabaseUrl::Sqlite(path) => {
            use diesel::connection::SimpleConnection;
            let path = path
                .to_str()
                .ok_or_else(|| StoreError::Config("SQLite path is not UTF-8".into()))?;
            let mut conn = diesel::SqliteConnection::establish(path)
                .map_err(|e| StoreError::Unavailable(e.to_string()))?;
            conn.batch_execute(&super::sqlite_pragmas::pragmas(super::sqlite_pragmas::SqliteRole::Migrations, busy_timeout, 0))
                .map_err(StoreError::Query)?;
            conn.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| StoreError::Migration(e.to_string()))
        }
    }
}
