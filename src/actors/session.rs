//! A WsSession: one actor per WebSocket (actix-web-actors, confined to this file).
//!
//! Per subscription it runs the catch-up handover: register with the topic (through the
//! registry, which answers with the handover `seq`), buffer live entries while the
//! history up to that `seq` is read from the store in pages, send `caught-up`, then
//! release the buffered entries that are newer. A per-subscription `last_seq` guard keeps
//! `seq` strictly increasing whatever happens.
//!
//! # Outgoing bound
//!
//! `WebsocketContext::text()` buffers without limit, and the actor only runs while
//! actix-http polls the response: a client that stops reading freezes the actor, timers
//! included. So the bound is enforced by the senders: topics reserve room in the
//! session's `queued` counter (entries accepted from topics, not yet written to the
//! context) before every send and, when it is full, end that subscription with
//! `Overflowed`, which the session turns into `resync` once it runs again. Live entries
//! buffered during a catch-up count against the same bound. History pages are read only
//! while the actor runs, so they never pile up: while one page is written, the next one is
//! read, and no other.
//!
//! # Decisions
//!
//! - `subscribed.headSeq` is the handover `seq` (everything after it comes live);
//!   `headBlockHeight` is read from the store just after, so it may be a little ahead.
//! - `caught-up.seq` is the handover `seq`; `resync.seq` means "every matching entry up to
//!   here was delivered", so resubscribing with `since.seq` = that value resumes exactly.
//!   For a `since.blockHeight` subscription still in its history it is the last history
//!   entry written (0 if none): resuming by `seq` from there may repeat older entries but
//!   never skips one.
//! - `unsubscribe` is answered with `{"type":"unsubscribed","id":…}` (an extension), so a
//!   client knows when no more frames of that id will come.
//! - When the server stops ([`Shutdown`]), every subscription ends with `resync`
//!   (`shutdown`, its last delivered `seq`), then the connection closes with 1012 (service
//!   restart): the client reconnects, to another node behind a load balancer, with
//!   `since.seq`.
//! - A peer that stops reading while frames are pending freezes the actor, so the heartbeat
//!   cannot close it (its timers are frozen too). Its memory stays bounded (the outgoing
//!   bound ends its subscriptions), and the kernel drops the connection once the frames
//!   have waited `TCP_USER_TIMEOUT_SECS` on its shut window (set on accept, `startup`).
//!
//! # Identity
//!
//! A connection is anonymous until a client token (PROTOCOL §4) is verified: at the upgrade
//! (`?token=` or `Authorization: Bearer`, read by `routes::ws`) or by an `auth` message, both
//! answered with `authenticated`. Chain subscriptions never depend on it.
//! - A bad, expired or forged token at the upgrade does not refuse the upgrade: the
//!   connection opens anonymous and its first frame is an `error` `unauthorized` naming
//!   why, since PROTOCOL lets a connection without a valid token subscribe to chain events.
//! - `auth` again with a valid token for the same address replaces the token (its `exp`
//!   applies, later or earlier). A refused `auth` leaves the current identity as it was.
//! - A connection acts for one address in its life: a token for another address is refused
//!   with `unauthorized` and the identity is kept, also after it expired, so that whatever
//!   a connection was given for one address can never reach another.
//! - At `exp` a timer ends the identity and sends `error` `unauthorized` (the token
//!   expired; send `auth` with a new one). Subscriptions to chain events carry on.

#[path = "session_identity.rs"]
mod identity;
#[path = "session_ops.rs"]
mod ops;

mod history;
mod outgoing;

