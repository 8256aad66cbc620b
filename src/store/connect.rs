//! Database URLs, pools and the runtime that drives PostgreSQL sockets.

use super::backend::Backend;
use super::conn_thread::{ConnThread, RunInline, SqliteWriteConn};
use super::sqlite_pragmas::{pragmas, SqliteRole};
use super::StoreError;
use diesel::sqlite::SqliteConnection;
use diesel_async::pooled_connection::{AsyncDieselConnectionManager, ManagerConfig, PoolError};
use diesel_async::sync_connection_wrapper::{SpawnBlocking, SyncConnectionWrapper};
use diesel::Connection;
use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use futures_util::FutureExt;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub(crate) type SqliteConn = SyncConnectionWrapper<SqliteConnection>;
pub(crate) type PgPool = bb8::Pool<AsyncDieselConnectionManager<AsyncPgConnection>>;
pub(crate) type SqlitePool = bb8::Pool<AsyncDieselConnectionManager<SqliteConn>>;

/// Where the log lives.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// `postgres://…` or `postgresql://…`
    Postgres(String),
    /// `sqlite://PATH` (embedded; the file and its folder are created when missing).
    Sqlite(PathBuf),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Result<DatabaseUrl, StoreError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_string()))
        } else if let Some(path) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) {
            if path.is_empty() || path == ":memory:" {
                // An in-memory database is private to each pooled connection.
                return Err(StoreError::Config(format!(
                    "{url:?}: SQLite needs a file path, e.g. sqlite://./data/timebank.db"
                )));
            }
            Ok(DatabaseUrl::Sqlite(PathBuf::from(path)))
        } else {
            Err(StoreError::Config(format!(
                "{url:?}: expected postgres://… or sqlite://PATH"
            )))
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for DatabaseUrl {
    /// Never prints a password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseUrl::Postgres(url) => {
                let shown = match (url.find("://"), url.rfind('@')) {
                    (Some(scheme), Some(at)) if at > scheme => {
                        let creds = &url[scheme + 3..at];
                        match creds.find(':') {
                            Some(colon) => format!("{}{}:***{}", &url[..scheme + 3], &creds[..colon], &url[at..]),
                            None => url.clone(),
                        }
                    }
                    _ => url.clone(),
                };
                f.write_str(&shown)
            }
            DatabaseUrl::Sqlite(path) => write!(f, "sqlite://{}", path.display()),
        }
    }
}

/// How to reach the store and how long to wait for it.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub url: DatabaseUrl,
    /// Read connections in the pool (the appender has its own connection).
    pub pool_size: u32,
    /// How long a caller waits for a connection before the store counts as unavailable.
    /// Short, because Chainhook waits for the webhook's answer and retries on failure.
    pub connect_timeout: Duration,
    /// SQLite only: how long a statement waits for a lock held by another connection.
    pub sqlite_busy_timeout: Duration,
    /// SQLite only: WAL size past which the appender makes the WAL start over.
    pub sqlite_wal_limit_bytes: u64,
    /// Address rows staged in `address_recent` before the appender merges them into
    /// `address_entries`; 0 inserts them there directly. `None`: the backend's default
    /// ([`StoreConfig::address_merge_rows`]).
    pub address_merge_rows: Option<u64>,
}

impl StoreConfig {
    pub fn new(url: DatabaseUrl) -> StoreConfig {
        StoreConfig {
            url,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            sqlite_busy_timeout: DEFAULT_SQLITE_BUSY_TIMEOUT,
            sqlite_wal_limit_bytes: DEFAULT_SQLITE_WAL_LIMIT_BYTES,
            address_merge_rows: None,
        }
    }

    /// The staging limit in force: the configured one, else the backend's default.
    pub fn address_merge_rows(&self) -> u64 {
        self.address_merge_rows.unwrap_or(match self.url {
            DatabaseUrl::Sqlite(_) => DEFAULT_SQLITE_ADDRESS_MERGE_ROWS,
            DatabaseUrl::Postgres(_) => DEFAULT_PG_ADDRESS_MERGE_ROWS,
        })
    }
}

