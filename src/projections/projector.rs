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
//! Batches waiting in the queue are folded together, in one transaction. After a
//! failure (database down) the thread retries every [`RETRY_INTERVAL`] from the stored
//! checkpoints.
//!
//! # Bounded work
//!
//! Batches wait for the thread in a queue bounded by the entries they hold
//! (`PROJECTOR_MAX_PENDING`, default [`MAX_PENDING_ENTRIES`]), so a fold slower than
//! ingestion cannot grow memory without limit. The actor never waits for the thread: when
//! a batch does not fit, the queue drops it with everything queued and the thread, once
//! it gets there, reads the log from its checkpoints to the head instead — the entries are
//! in the log, so the projections end up the same (`queue` says why). The actor itself
//! only moves batches into the queue, so its mailbox drains as fast as entries commit.

mod queue;

use super::db::Db;
use super::{builtin, Engine, EngineSettings, EntityMapping};
use crate::actors::{Committed, Listen, Supervisor};
use crate::model::LogEntry;
use crate::store::DatabaseUrl;
use actix::prelude::*;
pub use queue::QueueStats;
use queue::{Work, WorkQueue};
use crate::telemetry::metrics as m;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Wait between attempts after the database failed.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// Entries folded in one live transaction at most (waiting batches are merged up to this).
pub const MAX_LIVE_BATCH: usize = 20_000;
/// SQLite: how long the projector waits for the write lock (it shares it with the writer).
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound of the entries queued for the projection thread: a few of the writer's
/// largest groups (20,000 events each), so bursts fold live, while a fold that falls
/// further behind holds at most this much before it reads the log instead.
pub const MAX_PENDING_ENTRIES: usize = 50_000;

#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    pub url: DatabaseUrl,
    pub mapping: EntityMapping,
    pub settings: EngineSettings,
    /// Entries queued for the projection thread at most ([`MAX_PENDING_ENTRIES`]).
    pub max_pending_entries: usize,
    /// Holds the thread before each piece of work while closed (tests); `None` in servers.
    pub gate: Option<Arc<FoldGate>>,
}

impl ProjectorConfig {
    pub fn new(url: DatabaseUrl, mapping: EntityMapping, settings: EngineSettings) -> ProjectorConfig {
        ProjectorConfig {
            url,
            mapping,
            settings,
            max_pending_entries: MAX_PENDING_ENTRIES,
            gate: None,
        }
    }
}

/// Holds the projection thread before each piece of work while closed, so a test can
/// make folding slower than ingestion without relying on timing.
#[derive(Debug, Default)]
pub struct FoldGate {
    state: Mutex<GateState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct GateState {
    closed: bool,
    /// The thread waits at the gate, work in hand.
    holding: bool,
}

impl FoldGate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn close(&self) {
        self.lock().closed = true;
    }

    pub fn open(&self) {
        self.lock().closed = false;
        self.changed.notify_all();
    }

    /// Waits (up to `timeout`) until the thread is held at the gate; whether it is.
    pub fn wait_holding(&self, timeout: Duration) -> bool {
        let state = self.lock();
        let (state, _) = self
            .changed
            .wait_timeout_while(state, timeout, |s| !s.holding)
            .unwrap_or_else(|e| e.into_inner());
        state.holding
    }

    fn pass(&self) {
        let mut state = self.lock();
        if state.closed {
            state.holding = true;
            self.changed.notify_all();
            state = self.changed.wait_while(state, |s| s.closed).unwrap_or_else(|e| e.into_inner());
            state.holding = false;
        }
    }
}

/// Ask the projector for its queue's counters.
#[derive(Message)]
#[rtype(result = "QueueStats")]
pub struct GetProjectorStats;

pub struct Projector {
    config: ProjectorConfig,
    supervisor: Addr<Supervisor>,
    queue: Arc<WorkQueue>,
    progress: Arc<Progress>,
}

/// How far the projections are behind the log, for `GET /metrics`: the last `seq` committed
/// to the projector, and the lowest checkpoint of its projections.
#[derive(Default)]
struct Progress {
    committed: AtomicI64,
    folded: AtomicI64,
}

