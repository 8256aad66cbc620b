//! The append-only log, on PostgreSQL (diesel-async + bb8) or an embedded SQLite file.
//!
//! - [`Store`]: a cheap-to-clone handle holding the read pool; [`Store::appender`] opens
//!   the one connection that appends ([`Appender`]).
//! - One `table!` set ([`schema`]) serves both backends; migrations are per backend and run
//!   at start-up and by `migrate`.
//! - Nothing here knows about actors or HTTP.

pub mod append;
pub(crate) mod backend;
mod checkpoint;
mod conn_thread;
pub(crate) mod connect;
pub mod entry;
pub mod history;
mod migrate;
mod multi_insert;
pub mod notify;
pub mod paged;
mod plan;
mod prepared;
mod rows;
pub mod read;
pub mod schema;
pub(crate) mod sqlite_pragmas;

pub use append::{rederive_decisions, Appender, IngestReport, OpCommand, OpReply, OpsAppended, OpsSettings, OpsShared};
pub use connect::{configure_sqlite_process, DatabaseUrl, StoreConfig, PG_PAGED_READ_SETTINGS, PG_SESSION_SETTINGS};
pub use history::EntryFilter;
pub use notify::{HeadListener, LISTENER_APPLICATION_NAME, LOG_CHANNEL};
pub use paged::{Page, PageEntry};
pub use read::{CanonicalView, EventQuery, Head, StoredEvent};

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
    /// The ops rules, when ops are enabled ([`Store::with_ops`]).
    ops: Option<Arc<append::OpsShared>>,
}

impl Store {
    /// Connects (creating the SQLite file and its folder when needed) and applies pending
    /// migrations.
    pub async fn open(config: StoreConfig) -> Result<Store, StoreError> {
        let inner = connect::Inner::connect(config).await?;
        let store = Store { inner: Arc::new(inner), ops: None };
        store.migrate().await?;
        Ok(store)
    }

    /// Which database this store talks to.
    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.config.url
    }

    pub fn is_postgres(&self) -> bool {
        self.inner.backend.is_postgres()
    }

    /// Applies pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        migrate::run(&self.inner).await
    }

    /// The pool, for read queries of other modules that own tables (projections).
    pub(crate) fn inner(&self) -> &connect::Inner {
        &self.inner
    }

    /// Opens the connection that appends. Only the event-store writer actor holds one.
    pub async fn appender(&self) -> Result<Appender, StoreError> {
        Appender::open(self.inner.clone(), self.ops.clone()).await
    }

    /// Enables ops: the appender feeds the rules every entry and appends their decisions.
    /// Every clone made after this shares the rules' state.
    pub fn with_ops(mut self, settings: append::OpsSettings) -> Store {
        self.ops = Some(append::OpsShared::new(settings));
        self
    }

    /// Feeds the ops rules every stored entry they have not seen (at startup, so that reads
    /// of `pendingOps` and resends are answered from the whole log before the first append).
    pub async fn catch_up_ops(&self) -> Result<(), StoreError> {
        let Some(ops) = &self.ops else { return Ok(()) };
        loop {
            let after = ops.lock().fed();
            let page = self.entries_after(after, read::MAX_PAGE).await?;
            if page.is_empty() {
                return Ok(());
            }
            let mut feed = ops.lock();
            for e in &page {
                feed.feed_entry(e)?;
            }
        }
    }

    /// The ops rules' state, when ops are enabled.
    pub fn ops(&self) -> Option<&Arc<append::OpsShared>> {
        self.ops.as_ref()
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("url", &self.inner.config.url).finish()
    }
}

/// A failed statement on a connection that is gone means the store is down.
pub(crate) fn classify(e: diesel::result::Error) -> StoreError {
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_string())
        }
        E::BrokenTransactionManager => StoreError::Unavailable(e.to_string()),
        other => StoreError::Query(other),
    }
}