/// Read connections: enough for the HTTP workers and catch-up readers of 2 cores.
pub const DEFAULT_POOL_SIZE: u32 = 8;
pub const DEFAULT_SQLITE_WAL_LIMIT_BYTES: u64 = 64 << 20;
/// SQLite writes every page a commit dirtied to the WAL, and a group's address rows land on
/// one index page per busy principal; staged, they dirty a small table's pages instead, and
/// the index's pages once per merge. See `append/staging.rs`.
pub const DEFAULT_SQLITE_ADDRESS_MERGE_ROWS: u64 = 131_072;
/// PostgreSQL logs each index insert rather than each dirtied page: staging only adds work
/// there (docs/benchmarks.md), so rows go straight into the index.
pub const DEFAULT_PG_ADDRESS_MERGE_ROWS: u64 = 0;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// A connection taken from the read pool of either backend.
pub(crate) type PooledConn<'a> = Backend<
    bb8::PooledConnection<'a, AsyncDieselConnectionManager<AsyncPgConnection>>,
    bb8::PooledConnection<'a, AsyncDieselConnectionManager<SqliteConn>>,
>;

pub(crate) struct Inner {
    pub backend: Backend<PgPool, SqlitePool>,
    pub config: StoreConfig,
    /// Runs every PostgreSQL connection's socket task. diesel-async drives a connection on
    /// the runtime that created it; created on an actix worker, one busy worker would stall
    /// queries issued from all the others.
    pub db_runtime: DbRuntime,
    /// PostgreSQL: the backend pid of this process's appender connection (0 while none),
    /// so the log listener can tell this node's own notifications from other nodes'.
    pub appender_pid: std::sync::atomic::AtomicI32,
}

pub(crate) struct DbRuntime(Option<tokio::runtime::Runtime>);

impl DbRuntime {
    fn new() -> Result<DbRuntime, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("db-io")
            .enable_all()
            .build()
            .map(|rt| DbRuntime(Some(rt)))
            .map_err(|e| StoreError::Config(format!("cannot start the database runtime: {e}")))
    }

    pub fn handle(&self) -> Option<tokio::runtime::Handle> {
        self.0.as_ref().map(|rt| rt.handle().clone())
    }
}

impl Drop for DbRuntime {
    fn drop(&mut self) {
        // Dropping a runtime from inside another runtime's task would panic.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

pub(crate) fn pool_error(e: bb8::RunError<PoolError>) -> StoreError {
    match e {
        bb8::RunError::TimedOut => StoreError::Unavailable("timed out waiting for a connection".into()),
        bb8::RunError::User(e) => StoreError::Unavailable(e.to_string()),
    }
}

/// Session settings of every PostgreSQL connection the store opens (see [`establish_pg`]).
pub const PG_SESSION_SETTINGS: &str = "SET plan_cache_mode = force_custom_plan";

/// Planner settings of the PostgreSQL connections that page through the log: the read pool
/// and the projection engine's connection.
///
/// Each paged read walks one index in order from its cursor (`super::paged`), and each of
/// their other reads is a lookup by a key or an index: neither sorts nor scans a table
/// whole. Without statistics (a table loaded since the last `ANALYZE`, autovacuum off)
/// PostgreSQL estimates that a page's range holds a fraction of a percent of the table and
/// prefers a bitmap scan of the whole range and a sort to the walk, so a page costs its
/// range, not its rows. Turning sorts and sequential scans off leaves the planner the walk
/// (or the lookup), whatever the statistics say; a query that had no other plan would still
/// run, only costed as such. That cost passes every JIT threshold, so JIT is off too: it
/// would compile such a query at each execution, and none of these queries runs long
/// enough to gain from it.
pub const PG_PAGED_READ_SETTINGS: &str = "SET enable_sort = off; SET enable_seqscan = off; SET jit = off";

/// Opens one PostgreSQL connection whose socket is driven by the database runtime.
///
/// diesel prepares and caches its statements per connection. PostgreSQL switches a prepared
/// statement to a generic plan after five executions, and keeps it until the table's
/// statistics change; a plan made while the log was nearly empty (sequential scans) then
/// stays for good where autovacuum does not run, and every `block_hash = ANY($1)` lookup
/// grows with the table (docs/benchmarks.md). Planning
/// each execution with its actual values costs tens of microseconds.
pub(crate) async fn establish_pg(
    handle: tokio::runtime::Handle,
    url: String,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let connect = async move {
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute(PG_SESSION_SETTINGS)
            .await
            .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
        Ok(conn)
    };
    match handle.spawn(connect).await {
        Ok(result) => result,
        Err(e) => Err(diesel::ConnectionError::BadConnection(format!(
            "connection task failed: {e}"
        ))),
    }
}

/// Opens one connection of the read pool: [`establish_pg`] with [`PG_PAGED_READ_SETTINGS`].
async fn establish_pg_reader(handle: tokio::runtime::Handle, url: String) -> diesel::ConnectionResult<AsyncPgConnection> {
    let mut conn = establish_pg(handle, url).await?;
    conn.batch_execute(PG_PAGED_READ_SETTINGS)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// Sets SQLite's process-wide options for this server: multi-thread mode and no memory
/// statistics. In its default (serialized) mode SQLite takes a connection's mutex around
/// every call, each bind and step included, and with statistics on it takes a global one
/// around every allocation, a visible share of the appender's thread (docs/benchmarks.md).
/// Multi-thread mode drops the
/// per-connection mutex, which is safe here because no connection or statement is ever
/// used by two threads at once: diesel's `SqliteConnection` is `Send` but not `Sync`, and
/// every connection (the appender's, the checkpointer's, each pooled reader) is owned by one
/// task or thread at a time. Returns whether SQLite took both options (it refuses them once
/// initialised; then it stays in its defaults, which are correct, only slower).
///
/// # Safety
///
/// Call before anything in the process uses SQLite and before other threads start (the
/// binary's `main` does, first thing): `sqlite3_config` is not thread-safe.
pub unsafe fn configure_sqlite_process() -> bool {
    use libsqlite3_sys::{sqlite3_config, SQLITE_CONFIG_MEMSTATUS, SQLITE_CONFIG_MULTITHREAD, SQLITE_OK};
    // SAFETY: the caller guarantees no other SQLite use, in this thread or another, yet.
    unsafe {
        let threads = sqlite3_config(SQLITE_CONFIG_MULTITHREAD);
        let memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
        threads == SQLITE_OK && memstatus == SQLITE_OK
    }
}

/// Opens one pooled SQLite connection (on tokio's blocking pool) with a reader's pragmas.
async fn establish_sqlite(path: String, busy_timeout: Duration) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    conn.batch_execute(&pragmas(SqliteRole::Reader, busy_timeout, 0))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))?;
    Ok(conn)
}