use outgoing::CloseForRestart;
use super::catchup::{entry_filter, fork_rollbacks, read_page, Cursor};
use super::messages::{Deliver, Delivery, SessionSink, Subscribe, Unsubscribe};
use super::registry::TopicRegistry;
use super::shutdown::Shutdown;
use crate::telemetry::metrics as m;
use crate::protocol::{
    history_frame, ClientError, ClientMessage, ErrorCode, Filter, ResyncReason, ServerMessage, Since,
};
use crate::auth::{self, ClientTokens, Identity};
use crate::store::{Page, PageEntry, Store, StoreError};
use actix::prelude::*;
use actix_web_actors::ws;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the server pings: well under common proxy idle timeouts (60 s).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(15);
/// A peer that sent nothing (not even a pong) for this long is closed: two missed pings
/// plus slack for a slow network.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(40);
/// Largest incoming frame. Client messages are small JSON objects; 64 KiB is actix's own
/// default and leaves room for long filters while refusing abuse.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
/// Subscriptions per connection: one client rarely needs more than a handful, and each
/// costs a topic slot and a catch-up query.
pub const MAX_SUBSCRIPTIONS: usize = 64;
/// Entries a session may hold accepted-but-unwritten (from topics, plus live entries
/// buffered during catch-up) before its subscriptions end with `resync`. Event objects
/// are ~0.5–1 KiB, so this caps a stalled client at a few MiB, while a client that keeps
/// up never comes near it (it drains to zero between commits; one commit is always
/// accepted by an empty queue).
pub const MAX_QUEUED_ENTRIES: usize = 4_096;
/// Entries per history query (at most `store::read::MAX_PAGE`). A catching-up subscription
/// holds two pages, the one being written and the next one being read, so a page is as
/// large as the read API's largest: the query's fixed costs (a pooled connection, planning,
/// a round trip) are then a small share of it.
pub const HISTORY_PAGE: i64 = 1_000;
/// `op`/`op-cancel` messages per connection per second: a person's devices queue a few
/// ops a minute, and an offline queue replays a few hundred at most, in a few seconds.
pub const MAX_OPS_PER_SEC: u32 = 50;
/// Largest `data` of an op (compact JSON): an op sets a handful of short fields.
pub const MAX_OP_DATA_BYTES: usize = 4 * 1024;
/// Longest wait of a live entry in its session before the write that carries it (see
/// `outgoing`). None by default: a hold lengthens every delivery to save CPU only on a busy
/// server (`WS_FLUSH_MS=20`; docs/benchmarks.md "Fan-out cost per delivery").
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(0);
/// Tuning of WebSocket sessions (see the constants for the reasons of the defaults).
#[derive(Debug, Clone)]
pub struct WsConfig {
    pub heartbeat_interval: Duration,
    pub client_timeout: Duration,
    pub max_frame_bytes: usize,
    pub max_subscriptions: usize,
    pub max_queued_entries: usize,
    pub history_page: i64,
    pub max_ops_per_sec: u32,
    pub max_op_data_bytes: usize,
    /// How long live entries may wait so that several commits leave in one write.
    pub flush_interval: Duration,
}

impl Default for WsConfig {
    fn default() -> Self {
        WsConfig {
            heartbeat_interval: HEARTBEAT_INTERVAL,
            client_timeout: CLIENT_TIMEOUT,
            max_frame_bytes: MAX_FRAME_BYTES,
            max_subscriptions: MAX_SUBSCRIPTIONS,
            max_queued_entries: MAX_QUEUED_ENTRIES,
            history_page: HISTORY_PAGE,
            max_ops_per_sec: MAX_OPS_PER_SEC,
            max_op_data_bytes: MAX_OP_DATA_BYTES,
            flush_interval: FLUSH_INTERVAL,
        }
    }
}

/// Subscription tokens are unique across sessions: topics and the registry key by them.
static NEXT_TOKEN: AtomicU64 = AtomicU64::new(1);

enum Phase {
    /// Waiting for the registry's handover `seq`; live entries are buffered.
    Starting,
    /// Reading history up to the handover; live entries are buffered.
    History,
    Live,
}

struct Sub {
    token: u64,
    /// The client's id as a JSON string, ready to splice into frames.
    id_json: String,
    filter: Filter,
    since: Option<Since>,
    phase: Phase,
    /// Every matching entry up to this `seq` has been delivered.
    last_seq: i64,
    buffer: Vec<Delivery>,
}

