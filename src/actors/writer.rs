//! The EventStoreWriter: the only actor that appends to the log.
//!
//! It group-commits: payloads that arrive while a transaction is in flight wait in a
//! bounded queue and go into the next transaction together, so under load one commit
//! (one fsync) carries many payloads. Each caller is answered only after the commit that
//! holds its payload.

use super::messages::{Append, Committed, SubmitOp, WriteError};
use crate::model::Payload;
use crate::store::{Appender, IngestReport, OpCommand, OpReply, Store, StoreError};
use crate::telemetry::metrics as m;
use actix::prelude::*;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

#[derive(Debug, Clone, Copy)]
pub struct WriterConfig {
    /// Payloads waiting for a commit before new ones are refused with
    /// [`WriteError::Overloaded`] (the webhook answers 503; Chainhook retries).
    pub max_pending_payloads: usize,
    /// Events per transaction: a group closes once it holds this many (a single larger
    /// payload still goes alone, since a payload is atomic).
    pub max_batch_events: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig { max_pending_payloads: 4_096, max_batch_events: 20_000 }
    }
}

type Reply = oneshot::Sender<Result<IngestReport, WriteError>>;
type OpReplyTo = oneshot::Sender<Result<OpReply, WriteError>>;
/// Ops messages per transaction: an op is a few small rows, so a batch this large still
/// commits in a few milliseconds.
const MAX_OPS_PER_BATCH: usize = 1_000;

pub struct EventStoreWriter {
    store: Store,
    config: WriterConfig,
    /// Taken while a transaction is in flight.
    appender: Option<Appender>,
    pending: VecDeque<(Payload, Reply)>,
    /// Ops messages waiting, bounded like payloads (`max_pending_payloads`).
    pending_ops: VecDeque<(OpCommand, OpReplyTo)>,
    /// Whether waiting ops go before waiting payloads next.
    ops_turn: bool,
    busy: bool,
    committed: Recipient<Committed>,
    /// Times this writer (re)started, shared with the supervisor for observation.
    starts: Arc<AtomicU64>,
}

impl EventStoreWriter {
    pub fn new(
        store: Store,
        config: WriterConfig,
        committed: Recipient<Committed>,
        starts: Arc<AtomicU64>,
    ) -> Self {
        EventStoreWriter { store, config, appender: None, pending: VecDeque::new(), pending_ops: VecDeque::new(), ops_turn: false, busy: false, committed, starts }
    }

