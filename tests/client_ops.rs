//! The Rust client's ops against a real server on both backends: a program that queues ops
//! while offline, is killed, restarted, killed again mid-drain and restarted once more puts
//! every op in the log exactly once and in the order it made them; `execute_with_optimistic`
//! shows the value at once and calls back as the chain decides.

mod common;
use common::{all_entries, open_store, Backend, TestApp, TestDb};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use timebank_realtime::client::{ClientEvent, Optimistic, OptimisticClient, OptimisticConfig};
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth;

const JWT_SECRET: &str = "client-ops-test-secret";
const WAIT: Duration = Duration::from_secs(30);

fn token() -> String {
    let exp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_secs() + 3600;
    let claims = json!({"sub": synth::address(0), "exp": exp});
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &EncodingKey::from_secret(JWT_SECRET.as_bytes()).expect("key"))
        .expect("token")
}

async fn spawn(backend: Backend) -> TestApp {
    let db = TestDb::new(backend).await;
    TestApp::spawn_with(db, |c| c.auth_jwt_secret = Some(JWT_SECRET.into())).await
}

fn ws_url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/ws")
}

/// A port nothing listens on: the client is offline there.
fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// The `offline_ops` example (built by `cargo test` with the tests) as a child process,
/// with its output lines collected.
struct Program {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Program {
    fn start(url: &str, queue: &std::path::Path, count: u32) -> Program {
        let exe = std::env::current_exe().expect("test binary");
        let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("examples").join("offline_ops");
        assert!(bin.exists(), "{} is built by `cargo test`", bin.display());
        let mut child = Command::new(bin)
            .args([url, &token(), queue.to_str().expect("utf-8 path"), "exchange:1", &count.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the example starts");
        let stdout = child.stdout.take().expect("piped");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let kept = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                kept.lock().expect("lines").push(line);
            }
        });
        Program { child, lines }
    }

    fn lines(&self, prefix: &str) -> Vec<String> {
        let lines = self.lines.lock().expect("lines");
        lines.iter().filter_map(|l| l.strip_prefix(prefix)).map(|l| l.split(' ').next().unwrap_or("").to_string()).collect()
    }

    async fn wait_for(&self, prefix: &str, n: usize) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let got = self.lines(prefix);
            if got.len() >= n {
                return got;
            }
            assert!(tokio::time::Instant::now() < deadline, "{n} {prefix:?} lines expected, got {got:?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("reaped");
    }
}

/// `opId`s of the log's op entries, in log order.
async fn logged_ops(app: &TestApp) -> Vec<String> {
    let store = open_store(&app.db.url).await;
    all_entries(&store)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::Op)
        .map(|e| serde_json::from_str::<Value>(&e.body).expect("op body")["opId"].as_str().expect("opId").to_string())
        .collect()
}

