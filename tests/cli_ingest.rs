//! The built binary: `ingest` and `events` on payload files, and `serve` as an operator
//! starts it (port 0, generated webhook secret).

mod common;
use common::{apply_events, Backend, TestDb};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;
use timebank_realtime::synth::{block_hash, block_with_transfers as b, payload};

const BIN: &str = env!("CARGO_BIN_EXE_timebank-realtime");

/// Runs the binary to completion; panics with its stderr unless it succeeds.
fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs");
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// `ingest` prints `FILE: {report totals}` per file.
fn totals(line: &str, file: &Path) -> Value {
    let prefix = format!("{}: ", file.display());
    let json = line.strip_prefix(&prefix).unwrap_or_else(|| panic!("{line:?} starts with {prefix:?}"));
    serde_json::from_str(json).expect("totals JSON")
}

async fn ingest_then_events(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    // JSON lines, as Chainhook's file_append writes them: three blocks, then a reorg of the third.
    let lines = [
        payload(vec![b(1, 0, 0, 2)], vec![]),
        payload(vec![b(2, 0, 0, 3)], vec![]),
        payload(vec![b(3, 0, 0, 4)], vec![]),
        payload(vec![b(3, 1, 0, 1)], vec![b(3, 0, 0, 4)]),
    ];
    let jsonl = dir.path().join("deliveries.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&jsonl, text.join("\n") + "\n").expect("write jsonl");
    // One pretty-printed payload spread over many lines.
    let single_payload = payload(vec![b(4, 1, 1, 12)], vec![]);
    let single = dir.path().join("single.json");
    std::fs::write(&single, serde_json::to_string_pretty(&single_payload).expect("json")).expect("write json");

    let jsonl_s = jsonl.to_str().expect("utf-8");
    let single_s = single.to_str().expect("utf-8");
    let out = run(&["ingest", "--quiet", "--database-url", &db.url, jsonl_s, single_s]);
    let out_lines: Vec<&str> = out.lines().collect();
    assert_eq!(out_lines.len(), 2, "{out}");
    let t = totals(out_lines[0], &jsonl);
    assert_eq!((t["appliedBlocks"].as_u64(), t["rolledBackBlocks"].as_u64()), (Some(4), Some(1)), "{t}");
    assert_eq!(t["events"], 2 + 3 + 4 + 1, "{t}");
    let t = totals(out_lines[1], &single);
    assert_eq!((t["appliedBlocks"].as_u64(), t["events"].as_u64()), (Some(1), Some(12)), "{t}");

    // `events` prints every stored event, in seq order, the reorged ones marked.
    let printed: Vec<Value> = run(&["events", "--database-url", &db.url])
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is an event object"))
        .collect();
    let expected: Vec<_> = lines.iter().chain([&single_payload]).flat_map(|p| apply_events(p).0).collect();
    assert_eq!(printed.len(), expected.len());
    let mut last_seq = 0;
    for (e, want) in printed.iter().zip(&expected) {
        assert_eq!(e["blockHash"], want.block_hash.as_str(), "{e}");
        assert_eq!(e["txHash"], want.tx_hash.as_str(), "{e}");
        assert_eq!((e["txIndex"].as_i64(), e["eventIndex"].as_i64()), (Some(want.tx_index), Some(want.event_index)));
        assert_eq!(e["data"]["amount"], want.data["amount"], "{e}");
        assert_eq!(e["rolledBack"] == true, want.block_hash == block_hash(3, 0), "{e}");
        let seq = e["seq"].as_i64().expect("seq");
        assert!(seq > last_seq, "seq order");
        last_seq = seq;
    }
    let limited: Vec<Value> = run(&["events", "--database-url", &db.url, "--limit", "3"])
        .lines()
        .map(|l| serde_json::from_str(l).expect("event object"))
        .collect();
    assert_eq!(limited, printed[..3]);
    let block4 = run(&["events", "--database-url", &db.url, "--from-block-height", "4"]);
    assert_eq!(block4.lines().count(), 12);

    // Loading a file again stores nothing new.
    let again = run(&["ingest", "--quiet", "--database-url", &db.url, single_s]);
    let t = totals(again.trim_end(), &single);
    assert_eq!((t["events"].as_u64(), t["duplicateEvents"].as_u64()), (Some(0), Some(12)), "{t}");
}
both_backends!(ingest_then_events, ingest_then_events);

/// Kills the child however the test ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `serve`; returns the child and its stdout lines as they come.
fn serve(db_url: &str, secret: Option<&str>) -> (Running, mpsc::Receiver<String>) {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .env_remove("CHAINHOOK_WEBHOOK_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(s) = secret {
        cmd.env("CHAINHOOK_WEBHOOK_SECRET", s);
    }
    let mut child = cmd.spawn().expect("serve starts");
    let stdout = child.stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (Running(child), rx)
}

/// Stdout lines up to and including `listening on http://…`.
fn until_listening(rx: &mpsc::Receiver<String>) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}; stdout so far: {seen:?}"));
        if let Some(url) = line.strip_prefix("listening on ") {
            return (seen, url.to_string());
        }
        seen.push(line);
    }
}

async fn post(base: &str, auth: Option<&str>, body: String) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/api/webhooks/chainhook"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let res = req.send().await.expect("server answers");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn serve_prints_port_and_generated_secret(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (_child, rx) = serve(&db.url, None);
    let (before, base) = until_listening(&rx);
    let port: u16 = base
        .strip_prefix("http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("listening line names 127.0.0.1 and a port: {base:?}"));
    assert_ne!(port, 0);
    let secret_line = before
        .iter()
        .find(|l| l.contains("CHAINHOOK_WEBHOOK_SECRET"))
        .unwrap_or_else(|| panic!("the generated secret is printed: {before:?}"));
    let secret = secret_line.rsplit(' ').next().expect("secret").to_string();
    assert!(secret.len() >= 32, "{secret_line}");

    let body = payload(vec![b(1, 0, 0, 2)], vec![]).to_string();
    assert_eq!(post(&base, None, body.clone()).await.0, 401);
    assert_eq!(post(&base, Some("Bearer not-the-secret"), body.clone()).await.0, 401);
    let (status, report) = post(&base, Some(&format!("Bearer {secret}")), body).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 2);
}
both_backends!(serve_prints_port_and_generated_secret, serve_prints_port_and_generated_secret);

/// With CHAINHOOK_WEBHOOK_SECRET set, that secret is used and nothing is generated.
#[actix_web::test]
async fn serve_uses_configured_secret() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (_child, rx) = serve(&db.url, Some("configured-secret-123"));
    let (before, base) = until_listening(&rx);
    assert!(before.iter().all(|l| !l.contains("CHAINHOOK_WEBHOOK_SECRET")), "{before:?}");
    let body = payload(vec![b(1, 0, 0, 1)], vec![]).to_string();
    assert_eq!(post(&base, Some("Bearer configured-secret-123"), body).await.0, 200);
}