    /// Runs one ops transaction for the waiting ops messages.
    fn flush_ops(&mut self, ctx: &mut Context<Self>) {
        let n = self.pending_ops.len().min(MAX_OPS_PER_BATCH);
        let (commands, replies): (Vec<OpCommand>, Vec<OpReplyTo>) = self.pending_ops.drain(..n).unzip();
        self.busy = true;
        let store = self.store.clone();
        let appender = self.appender.take();
        let work = async move {
            let mut appender = match appender {
                Some(appender) => appender,
                None => match store.appender().await {
                    Ok(appender) => appender,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = appender.append_ops(commands).await;
            (Some(appender), result)
        };
        ctx.spawn(work.into_actor(self).map(move |(appender, result), act, ctx| {
            act.appender = appender;
            act.busy = false;
            match result {
                Ok(appended) => {
                    if !appended.entries.is_empty() {
                        act.committed.do_send(Committed { entries: appended.entries.into() });
                    }
                    for (reply, r) in replies.into_iter().zip(appended.replies) {
                        let _ = reply.send(Ok(r));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, ops = replies.len(), "ops append failed, nothing stored");
                    for reply in replies {
                        let _ = reply.send(Err(WriteError::Unavailable(e.to_string())));
                    }
                    if matches!(e, StoreError::Corrupt(_)) {
                        ctx.stop();
                        return;
                    }
                }
            }
            act.flush(ctx);
        }));
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.busy {
            return;
        }
        // Ops and payloads take turns, so neither waits behind a stream of the other.
        if !self.pending_ops.is_empty() && (self.pending.is_empty() || self.ops_turn) {
            self.ops_turn = false;
            self.flush_ops(ctx);
            return;
        }
        if self.pending.is_empty() {
            return;
        }
        self.ops_turn = true;
        let mut payloads = Vec::new();
        let mut replies = Vec::new();
        let mut events = 0;
        while let Some((payload, _)) = self.pending.front() {
            let n = payload.apply_event_count();
            if !payloads.is_empty() && events + n > self.config.max_batch_events {
                break;
            }
            events += n;
            if let Some((payload, reply)) = self.pending.pop_front() {
                payloads.push(payload);
                replies.push(reply);
            }
        }
        self.busy = true;
        metrics::gauge!(m::WRITER_QUEUE_DEPTH).set(self.pending.len() as f64);
        let started = std::time::Instant::now();
        let store = self.store.clone();
        let appender = self.appender.take();
        let work = async move {
            let mut appender = match appender {
                Some(appender) => appender,
                None => match store.appender().await {
                    Ok(appender) => appender,
                    Err(e) => return (None, Err(e)),
                },
            };
            let result = appender.append(payloads).await;
            (Some(appender), result)
        };
        ctx.spawn(work.into_actor(self).map(move |(appender, result), act, ctx| {
            act.appender = appender;
            act.busy = false;
            match result {
                Ok(appended) => {
                    tracing::debug!(head_seq = appended.head_seq, payloads = replies.len(), "committed");
                    metrics::histogram!(m::GROUP_COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                    metrics::histogram!(m::GROUP_COMMIT_ENTRIES).record(appended.entries.len() as f64);
                    metrics::histogram!(m::GROUP_COMMIT_PAYLOADS).record(replies.len() as f64);
                    if !appended.entries.is_empty() {
                        act.committed.do_send(Committed { entries: appended.entries.into() });
                    }
                    for (reply, report) in replies.into_iter().zip(appended.reports) {
                        let _ = reply.send(Ok(report));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, payloads = replies.len(), "append failed, nothing stored");
                    metrics::counter!(m::GROUP_COMMIT_FAILURES).increment(1);
                    let corrupt = matches!(e, StoreError::Corrupt(_));
                    for reply in replies {
                        let _ = reply.send(Err(WriteError::Unavailable(e.to_string())));
                    }
                    if corrupt {
                        // Let the supervisor start a fresh writer that re-reads the log.
                        ctx.stop();
                        return;
                    }
                }
            }
            act.flush(ctx);
        }));
    }
}

impl Actor for EventStoreWriter {
    type Context = Context<Self>;

    fn started(&mut self, _ctx: &mut Context<Self>) {
        self.starts.fetch_add(1, Ordering::Relaxed);
    }
}

impl actix::Supervised for EventStoreWriter {
    fn restarting(&mut self, _ctx: &mut Context<Self>) {
        tracing::warn!(waiting = self.pending.len(), "event store writer restarting");
        // Waiting callers get WriterGone (their senders drop) and retry.
        self.pending.clear();
        self.pending_ops.clear();
        self.appender = None;
        self.busy = false;
    }
}

impl Handler<Append> for EventStoreWriter {
    type Result = ResponseFuture<Result<IngestReport, WriteError>>;

    fn handle(&mut self, msg: Append, ctx: &mut Context<Self>) -> Self::Result {
        if self.pending.len() >= self.config.max_pending_payloads {
            let n = self.pending.len();
            return Box::pin(async move { Err(WriteError::Overloaded(n)) });
        }
        let (tx, rx) = oneshot::channel();
        self.pending.push_back((msg.payload, tx));
        metrics::gauge!(m::WRITER_QUEUE_DEPTH).set(self.pending.len() as f64);
        self.flush(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(WriteError::WriterGone)) })
    }
}

impl Handler<SubmitOp> for EventStoreWriter {
    type Result = ResponseFuture<Result<OpReply, WriteError>>;

    fn handle(&mut self, msg: SubmitOp, ctx: &mut Context<Self>) -> Self::Result {
        if self.pending_ops.len() >= self.config.max_pending_payloads {
            let n = self.pending_ops.len();
            return Box::pin(async move { Err(WriteError::Overloaded(n)) });
        }
        let (tx, rx) = oneshot::channel();
        self.pending_ops.push_back((msg.command, tx));
        self.flush(ctx);
        Box::pin(async move { rx.await.unwrap_or(Err(WriteError::WriterGone)) })
    }
}
