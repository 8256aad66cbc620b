//! Shared test harness: a real server on port 0 over a fresh database of either backend.
//!
//! PostgreSQL: `TEST_DATABASE_URL` names a server and a database to connect to for
//! creating per-test databases (default `postgres://postgres@127.0.0.1:5432/postgres`).
//! Each test gets its own database, dropped at the end. SQLite: a file in a temp folder.
#![allow(dead_code)]

pub mod node;
pub mod ops;
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
    (fixtures: $name:ident, $body:path) => {
        mod $name {
            use super::*;
            #[actix_web::test]
            #[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
            async fn postgres() {
                $body($crate::common::Backend::Postgres).await
            }
            #[actix_web::test]
            #[cfg_attr(not(shared_fixtures), ignore = "../shared/fixtures not present (fresh clone)")]
            async fn sqlite() {
                $body($crate::common::Backend::Sqlite).await
            }
        }
    };
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

/// The server that per-test databases are created on, found once per test binary:
/// `TEST_DATABASE_URL` when set (`throwaway` forces the throwaway cluster below); else the
/// default local server when it answers; else, when PostgreSQL's binaries are installed,
/// a throwaway cluster in a temp folder that stops and is deleted when the tests end;
/// else a panic that says what to install or set.
pub fn admin_url() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| match std::env::var("TEST_DATABASE_URL") {
        Ok(v) if v == "throwaway" => throwaway::start().unwrap_or_else(|e| panic!("{e}")),
        Ok(v) if !v.is_empty() => v,
        _ if throwaway::answers(5432) => DEFAULT_TEST_DATABASE_URL.to_string(),
        _ => match throwaway::start() {
            Ok(url) => url,
            Err(e) => panic!(
                "PostgreSQL is not reachable at {DEFAULT_TEST_DATABASE_URL} and no throwaway \
                 cluster could be started ({e}).\nThe suite runs every store test on PostgreSQL and \
                 SQLite. Install PostgreSQL (Debian: apt-get install postgresql) or set \
                 TEST_DATABASE_URL=postgres://USER@HOST:PORT/DB to a server where USER may CREATE DATABASE."
            ),
        },
    })
    .clone()
}

mod throwaway {
    use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
    use std::path::{Path, PathBuf};
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    pub fn answers(port: u16) -> bool {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok()
    }

