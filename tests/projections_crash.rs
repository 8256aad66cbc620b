//! A server killed (SIGKILL) in the middle of projecting, then restarted, ends with the
//! same projection state as one that never stopped — on both backends. Runs the real
//! binary (`serve`) as a child process.
mod common;
mod projection_support;

use common::{Backend, TestDb};
use projection_support::{dump, open_store};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use timebank_realtime::chainhook::parse_payload;
use timebank_realtime::synth;

const BLOCKS: i64 = 80;
const EVENTS_PER_BLOCK: usize = 500;

/// The same log in any store: transfers, entity prints, and a reorg every 10 blocks.
async fn fill(url: &str) -> i64 {
    let store = open_store(url).await;
    let mut writer = store.appender().await.expect("writer");
    for h in 1..=BLOCKS {
        let mut block = synth::block_with_transfers(h, 0, 0, EVENTS_PER_BLOCK);
        let print = synth::print_event(
            synth::CONTRACT,
            serde_json::json!({"event": if h % 2 == 1 { "offer-created" } else { "offer-updated" }, "offer-id": h % 7, "hours": h}),
        );
        if let Some(txs) = block["transactions"].as_array_mut() {
            txs.push(synth::transaction(
                h,
                0,
                txs.len(),
                synth::address(1),
                Some(synth::CONTRACT),
                vec![print],
            ));
        }
        let mut payloads = vec![synth::payload(vec![block.clone()], vec![])];
        if h % 10 == 0 {
            // Roll the block back, then apply it again (two payloads: one payload doing
            // both leaves the block canonical and stores nothing).
            payloads.push(synth::payload(vec![], vec![block.clone()]));
            payloads.push(synth::payload(vec![block], vec![]));
        }
        for p in payloads {
            let parsed = parse_payload(p.to_string().as_bytes()).expect("synthetic payload parses");
            writer.append(vec![parsed]).await.expect("append");
        }
    }
    store.head().await.expect("head").head_seq
}

struct Server {
    child: Child,
    base: String,
}

fn serve(url: &str) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_timebank-realtime"))
        .arg("serve")
        .env("BIND_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", url)
        .env("CHAINHOOK_WEBHOOK_SECRET", "crash-test")
        .env("PROJECTION_FLUSH_EVERY", "1000")
        .env("HTTP_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    break addr.trim().to_string();
                }
            }
            _ => panic!("server exited before listening"),
        }
    };
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// (head, checkpoints of the three projections) as the server reports them.
async fn progress(client: &reqwest::Client, base: &str) -> Option<(i64, Vec<i64>)> {
    let head: Value = client
        .get(format!("{base}/api/head"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let list: Value = client
        .get(format!("{base}/api/projections"))
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    let checkpoints = list["projections"]
        .as_array()?
        .iter()
        .filter_map(|p| p["checkpoint"].as_i64())
        .collect();
    Some((head["headSeq"].as_i64()?, checkpoints))
}

async fn wait_caught_up(client: &reqwest::Client, base: &str, head: i64) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some((_, cps)) = progress(client, base).await {
            if cps.len() == 3 && cps.iter().all(|c| *c == head) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "projections never caught up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn killed_mid_projection(backend: Backend) {
    let client = reqwest::Client::new();
    let steady = TestDb::new(backend).await;
    let crashed = TestDb::new(backend).await;
    let head = fill(&steady.url).await;
    // 80 blocks × (501 events + 1 block marker), and 8 reorgs × (501 rollback entries +
    // 1 marker + the block again): the log really holds undos.
    assert_eq!(head, 80 * 502 + 8 * (502 + 502));
    assert_eq!(fill(&crashed.url).await, head, "same log in both stores");

    // Never stopped.
    let mut s = serve(&steady.url);
    wait_caught_up(&client, &s.base, head).await;
    let _ = s.child.kill();
    let _ = s.child.wait();
    let expected = dump(&steady.url).await;
    assert!(expected.len() > 3, "the log projects to something");

    // Killed with SIGKILL while catching up, then restarted.
    let mut c = serve(&crashed.url);
    let deadline = Instant::now() + Duration::from_secs(120);
    let killed_at = loop {
        if let Some((_, cps)) = progress(&client, &c.base).await {
            if cps.iter().any(|cp| *cp > 0 && *cp < head) {
                c.child.kill().expect("SIGKILL");
                let _ = c.child.wait();
                break cps;
            }
            assert!(
                !(cps.len() == 3 && cps.iter().all(|cp| *cp == head)),
                "finished before it could be killed"
            );
        }
        assert!(Instant::now() < deadline, "projection never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let mut c = serve(&crashed.url);
    wait_caught_up(&client, &c.base, head).await;
    let _ = c.child.kill();
    let _ = c.child.wait();
    let got = dump(&crashed.url).await;
    assert_eq!(
        got.len(),
        expected.len(),
        "killed at checkpoints {killed_at:?}"
    );
    assert!(
        got == expected,
        "state after kill -9 at {killed_at:?} and restart differs from a run that never stopped"
    );
}
both_backends!(killed_mid_projection, killed_mid_projection);