impl Progress {
    fn committed(&self, seq: i64) {
        self.committed.fetch_max(seq, Ordering::Relaxed);
        self.publish();
    }

    fn folded(&self, engine: &Engine) {
        if let Some(lowest) = engine.checkpoints().iter().map(|(_, _, checkpoint)| *checkpoint).min() {
            self.folded.store(lowest, Ordering::Relaxed);
            self.committed.fetch_max(lowest, Ordering::Relaxed);
            self.publish();
        }
    }

    fn publish(&self) {
        let (committed, folded) = (self.committed.load(Ordering::Relaxed), self.folded.load(Ordering::Relaxed));
        metrics::gauge!(m::PROJECTION_SEQ).set(folded as f64);
        metrics::gauge!(m::PROJECTION_LAG).set(committed.saturating_sub(folded).max(0) as f64);
    }
}

impl Projector {
    pub fn new(config: ProjectorConfig, supervisor: Addr<Supervisor>) -> Projector {
        let queue = Arc::new(WorkQueue::new(config.max_pending_entries.max(1)));
        Projector {
            config,
            supervisor,
            queue,
            progress: Arc::new(Progress::default()),
        }
    }
}

impl Drop for Projector {
    /// The thread stops once it has folded what is queued.
    fn drop(&mut self) {
        self.queue.close();
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
            let config = act.config.clone();
            let queue = act.queue.clone();
            let progress = act.progress.clone();
            let spawned = std::thread::Builder::new()
                .name("projector".into())
                .spawn(move || run(config, queue, progress));
            match spawned {
                Ok(_) => {}
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
        if let Some(last) = msg.entries.last() {
            self.progress.committed(last.seq);
        }
        self.queue.push(msg.entries);
    }
}

impl Handler<GetProjectorStats> for Projector {
    type Result = MessageResult<GetProjectorStats>;

    fn handle(&mut self, _msg: GetProjectorStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(self.queue.stats())
    }
}

/// The projector thread: open, start (build/rebuild/catch up), then fold batches until
/// the actor (which fills the queue) goes away.
fn run(config: ProjectorConfig, queue: Arc<WorkQueue>, progress: Arc<Progress>) {
    let mut engine = loop {
        match Db::open(&config.url, SQLITE_BUSY_TIMEOUT) {
            Ok(db) => {
                break Engine::new(db, builtin(config.mapping.clone()), config.settings)
                    .with_prefetch(config.url.clone())
            }
            Err(e) => {
                tracing::warn!(error = %e, "projector cannot connect, retrying");
                // Work that comes meanwhile is in the log, which `start` reads to its head.
                if let Work::Closed = queue.take(Some(RETRY_INTERVAL), MAX_LIVE_BATCH) {
                    return;
                }
            }
        }
    };
    let mut healthy = match engine.start(&mut |_, _| {}) {
        Ok(()) => {
            tracing::info!(checkpoints = ?engine.checkpoints(), "projections caught up");
            progress.folded(&engine);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "projections could not catch up, retrying");
            false
        }
    };
    loop {
        let wait = if healthy { None } else { Some(RETRY_INTERVAL) };
        let work = queue.take(wait, MAX_LIVE_BATCH);
        if let (Some(gate), false) = (&config.gate, matches!(work, Work::Closed)) {
            gate.pass();
        }
        let result = match work {
            Work::Closed => return,
            Work::Batches(batches) if healthy => {
                let batch: Vec<LogEntry> = batches.iter().flat_map(|b| b.iter().cloned()).collect();
                engine.advance_live(&batch)
            }
            Work::Behind if healthy => {
                tracing::info!("projector queue was full, reading the log from the checkpoints");
                engine.catch_up()
            }
            // After a failure, whatever comes: start again from the stored checkpoints.
            Work::Batches(_) | Work::Behind | Work::TimedOut => engine.start(&mut |_, _| {}),
        };
        match result {
            Ok(()) => {
                progress.folded(&engine);
                healthy = true;
            }
            Err(e) => {
                tracing::warn!(error = %e, "projection batch failed, will refold from the checkpoints");
                healthy = false;
            }
        }
    }
}
