//! Helpers for the ops tests (PROTOCOL §4): a server with client tokens, signed-in
//! WebSocket connections, op messages, and blocks whose transactions confirm or fail them.

use super::ws::WsClient;
use super::{Backend, TestApp, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use timebank_realtime::config::ServerConfig;
use timebank_realtime::synth;

pub const JWT_SECRET: &str = "ops-integration-test-secret-32-bytes!!";

/// Two addresses, one per user; each user may have several devices (connections).
pub const ALICE: &str = "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH";
pub const BOB: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM";

pub fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs()
}

pub fn token(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(secret.as_bytes()).expect("key"))
        .expect("encodes")
}

pub fn token_for(address: &str) -> String {
    token(JWT_SECRET, json!({"sub": address, "exp": now() + 3600}))
}

/// A server with ops enabled; `adjust` sets the rest.
pub async fn spawn(backend: Backend, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    TestApp::spawn_with(TestDb::new(backend).await, |c| {
        c.auth_jwt_secret = Some(JWT_SECRET.into());
        adjust(c);
    })
    .await
}

/// A connection signed in as `address`, subscribed to its ops (`since.seq` = `since`,
/// `None`: live only) and past `caught-up` when it has no history to read.
pub async fn device(app: &TestApp, address: &str, since: Option<i64>) -> WsClient {
    let mut ws = WsClient::connect_with(app, &format!("?token={}", token_for(address)), &[]).await;
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "authenticated", "{hello}");
    ws.subscribe("o", json!({"type": "ops"}), since.map(|s| json!({"seq": s}))).await;
    if since.is_none() {
        assert_eq!(ws.recv().await["type"], "caught-up");
    }
    ws
}

/// A signed-in connection without subscriptions.
pub async fn signed_in(app: &TestApp, address: &str) -> WsClient {
    let mut ws = WsClient::connect_with(app, &format!("?token={}", token_for(address)), &[]).await;
    let hello = ws.recv().await;
    assert_eq!(hello["type"], "authenticated", "{hello}");
    ws
}

pub fn op(op_id: &str, entity: &str, data: Value, tx_hash: Option<&str>) -> Value {
    let mut m = json!({"type": "op", "opId": op_id, "kind": "set", "entity": entity, "data": data});
    if let Some(h) = tx_hash {
        m["txHash"] = json!(h);
    }
    m
}

/// Reads frames until one of `kind` comes, skipping `caught-up` and `pong`; panics on any
/// other frame type.
pub async fn next_of(ws: &mut WsClient, kind: &str) -> Value {
    loop {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some(t) if t == kind => return m,
            Some("caught-up") | Some("pong") => continue,
            _ => panic!("expected {kind}, got {m}"),
        }
    }
}

/// Sends an op and returns its answer (`op-ack` or `error`), skipping `op-status` frames of
/// the connection's own subscription that come first.
pub async fn send_op(ws: &mut WsClient, msg: Value) -> Value {
    send_op_seen(ws, msg).await.0
}

/// [`send_op`], also returning the `op` objects of the `op-status` frames read before the
/// answer (the op's own `pending` may come before its `op-ack`).
pub async fn send_op_seen(ws: &mut WsClient, msg: Value) -> (Value, Vec<Value>) {
    ws.send(msg).await;
    let mut seen = Vec::new();
    loop {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some("op-ack") | Some("error") => return (m, seen),
            Some("op-status") => seen.push(m["op"].clone()),
            Some("caught-up") => continue,
            _ => panic!("unexpected {m}"),
        }
    }
}

/// The next `op-status` frames until one has `status` (and, if given, `reason`) for `op_id`;
/// returns every `op-status` read, in order.
pub async fn statuses_until(ws: &mut WsClient, op_id: &str, status: &str, reason: Option<&str>) -> Vec<Value> {
    let mut out = Vec::new();
    loop {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some("op-status") => {
                let o = m["op"].clone();
                let hit = o["opId"] == op_id && o["status"] == status && reason.is_none_or(|r| o["reason"] == r);
                out.push(o);
                if hit {
                    return out;
                }
            }
            Some("op-ack") | Some("caught-up") | Some("pong") => continue,
            _ => panic!("unexpected {m}"),
        }
    }
}

/// Proves that nothing is queued for `ws`: a ping's pong is the next frame.
pub async fn nothing_pending(ws: &mut WsClient) {
    ws.send(json!({"type": "ping"})).await;
    let m = ws.recv().await;
    assert_eq!(m["type"], "pong", "expected nothing before the pong, got {m}");
}

/// A transaction with hash `hash` at `(height, fork, index)`, sent by `sender`.
pub fn tx(height: i64, fork: u32, index: usize, hash: &str, sender: &str, success: bool, events: Vec<Value>) -> Value {
    let mut t = synth::transaction(height, fork, index, sender, Some(synth::CONTRACT), events);
    t["transaction_identifier"]["hash"] = json!(hash);
    t["metadata"]["success"] = json!(success);
    if !success {
        t["metadata"]["result"] = json!("(err u1)");
    }
    t
}

