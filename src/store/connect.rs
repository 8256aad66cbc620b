//! Database URLs, pools and the runtime that drives PostgreSQL sockets.

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
/// The writer's SQLite connection, whose work runs on a thread of its own ([`ConnThread`]).
pub(crate) type SqliteWriteConn = SyncConnectionWrapper<SqliteConnection, ConnThread>;
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
    /// Read connections in the pool (the writer has its own connection).
    pub pool_size: u32,
    /// How long a caller waits for a connection before the store counts as unavailable.
    /// Short, because Chainhook waits for the webhook's answer and retries on failure.
    pub connect_timeout: Duration,
    /// SQLite only: how long a statement waits for a lock held by another connection.
    pub sqlite_busy_timeout: Duration,
    /// SQLite only: WAL size past which the writer makes the WAL start over.
    pub sqlite_wal_limit_bytes: u64,
    /// Address rows staged in `address_recent` before the writer merges them into
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
/// the index's pages once per merge. See `append.rs`, "Staged address rows".
pub const DEFAULT_SQLITE_ADDRESS_MERGE_ROWS: u64 = 131_072;
/// PostgreSQL logs each index insert rather than each dirtied page: staging only adds work
/// there (measured 15–20% slower), so rows go straight into the index.
pub const DEFAULT_PG_ADDRESS_MERGE_ROWS: u64 = 0;
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
pub const DEFAULT_SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(2);

pub(crate) enum Backend {
    Pg(PgPool),
    Sqlite(SqlitePool),
}

