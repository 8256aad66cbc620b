//! Shared test harness: a real server on port 0 over a fresh database of either backend.
//!
//! PostgreSQL: `TEST_DATABASE_URL` names a server and a database to connect to for
//! creating per-test databases (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Each test gets its own database, dropped at the end. SQLite: a file in a temp folder.
#![allow(dead_code)]

pub mod ws;

use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use timebank_realtime::config::ServerConfig;
use timebank_realtime::startup::Application;

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Runs an async test body once per backend: `both_backends!(name, body_fn)` makes
/// `name_postgres` and `name_sqlite`.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[actix_web::test]
            async fn postgres() {
                $body($crate::common::Backend::Postgres).await
            }
            #[actix_web::test]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await
            }
        }
    };
}

/// Where fixtures live; `None` (and a plain line saying so) on a clone without `../shared`.
pub fn fixtures_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/fixtures/chainhook"));
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipped: ../shared/fixtures/chainhook not present (fresh clone without ../shared)");
        None
    }
}

pub fn admin_url() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_string())
}

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

impl TestDb {
    pub async fn new(backend: Backend) -> TestDb {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite://{}", dir.path().join("timebank.db").display());
                TestDb { url, pg_name: None, _dir: Some(dir) }
            }
            Backend::Postgres => {
                let name = format!(
                    "timebank_test_{}_{}_{}",
                    std::process::id(),
                    COUNTER.fetch_add(1, Ordering::SeqCst),
                    uuid::Uuid::new_v4().simple().to_string().get(..8).unwrap_or("x")
                );
                let admin = admin_url();
                let mut conn = pg_admin(&admin).await;
                conn.batch_execute(&format!("CREATE DATABASE {name}")).await.expect("create test database");
                let url = replace_db(&admin, &name);
                TestDb { url, pg_name: Some(name), _dir: None }
            }
        }
    }

    pub fn is_postgres(&self) -> bool {
        self.pg_name.is_some()
    }

    pub fn pg_name(&self) -> Option<&str> {
        self.pg_name.as_deref()
    }

    pub fn sqlite_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("sqlite://").map(PathBuf::from)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.pg_name.take() {
            let admin = admin_url();
            // Drop from a thread of its own: Drop may run inside the test's runtime.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
                rt.block_on(async move {
                    let mut conn = AsyncPgConnection::establish(&admin).await.ok()?;
                    conn.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await.ok()
                })
            })
            .join();
        }
    }
}

pub async fn pg_admin(admin: &str) -> AsyncPgConnection {
    match AsyncPgConnection::establish(admin).await {
        Ok(c) => c,
        Err(e) => panic!(
            "PostgreSQL is not reachable at {admin} ({e}).\n\
             The suite runs every store test on PostgreSQL and SQLite. Start PostgreSQL \
             (Debian: apt-get install postgresql && pg_ctlcluster $(ls /etc/postgresql) main start) \
             or set TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB to a server where USER may CREATE DATABASE."
        ),
    }
}

fn replace_db(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let prefix = match base.rfind('/') {
        Some(i) if i > base.find("://").map_or(0, |s| s + 2) => &base[..i],
        _ => base,
    };
    match query {
        Some(q) => format!("{prefix}/{db}?{q}"),
        None => format!("{prefix}/{db}"),
    }
}

pub const SECRET: &str = "test-webhook-secret";

/// A running server and the client to talk to it.
pub struct TestApp {
    pub base: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub db: TestDb,
    pub handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let db = TestDb::new(backend).await;
        Self::spawn_with(db, |_| {}).await
    }

    /// Spawns over an existing database, letting the test adjust the configuration.
    pub async fn spawn_with(db: TestDb, adjust: impl FnOnce(&mut ServerConfig)) -> TestApp {
        let mut config = ServerConfig::new(db.url.clone());
        config.chainhook_webhook_secret = Some(SECRET.to_string());
        config.http_workers = 2;
        adjust(&mut config);
        let app = Application::build(config).await.expect("application starts");
        let port = app.port();
        let handle = app.handle();
        actix_web::rt::spawn(app.run_until_stopped());
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            port,
            client: reqwest::Client::new(),
            db,
            handle,
        }
    }

    pub async fn post_raw(&self, body: impl Into<reqwest::Body>, auth: Option<&str>) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}/api/webhooks/chainhook", self.base))
            .header("content-type", "application/json")
            .body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        req.send().await.expect("request reaches the server")
    }

    /// Posts a payload with the right token; returns (status, JSON body).
    pub async fn post_payload(&self, payload: &Value) -> (u16, Value) {
        let res = self.post_raw(payload.to_string(), Some(&format!("Bearer {SECRET}"))).await;
        let status = res.status().as_u16();
        let body = res.json::<Value>().await.unwrap_or(Value::Null);
        (status, body)
    }

    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let res = self.client.get(format!("{}{}", self.base, path)).send().await.expect("request");
        let status = res.status().as_u16();
        (status, res.json::<Value>().await.unwrap_or(Value::Null))
    }

    pub async fn head(&self) -> Value {
        self.get_json("/api/head").await.1
    }

    /// Every event entry in the log, paging through `/api/events`.
    pub async fn all_events(&self) -> Vec<Value> {
        let mut out = Vec::new();
        let mut after = 0;
        loop {
            let (status, page) = self.get_json(&format!("/api/events?afterSeq={after}&limit=1000")).await;
            assert_eq!(status, 200, "{page}");
            let events = page["events"].as_array().cloned().unwrap_or_default();
            if events.is_empty() {
                return out;
            }
            after = page["nextAfterSeq"].as_i64().expect("nextAfterSeq");
            out.extend(events);
        }
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}
