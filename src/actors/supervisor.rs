//! The Supervisor: routes Chainhook payloads into the log and committed entries out to
//! listeners, and keeps the writer running.
//!
//! Listeners get every committed entry once, in `seq` order, whichever node appended it:
//! what this node's writer commits and what other nodes sharing the database append (read
//! from the store by `seq` once their head is known) are merged by the [`Sequencer`].

use super::cluster::{self, ClusterConfig};
use super::messages::{
    Append, ClusterStats, Committed, GetStats, HeadSeen, HeadSource, Ingest, Listen, SubmitOp, SupervisorStats, WriteError,
};
use super::sequencer::{Next, Sequencer, MAX_HELD_ENTRIES};
use super::writer::{EventStoreWriter, WriterConfig};
use crate::model::LogEntry;
use crate::store::{IngestReport, Store};
use crate::telemetry::metrics as m;
use crate::store::OpReply;
use actix::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Wait before reading again after a store read of other nodes' entries failed (or found
/// nothing yet).
pub const READ_RETRY: Duration = Duration::from_millis(200);

pub struct Supervisor {
    writer: Option<Addr<EventStoreWriter>>,
    store: Store,
    writer_config: WriterConfig,
    sequencer: Sequencer,
    /// `None`: the supervisor does not follow other nodes (a one-off `ingest`).
    cluster: Option<ClusterConfig>,
    cluster_stats: ClusterStats,
    retry_scheduled: bool,
    listeners: Vec<Recipient<Committed>>,
    writer_starts: Arc<AtomicU64>,
    writer_arbiter: Option<Arbiter>,
}

impl Supervisor {
    /// `head_seq`: the log's head at start, where live forwarding begins.
    pub fn new(store: Store, writer_config: WriterConfig, head_seq: i64) -> Self {
        Supervisor {
            writer: None,
            store,
            writer_config,
            sequencer: Sequencer::new(head_seq, crate::store::read::MAX_PAGE, MAX_HELD_ENTRIES),
            cluster: None,
            cluster_stats: ClusterStats::default(),
            retry_scheduled: false,
            listeners: Vec::new(),
            writer_starts: Arc::default(),
            writer_arbiter: None,
        }
    }

    /// Also routes what other nodes append to the same database (see [`cluster`]).
    pub fn following_other_nodes(mut self, config: ClusterConfig) -> Self {
        self.sequencer = Sequencer::new(self.sequencer.routed_upto(), config.read_page, MAX_HELD_ENTRIES);
        self.cluster = Some(config);
        self
    }

    fn forward(&mut self, entries: Arc<[LogEntry]>) {
        if entries.is_empty() {
            return;
        }
        self.listeners.retain(|l| l.connected());
        metrics::gauge!(m::ROUTED_SEQ).set(self.sequencer.routed_upto() as f64);
        let msg = Committed { entries };
        for l in &self.listeners {
            l.do_send(msg.clone());
        }
    }

    /// Routes whatever can be routed now, and starts the store read the sequencer asks for.
    fn pump(&mut self, ctx: &mut Context<Self>) {
        loop {
            match self.sequencer.next_step() {
                Next::Route(entries) => self.forward(entries),
                Next::Idle => return,
                Next::Read { after, limit } => {
                    let store = self.store.clone();
                    let read = async move { store.entries_after(after, limit).await };
                    ctx.spawn(read.into_actor(self).map(|result, act, ctx| {
                        let read = match result {
                            Ok(entries) if !entries.is_empty() => Some(entries),
                            Ok(_) => None,
                            Err(e) => {
                                act.cluster_stats.read_failures += 1;
                                tracing::warn!(error = %e, "cannot read other nodes' entries, retrying");
                                None
                            }
                        };
                        let failed = read.is_none();
                        if let Some(entries) = act.sequencer.read_done(read) {
                            metrics::counter!(m::CLUSTER_GAP_FILLS).increment(1);
                            metrics::counter!(m::CLUSTER_FILLED_ENTRIES).increment(entries.len() as u64);
                            act.forward(entries);
                        }
                        if failed {
                            act.retry_later(ctx);
                        } else {
                            act.pump(ctx);
                        }
                    }));
                    return;
                }
            }
        }
    }