    fn bin_dir() -> Option<PathBuf> {
        let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|d| d.join("initdb").is_file())
            .collect();
        dirs.sort();
        dirs.pop()
    }

    /// As root, PostgreSQL refuses to run: use its own account.
    fn as_owner(cmd: &Path) -> Command {
        let root = Command::new("id").arg("-u").output().map(|o| o.stdout == b"0\n").unwrap_or(false);
        if root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(cmd);
            c
        } else {
            Command::new(cmd)
        }
    }

    pub fn start() -> Result<String, String> {
        let bin = bin_dir().ok_or("PostgreSQL binaries not found under /usr/lib/postgresql")?;
        let dir = std::env::temp_dir().join(format!("timebank-test-pg-{}", std::process::id()));
        let data = dir.join("data");
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let _ = Command::new("chown").args(["-R", "postgres"]).arg(&dir).status();
        let out = as_owner(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-D"])
            .arg(&data)
            .output()
            .map_err(|e| format!("initdb: {e}"))?;
        if !out.status.success() {
            return Err(format!("initdb failed: {}", String::from_utf8_lossy(&out.stderr)));
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let postgres = as_owner(&bin.join("postgres"));
        let start = format!(
            "{prog} -D {data} -p {port} -k {dir} -c listen_addresses=127.0.0.1 -c fsync=off & pg=$!; \
             while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill -INT $(head -n 1 {data}/postmaster.pid); wait $pg; rm -rf {dir}",
            prog = format!("{:?}", postgres).replace('"', ""),
            data = data.display(),
            dir = dir.display(),
            parent = std::process::id(),
        );
        // The watcher outlives nothing: it stops PostgreSQL once this test process is gone.
        Command::new("sh")
            .args(["-c", &start])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start postgres: {e}"))?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !answers(port) {
            if Instant::now() > deadline {
                return Err(format!("throwaway PostgreSQL did not start on port {port}"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("started a throwaway PostgreSQL cluster on 127.0.0.1:{port} ({})", dir.display());
        Ok(format!("postgres://postgres@127.0.0.1:{port}/postgres"))
    }
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

    /// Runs `sql` on a connection of its own (SQLite: waiting up to 5 s for the write lock,
    /// which a running server's writer or projector may hold for a moment).
    pub async fn execute(&self, sql: &str) {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        match self.sqlite_path() {
            None => {
                let mut c = AsyncPgConnection::establish(&self.url).await.expect("connect");
                c.batch_execute(sql).await.expect("sql");
            }
            Some(path) => {
                let mut c = diesel::SqliteConnection::establish(path.to_str().expect("utf-8")).expect("connect");
                c.batch_execute(&format!("PRAGMA busy_timeout = 5000; {sql}")).expect("sql");
            }
        }
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

    /// A second server (another node) on this server's database; the first keeps the
    /// database and removes it.
    pub async fn spawn_beside(&self) -> TestApp {
        let db = TestDb { url: self.db.url.clone(), pg_name: None, _dir: None };
        Self::spawn_with(db, |_| {}).await
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

    /// `seq`s of the events `/api/events` does not mark rolled back.
    pub async fn live_event_seqs(&self) -> std::collections::BTreeSet<i64> {
        self.all_events()
            .await
            .iter()
            .filter(|e| e.get("rolledBack").is_none())
            .filter_map(|e| e["seq"].as_i64())
            .collect()
    }

    pub async fn stop(&self) {
        self.handle.stop(false).await;
    }
}

/// Opens a second handle on the test's database, as an operator's tool would.
pub async fn open_store(url: &str) -> timebank_realtime::store::Store {
    let config = timebank_realtime::config::DatabaseArgs::new(url).store_config().expect("store config");
    timebank_realtime::store::Store::open(config).await.expect("store opens")
}

/// Every log entry (all kinds), paging through `Store::entries_after`.
pub async fn all_entries(store: &timebank_realtime::store::Store) -> Vec<timebank_realtime::model::LogEntry> {
    let mut out: Vec<timebank_realtime::model::LogEntry> = Vec::new();
    loop {
        let after = out.last().map_or(0, |e| e.seq);
        let page = store.entries_after(after, 1000).await.expect("entries_after");
        if page.is_empty() {
            return out;
        }
        out.extend(page);
    }
}

/// One receipt event of a payload's `apply` blocks, read straight from the JSON.
#[derive(Debug, Clone)]
pub struct PayloadEvent {
    pub block_hash: String,
    pub block_height: i64,
    pub timestamp: i64,
    pub tx_hash: String,
    /// `metadata.position.index`, else the transaction's place in the block.
    pub tx_index: i64,
    /// `position.index`, else the event's place in the receipt.
    pub event_index: i64,
    /// Chainhook's `type`.
    pub chainhook_type: String,
    pub data: Value,
    pub success: bool,
    pub sender: Option<String>,
    /// `kind.data.contract_identifier` of a `ContractCall`.
    pub called_contract: Option<String>,
}

/// Walks a payload's `apply` blocks as PROTOCOL §1 says a fresh store sees them: returns
/// the events whose identity (block hash, tx index, event index) is new, in payload order,
/// and how many repeated an identity already seen.
pub fn apply_events(payload: &Value) -> (Vec<PayloadEvent>, usize) {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    let mut repeats = 0;
    for block in payload["apply"].as_array().expect("apply is an array") {
        let block_hash = block["block_identifier"]["hash"].as_str().expect("hash").to_string();
        for (t, tx) in block["transactions"].as_array().expect("transactions").iter().enumerate() {
            let m = &tx["metadata"];
            let tx_index = m["position"]["index"].as_i64().unwrap_or(t as i64);
            let called_contract = (m["kind"]["type"] == "ContractCall")
                .then(|| m["kind"]["data"]["contract_identifier"].as_str().map(str::to_string))
                .flatten();
            for (i, ev) in m["receipt"]["events"].as_array().expect("events").iter().enumerate() {
                let event_index = ev["position"]["index"].as_i64().unwrap_or(i as i64);
                if !seen.insert((block_hash.clone(), tx_index, event_index)) {
                    repeats += 1;
                    continue;
                }
                out.push(PayloadEvent {
                    block_hash: block_hash.clone(),
                    block_height: block["block_identifier"]["index"].as_i64().expect("index"),
                    timestamp: block["timestamp"].as_i64().expect("timestamp"),
                    tx_hash: tx["transaction_identifier"]["hash"].as_str().expect("tx hash").to_string(),
                    tx_index,
                    event_index,
                    chainhook_type: ev["type"].as_str().expect("type").to_string(),
                    data: ev["data"].clone(),
                    success: m["success"].as_bool().expect("success"),
                    sender: m["sender"].as_str().map(str::to_string),
                    called_contract: called_contract.clone(),
                });
            }
        }
    }
    (out, repeats)
}

impl PayloadEvent {
    /// `eventType` per PROTOCOL §2.
    pub fn expected_event_type(&self) -> &'static str {
        match self.chainhook_type.as_str() {
            "SmartContractEvent" if self.data["topic"] == "print" => "print_event",
            "SmartContractEvent" => "contract_event",
            "STXTransferEvent" => "stx_transfer_event",
            "STXMintEvent" => "stx_mint_event",
            "STXBurnEvent" => "stx_burn_event",
            "STXLockEvent" => "stx_lock_event",
            "FTTransferEvent" => "ft_transfer_event",
            "FTMintEvent" => "ft_mint_event",
            "FTBurnEvent" => "ft_burn_event",
            "NFTTransferEvent" => "nft_transfer_event",
            "NFTMintEvent" => "nft_mint_event",
            "NFTBurnEvent" => "nft_burn_event",
            "DataVarSetEvent" => "data_var_set_event",
            "DataMapInsertEvent" => "data_map_insert_event",
            "DataMapUpdateEvent" => "data_map_update_event",
            "DataMapDeleteEvent" => "data_map_delete_event",
            other => panic!("unknown Chainhook event type {other}"),
        }
    }

    /// `contractId` per PROTOCOL §2: print/data events name their contract; FT/NFT events
    /// the contract part of `ADDR.contract::asset`; STX events the called contract.
    pub fn expected_contract_id(&self) -> Option<String> {
        let asset_contract = |field: &str| {
            self.data[field]
                .as_str()
                .and_then(|a| a.split_once("::"))
                .map(|(c, _)| c.to_string())
                .filter(|c| !c.is_empty())
        };
        match self.chainhook_type.as_str() {
            t if t.starts_with("STX") => self.called_contract.clone(),
            t if t.starts_with("FT") => asset_contract("asset_identifier"),
            t if t.starts_with("NFT") => asset_contract("asset_class_identifier"),
            _ => self.data["contract_identifier"].as_str().filter(|c| !c.is_empty()).map(str::to_string),
        }
    }
}

/// A log long enough that reads must page through it: `blocks` blocks of
/// `events_per_block` mixed events (`synth::block_mixed`), then a reorg that replaces the
/// last two blocks (so it holds rollbacks), appended through the store's appender in
/// groups of 25 payloads, as the writer groups deliveries.
pub async fn append_long_log(store: &timebank_realtime::store::Store, blocks: i64, events_per_block: usize, principals: usize) {
    use timebank_realtime::synth;
    let mut payloads: Vec<Value> =
        (1..=blocks).map(|h| synth::payload(vec![synth::block_mixed(h, events_per_block, principals)], vec![])).collect();
    payloads.push(synth::payload(
        vec![synth::block_with_transfers(blocks - 1, 1, 0, 20), synth::block_with_transfers(blocks, 1, 1, 20)],
        vec![synth::block_mixed(blocks, events_per_block, principals), synth::block_mixed(blocks - 1, events_per_block, principals)],
    ));
    let mut appender = store.appender().await.expect("appender");
    for group in payloads.chunks(25) {
        let parsed = group
            .iter()
            .map(|p| timebank_realtime::chainhook::parse_payload(p.to_string().as_bytes()).expect("payload parses"))
            .collect();
        appender.append(parsed).await.expect("group commits");
    }
}