async fn offline_queue_survives_kills_and_delivers_each_op_once_in_order(backend: Backend) {
    let app = spawn(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = dir.path().join("ops.jsonl");

    // Offline: ops are queued on disk, then the program is killed.
    let offline = Program::start(&ws_url(dead_port()), &queue, 5);
    let mut made = offline.wait_for("queued ", 5).await;
    offline.kill();
    assert!(logged_ops(&app).await.is_empty());

    // Online: the queue drains and more ops are made; killed part way through the answers.
    let online = Program::start(&ws_url(app.port), &queue, 20);
    made.extend(online.wait_for("queued ", 20).await);
    online.wait_for("ack ", 8).await;
    online.kill();

    // Restarted: whatever was left unanswered is sent again.
    let last = Program::start(&ws_url(app.port), &queue, 0);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let logged = logged_ops(&app).await;
        if logged.len() >= made.len() {
            assert_eq!(logged, made, "each op once, in the order made");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "logged {} of {} ops", logged.len(), made.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Once the last op is answered, the queue is empty: a further start sends nothing.
    let newest = made.last().expect("ops made").clone();
    let deadline = tokio::time::Instant::now() + WAIT;
    while !last.lines("ack ").contains(&newest) {
        assert!(tokio::time::Instant::now() < deadline, "the newest op was never answered");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    last.kill();
    let queued: Vec<String> = std::fs::read_to_string(&queue)
        .expect("queue")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["add"]["opId"].as_str().map(str::to_string))
        .collect();
    let client = OptimisticClient::open(&ws_url(app.port), OptimisticConfig::new(token(), &queue)).expect("opens");
    assert_eq!(client.queued(), 0, "journal still lists {queued:?}");
    assert_eq!(logged_ops(&app).await, made);
}

#[actix_web::test]
async fn offline_queue_survives_kills_and_delivers_each_op_once_in_order_sqlite() {
    offline_queue_survives_kills_and_delivers_each_op_once_in_order(Backend::Sqlite).await;
}

#[actix_web::test]
async fn offline_queue_survives_kills_and_delivers_each_op_once_in_order_postgres() {
    offline_queue_survives_kills_and_delivers_each_op_once_in_order(Backend::Postgres).await;
}

/// The next op event (ack, refusal or status) of `client`.
async fn next_op_event(client: &mut OptimisticClient) -> ClientEvent {
    loop {
        let event = tokio::time::timeout(WAIT, client.next()).await.expect("an event in time").expect("queue").expect("open");
        if matches!(event, ClientEvent::OpAck(_) | ClientEvent::OpStatus { .. } | ClientEvent::OpRefused { .. }) {
            return event;
        }
    }
}

async fn execute_with_optimistic_shows_the_value_and_reports_the_outcome(backend: Backend) {
    let app = spawn(backend).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut client = OptimisticClient::open(&ws_url(app.port), OptimisticConfig::new(token(), dir.path().join("q.jsonl"))).expect("opens");
    let chain: Map<String, Value> = json!({"hours": 1, "status": "open"}).as_object().cloned().expect("object");

    let outcome: Arc<Mutex<Vec<String>>> = Arc::default();
    let (confirmed, reverted) = (outcome.clone(), outcome.clone());
    let optimistic = Optimistic { entity: "exchange:7".into(), data: json!({"hours": 3}).as_object().cloned().expect("object"), base_version: None };
    let op_id = client
        .execute_with_optimistic(
            "set-hours",
            optimistic,
            || async { Ok(None) },
            move |op| confirmed.lock().expect("outcome").push(format!("confirmed {}", op.op_id)),
            move |op| reverted.lock().expect("outcome").push(format!("reverted {} {:?}", op.op_id, op.reason)),
        )
        .await
        .expect("executes");
    // Shown at once, before the server answered.
    assert_eq!(client.view("exchange:7", &chain)["hours"], json!(3));
    assert_eq!(client.view("exchange:7", &chain)["status"], json!("open"));

    // The answer; the op's first status (its entry, `pending`) may come before or after it.
    loop {
        match next_op_event(&mut client).await {
            ClientEvent::OpAck(ack) => {
                assert_eq!((ack.op_id.as_str(), json!(ack.status)), (op_id.as_str(), json!("pending")));
                break;
            }
            ClientEvent::OpStatus { op, .. } => assert_eq!((op.op_id.as_str(), json!(op.status)), (op_id.as_str(), json!("pending"))),
            other => panic!("{other:?}"),
        }
    }
    // Without a transaction the op is withdrawn: the chain decides nothing, the program does.
    client.cancel(&op_id);
    let deadline = tokio::time::Instant::now() + WAIT;
    while outcome.lock().expect("outcome").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no outcome");
        next_op_event(&mut client).await;
    }
    assert_eq!(*outcome.lock().expect("outcome"), vec![format!("reverted {op_id} Some(Cancelled)")]);
    assert_eq!(client.view("exchange:7", &chain), chain, "a reverted op no longer shows");

    // An action that fails sends nothing and takes the value back.
    let failing = Optimistic { entity: "exchange:7".into(), data: json!({"hours": 9}).as_object().cloned().expect("object"), base_version: None };
    let err = client.execute_with_optimistic("set-hours", failing, || async { Err("wallet refused".to_string()) }, |_| {}, |_| {}).await;
    assert!(err.is_err());
    assert_eq!(client.view("exchange:7", &chain), chain);

    // With a transaction: confirmed when a block holds it, sent by the token's address.
    outcome.lock().expect("outcome").clear();
    let (confirmed, reverted) = (outcome.clone(), outcome.clone());
    let tx = synth::tx_hash(1, 0, 0);
    let paid = Optimistic { entity: "exchange:7".into(), data: json!({"status": "paid"}).as_object().cloned().expect("object"), base_version: None };
    let signed = tx.clone();
    let paid_id = client
        .execute_with_optimistic(
            "pay",
            paid,
            move || async move { Ok(Some(signed)) },
            move |op| confirmed.lock().expect("outcome").push(format!("confirmed {} {:?}", op.op_id, op.tx_hash)),
            move |op| reverted.lock().expect("outcome").push(format!("reverted {} {:?}", op.op_id, op.reason)),
        )
        .await
        .expect("executes");
    assert_eq!(client.view("exchange:7", &chain)["status"], json!("paid"));
    while !matches!(next_op_event(&mut client).await, ClientEvent::OpAck(ref ack) if ack.op_id == paid_id) {}
    let transfer = synth::stx_transfer(synth::address(0), synth::address(1), 5);
    let block = synth::block(1, 0, 0, vec![synth::transaction(1, 0, 0, synth::address(0), None, vec![transfer])]);
    assert_eq!(app.post_payload(&synth::payload(vec![block], vec![])).await.0, 200);
    let deadline = tokio::time::Instant::now() + WAIT;
    while outcome.lock().expect("outcome").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "no outcome");
        next_op_event(&mut client).await;
    }
    assert_eq!(*outcome.lock().expect("outcome"), vec![format!("confirmed {paid_id} Some({tx:?})")]);
    assert_eq!(logged_ops(&app).await, vec![op_id, paid_id]);
}

#[actix_web::test]
async fn execute_with_optimistic_shows_the_value_and_reports_the_outcome_sqlite() {
    execute_with_optimistic_shows_the_value_and_reports_the_outcome(Backend::Sqlite).await;
}

#[actix_web::test]
async fn execute_with_optimistic_shows_the_value_and_reports_the_outcome_postgres() {
    execute_with_optimistic_shows_the_value_and_reports_the_outcome(Backend::Postgres).await;
}