pub struct WsSession {
    registry: Addr<TopicRegistry>,
    store: Store,
    config: WsConfig,
    subs: HashMap<String, Sub>,
    tokens: HashMap<u64, String>,
    queued: Arc<AtomicUsize>,
    last_heard: Instant,
    /// Verifies the client tokens of the upgrade and of `auth`.
    client_tokens: Arc<ClientTokens>,
    /// What the upgrade request carried, verified once the session starts: `Ok(token)`, or
    /// `Err(why)` when it could not be read.
    upgrade_token: Option<Result<String, String>>,
    /// Who this connection is signed in as (see "Identity" above); `None`: anonymous, or
    /// its token expired. Ops and the `ops` filter must act only through
    /// [`WsSession::signed_in_address`], answer `unauthorized` when it is `None`, and
    /// never show one address's ops to another; when the identity ends, what it was
    /// allowed to see must end with it.
    identity: Option<Identity>,
    /// The address of the first token accepted: the only one this connection may act for.
    bound_address: Option<String>,
    /// The timer that ends `identity` at its `exp`.
    identity_expiry: Option<SpawnHandle>,
    shutdown: Option<Shutdown>,
    /// Where ops messages go (the supervisor, to the writer); `None`: ops are off.
    ops: Option<Recipient<super::messages::SubmitOp>>,
    ops_rate: ops::OpsRate,
    /// The task that tells this session when the stop begins (see `started`).
    shutdown_watch: Option<actix_web::rt::task::JoinHandle<()>>,
    /// Live batches accepted from topics, not yet written (see `outgoing`), and the timer
    /// that writes them.
    held: Vec<Deliver>,
    flush_timer: Option<SpawnHandle>,
}

impl WsSession {
    /// A session for one connection. `upgrade_token`: the client token the upgrade request
    /// carried (`Err`: one was there but could not be read), verified when it starts.
    pub fn new(
        registry: Addr<TopicRegistry>,
        store: Store,
        config: WsConfig,
        client_tokens: Arc<ClientTokens>,
        upgrade_token: Option<Result<String, String>>,
    ) -> Self {
        WsSession {
            registry,
            store,
            config,
            subs: HashMap::new(),
            tokens: HashMap::new(),
            queued: Arc::new(AtomicUsize::new(0)),
            last_heard: Instant::now(),
            client_tokens,
            upgrade_token,
            identity: None,
            bound_address: None,
            identity_expiry: None,
            shutdown: None,
            ops: None,
            ops_rate: ops::OpsRate::default(),
            shutdown_watch: None,
            held: Vec::new(),
            flush_timer: None,
        }
    }

    /// Accepts ops messages, sending them to `ops` (the supervisor).
    pub fn with_ops(mut self, ops: Recipient<super::messages::SubmitOp>) -> Self {
        self.ops = Some(ops);
        self
    }

    /// The address this connection may act for right now, if any. It checks `exp` itself
    /// rather than trusting the expiry timer alone: a session frozen by a client that stopped
    /// reading runs its timers late.
    pub fn signed_in_address(&self) -> Option<&str> {
        self.identity
            .as_ref()
            .filter(|id| id.is_valid_at(auth::unix_now()))
            .map(|id| id.address.as_str())
    }

