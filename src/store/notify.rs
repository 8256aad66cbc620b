//! How nodes sharing one PostgreSQL log learn that it grew: the appender's transaction
//! sends `NOTIFY` on [`LOG_CHANNEL`] with the new head `seq` (never the entries), delivered
//! by PostgreSQL only once it commits; a [`HeadListener`] holds the dedicated connection
//! that `LISTEN`s for it.
//!
//! The listener's connection is not a pooled one: a pooled connection is handed to other
//! queries and back, and `LISTEN` belongs to the session. It is named
//! ([`LISTENER_APPLICATION_NAME`], seen in `pg_stat_activity`) so an operator can find it.

use super::connect::{establish_pg, Inner};
use super::schema::log_entries;
use super::{DatabaseUrl, Store, StoreError};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl, SimpleAsyncConnection};
use futures_util::StreamExt;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// The channel every appender notifies and every listener listens on.
pub const LOG_CHANNEL: &str = "timebank_log";

/// `application_name` of the listening connection.
pub const LISTENER_APPLICATION_NAME: &str = "timebank-realtime listener";

/// The statement that announces a group's new head, sent inside the group's transaction
/// (PostgreSQL delivers it on COMMIT, and drops it on ROLLBACK).
pub(crate) fn notify_sql(head_seq: i64) -> String {
    format!("NOTIFY {LOG_CHANNEL}, '{head_seq}'")
}

/// A dedicated PostgreSQL connection that `LISTEN`s on [`LOG_CHANNEL`].
pub struct HeadListener {
    conn: AsyncPgConnection,
    inner: Arc<Inner>,
}

impl Store {
    /// Opens a [`HeadListener`] (PostgreSQL only; SQLite has no notifications). Everything
    /// committed after this returns is notified; what committed before, [`HeadListener::head_seq`]
    /// tells.
    pub async fn listen_heads(&self) -> Result<HeadListener, StoreError> {
        let inner = self.inner.clone();
        let DatabaseUrl::Postgres(url) = &inner.config.url else {
            return Err(StoreError::Config("notifications need PostgreSQL".into()));
        };
        let handle = inner
            .db_runtime
            .handle()
            .ok_or_else(|| StoreError::Unavailable("database runtime stopped".into()))?;
        let mut conn = tokio::time::timeout(inner.config.connect_timeout, establish_pg(handle, url.clone()))
            .await
            .map_err(|_| StoreError::Unavailable("connect timed out".into()))?
            .map_err(|e| StoreError::Unavailable(e.to_string()))?;
        conn.batch_execute(&format!("SET application_name = '{LISTENER_APPLICATION_NAME}'; LISTEN {LOG_CHANNEL}"))
            .await
            .map_err(super::classify)?;
        Ok(HeadListener { conn, inner })
    }
}

impl HeadListener {
    /// The next head `seq` another node notified. Notifications of this process's own
    /// appender are skipped: its writer hands those entries over directly. An error means
    /// the connection is gone (open a new listener).
    pub async fn next_notified(&mut self) -> Result<i64, StoreError> {
        let own = std::sync::atomic::AtomicI32::load(&self.inner.appender_pid, Ordering::Acquire);
        let mut stream = std::pin::pin!(self.conn.notifications_stream());
        loop {
            let notification = match stream.next().await {
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(super::classify(e)),
                None => return Err(StoreError::Unavailable("listener connection closed".into())),
            };
            if notification.channel != LOG_CHANNEL {
                continue;
            }
            if own != 0 && notification.process_id == own {
                continue;
            }
            match notification.payload.parse::<i64>() {
                Ok(head) => return Ok(head),
                Err(_) => {
                    tracing::warn!(payload = %notification.payload, "log notification without a seq, ignored");
                }
            }
        }
    }

    /// The log's head `seq` now (0 when empty), read on the listener's own connection, so
    /// an answer also proves the connection alive.
    pub async fn head_seq(&mut self) -> Result<i64, StoreError> {
        let head: Option<i64> = log_entries::table
            .select(diesel::dsl::max(log_entries::seq))
            .first(&mut self.conn)
            .await
            .map_err(super::classify)?;
        Ok(head.unwrap_or(0))
    }
}

impl Store {
    /// The log's head `seq` (0 when empty), through the read pool.
    pub async fn head_seq(&self) -> Result<i64, StoreError> {
        use super::backend::on_backend;
        let head: Option<i64> = on_backend!(&mut self.inner.conn().await?, |c| log_entries::table
            .select(diesel::dsl::max(log_entries::seq))
            .first(c)
            .await?);
        Ok(head.unwrap_or(0))
    }
}
