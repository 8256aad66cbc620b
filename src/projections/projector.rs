//! The Projector: keeps every projection current as entries commit.
//!
//! An actor registers with the [`Supervisor`] (`Listen`) and hands each `Committed` batch to
//! a thread of its own that owns the [`Engine`] and its connection: folding is CPU work and
//! the engine's connection is synchronous, so neither may run on an actix worker.
//!
//! Order of start: register first, then catch up from each projection's checkpoint by
//! reading the log. Entries committed meanwhile arrive as `Committed` and are skipped where
//! already folded; a gap between the checkpoint and a batch is read from the log. So no
//! entry is missed and none is folded twice, whatever the timing.
//!
//! Batches waiting in the channel are folded together, in one transaction. After a
//! failure (database down) the thread retries every [`RETRY_INTERVAL`] from the stored
//! checkpoints.

use super::db::Db;
use super::{builtin, Engine, EngineSettings, EntityMapping};
use crate::actors::{Committed, Listen, Supervisor};
use crate::model::LogEntry;
use crate::store::DatabaseUrl;
use actix::prelude::*;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// Wait between attempts after the database failed.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Entries folded in one live transaction at most (waiting batches are merged up to this).
pub const MAX_LIVE_BATCH: usize = 20_000;
/// SQLite: how long the projector waits for the write lock (it shares it with the writer).
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub url: DatabaseUrl,
    pub mapping: EntityMapping,
    pub settings: EngineSettings,
}

enum Work {
    Committed(Arc<[LogEntry]>),
}

pub struct Projector {
    config: ProjectorConfig,
    supervisor: Addr<Supervisor>,
    work: Option<mpsc::Sender<Work>>,
}

impl Projector {
    pub fn new(config: ProjectorConfig, supervisor: Addr<Supervisor>) -> Projector {
        Projector {
            config,
            supervisor,
            work: None,
        }
    }
}

impl Actor for Projector {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let listen = self.supervisor.send(Listen {
            recipient: ctx.address().recipient(),
        });
        ctx.wait(listen.into_actor(self).map(|res, act, ctx| {
            if res.is_err() {
                tracing::error!("supervisor gone before the projector registered");
                ctx.stop();
                return;
            }
            let (tx, rx) = mpsc::channel();
            let config = act.config.clone();
            let spawned = std::thread::Builder::new()
                .name("projector".into())
                .spawn(move || run(config, rx));
            match spawned {
                Ok(_) => act.work = Some(tx),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start the projector thread");
                    ctx.stop();
                }
            }
        }));
    }
}

impl Handler<Committed> for Projector {
    type Result = ();

    fn handle(&mut self, msg: Committed, _ctx: &mut Context<Self>) {
        if let Some(tx) = &self.work {
            // A send fails only once the thread ended; it logged why.
            let _ = tx.send(Work::Committed(msg.entries));
        }
    }
}

/// The projector thread: open, start (build/rebuild/catch up), then fold batches until
/// the actor (the channel's sender) goes away.
fn run(config: ProjectorConfig, rx: mpsc::Receiver<Work>) {
    let mut engine = loop {
        match Db::open(&config.url, SQLITE_BUSY_TIMEOUT) {
            Ok(db) => {
                break Engine::new(db, builtin(config.mapping.clone()), config.settings)
                    .with_prefetch(config.url.clone())
            }
            Err(e) => {
                tracing::warn!(error = %e, "projector cannot connect, retrying");
                if wait_or_stop(&rx) {
                    return;
                }
            }
        }
    };
    let mut healthy = match engine.start(&mut |_, _| {}) {
        Ok(()) => {
            tracing::info!(checkpoints = ?engine.checkpoints(), "projections caught up");
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "projections could not catch up, retrying");
            false
        }
    };
    loop {
        let first = if healthy {
            match rx.recv() {
                Ok(w) => Some(w),
                Err(_) => return,
            }
        } else {
            match rx.recv_timeout(RETRY_INTERVAL) {
                Ok(w) => Some(w),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        };
        let result = match first {
            Some(Work::Committed(entries)) => {
                let mut batch: Vec<LogEntry> = entries.to_vec();
                while batch.len() < MAX_LIVE_BATCH {
                    match rx.try_recv() {
                        Ok(Work::Committed(more)) => batch.extend(more.iter().cloned()),
                        Err(_) => break,
                    }
                }
                if healthy {
                    engine.advance_live(&batch)
                } else {
                    engine.start(&mut |_, _| {})
                }
            }
            None => engine.start(&mut |_, _| {}),
        };
        match result {
            Ok(()) => healthy = true,
            Err(e) => {
                tracing::warn!(error = %e, "projection batch failed, will refold from the checkpoints");
                healthy = false;
            }
        }
    }
}

/// Sleeps one retry interval; true when the actor is gone.
fn wait_or_stop(rx: &mpsc::Receiver<Work>) -> bool {
    matches!(
        rx.recv_timeout(RETRY_INTERVAL),
        Err(mpsc::RecvTimeoutError::Disconnected)
    )
}
