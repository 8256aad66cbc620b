//! The Supervisor: routes Chainhook payloads into the log and committed entries out to
//! listeners, and keeps the writer running.

use super::messages::{Append, Committed, GetStats, Ingest, Listen, SupervisorStats, WriteError};
use super::writer::{EventStoreWriter, WriterConfig};
use crate::store::{IngestReport, Store};
use actix::prelude::*;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub struct Supervisor {
    writer: Option<Addr<EventStoreWriter>>,
    store: Store,
    writer_config: WriterConfig,
    /// The last `seq` forwarded to listeners.
    forwarded_seq: i64,
    listeners: Vec<Recipient<Committed>>,
    writer_starts: Arc<AtomicU64>,
    writer_arbiter: Option<Arbiter>,
}

impl Supervisor {
    /// `head_seq`: the log's head at start, where live forwarding begins.
    pub fn new(store: Store, writer_config: WriterConfig, head_seq: i64) -> Self {
        Supervisor { writer: None, store, writer_config, forwarded_seq: head_seq, listeners: Vec::new(), writer_starts: Arc::default(), writer_arbiter: None }
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

impl Handler<Committed> for Supervisor {
    type Result = ();

    fn handle(&mut self, msg: Committed, _ctx: &mut Context<Self>) {
        let Some(last) = msg.entries.last() else { return };
        if last.seq <= self.forwarded_seq {
            return; // already forwarded (e.g. seen both locally and by notification)
        }
        self.forwarded_seq = last.seq;
        self.listeners.retain(|l| l.connected());
        for l in &self.listeners {
            l.do_send(msg.clone());
        }
    }
}

impl Handler<Listen> for Supervisor {
    type Result = i64;

    fn handle(&mut self, msg: Listen, _ctx: &mut Context<Self>) -> i64 {
        self.listeners.push(msg.recipient);
        self.forwarded_seq
    }
}

impl Handler<GetStats> for Supervisor {
    type Result = MessageResult<GetStats>;

    fn handle(&mut self, _msg: GetStats, _ctx: &mut Context<Self>) -> Self::Result {
        MessageResult(SupervisorStats {
            forwarded_seq: self.forwarded_seq,
            listeners: self.listeners.iter().filter(|l| l.connected()).count(),
            writer_starts: self.writer_starts.load(Ordering::Relaxed),
        })
    }
}
