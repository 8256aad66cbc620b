//! Every way the webhook refuses a delivery (PROTOCOL §1), and that each refusal leaves the
//! log exactly as it was.

mod common;
use common::{Backend, TestApp, TestDb, SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use timebank_realtime::synth::{block_with_transfers, payload};

/// What a reader of the log sees: `/api/head` and every event.
async fn observed(app: &TestApp) -> (Value, Vec<Value>) {
    (app.head().await, app.all_events().await)
}

/// An app whose log already holds one block, so "unchanged" is not trivially "empty".
async fn seeded(app: &TestApp) -> (Value, Vec<Value>) {
    let (status, report) = app.post_payload(&payload(vec![block_with_transfers(1, 0, 0, 3)], vec![])).await;
    assert_eq!(status, 200, "{report}");
    let seen = observed(app).await;
    assert_eq!(seen.1.len(), 3);
    seen
}

fn next_payload() -> Value {
    payload(vec![block_with_transfers(2, 0, 0, 5)], vec![])
}

async fn wrong_tokens_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = seeded(&app).await;
    let body = next_payload().to_string();
    let wrong = [
        None,
        Some("Bearer wrong-secret".to_string()),
        Some(format!("Bearer {SECRET}x")),
        Some(format!("Bearer {}", &SECRET[..SECRET.len() - 1])),
        Some(format!("bearer {SECRET}")),
        Some(format!("Bearer  {SECRET}")),
        Some(SECRET.to_string()),
        Some("Bearer ".to_string()),
    ];
    for auth in &wrong {
        let res = app.post_raw(body.clone(), auth.as_deref()).await;
        assert_eq!(res.status().as_u16(), 401, "{auth:?}");
        let err: Value = res.json().await.expect("JSON error body");
        assert_eq!(err["error"]["code"], "unauthorized", "{auth:?}");
    }
    assert_eq!(observed(&app).await, before);
    // The same body with the right token is fine: it was the token that was refused.
    assert_eq!(app.post_payload(&next_payload()).await.0, 200);
}
both_backends!(wrong_tokens_are_401, wrong_tokens_are_401);

async fn post_bad(app: &TestApp, body: String) -> Value {
    let res = app.post_raw(body.clone(), Some(&format!("Bearer {SECRET}"))).await;
    assert_eq!(res.status().as_u16(), 400, "{body:.200}");
    res.json().await.expect("JSON error body")
}

async fn malformed_bodies_are_400_with_path(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = seeded(&app).await;
    let good = payload(vec![block_with_transfers(2, 0, 0, 15), block_with_transfers(3, 0, 0, 2)], vec![]);
    let text = good.to_string();

    for (body, what) in [
        ("hello".to_string(), "plain text"),
        (text[..text.len() / 2].to_string(), "truncated JSON"),
        (String::new(), "empty body"),
        (format!("{text}}}"), "trailing brace"),
    ] {
        let err = post_bad(&app, body).await;
        assert_eq!(err["error"]["code"], "invalid_json", "{what}: {err}");
    }

    let mutate = |f: &dyn Fn(&mut Value)| {
        let mut p = good.clone();
        f(&mut p);
        p.to_string()
    };
    let cases: Vec<(String, &str)> = vec![
        (mutate(&|p| p["apply"] = json!({})), "apply"),
        (mutate(&|p| p["apply"][0]["block_identifier"]["index"] = json!("2")), "apply[0].block_identifier.index"),
        (
            mutate(&|p| {
                p["apply"][1]["transactions"][0]["metadata"].as_object_mut().map(|m| m.remove("success"));
            }),
            "apply[1].transactions[0].metadata.success",
        ),
        (mutate(&|p| p["apply"][0]["transactions"][0]["metadata"]["success"] = json!("true")), "apply[0].transactions[0].metadata.success"),
        (
            mutate(&|p| {
                p.as_object_mut().map(|m| m.remove("apply"));
            }),
            "apply",
        ),
        (
            mutate(&|p| {
                p.as_object_mut().map(|m| m.remove("rollback"));
            }),
            "rollback",
        ),
        (mutate(&|p| p["rollback"] = json!([{"block_identifier": {"hash": 7, "index": 1}}])), "rollback[0].block_identifier.hash"),
        (
            mutate(&|p| p["apply"][0]["transactions"][1]["metadata"]["receipt"]["events"][3]["type"] = json!("NoSuchEvent")),
            "apply[0].transactions[1].metadata.receipt.events[3].type",
        ),
    ];
    for (body, path) in cases {
        let err = post_bad(&app, body).await;
        assert_eq!(err["error"]["code"], "invalid_payload", "{err}");
        assert_eq!(err["error"]["path"], path, "{err}");
        assert!(!err["error"]["message"].as_str().unwrap_or("").is_empty(), "{err}");
    }
    let err = post_bad(&app, format!("[{text}]")).await;
    assert_eq!(err["error"]["code"], "invalid_payload", "a JSON array is not a payload: {err}");

    assert_eq!(observed(&app).await, before);
    assert_eq!(app.post_payload(&good).await.0, 200, "the unmutated payload is fine");
}
both_backends!(malformed_bodies_are_400_with_path, malformed_bodies_are_400_with_path);