    fn retry_later(&mut self, ctx: &mut Context<Self>) {
        if self.retry_scheduled {
            return;
        }
        self.retry_scheduled = true;
        ctx.run_later(READ_RETRY, |act, ctx| {
            act.retry_scheduled = false;
            act.pump(ctx);
        });
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        let store = self.store.clone();
        let config = self.writer_config;
        let me = ctx.address().recipient();
        let starts = self.writer_starts.clone();
        // The writer gets a thread of its own, so routing and fan-out never delay a
        // commit (and with it the webhook's answer). actix's Supervisor restarts it
        // whenever it stops.
        let arbiter = Arbiter::new();
        self.writer = Some(actix::Supervisor::start_in_arbiter(&arbiter.handle(), move |_| {
            EventStoreWriter::new(store, config, me, starts)
        }));
        self.writer_arbiter = Some(arbiter);
        if let Some(cluster) = self.cluster {
            let follow = cluster::follow_heads(self.store.clone(), cluster, ctx.address().recipient());
            ctx.spawn(follow.into_actor(self));
        }
    }

    fn stopped(&mut self, _ctx: &mut Context<Self>) {
        if let Some(arbiter) = self.writer_arbiter.take() {
            arbiter.stop();
        }
    }
}

impl Handler<Ingest> for Supervisor {
    type Result = ResponseFuture<Result<IngestReport, WriteError>>;

    fn handle(&mut self, msg: Ingest, _ctx: &mut Context<Self>) -> Self::Result {
        let writer = self.writer.clone();
        Box::pin(async move {
            let writer = writer.ok_or(WriteError::WriterGone)?;
            writer.send(Append { payload: msg.payload }).await.unwrap_or(Err(WriteError::WriterGone))
        })
    }
}

impl Handler<SubmitOp> for Supervisor {
    type Result = ResponseFuture<Result<OpReply, WriteError>>;

    fn handle(&mut self, msg: SubmitOp, _ctx: &mut Context<Self>) -> Self::Result {
        let writer = self.writer.clone();
        Box::pin(async move {
            let writer = writer.ok_or(WriteError::WriterGone)?;
            writer.send(msg).await.unwrap_or(Err(WriteError::WriterGone))
        })
    }
}

impl Handler<Committed> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Committed, ctx: &mut Context<Self>) {
        self.sequencer.committed(msg.entries);
        self.pump(ctx);
    }
}

impl Handler<HeadSeen> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: HeadSeen, ctx: &mut Context<Self>) {
        match msg.source {
            HeadSource::Notification => {
                self.cluster_stats.notifications += 1;
                metrics::counter!(m::CLUSTER_NOTIFICATIONS).increment(1);
            }
            HeadSource::Reconnect => {
                self.cluster_stats.listener_reconnects += 1;
                metrics::counter!(m::CLUSTER_LISTENER_RECONNECTS).increment(1);
            }
            HeadSource::Check => {}
        }
        self.sequencer.head_seen(msg.head);
        self.pump(ctx);
    }
}

impl Handler<Listen> for Supervisor {
    type Result = i64;

    fn handle(&mut self, msg: Listen, _ctx: &mut Context<Self>) -> i64 {
        self.listeners.push(msg.recipient);
        self.sequencer.routed_upto()
    }
}

impl Handler<GetStats> for Supervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(SupervisorStats {
            forwarded_seq: self.sequencer.routed_upto(),
            listeners: self.listeners.iter().filter(|l| l.connected()).count(),
            writer_starts: self.writer_starts.load(Ordering::Relaxed),
            cluster: ClusterStats { sequencer: self.sequencer.stats(), ..self.cluster_stats },
        })
    }
}