pub(crate) struct Inner {
    pub backend: Backend,
    pub config: StoreConfig,
    /// Runs every PostgreSQL connection's socket task. diesel-async drives a connection on
    /// the runtime that created it; created on an actix worker, one busy worker would stall
    /// queries issued from all the others.
    pub db_runtime: DbRuntime,
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

/// Opens one PostgreSQL connection whose socket is driven by the database runtime.
///
/// diesel prepares and caches its statements per connection. PostgreSQL switches a prepared
/// statement to a generic plan after five executions, and keeps it until the table's
/// statistics change; a plan made while the log was nearly empty (sequential scans) then
/// stays for good where autovacuum does not run, and every `block_hash = ANY($1)` lookup
/// grows with the table (measured: 0.4 ms → 100 ms per group after 100,000 blocks). Planning
/// each execution with its actual values costs tens of microseconds.
pub(crate) async fn establish_pg(
    handle: tokio::runtime::Handle,
    url: String,
) -> diesel::ConnectionResult<AsyncPgConnection> {
    let connect = async move {
        let mut conn = AsyncPgConnection::establish(&url).await?;
        conn.batch_execute("SET plan_cache_mode = force_custom_plan")
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

/// Sets SQLite's process-wide options for this server: multi-thread mode and no memory
/// statistics. In its default (serialized) mode SQLite takes a connection's mutex around
/// every call, each bind and step included, and with statistics on it takes a global one
/// around every allocation: a profile of 1-event blocks showed a tenth of the write
/// connection's thread in `pthread_mutex_lock`/`unlock`. Multi-thread mode drops the
/// per-connection mutex, which is safe here because no connection or statement is ever
/// used by two threads at once: diesel's `SqliteConnection` is `Send` but not `Sync`, and
/// every connection (the writer's, the checkpointer's, each pooled reader) is owned by one
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

type Job = Box<dyn FnOnce() + Send>;

/// Runs one connection's work on a thread of its own, in the order it was handed over.
///
/// The writer's SQLite connection uses it instead of tokio's blocking pool. The order is
/// kept, so the writer can hand over a stretch of rows and go on planning the next without
/// waiting for the first to be written: the rows, a later lookup and the COMMIT run one
/// after the other as handed over. And while the writer keeps it fed, the thread goes from
/// one job to the next without sleeping, where each hand-over to the pool woke a thread
/// (measured on this 2-vCPU machine: 24 µs at the median, 163 µs on average, several times
/// per group).
///
/// A short job the writer is going to wait for with nothing to do meanwhile (a group's
/// BEGIN, which reads the head: tens of µs) it runs on its own thread instead
/// ([`RunInline`]): once the jobs handed over before it have run, the next job runs right
/// there, in order still, without two hand-overs between threads. Each cost a wake-up; on
/// this 2-vCPU machine the writer resumed a median 185 µs after the BEGIN had answered.
/// 1-event blocks, A/B: +7% at 64 and at 1,024 in flight. Running the COMMIT there as well
/// (1–2 ms, after the stretches) measured 7% slower, so it stays on the connection's
/// thread. While it runs a job the writer's thread handles no message: a BEGIN that waits
/// for another process's write lock holds it up to `SQLITE_BUSY_TIMEOUT_MS`.
///
/// Each job is handed over when `spawn_blocking` is called, not when its future is first
/// polled, and runs even if the future is dropped. The thread ends with its connection
/// (when the last sender is dropped). A job that panics is answered with an error, as by
/// tokio's pool, and the thread goes on.
pub(crate) struct ConnThread {
    jobs: std::sync::mpsc::SyncSender<Job>,
    shared: std::sync::Arc<ConnThreadState>,
}

#[derive(Default)]
struct ConnThreadState {
    /// Jobs handed to the thread and not finished.
    outstanding: std::sync::Mutex<usize>,
    finished: std::sync::Condvar,
    /// Run the next job on the caller's thread.
    inline_next: std::sync::atomic::AtomicBool,
}

impl ConnThreadState {
    fn outstanding(&self) -> std::sync::MutexGuard<'_, usize> {
        self.outstanding.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Makes a [`ConnThread`]'s next job run on the thread that hands it over, after the jobs
/// handed over before it; that thread blocks meanwhile.
#[derive(Clone)]
pub(crate) struct RunInline(std::sync::Arc<ConnThreadState>);

impl RunInline {
    pub(crate) fn next_job(&self) {
        self.0.inline_next.store(true, std::sync::atomic::Ordering::Release);
    }
}

/// Jobs a [`ConnThread`] holds before `spawn_blocking` waits for room. The writer hands
/// over at most one group's stretches (about ten), a lookup and the COMMIT at a time.
const CONN_THREAD_JOBS: usize = 64;

impl ConnThread {
    fn start() -> (ConnThread, RunInline) {
        let shared = std::sync::Arc::new(ConnThreadState::default());
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(CONN_THREAD_JOBS);
        let state = shared.clone();
        let spawned = std::thread::Builder::new().name("sqlite-writer".into()).spawn(move || {
            while let Ok(job) = queue.recv() {
                // A panic drops the job's answer channel: its caller gets an error.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                let mut outstanding = state.outstanding();
                *outstanding -= 1;
                if *outstanding == 0 {
                    state.finished.notify_all();
                }
            }
        });
        if let Err(e) = spawned {
            // The queue is gone with the closure: every job is answered with an error.
            tracing::error!(error = %e, "could not start the SQLite writer's thread");
        }
        let inline = RunInline(shared.clone());
        (ConnThread { jobs, shared }, inline)
    }
}

impl SpawnBlocking for ConnThread {
    fn spawn_blocking<'a, R>(
        &mut self,
        task: impl FnOnce() -> R + Send + 'static,
    ) -> futures_util::future::BoxFuture<'a, Result<R, Box<dyn std::error::Error + Send + Sync + 'static>>>
    where
        R: Send + 'static,
    {
        if self.shared.inline_next.swap(false, std::sync::atomic::Ordering::AcqRel) {
            let mut outstanding = self.shared.outstanding();
            while *outstanding > 0 {
                outstanding = self.shared.finished.wait(outstanding).unwrap_or_else(|poisoned| poisoned.into_inner());
            }
            drop(outstanding);
            let done = std::panic::catch_unwind(std::panic::AssertUnwindSafe(task))
                .map_err(|_| "the connection's job failed".into());
            return Box::pin(std::future::ready(done));
        }
        *self.shared.outstanding() += 1;
        let (answer, answered) = tokio::sync::oneshot::channel();
        let sent = self.jobs.send(Box::new(move || {
            let _ = answer.send(task());
        }));
        if sent.is_err() {
            *self.shared.outstanding() -= 1;
        }
        Box::pin(async move {
            sent.map_err(|_| "the connection's thread has stopped")?;
            answered.await.map_err(|_| "the connection's job failed".into())
        })
    }

    fn get_runtime() -> Self {
        ConnThread::start().0
    }
}

/// Opens one pooled SQLite connection (on tokio's blocking pool) with the pragmas every
/// connection needs.
async fn establish_sqlite(path: String, busy_timeout: Duration) -> diesel::ConnectionResult<SqliteConn> {
    let mut conn = SqliteConn::establish(&path).await?;
    sqlite_pragmas(&mut conn, busy_timeout).await?;
    Ok(conn)
}

/// Opens the writer's SQLite connection, on a [`ConnThread`] of its own, and the handle that
/// runs its next job on the caller's thread.
pub(crate) async fn establish_sqlite_writer(
    path: String,
    busy_timeout: Duration,
) -> diesel::ConnectionResult<(SqliteWriteConn, RunInline)> {
    let (mut thread, inline) = ConnThread::start();
    let opened = thread
        .spawn_blocking(move || SqliteConnection::establish(&path))
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))??;
    let mut conn = SyncConnectionWrapper::with_runtime(opened, thread);
    sqlite_pragmas(&mut conn, busy_timeout).await?;
    Ok((conn, inline))
}

async fn sqlite_pragmas<S: SpawnBlocking + Send>(
    conn: &mut SyncConnectionWrapper<SqliteConnection, S>,
    busy_timeout: Duration,
) -> diesel::ConnectionResult<()> {
    // WAL lets readers run beside the writer; synchronous=FULL makes a commit durable
    // before the webhook answers 200.
    let pragmas = format!(
        "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         PRAGMA foreign_keys = ON;",
        busy_timeout.as_millis()
    );
    conn.batch_execute(&pragmas)
        .await
        .map_err(|e| diesel::ConnectionError::BadConnection(e.to_string()))
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
                manager_config.custom_setup = Box::new(move |url| establish_pg(handle.clone(), url.to_string()).boxed());
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
        Ok(Inner { backend, config, db_runtime })
    }

