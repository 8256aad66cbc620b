//! The background task of a [`super::Client`]: one socket at a time, reconnects, and the
//! per-subscription resume positions.

use super::{ClientConfig, ClientEvent, Command, BAD_FRAME, GAVE_UP, OUT_OF_ORDER};
use crate::protocol::{ClientMessage, ErrorCode, Filter, OpObject, ServerFrame, Since};
use futures_util::{SinkExt, StreamExt};
use std::collections::BTreeMap;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

mod outbox;

use outbox::OpOutbox;
pub(crate) use outbox::OpRequest;


type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

struct SubState {
    filter: Filter,
    /// What the caller asked for; used until something has been delivered.
    since: Option<Since>,
    /// Every matching entry up to this `seq` has been delivered to the caller.
    last: Option<i64>,
    /// When a subscription ended by `resync` is sent again.
    resubscribe_at: Option<Instant>,
    /// Consecutive `resync`s without a `caught-up`: the backoff attempt of the next one.
    resyncs: u32,
}

impl SubState {
    /// Where a (re)subscription starts: after the last delivered `seq`, else as asked.
    fn resume(&self) -> Option<Since> {
        match self.last {
            Some(seq) => Some(Since::Seq(seq)),
            None => self.since.clone(),
        }
    }
}

/// Why a connection ended.
enum End {
    /// The caller is gone: stop.
    Closed,
    /// The connection failed or was dropped: reconnect.
    Dropped(String),
}

pub(super) struct Task {
    url: String,
    config: ClientConfig,
    rng: fastrand::Rng,
    subs: BTreeMap<String, SubState>,
    /// Ops and cancels not answered yet, in the order the caller gave them (see
    /// [`OpOutbox`]).
    outbox: OpOutbox,
    events: mpsc::Sender<ClientEvent>,
}

impl Task {
    pub(super) fn new(url: String, config: ClientConfig, events: mpsc::Sender<ClientEvent>) -> Task {
        let rng = config.seed.map_or_else(fastrand::Rng::new, fastrand::Rng::with_seed);
        Task { url, config, rng, subs: BTreeMap::new(), outbox: OpOutbox::default(), events }
    }

    /// Hands an event to the caller, waiting for room (the backpressure of the module
    /// docs). `false`: the caller is gone.
    async fn emit(&self, event: ClientEvent) -> bool {
        self.events.send(event).await.is_ok()
    }

