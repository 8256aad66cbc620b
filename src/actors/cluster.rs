//! Following the log's head when other nodes append to the same database.
//!
//! On PostgreSQL a dedicated connection `LISTEN`s for the head `seq` each appending node
//! notifies on commit ([`crate::store::notify`]). Every `head_check` it also reads the head
//! on that connection: this makes up for any notification lost, and an unanswered check
//! proves the connection dead. A dropped connection is reopened with backoff, and the head
//! read right after the new `LISTEN` covers whatever committed while none was open. On
//! SQLite (nodes sharing one file) only the periodic check runs, through the read pool.
//!
//! The follower only reports heads ([`HeadSeen`]); the supervisor's [`Sequencer`] reads
//! the entries by `seq`.
//!
//! [`Sequencer`]: super::sequencer::Sequencer

use super::messages::{HeadSeen, HeadSource};
use crate::store::{HeadListener, Store, StoreError};
use actix::prelude::*;
use std::time::Duration;

/// First wait before reopening a lost listener connection; doubled per failure.
pub const RECONNECT_BASE: Duration = Duration::from_millis(100);
/// Longest wait between two attempts to reopen the listener connection.
pub const RECONNECT_CAP: Duration = Duration::from_secs(5);
/// Default of `CLUSTER_HEAD_CHECK_MS`: how stale a lost notification can leave a node.
pub const HEAD_CHECK: Duration = Duration::from_secs(1);
/// A head check unanswered for the check interval, but at least this long, counts the
/// listener connection as dead.
const CHECK_TIMEOUT_MIN: Duration = Duration::from_secs(1);

/// How a node follows the shared log's head.
#[derive(Debug, Clone, Copy)]
pub struct ClusterConfig {
    /// Interval of the head check (also the listener's liveness probe); `None`: off.
    pub head_check: Option<Duration>,
    /// Entries per store read when routing what other nodes appended.
    pub read_page: i64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { head_check: Some(HEAD_CHECK), read_page: crate::store::read::MAX_PAGE }
    }
}

/// Reports heads to `to` until it is gone. Runs as long as the supervisor does.
pub(super) async fn follow_heads(store: Store, config: ClusterConfig, to: Recipient<HeadSeen>) {
    if store.is_postgres() {
        listen(store, config, to).await
    } else if let Some(every) = config.head_check {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while to.connected() {
            tick.tick().await;
            match store.head_seq().await {
                Ok(head) => to.do_send(HeadSeen { head, source: HeadSource::Check }),
                Err(e) => tracing::debug!(error = %e, "head check failed"),
            }
        }
    }
}

async fn listen(store: Store, config: ClusterConfig, to: Recipient<HeadSeen>) {
    let mut delay = RECONNECT_BASE;
    let mut source = HeadSource::Check;
    while to.connected() {
        match store.listen_heads().await {
            Ok(listener) => {
                let (ended, caught_up) = follow(listener, config, &to, source).await;
                if !to.connected() {
                    return;
                }
                if caught_up {
                    delay = RECONNECT_BASE;
                }
                source = HeadSource::Reconnect;
                tracing::warn!(error = %ended, retry_in_ms = delay.as_millis() as u64, "log listener lost, reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "cannot open the log listener"),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(RECONNECT_CAP);
    }
}

/// Reports heads from one listener connection until it fails (or `to` is gone): the head
/// once at start (as `first`), then each notification and each periodic check. Returns the
/// failure, and whether the first head was read.
async fn follow(
    mut listener: HeadListener,
    config: ClusterConfig,
    to: &Recipient<HeadSeen>,
    first: HeadSource,
) -> (StoreError, bool) {
    match listener.head_seq().await {
        Ok(head) => to.do_send(HeadSeen { head, source: first }),
        Err(e) => return (e, false),
    }
    tracing::info!("log listener connected");
    // Without periodic checks, an hourly one still finds a dead connection.
    let every = config.head_check.unwrap_or(Duration::from_secs(3600));
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while to.connected() {
        tokio::select! {
            notified = listener.next_notified() => match notified {
                Ok(head) => to.do_send(HeadSeen { head, source: HeadSource::Notification }),
                Err(e) => return (e, true),
            },
            _ = tick.tick() => {
                let answer = tokio::time::timeout(every.max(CHECK_TIMEOUT_MIN), listener.head_seq()).await;
                match answer {
                    Ok(Ok(head)) => to.do_send(HeadSeen { head, source: HeadSource::Check }),
                    Ok(Err(e)) => return (e, true),
                    Err(_) => return (StoreError::Unavailable("head check unanswered".into()), true),
                }
            }
        }
    }
    (StoreError::Unavailable("supervisor stopped".into()), true)
}