    /// Closes the session for a restart when `shutdown` begins.
    pub fn closing_on(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Ends every subscription with `resync` (`shutdown`) and closes with 1012.
    fn close_for_restart(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let mut ids: Vec<String> = self.subs.keys().cloned().collect();
        ids.sort();
        for id in ids {
            self.end(&id, ResyncReason::Shutdown, ctx);
        }
        ctx.close(Some(ws::CloseReason { code: ws::CloseCode::Restart, description: Some("service restart".into()) }));
        ctx.stop();
    }

    fn send(ctx: &mut ws::WebsocketContext<Self>, msg: ServerMessage<'_>) {
        ctx.text(msg.to_json());
    }

    fn refuse(ctx: &mut ws::WebsocketContext<Self>, e: &ClientError) {
        Self::send(ctx, ServerMessage::Error { id: e.id.as_deref(), code: e.code, message: &e.message });
    }

    fn on_text(&mut self, text: &str, ctx: &mut ws::WebsocketContext<Self>) {
        match ClientMessage::parse(text) {
            Err(e) if e.code == ErrorCode::InvalidOp => Self::refuse_op(ctx, text, &e),
            Err(e) => Self::refuse(ctx, &e),
            Ok(ClientMessage::Ping) => Self::send(ctx, ServerMessage::Pong),
            Ok(ClientMessage::Auth { token }) => self.authenticate(&token, ctx),
            Ok(ClientMessage::Unsubscribe { id }) => match self.subs.remove(&id) {
                Some(sub) => {
                    self.tokens.remove(&sub.token);
                    self.registry.do_send(Unsubscribe { token: sub.token });
                    ctx.text(format!("{{\"type\":\"unsubscribed\",\"id\":{}}}", sub.id_json));
                }
                None => Self::refuse(
                    ctx,
                    &ClientError {
                        id: Some(id),
                        code: ErrorCode::UnknownSubscription,
                        message: "no subscription with this id".into(),
                    },
                ),
            },
            Ok(ClientMessage::Subscribe { id, filter, since }) => self.subscribe(id, filter, since, ctx),
            Ok(ClientMessage::Op(op)) => self.submit_op(op, ctx),
            Ok(ClientMessage::OpCancel { op_id }) => self.submit_cancel(op_id, ctx),
        }
    }

    fn subscribe(&mut self, id: String, mut filter: Filter, mut since: Option<Since>, ctx: &mut ws::WebsocketContext<Self>) {
        if let Filter::Ops { address } = &mut filter {
            // The filter is bound to the connection's own address, never to one named.
            let Some(own) = self.signed_in_address() else {
                let message = "the ops filter needs a signed-in connection (a client token)".to_string();
                return Self::refuse(ctx, &ClientError { id: Some(id), code: ErrorCode::Unauthorized, message });
            };
            *address = own.to_string();
            // Ops have no block height: only `since.seq` resumes them.
            if matches!(since, Some(Since::BlockHeight { .. })) {
                since = None;
            }
        }
        let refusal = if self.subs.contains_key(&id) {
            Some((ErrorCode::DuplicateId, "a subscription with this id is active".to_string()))
        } else if self.subs.len() >= self.config.max_subscriptions {
            Some((ErrorCode::TooManySubscriptions, format!("at most {} subscriptions per connection", self.config.max_subscriptions)))
        } else {
            None
        };
        if let Some((code, message)) = refusal {
            return Self::refuse(ctx, &ClientError { id: Some(id), code, message });
        }
        let token = NEXT_TOKEN.fetch_add(1, Ordering::Relaxed);
        let id_json = serde_json::Value::String(id.clone()).to_string();
        let sink = SessionSink {
            sub_json: Arc::from(id_json.as_str()),
            deliver: ctx.address().recipient(),
            overflowed: ctx.address().recipient(),
            queued: self.queued.clone(),
            max_queued: self.config.max_queued_entries,
        };
        // `send` enqueues now, so a later Unsubscribe reaches the registry after it.
        let handover = self.registry.send(Subscribe { token, filter: filter.clone(), sink });
        let store = self.store.clone();
        let work = async move {
            let handover = handover.await;
            let head = store.head().await;
            (handover, head)
        };
        ctx.spawn(work.into_actor(self).map(move |(handover, head), act, ctx| match handover {
            Ok(seq) => act.start_history(token, seq, head.ok().and_then(|h| h.head_block_height), ctx),
            Err(_) => {
                if let Some(id) = act.tokens.get(&token).cloned() {
                    act.end(&id, ResyncReason::StoreUnavailable, ctx);
                }
            }
        }));
        let last_seq = match since {
            Some(Since::Seq(s)) => s,
            _ => 0,
        };
        self.tokens.insert(token, id.clone());
        self.subs.insert(id, Sub { token, id_json, filter, since, phase: Phase::Starting, last_seq, buffer: Vec::new() });
    }

    /// Writes entries of subscription `id`, skipping any at or below its `last_seq`.
    fn deliver_live(&mut self, id: &str, items: &[Delivery], ctx: &mut ws::WebsocketContext<Self>) {
        if let Some(sub) = self.subs.get_mut(id) {
            sub.write_live(items, ctx);
        }
    }

    /// Ends subscription `id` with `resync`, naming the last `seq` it delivered.
    fn end(&mut self, id: &str, reason: ResyncReason, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(sub) = self.subs.remove(id) else { return };
        self.tokens.remove(&sub.token);
        self.registry.do_send(Unsubscribe { token: sub.token });
        tracing::info!(sub = id, seq = sub.last_seq, ?reason, "subscription ends with resync");
        metrics::counter!(m::RESYNCS, "reason" => reason.as_str()).increment(1);
        Self::send(ctx, ServerMessage::Resync { sub: id, seq: sub.last_seq, reason });
    }
}

impl Actor for WsSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        metrics::gauge!(m::WS_CONNECTIONS).increment(1);
        if let Some(shutdown) = &self.shutdown {
            // A task of its own rather than a future of the context: actix polls every
            // future of a context each time the session wakes, once per delivery, and each
            // poll of the stop signal takes a lock that every session shares.
            let begun = shutdown.begun();
            let session = ctx.address().downgrade();
            self.shutdown_watch = Some(actix_web::rt::spawn(async move {
                begun.await;
                if let Some(session) = session.upgrade() {
                    session.do_send(CloseForRestart);
                }
            }));
        }
        match self.upgrade_token.take() {
            Some(Ok(token)) => self.authenticate(&token, ctx),
            Some(Err(why)) => Self::unauthorized(ctx, &why),
            None => {}
        }
        let mut last_tick = Instant::now();
        ctx.run_interval(self.config.heartbeat_interval, move |act, ctx| {
            // A tick far behind schedule means the actor was frozen (its client stopped
            // reading, so actix-http stopped polling it): the client's pongs were not
            // read meanwhile, so silence is measured from now, not from before the freeze.
            let now = Instant::now();
            if now.duration_since(last_tick) > 2 * act.config.heartbeat_interval {
                act.last_heard = act.last_heard.max(now - act.config.heartbeat_interval);
            }
            last_tick = now;
            if act.last_heard.elapsed() > act.config.client_timeout {
                tracing::info!("websocket peer silent past the heartbeat timeout, closing");
                ctx.close(Some(ws::CloseCode::Away.into()));
                ctx.stop();
                return;
            }
            ctx.ping(b"");
        });
    }

    fn stopped(&mut self, _ctx: &mut Self::Context) {
        metrics::gauge!(m::WS_CONNECTIONS).decrement(1);
        if let Some(watch) = self.shutdown_watch.take() {
            watch.abort();
        }
        for sub in self.subs.values() {
            self.registry.do_send(Unsubscribe { token: sub.token });
        }
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for WsSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        self.last_heard = Instant::now();
        match msg {
            Ok(ws::Message::Text(text)) => self.on_text(&text, ctx),
            Ok(ws::Message::Ping(bytes)) => ctx.pong(&bytes),
            Ok(ws::Message::Pong(_)) | Ok(ws::Message::Nop) => {}
            Ok(ws::Message::Binary(_)) | Ok(ws::Message::Continuation(_)) => Self::refuse(
                ctx,
                &ClientError { id: None, code: ErrorCode::BadJson, message: "send one JSON message per text frame".into() },
            ),
            Ok(ws::Message::Close(reason)) => {
                ctx.close(reason);
                ctx.stop();
            }
            Err(e) => {
                tracing::info!(error = %e, "websocket protocol error, closing");
                let code = match e {
                    ws::ProtocolError::Overflow => ws::CloseCode::Size,
                    _ => ws::CloseCode::Protocol,
                };
                ctx.close(Some(code.into()));
                ctx.stop();
            }
        }
    }
}

impl WsSession {
    /// Answers the upgrade request and starts the session on the connection, refusing
    /// incoming frames larger than the configured maximum (close 1009).
    pub fn start(
        self,
        req: &actix_web::HttpRequest,
        stream: actix_web::web::Payload,
    ) -> Result<actix_web::HttpResponse, actix_web::Error> {
        let frame_size = self.config.max_frame_bytes;
        ws::WsResponseBuilder::new(self, req, stream).frame_size(frame_size).start()
    }
}