async fn oversized_body_is_413(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.webhook_body_limit = 4096).await;
    let small = payload(vec![block_with_transfers(1, 0, 0, 1)], vec![]);
    assert!(small.to_string().len() < 4096);
    assert_eq!(app.post_payload(&small).await.0, 200, "a body under the limit passes");
    let before = observed(&app).await;

    let big = payload(vec![block_with_transfers(2, 0, 0, 60)], vec![]);
    assert!(big.to_string().len() > 4096);
    let (status, body) = app.post_payload(&big).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["error"]["code"], "payload_too_large");
    assert_eq!(observed(&app).await, before);
}
both_backends!(oversized_body_is_413, oversized_body_is_413);

/// Without a Content-Length (chunked), the limit is enforced while reading the body.
async fn oversized_chunked_body_is_413(backend: Backend) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.webhook_body_limit = 4096).await;
    let before = observed(&app).await;
    let body = payload(vec![block_with_transfers(2, 0, 0, 60)], vec![]).to_string();
    let mut request = format!(
        "POST /api/webhooks/chainhook HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {SECRET}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    for chunk in body.as_bytes().chunks(1000) {
        request.push_str(&format!("{:x}\r\n{}\r\n", chunk.len(), String::from_utf8_lossy(chunk)));
    }
    request.push_str("0\r\n\r\n");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.expect("connect");
    // The server may answer and close before it has read everything; that is fine.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8_lossy(&response);
    assert!(response.starts_with("HTTP/1.1 413"), "{response:.300}");
    assert_eq!(observed(&app).await, before);
}
both_backends!(oversized_chunked_body_is_413, oversized_chunked_body_is_413);

async fn assert_503_with_retry_after(app: &TestApp, p: &Value) {
    let res = app.post_raw(p.to_string(), Some(&format!("Bearer {SECRET}"))).await;
    assert_eq!(res.status().as_u16(), 503);
    let retry = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_string);
    let secs: u64 = retry.as_deref().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("Retry-After: {retry:?}"));
    assert!(secs >= 1);
    let err: Value = res.json().await.expect("JSON error body");
    assert_eq!(err["error"]["code"], "unavailable", "{err}");
}

/// Polls `/readyz` until it answers `want` (the pool may need a moment to reconnect).
async fn wait_ready(app: &TestApp, want: u16) -> u16 {
    let mut last = 0;
    for _ in 0..50 {
        last = app.get_json("/readyz").await.0;
        if last == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    last
}

/// PostgreSQL refuses connections (and drops the open ones) after the server started.
async fn postgres_down_is_503_then_retry_succeeds() {
    use diesel_async::SimpleAsyncConnection;
    let db = TestDb::new(Backend::Postgres).await;
    let name = db.pg_name().expect("pg database").to_string();
    let app = TestApp::spawn_with(db, |c| c.database.db_connect_timeout_ms = 500).await;
    assert_eq!(app.get_json("/readyz").await.0, 200);
    let before = seeded(&app).await;

    let mut admin = common::pg_admin(&common::admin_url()).await;
    admin
        .batch_execute(&format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}';"
        ))
        .await
        .expect("take the database away");

    let p = next_payload();
    assert_503_with_retry_after(&app, &p).await;
    assert_503_with_retry_after(&app, &p).await; // and again, while reconnecting fails
    assert_eq!(app.get_json("/readyz").await.0, 503, "not ready without the store");

    admin
        .batch_execute(&format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"))
        .await
        .expect("give the database back");
    assert_eq!(wait_ready(&app, 200).await, 200);
    assert_eq!(observed(&app).await, before, "the refused payload left no trace");
    let (status, report) = app.post_payload(&p).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 5, "{report}");
    assert_eq!(app.all_events().await.len(), 8);
}

#[actix_web::test]
async fn store_down_is_503_postgres() {
    postgres_down_is_503_then_retry_succeeds().await
}

/// Another process holds SQLite's write lock longer than the busy timeout.
#[actix_web::test]
async fn store_down_is_503_sqlite() {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;
    let db = TestDb::new(Backend::Sqlite).await;
    let path = db.sqlite_path().expect("sqlite path");
    let app = TestApp::spawn_with(db, |c| c.database.sqlite_busy_timeout_ms = 200).await;
    let before = seeded(&app).await;

    let mut locker = diesel::SqliteConnection::establish(path.to_str().expect("utf-8 path")).expect("open file");
    locker.batch_execute("BEGIN EXCLUSIVE").expect("take the write lock");
    let p = next_payload();
    assert_503_with_retry_after(&app, &p).await;
    // Readers are not blocked (WAL): the log reads as before while the lock is held.
    assert_eq!(observed(&app).await, before);
    assert_eq!(app.get_json("/readyz").await.0, 200);
    locker.batch_execute("ROLLBACK").expect("release the lock");
    drop(locker);

    assert_eq!(observed(&app).await, before);
    let (status, report) = app.post_payload(&p).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 5, "{report}");
}

async fn readyz_when_store_up(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, body) = app.get_json("/readyz").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    assert_eq!(app.get_json("/healthz").await.0, 200);
}
both_backends!(readyz_when_store_up, readyz_when_store_up);