    pub(super) async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>) {
        let mut attempt: u32 = 0;
        loop {
            let connected = tokio::time::timeout(self.config.connect_timeout, self.open()).await;
            let reason = match connected {
                Ok(Ok(socket)) => {
                    attempt = 0;
                    if !self.emit(ClientEvent::Connected).await {
                        return;
                    }
                    match self.session(socket, &mut commands).await {
                        End::Closed => return,
                        End::Dropped(reason) => reason,
                    }
                }
                Ok(Err(e)) => e,
                Err(_) => format!("connect timed out after {:?}", self.config.connect_timeout),
            };
            attempt = attempt.saturating_add(1);
            if !self.config.backoff.allows(attempt) {
                let message = format!("{} reconnect attempts failed, last: {reason}", attempt - 1);
                let _ = self.emit(ClientEvent::Error { id: None, code: GAVE_UP.into(), message }).await;
                return;
            }
            let delay = self.config.backoff.delay(attempt, &mut self.rng);
            tracing::info!(url = %self.url, attempt, ?delay, reason = %reason, "websocket connection lost, reconnecting");
            if !self.emit(ClientEvent::Reconnecting { attempt, delay }).await {
                return;
            }
            let deadline = Instant::now() + delay;
            loop {
                tokio::select! {
                    () = tokio::time::sleep_until(deadline) => break,
                    cmd = commands.recv() => match cmd {
                        None => return,
                        Some(cmd) => self.apply_offline(cmd),
                    },
                }
            }
        }
    }

    /// TCP connect (with the configured receive buffer) and the WebSocket upgrade.
    async fn open(&self) -> Result<Socket, String> {
        let (host, port) = host_port(&self.url).ok_or_else(|| format!("bad url {}", self.url))?;
        let mut last = format!("{host}:{port} resolves to no address");
        for addr in tokio::net::lookup_host((host.as_str(), port)).await.map_err(|e| e.to_string())? {
            let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4() } else { tokio::net::TcpSocket::new_v6() };
            let socket = socket.map_err(|e| e.to_string())?;
            if let Some(size) = self.config.recv_buffer {
                socket.set_recv_buffer_size(size).map_err(|e| e.to_string())?;
            }
            match socket.connect(addr).await {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let mut request = self.url.as_str().into_client_request().map_err(|e| e.to_string())?;
                    if let Some(token) = &self.config.token {
                        let value = format!("Bearer {token}").parse().map_err(|_| "the client token is not a valid header value".to_string())?;
                        request.headers_mut().insert("authorization", value);
                    }
                    let (ws, _) = tokio_tungstenite::client_async_with_config(
                        request,
                        tokio_tungstenite::MaybeTlsStream::Plain(tcp),
                        Some(super::ws_config()),
                    )
                        .await
                        .map_err(|e| e.to_string())?;
                    return Ok(ws);
                }
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(last)
    }

    /// A command while disconnected: recorded, sent on the next connection.
    fn apply_offline(&mut self, cmd: Command) {
        match cmd {
            Command::Subscribe { id, filter, since } => {
                self.subs.insert(id, SubState::new(filter, since));
            }
            Command::Unsubscribe { id } => {
                self.subs.remove(&id);
            }
            Command::Authenticate { token } => {
                self.config.token = Some(token);
                self.outbox.needs_token = false;
            }
            Command::Op(request) => self.outbox.waiting.push_back(request),
            Command::DropConnection => {}
        }
    }

    async fn session(&mut self, socket: Socket, commands: &mut mpsc::UnboundedReceiver<Command>) -> End {
        let (mut sink, mut stream) = socket.split();
        let resume: Vec<String> = self
            .subs
            .iter_mut()
            .map(|(id, s)| {
                s.resubscribe_at = None;
                subscribe_frame(id, s)
            })
            .collect();
        self.outbox.in_flight = false;
        self.outbox.retry_at = None;
        for frame in resume.into_iter().chain(self.next_op_frame()) {
            if let Err(e) = sink.send(Message::text(frame)).await {
                return End::Dropped(e.to_string());
            }
        }
        loop {
            let due = self.subs.values().filter_map(|s| s.resubscribe_at).chain(self.outbox.retry_at).min();
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(Ok(Message::Text(text))) => {
                        if !self.on_frame(text.as_str()).await {
                            return End::Closed;
                        }
                        if let Some(frame) = self.next_op_frame() {
                            if let Err(e) = sink.send(Message::text(frame)).await {
                                return End::Dropped(e.to_string());
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => return End::Dropped(format!("closed by the server: {frame:?}")),
                    Some(Ok(_)) => {} // pings are answered by tungstenite on the next read/write
                    Some(Err(e)) => return End::Dropped(e.to_string()),
                    None => return End::Dropped("connection ended".into()),
                },
                cmd = commands.recv() => {
                    let frame = match cmd {
                        None => {
                            let _ = sink.close().await;
                            return End::Closed;
                        }
                        Some(Command::DropConnection) => return End::Dropped("dropped by the caller".into()),
                        Some(Command::Subscribe { id, filter, since }) => {
                            let s = SubState::new(filter, since);
                            let frame = subscribe_frame(&id, &s);
                            self.subs.insert(id, s);
                            frame
                        }
                        Some(Command::Unsubscribe { id }) => {
                            self.subs.remove(&id);
                            ClientMessage::Unsubscribe { id }.to_json()
                        }
                        Some(Command::Authenticate { token }) => {
                            self.config.token = Some(token.clone());
                            self.outbox.needs_token = false;
                            ClientMessage::Auth { token }.to_json()
                        }
                        Some(Command::Op(request)) => {
                            self.outbox.waiting.push_back(request);
                            match self.next_op_frame() {
                                Some(frame) => frame,
                                None => continue,
                            }
                        }
                    };
                    if let Err(e) = sink.send(Message::text(frame)).await {
                        return End::Dropped(e.to_string());
                    }
                }
                () = sleep_until_opt(due) => {
                    let now = Instant::now();
                    let mut frames: Vec<String> = self
                        .subs
                        .iter_mut()
                        .filter(|(_, s)| s.resubscribe_at.is_some_and(|t| t <= now))
                        .map(|(id, s)| {
                            s.resubscribe_at = None;
                            subscribe_frame(id, s)
                        })
                        .collect();
                    if self.outbox.retry_at.is_some_and(|t| t <= now) {
                        self.outbox.retry_at = None;
                        frames.extend(self.next_op_frame());
                    }
                    for frame in frames {
                        if let Err(e) = sink.send(Message::text(frame)).await {
                            return End::Dropped(e.to_string());
                        }
                    }
                }
            }
        }
    }

    /// Handles one server frame; `false`: the caller is gone.
    async fn on_frame(&mut self, text: &str) -> bool {
        let frame = match ServerFrame::parse(text) {
            Ok(f) => f,
            Err(e) => {
                // A newer server may send frames this client does not know: skip them.
                tracing::debug!(error = %e, "server frame skipped");
                return true;
            }
        };
        let event = match frame {
            ServerFrame::Subscribed { id, head_seq, .. } => {
                if let Some(s) = self.subs.get_mut(&id) {
                    // Live only: everything after the handover comes, so that is the position.
                    if s.last.is_none() && s.since.is_none() {
                        s.last = Some(head_seq);
                    }
                }
                ClientEvent::Subscribed { sub: id, head_seq }
            }
            ServerFrame::Event { sub, seq, body } => {
                if let Some(violation) = self.advance(&sub, seq) {
                    if !self.emit(violation).await {
                        return false;
                    }
                }
                ClientEvent::Event { sub, seq, raw: body }
            }
            ServerFrame::Rollback { sub, seq, body } => {
                if let Some(violation) = self.advance(&sub, seq) {
                    if !self.emit(violation).await {
                        return false;
                    }
                }
                ClientEvent::Rollback { sub, seq, raw: body }
            }
            ServerFrame::CaughtUp { sub, seq } => {
                if let Some(s) = self.subs.get_mut(&sub) {
                    s.last = Some(s.last.map_or(seq, |l| l.max(seq)));
                    s.resyncs = 0;
                }
                ClientEvent::CaughtUp { sub, seq }
            }
            ServerFrame::Resync { sub, seq, reason } => {
                if let Some(s) = self.subs.get_mut(&sub) {
                    // `seq`: everything up to it was delivered. Without a position of our
                    // own (a `since.blockHeight` history cut short), the original `since`
                    // is the safe restart.
                    if let Some(last) = s.last {
                        s.last = Some(last.max(seq));
                    }
                    s.resyncs = s.resyncs.saturating_add(1);
                    let delay = self.config.backoff.delay(s.resyncs, &mut self.rng);
                    s.resubscribe_at = Some(Instant::now() + delay);
                    tracing::info!(sub = %sub, seq, ?reason, ?delay, "subscription resynced, resubscribing");
                }
                ClientEvent::Resync { sub, seq, reason }
            }
            ServerFrame::OpError { op_id, code, message } => {
                if self.answers_op(Some(&op_id), code) {
                    return self.op_refused(code, message).await;
                }
                ClientEvent::server_error(Some(op_id), code, message)
            }
            // A refusal that could not name the op (its `opId` was unreadable).
            ServerFrame::Error { id: None, code, message } if self.answers_op(None, code) => {
                return self.op_refused(code, message).await;
            }
            ServerFrame::OpAck(ack) => {
                if self.outbox.in_flight && self.outbox.waiting.front().is_some_and(|r| r.op_id() == ack.op_id) {
                    self.outbox.waiting.pop_front();
                    self.outbox.in_flight = false;
                    self.outbox.retries = 0;
                }
                ClientEvent::OpAck(ack)
            }
            ServerFrame::OpStatus { sub, seq, body } => {
                if let Some(violation) = self.advance(&sub, seq) {
                    if !self.emit(violation).await {
                        return false;
                    }
                }
                match serde_json::from_str::<OpObject>(body.get()) {
                    Ok(op) => ClientEvent::OpStatus { sub, seq, op },
                    Err(e) => ClientEvent::Error { id: Some(sub), code: BAD_FRAME.into(), message: format!("op-status at seq {seq}: {e}") },
                }
            }
            ServerFrame::Error { id, code, message } => {
                // A subscription the server refused did not start: forget it, or it would
                // be sent again on every reconnect.
                if matches!(code, ErrorCode::InvalidFilter | ErrorCode::TooManySubscriptions | ErrorCode::Unauthorized) {
                    if let Some(id) = &id {
                        self.subs.remove(id);
                    }
                }
                ClientEvent::server_error(id, code, message)
            }
            ServerFrame::Authenticated { address, exp } => {
                self.outbox.needs_token = false;
                ClientEvent::Authenticated { address, exp }
            }
            ServerFrame::Unsubscribed { .. } | ServerFrame::Pong => return true,
        };
        self.emit(event).await
    }

    /// Records `seq` as delivered on `sub`; an error event when it does not increase.
    fn advance(&mut self, sub: &str, seq: i64) -> Option<ClientEvent> {
        let s = self.subs.get_mut(sub)?;
        match s.last {
            Some(last) if seq <= last => Some(ClientEvent::Error {
                id: Some(sub.to_string()),
                code: OUT_OF_ORDER.into(),
                message: format!("seq {seq} after {last}"),
            }),
            _ => {
                s.last = Some(seq);
                None
            }
        }
    }
}