/// Opens the appender's SQLite connection, on a [`ConnThread`] of its own, and the handle
/// that runs its next job on the caller's thread. The caller sets its pragmas.
pub(crate) async fn establish_sqlite_appender(path: String) -> diesel::ConnectionResult<(SqliteWriteConn, RunInline)> {
    let (mut thread, inline) = ConnThread::start();
    let opened = thread
        .spawn_blocking(move || SqliteConnection::establish(&path))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
    Ok((SyncConnectionWrapper::with_runtime(opened, thread), inline))
}

impl Inner {
    pub async fn connect(config: StoreConfig) -> Result<Inner, StoreError> {
        let db_runtime = DbRuntime::new()?;
        let backend = match &config.url {
            DatabaseUrl::Postgres(url) => {
                let handle = db_runtime
                    .handle()
                    .ok_or_else(|| StoreError::Config("database runtime stopped".into()))?;
                let mut manager_config = ManagerConfig::<AsyncPgConnection>::default();
                manager_config.custom_setup = Box::new(move |url| establish_pg_reader(handle.clone(), url.to_string()).boxed());
                let manager = AsyncDieselConnectionManager::new_with_config(url.clone(), manager_config);
                let pool = bb8::Pool::builder()
                    .max_size(config.pool_size)
                    .min_idle(Some(1))
                    .connection_timeout(config.connect_timeout)
                    .build_unchecked(manager);
                Backend::Pg(pool)
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StoreError::Config(format!("cannot create {}: {e}", dir.display()))
                    })?;
                }
                let path = path
                    .to_str()
                    .ok_or_else(|| StoreError::Config(format!("{} is not UTF-8", path.display())))?
                    .to_string();
                let busy = config.sqlite_busy_timeout;
                let mut manager_config = ManagerConfig::<SqliteConn>::default();
                manager_config.custom_setup =
                    Box::new(move |_url| establish_sqlite(path.clone(), busy).boxed());
                let manager = AsyncDieselConnectionManager::new_with_config(
                    config.url.to_string(),
                    manager_config,
                );
                let pool = bb8::Pool::builder()
                    .max_size(config.pool_size)
                    .connection_timeout(config.connect_timeout)
                    .build_unchecked(manager);
                Backend::Sqlite(pool)
            }
        };
        Ok(Inner { backend, config, db_runtime, appender_pid: Default::default() })
    }

    /// A connection from the read pool, for [`on_backend!`](super::backend::on_backend).
    pub async fn conn(&self) -> Result<PooledConn<'_>, StoreError> {
        Ok(match &self.backend {
            Backend::Pg(pool) => Backend::Pg(pool.get().await.map_err(pool_error)?),
            Backend::Sqlite(pool) => Backend::Sqlite(pool.get().await.map_err(pool_error)?),
        })
    }

    pub fn sqlite_path(&self) -> Option<String> {
        match &self.config.url {
            DatabaseUrl::Sqlite(p) => p.to_str().map(str::to_string),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}