    pub fn sqlite_path(&self) -> Option<String> {
        match &self.config.url {
            DatabaseUrl::Sqlite(p) => p.to_str().map(str::to_string),
            DatabaseUrl::Postgres(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConnThread;
    use diesel_async::sync_connection_wrapper::SpawnBlocking;
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    /// Jobs run in the order handed over, and a job run on the caller's thread waits for the
    /// ones handed to the connection's thread before it.
    #[tokio::test]
    async fn jobs_keep_their_order_inline_or_not() {
        let (mut thread, inline) = ConnThread::start();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = |n: u32, pause: u64| {
            let seen = seen.clone();
            move || {
                std::thread::sleep(Duration::from_millis(pause));
                seen.lock().expect("not poisoned").push((n, std::thread::current().name().map(str::to_string)));
                n
            }
        };
        let first = thread.spawn_blocking(record(1, 50));
        let second = thread.spawn_blocking(record(2, 0));
        inline.next_job();
        let third = thread.spawn_blocking(record(3, 0));
        let fourth = thread.spawn_blocking(record(4, 0));
        assert_eq!(third.await.expect("inline job"), 3);
        assert_eq!(fourth.await.expect("job"), 4);
        assert_eq!((first.await.expect("job"), second.await.expect("job")), (1, 2));
        let seen = seen.lock().expect("not poisoned").clone();
        let order: Vec<u32> = seen.iter().map(|(n, _)| *n).collect();
        assert_eq!(order, [1, 2, 3, 4]);
        let here = std::thread::current().name().map(str::to_string);
        assert_eq!(seen[2].1, here, "the inline job ran on the caller's thread");
        assert_eq!(seen[0].1.as_deref(), Some("sqlite-writer"));
        assert_eq!(seen[3].1.as_deref(), Some("sqlite-writer"), "only the next job runs inline");
    }
}
