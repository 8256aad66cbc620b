//! The append-only log, on PostgreSQL (diesel-async + bb8) or an embedded SQLite file.
//!
//! - [`Store`]: a cheap-to-clone handle holding the read pool; [`Store::writer`] opens the
//!   one connection that appends ([`append::LogWriter`]).
//! - One `table!` set ([`schema`]) serves both backends; migrations are per backend and run
//!   at start-up and by `migrate`.
//! - Nothing here knows about actors or HTTP.

pub mod append;
mod checkpoint;
pub(crate) mod connect;
pub mod entry;
pub mod history;
mod migrate;
mod multi_insert;
mod plan;
mod prepared;
mod rows;
pub mod read;
pub mod schema;

pub use append::{IngestReport, LogWriter};
pub use connect::{configure_sqlite_process, DatabaseUrl, StoreConfig};
pub use entry::{EntryKind, LogEntry};
pub use history::{EntryFilter, HistoryPage};
pub use read::{CanonicalView, EventQuery, Head, StoredEvent};

use connect::Backend;
use std::sync::Arc;

/// Errors of the store, named by what the caller must do.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached or did not answer in time: retry later.
    #[error("event store unavailable: {0}")]
    Unavailable(String),
    /// A statement failed; the transaction was rolled back and nothing was stored.
    #[error("event store query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The configuration cannot work (bad URL, unreadable path): fix and restart.
    #[error("event store misconfigured: {0}")]
    Config(String),
    /// Migrations could not be applied.
    #[error("event store migration failed: {0}")]
    Migration(String),
    /// The log holds something this version cannot read (a newer entry kind, bad JSON).
    #[error("event store holds unreadable data: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the same request may succeed later without any change.
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Unavailable(_) | StoreError::Query(_))
    }
}

/// Handle to the event store. Clone freely: clones share one pool.
#[derive(Clone)]
pub struct Store {
    inner: Arc<connect::Inner>,
}

impl Store {
    /// Connects (creating the SQLite file and its folder when needed) and applies pending
    /// migrations.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let inner = connect::Inner::connect(config).await?;
        let store = Store { inner: Arc::new(inner) };
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this store talks to.
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.config.url
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self.inner.backend, Backend::Pg(_))
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.inner).await
    }

    /// The pool, for read queries of other modules that own tables (projections).
    pub(crate) fn inner(&self) -> &connect::Inner {
        &self.inner
    }

    /// Opens the connection that appends. Only the event-store writer holds one.
    pub async fn writer(&self) -> Result<LogWriter, StoreError> {
        LogWriter::open(self.inner.clone()).await
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.inner.config.url).finish()
    }
}

/// Runs `$body` with `$conn` bound to a pooled connection of whichever backend the store
/// uses. The body is written once and type-checked once per backend.
macro_rules! with_conn {
    ($inner:expr, |$conn:ident| $body:expr) => {
        match &$inner.backend {
            $crate::store::connect::Backend::Pg(pool) => {
                let mut guard = pool
                    .get()
                    .await
                    .map_err($crate::store::connect::pool_error)?;
                let $conn = &mut *guard;
                $body
            }
            $crate::store::connect::Backend::Sqlite(pool) => {
                let mut guard = pool
                    .get()
                    .await
                    .map_err($crate::store::connect::pool_error)?;
                let $conn = &mut *guard;
                $body
            }
        }
    };
}
pub(crate) use with_conn;