impl SubState {
    fn new(filter: Filter, since: Option<Since>) -> SubState {
        let last = match since {
            Some(Since::Seq(seq)) => Some(seq),
            _ => None,
        };
        SubState { filter, since, last, resubscribe_at: None, resyncs: 0 }
    }
}

fn subscribe_frame(id: &str, s: &SubState) -> String {
    ClientMessage::Subscribe { id: id.to_string(), filter: s.filter.clone(), since: s.resume() }.to_json()
}

/// `(host, port)` of a `ws://host[:port]/…` URL (port 80 by default).
pub(super) fn host_port(url: &str) -> Option<(String, u16)> {
    let rest = url.strip_prefix("ws://")?;
    let authority = rest.split(['/', '?']).next().filter(|a| !a.is_empty())?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (h, p.parse().ok()?),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    (!host.is_empty()).then(|| (host.to_string(), port))
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn urls() {
        assert_eq!(super::host_port("ws://127.0.0.1:3000/ws"), Some(("127.0.0.1".into(), 3000)));
        assert_eq!(super::host_port("ws://localhost/ws?x=1"), Some(("localhost".into(), 80)));
        assert_eq!(super::host_port("ws://[::1]:9/ws"), Some(("::1".into(), 9)));
        assert_eq!(super::host_port("http://h/ws"), None);
        assert_eq!(super::host_port("ws://h:x/ws"), None);
        assert_eq!(super::host_port("ws:///ws"), None);
    }
}
