//! A real WebSocket client for the tests (tokio-tungstenite), speaking PROTOCOL §3.

use super::TestApp;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a message it expects.
pub const RECV_TIMEOUT: Duration = Duration::from_secs(15);

pub struct WsClient {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    pub async fn connect(app: &TestApp) -> WsClient {
        Self::connect_port(app.port).await
    }

    pub async fn connect_port(port: u16) -> WsClient {
        let (stream, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{port}/ws"))
            .await
            .expect("websocket upgrade succeeds");
        WsClient { stream }
    }

    /// Connects to `/ws` + `query` (e.g. `?token=…`), adding `headers` to the upgrade request.
    pub async fn connect_with(app: &TestApp, query: &str, headers: &[(&str, &str)]) -> WsClient {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://127.0.0.1:{}/ws{query}", app.port).into_client_request().expect("valid request");
        for (name, value) in headers {
            let name = tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes()).expect("header name");
            request.headers_mut().insert(name, value.parse().expect("header value"));
        }
        let (stream, _) = tokio_tungstenite::connect_async(request).await.expect("websocket upgrade succeeds");
        WsClient { stream }
    }

    /// Connects with a small, fixed socket receive buffer (no kernel autotuning), so a
    /// client that stops reading fills its buffers after a few hundred KiB.
    pub async fn connect_small_buffer(app: &TestApp) -> WsClient {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(16 * 1024).expect("SO_RCVBUF");
        let tcp = socket.connect(([127, 0, 0, 1], app.port).into()).await.expect("tcp connect");
        let (stream, _) = tokio_tungstenite::client_async(format!("ws://127.0.0.1:{}/ws", app.port), MaybeTlsStream::Plain(tcp))
            .await
            .expect("websocket upgrade succeeds");
        WsClient { stream }
    }

    /// The client's local port: with the server's port, it names the connection in the
    /// kernel's tables.
    pub fn local_port(&self) -> u16 {
        match self.stream.get_ref() {
            MaybeTlsStream::Plain(tcp) => tcp.local_addr().expect("local address").port(),
            _ => panic!("the tests connect without TLS"),
        }
    }

    pub async fn send_text(&mut self, text: &str) {
        self.stream.send(Message::text(text)).await.expect("send frame");
    }

    pub async fn send(&mut self, v: Value) {
        self.send_text(&v.to_string()).await;
    }

    /// The next JSON message, or `None` when none comes within `wait`.
    pub async fn recv_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let next = tokio::time::timeout_at(deadline, self.stream.next()).await.ok()?;
            match next {
                Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Some(Ok(Message::Close(_))) | None => return None,
                Some(Ok(_)) => continue, // ping/pong
                Some(Err(e)) => panic!("websocket error: {e}"),
            }
        }
    }

    /// Reads until the server closes the connection; the close code, if it sent one.
    pub async fn close_code(&mut self, wait: Duration) -> Option<u16> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await.expect("server closes in time") {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    }

    pub async fn recv(&mut self) -> Value {
        self.recv_within(RECV_TIMEOUT).await.expect("a message arrives in time")
    }

    /// Subscribes and returns the `subscribed` reply.
    pub async fn subscribe(&mut self, id: &str, filter: Value, since: Option<Value>) -> Value {
        let mut msg = json!({"type": "subscribe", "id": id, "filter": filter});
        if let Some(s) = since {
            msg["since"] = s;
        }
        self.send(msg).await;
        let reply = self.recv().await;
        assert_eq!(reply["type"], "subscribed", "{reply}");
        assert_eq!(reply["id"], id);
        reply
    }

    /// Reads messages until `done` says every subscription has what it needs; returns
    /// them grouped by subscription (`sub`, or `id` for replies).
    pub async fn collect_until(&mut self, mut done: impl FnMut(&BTreeMap<String, Vec<Value>>) -> bool) -> BTreeMap<String, Vec<Value>> {
        let mut by_sub: BTreeMap<String, Vec<Value>> = BTreeMap::new();
        while !done(&by_sub) {
            let m = self.recv().await;
            let key = m["sub"].as_str().or(m["id"].as_str()).unwrap_or("").to_string();
            by_sub.entry(key).or_default().push(m);
        }
        by_sub
    }

    /// Reads until the connection ends or `wait` passes: the messages, and how it ended.
    pub async fn read_to_end(&mut self, wait: Duration) -> (Vec<Value>, Ending) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await {
                Err(_) => return (out, Ending::StillOpen),
                Ok(Some(Ok(Message::Text(t)))) => out.push(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Ok(Some(Ok(Message::Close(_)))) | Ok(None) => return (out, Ending::Closed),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(e))) => return (out, Ending::Error(e.to_string())),
            }
        }
    }

    /// Reads until the server's close frame: the messages before it and its code (`None`:
    /// the connection ended without a close frame). Panics if it stays open past `wait`.
    pub async fn read_until_close(&mut self, wait: Duration) -> (Vec<Value>, Option<u16>) {
        let deadline = tokio::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.stream.next()).await.expect("server closes in time") {
                Some(Ok(Message::Text(t))) => out.push(serde_json::from_str(t.as_str()).expect("server sends JSON")),
                Some(Ok(Message::Close(frame))) => return (out, frame.map(|f| u16::from(f.code))),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return (out, None),
            }
        }
    }

    /// Messages that arrive within `wait` (to check that nothing more comes).
    pub async fn drain(&mut self, wait: Duration) -> Vec<Value> {
        let mut out = Vec::new();
        while let Some(m) = self.recv_within(wait).await {
            out.push(m);
        }
        out
    }
}

/// How a connection read by [`WsClient::read_to_end`] ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// A close frame, or the stream ended cleanly.
    Closed,
    /// A transport error, such as a reset.
    Error(String),
    /// Nothing ended it within the wait.
    StillOpen,
}

/// The `seq`s of `event`/`rollback` messages, in arrival order.
pub fn seqs(msgs: &[Value]) -> Vec<i64> {
    msgs.iter()
        .filter_map(|m| match m["type"].as_str() {
            Some("event") => m["event"]["seq"].as_i64(),
            Some("rollback") => m["rollback"]["seq"].as_i64(),
            _ => None,
        })
        .collect()
}

/// Whether an event object matches a PROTOCOL filter, judged from the object alone.
pub fn matches(filter: &Value, obj: &Value) -> bool {
    match filter["type"].as_str() {
        Some("all") => true,
        Some("contract") => {
            obj["contractId"] == filter["contractId"]
                && (filter.get("eventType").is_none() || obj["eventType"] == filter["eventType"])
        }
        Some("user") => obj["affectedAddresses"].as_array().is_some_and(|a| a.contains(&filter["address"])),
        Some("event-type") => obj["eventType"] == filter["eventType"],
        _ => false,
    }
}
