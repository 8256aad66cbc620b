//! The deployment's load balancer for real: HAProxy (Debian's package) with
//! `deploy/haproxy.cfg`, the compose file's configuration, in front of two server processes
//! on one PostgreSQL. A WebSocket client (the crate's own, which resumes by `seq`) connected
//! through it keeps receiving every entry, once and in order, while each node in turn is
//! stopped (SIGTERM) and started again, and webhooks keep flowing through it.

mod common;
use common::node::Node;
use common::{all_entries, open_store, Backend, TestDb};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use timebank_realtime::client::{Client, ClientConfig, ClientEvent};
use timebank_realtime::model::EntryKind;
use timebank_realtime::protocol::Filter;
use timebank_realtime::synth::{block_with_transfers, payload};

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/haproxy.cfg");
const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_haproxy(lb: u16, a: u16, b: u16) -> Haproxy {
    let child = Command::new("haproxy")
        .args(["-db", "-f", CONFIG])
        .env("LB_BIND", format!("127.0.0.1:{lb}"))
        .env("NODE_A", format!("127.0.0.1:{a}"))
        .env("NODE_B", format!("127.0.0.1:{b}"))
        // Nothing to resolve: the servers are addresses.
        .env("DNS_SERVER", format!("127.0.0.1:{}", free_port()))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("haproxy runs (Debian: apt-get install haproxy; .ci/run installs it)");
    Haproxy(child)
}

async fn start_node(db: &TestDb, port: u16) -> Node {
    let bind = format!("127.0.0.1:{port}");
    Node::start(&db.url, &[("BIND_ADDR", bind.as_str()), ("SHUTDOWN_DEADLINE_SECS", "5")]).await
}

/// Posts block `h` through the load balancer until it is stored (a node that is stopping
/// refuses it, as Chainhook would see, and Chainhook would resend it).
async fn deliver(client: &reqwest::Client, lb: u16, h: i64) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let res = client
            .post(format!("http://127.0.0.1:{lb}/api/webhooks/chainhook"))
            .header("authorization", format!("Bearer {}", common::SECRET))
            .header("content-type", "application/json")
            .body(payload(vec![block_with_transfers(h, 0, 0, 2)], vec![]).to_string())
            .send()
            .await;
        if matches!(&res, Ok(r) if r.status() == 200) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "block {h} never stored: {res:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until HAProxy's health checks count both nodes up (`/lb/nodes-up`, answered by
/// HAProxy itself).
async fn both_up(lb_client: &reqwest::Client, lb: u16) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let up = match lb_client.get(format!("http://127.0.0.1:{lb}/lb/nodes-up")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if up.trim() == "2" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "both nodes up behind the load balancer ({up:?})");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[actix_web::test]
async fn a_client_behind_haproxy_keeps_receiving_across_node_restarts() {
    let db = TestDb::new(Backend::Postgres).await;
    let (pa, pb, lb) = (free_port(), free_port(), free_port());
    let mut a = start_node(&db, pa).await;
    let mut b = start_node(&db, pb).await;
    let _haproxy = start_haproxy(lb, pa, pb);
    let http = reqwest::Client::new();
    both_up(&http, lb).await;

    let mut client = Client::connect(&format!("ws://127.0.0.1:{lb}/ws"), ClientConfig::default()).expect("ws URL");
    client.subscribe("all", Filter::All, None);
    let mut received: Vec<i64> = Vec::new();
    let mut next_block = 1;
    // Waits for the subscription, then takes entries as they come.
    let mut subscribed = false;
    while !subscribed {
        match tokio::time::timeout(WAIT, client.next()).await.expect("client event in time") {
            Some(ClientEvent::CaughtUp { .. }) => subscribed = true,
            Some(ClientEvent::Event { seq, .. }) => received.push(seq),
            Some(_) => {}
            None => panic!("client gave up"),
        }
    }

    for round in 0..2 {
        for _ in 0..5 {
            deliver(&http, lb, next_block).await;
            next_block += 1;
        }
        // Stop one node (SIGTERM: its clients get resync + 1012 and move to the other),
        // deliver meanwhile, start it again on the same address.
        let node = if round == 0 { &mut a } else { &mut b };
        node.signal("TERM");
        assert!(node.wait_exit(WAIT).await.is_some_and(|s| s.success()), "graceful stop");
        for _ in 0..5 {
            deliver(&http, lb, next_block).await;
            next_block += 1;
        }
        *node = start_node(&db, if round == 0 { pa } else { pb }).await;
        both_up(&http, lb).await;
    }
    for _ in 0..5 {
        deliver(&http, lb, next_block).await;
        next_block += 1;
    }

    let store = open_store(&db.url).await;
    let expected: Vec<i64> = all_entries(&store)
        .await
        .iter()
        .filter(|e| e.kind == EntryKind::Event)
        .map(|e| e.seq)
        .collect();
    assert_eq!(expected.len(), 2 * (next_block as usize - 1));
    while received.len() < expected.len() {
        match tokio::time::timeout(WAIT, client.next()).await {
            Ok(Some(ClientEvent::Event { seq, .. })) => received.push(seq),
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => panic!("stalled after {} of {} entries: {received:?}", received.len(), expected.len()),
        }
    }
    assert_eq!(received, expected, "every entry once, in order, across both restarts");
}