/// A print event announcing an entity change, read by the default entity mapping:
/// `{"event":"<kind>-<verb>","<kind>-id":id, …fields}`.
pub fn entity_print(kind: &str, verb: &str, id: u64, fields: Value) -> Value {
    let mut v = json!({"event": format!("{kind}-{verb}"), format!("{kind}-id"): id});
    if let Value::Object(f) = fields {
        for (k, x) in f {
            v[k] = x;
        }
    }
    synth::print_event(synth::CONTRACT, v)
}

/// A block `height` on `fork` (parent on `parent_fork`), with its timestamp.
pub fn block_at(height: i64, fork: u32, parent_fork: u32, timestamp: i64, txs: Vec<Value>) -> Value {
    let mut b = synth::block(height, fork, parent_fork, txs);
    b["timestamp"] = json!(timestamp);
    b
}

pub async fn post(app: &TestApp, apply: Vec<Value>, rollback: Vec<Value>) -> Value {
    let (status, body) = app.post_payload(&synth::payload(apply, rollback)).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// The log's op entries, as (kind number, body).
pub async fn op_entries(app: &TestApp) -> Vec<(i16, Value)> {
    let store = super::open_store(&app.db.url).await;
    super::all_entries(&store)
        .await
        .into_iter()
        .filter(|e| e.kind.is_op())
        .map(|e| (e.kind as i16, serde_json::from_str(&e.body).expect("json body")))
        .collect()
}

pub async fn head_seq(app: &TestApp) -> i64 {
    app.head().await["headSeq"].as_i64().expect("headSeq")
}

/// Every `op-status` object an `ops` subscription from `since` delivers on a fresh
/// connection, up to `caught-up`.
pub async fn history(app: &TestApp, address: &str, since: i64) -> Vec<Value> {
    let mut ws = signed_in(app, address).await;
    ws.subscribe("h", json!({"type": "ops"}), Some(json!({"seq": since}))).await;
    let mut out = Vec::new();
    loop {
        let m = ws.recv().await;
        match m["type"].as_str() {
            Some("op-status") => out.push(m["op"].clone()),
            Some("caught-up") => return out,
            _ => panic!("unexpected {m}"),
        }
    }
}

pub const SHORT: Duration = Duration::from_millis(300);

/// Stops `app` and starts a server on its database again: the rules are rebuilt from the
/// log. The returned server owns nothing of the database; keep `app` alive to drop it.
pub async fn restart(app: &TestApp, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    app.stop().await;
    let db = TestDb { url: app.db.url.clone(), pg_name: None, _dir: None };
    TestApp::spawn_with(db, |c| {
        c.auth_jwt_secret = Some(JWT_SECRET.into());
        adjust(c);
    })
    .await
}

/// `GET path` with `Authorization: Bearer <token>` when given.
pub async fn get_as(app: &TestApp, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = app.client.get(format!("{}{path}", app.base));
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Polls the entity until the projection shows `version` (the projector folds behind the
/// log); then returns the answer for `token`'s address with `?view=optimistic`.
pub async fn entity_at(app: &TestApp, kind: &str, id: &str, version: i64, token: Option<&str>) -> Value {
    let path = format!("/api/entities/{kind}/{id}?view=optimistic");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = get_as(app, &path, token).await;
        if status == 200 && body["version"] == version {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "entity {kind}:{id} never reached version {version}: {status} {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The decisions in the log equal those fresh rules derive from the log's other entries
/// (status is a pure function of the log).
pub async fn decisions_are_a_function_of_the_log(app: &TestApp, adjust: impl FnOnce(&mut ServerConfig)) {
    let mut config = ServerConfig::new(app.db.url.clone());
    config.auth_jwt_secret = Some(JWT_SECRET.into());
    adjust(&mut config);
    let settings = config.ops_settings().expect("settings").expect("ops enabled");
    let store = super::open_store(&app.db.url).await;
    let entries = super::all_entries(&store).await;
    let logged: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == timebank_realtime::model::EntryKind::OpStatus)
        .map(|e| {
            let mut v: Value = serde_json::from_str(&e.body).expect("json");
            v.as_object_mut().expect("object").remove("seq");
            v
        })
        .collect();
    assert!(!logged.is_empty(), "the test logged decisions");
    assert_eq!(timebank_realtime::store::rederive_decisions(&settings, &entries).expect("re-derives"), logged);
}

/// A second node on `app`'s database, with ops enabled; `app` keeps the database.
pub async fn node_beside(app: &TestApp, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
    let db = TestDb { url: app.db.url.clone(), pg_name: None, _dir: None };
    TestApp::spawn_with(db, |c| {
        c.auth_jwt_secret = Some(JWT_SECRET.into());
        adjust(c);
    })
    .await
}
