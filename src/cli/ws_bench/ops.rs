//! `bench-ops`: optimistic ops under load, over loopback (PROTOCOL §4).
//!
//! Starts a server as a child process on a fresh store (SQLite in a temp folder, or a new
//! database on the `--database-url` PostgreSQL server) with a
//! client-token secret, opens `--connections` WebSocket connections, each signed in as its
//! own address with an `ops` subscription, and measures two things:
//!
//! 1. **Confirmation latency**: `--blocks` blocks of `--per-block` ops each. The ops are sent
//!    first, each with the `txHash` of a transaction its address sends in that block; then
//!    each block is posted to the webhook, and a latency is "POST sent → `confirmed`
//!    op-status received by the op's connection" (it includes the durable commit of the
//!    block and its decisions).
//! 2. **Throughput**: for `--seconds`, every connection keeps `--window` ops in flight (each
//!    on its own entity) and counts `op-ack`s, which the server sends once the op is
//!    committed: accepted ops per second, durably, and the ack latency.
//!
//! Runs the confirmation phase first, on a log without thousands of open ops. The started
//! server's per-connection op rate and per-address open-op limits are raised so that they,
//! not the server's capacity, do not set the figure.

use super::server::{raise_nofile, Server};
use crate::cli::scratch::Scratch;
use super::{now_us, Stats, Webhook, BUCKETS};
use crate::cli::anyhow_like::{Error, Result};
use crate::synth;
use clap::Args;
use futures_util::{stream, SinkExt, StreamExt};
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const JWT_SECRET: &str = "bench-ops-client-token-secret-of-32-bytes";
/// Connections being opened at once.
const OPEN_CONCURRENCY: usize = 128;
const WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Args)]
pub struct OpsBenchArgs {
    /// Database of the started server (default: SQLite in a temp folder).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Signed-in connections, one address each.
    #[arg(long, default_value_t = 1_000)]
    pub connections: usize,
    /// Ops in flight per connection in the throughput phase.
    #[arg(long, default_value_t = 4)]
    pub window: usize,
    /// Length of the throughput phase.
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Blocks posted in the confirmation phase.
    #[arg(long, default_value_t = 20)]
    pub blocks: i64,
    /// Ops confirmed by each block (one transaction each).
    #[arg(long, default_value_t = 50)]
    pub per_block: usize,
}

type Ws = super::Ws;

fn token(address: &str) -> std::result::Result<String, Error> {
    let exp = crate::auth::unix_now() + 3_600;
    let claims = json!({"sub": address, "exp": exp});
    let key = jsonwebtoken::EncodingKey::from_secret(JWT_SECRET.as_bytes())?;
    Ok(jsonwebtoken::encode(&jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256), &claims, &key)?)
}

/// Connection `i`: signed in as `synth::principal(i)`, subscribed to its ops, live.
async fn open(addr: std::net::SocketAddr, i: usize) -> std::result::Result<Ws, Error> {
    let url = format!("ws://{addr}/ws?token={}", token(&synth::principal(i))?);
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, tokio_tungstenite::MaybeTlsStream::Plain(tcp), Some(crate::client::ws_config())).await?;
    ws.send(Message::text(json!({"type": "subscribe", "id": "o", "filter": {"type": "ops"}}).to_string())).await?;
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await? {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"subscribed\"") => return Ok(ws),
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"error\"") => return Err(format!("subscribing: {}", t.as_str()).into()),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed while subscribing".into()),
        }
    }
}

fn op_frame(op_id: &str, entity: &str, tx_hash: Option<&str>) -> String {
    let mut op = json!({"type": "op", "opId": op_id, "kind": "bench", "entity": entity, "data": {"n": 1}});
    if let Some(h) = tx_hash {
        op["txHash"] = json!(h);
    }
    op.to_string()
}

fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let pattern = format!("\"{key}\":\"");
    let at = text.find(&pattern)? + pattern.len();
    let rest = &text[at..];
    Some(&rest[..rest.find('"')?])
}

pub async fn run(args: OpsBenchArgs) -> Result {
    let limit = raise_nofile();
    if (limit as usize) < args.connections * 2 + 64 {
        return Err(format!("open-files limit {limit} is too low for {} connections", args.connections).into());
    }
    let env = [
        ("AUTH_JWT_SECRET", JWT_SECRET.to_string()),
        ("WS_MAX_OPS_PER_SEC", "1000000".to_string()),
        ("OP_MAX_OPEN_PER_ADDRESS", "1000000".to_string()),
    ];
    let scratch = Scratch::create(args.database_url.as_deref()).await?;
    let server = match Server::start_with(&scratch.url, &env) {
        Ok(server) => server,
        Err(e) => {
            scratch.remove().await;
            return Err(e);
        }
    };
    let result = bench(&server, &args).await;
    server.stop();
    scratch.remove().await;
    result
}

async fn bench(server: &Server, args: &OpsBenchArgs) -> Result {
    let addr = server.addr()?;
    let started = Instant::now();
    let opened: Vec<_> = stream::iter(0..args.connections).map(|i| open(addr, i)).buffered(OPEN_CONCURRENCY).collect().await;
    let mut conns = opened.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
    println!("opened {} signed-in connections in {:.1} s", conns.len(), started.elapsed().as_secs_f64());
    confirmations(server, &mut conns, args).await?;
    throughput(conns, args).await
}

/// Phase 1: ops with a `txHash`, then the blocks that confirm them.
async fn confirmations(server: &Server, conns: &mut [Ws], args: &OpsBenchArgs) -> Result {
    let n = conns.len();
    // The op of (block h, transaction j) goes on connection (h·K + j) mod n.
    let mut by_conn: Vec<Vec<(String, String)>> = vec![Vec::new(); n];
    for h in 1..=args.blocks {
        for j in 0..args.per_block {
            let c = (h as usize * args.per_block + j) % n;
            by_conn[c].push((format!("c{h}-{j}"), synth::tx_hash(h, 0, j)));
        }
    }
    let sends = conns.iter_mut().zip(&by_conn).map(|(ws, ops)| async move {
        for (op_id, tx) in ops {
            ws.send(Message::text(op_frame(op_id, &format!("bench:{op_id}"), Some(tx)))).await?;
        }
        let mut acked = 0;
        while acked < ops.len() {
            match tokio::time::timeout(WAIT, ws.next()).await? {
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"op-ack\"") => acked += 1,
                Some(Ok(Message::Text(t))) if t.as_str().contains("\"error\"") => return Err(Error::from(format!("op refused: {}", t.as_str()))),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(e.into()),
                None => return Err("closed".into()),
            }
        }
        Ok::<(), Error>(())
    });
    futures_util::future::try_join_all(sends).await?;

    let stats = Arc::new(new_stats());
    let posted: Arc<std::sync::Mutex<HashMap<i64, u64>>> = Arc::default();
    let expected = args.blocks as usize * args.per_block;
    let confirmed = Arc::new(AtomicU64::new(0));
    let readers = conns.iter_mut().map(|ws| {
        let (stats, posted, confirmed) = (stats.clone(), posted.clone(), confirmed.clone());
        async move {
            while (confirmed.load(Ordering::Relaxed) as usize) < expected {
                let Ok(next) = tokio::time::timeout(Duration::from_millis(200), ws.next()).await else { continue };
                let Some(Ok(Message::Text(t))) = next else { return };
                let t = t.as_str();
                if field(t, "status") != Some("confirmed") {
                    continue;
                }
                let height = field(t, "opId").and_then(|id| id.strip_prefix('c')?.split('-').next()?.parse::<i64>().ok());
                let sent = height.and_then(|h| posted.lock().ok()?.get(&h).copied());
                if let Some(sent) = sent {
                    let now = now_us();
                    stats.record(now.saturating_sub(sent), now);
                    confirmed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    let readers = futures_util::future::join_all(readers);
    let mut webhook = Webhook::connect(server).await?;
    let poster = async {
        for h in 1..=args.blocks {
            let txs = (0..args.per_block)
                .map(|j| {
                    let sender = synth::principal((h as usize * args.per_block + j) % n);
                    synth::transaction(h, 0, j, &sender, None, vec![synth::stx_transfer(&sender, synth::address(0), 1)])
                })
                .collect();
            let body = synth::payload(vec![synth::block(h, 0, 0, txs)], vec![]).to_string();
            posted.lock().map_err(|_| "poisoned")?.insert(h, now_us());
            let status = webhook.post(body.as_bytes()).await?;
            if status != 200 {
                return Err(Error::from(format!("block {h}: webhook answered {status}")));
            }
            // One block at a time, as a chain makes them: the next once this one is in.
            let deadline = Instant::now() + WAIT;
            while (confirmed.load(Ordering::Relaxed) as usize) < h as usize * args.per_block && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Ok::<(), Error>(())
    };
    let (posted_ok, _) = tokio::join!(poster, readers);
    posted_ok?;
    let got = confirmed.load(Ordering::Relaxed);
    println!(
        "confirmation: {} blocks x {} ops; {got}/{expected} confirmed; webhook POST -> confirmed on the client: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        args.blocks,
        args.per_block,
        stats.percentile_ms(0.50),
        stats.percentile_ms(0.99),
        stats.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    );
    if got as usize != expected {
        return Err(format!("{} ops were never confirmed", expected - got as usize).into());
    }
    Ok(())
}

/// Phase 2: every connection keeps `window` ops in flight for `seconds`.
async fn throughput(conns: Vec<Ws>, args: &OpsBenchArgs) -> Result {
    let stats = Arc::new(new_stats());
    let refused = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();
    let tasks = conns.into_iter().enumerate().map(|(c, mut ws)| {
        let (stats, refused, window) = (stats.clone(), refused.clone(), args.window.max(1));
        async move {
            let mut sent_at: HashMap<String, u64> = HashMap::new();
            let mut next = 0u64;
            loop {
                while sent_at.len() < window && Instant::now() < deadline {
                    let op_id = format!("t{c}-{next}");
                    next += 1;
                    if ws.send(Message::text(op_frame(&op_id, &format!("bench:{op_id}"), None))).await.is_err() {
                        return;
                    }
                    sent_at.insert(op_id, now_us());
                }
                if sent_at.is_empty() {
                    return;
                }
                let Ok(Some(Ok(Message::Text(t)))) = tokio::time::timeout(WAIT, ws.next()).await else { return };
                let t = t.as_str();
                let Some(op_id) = field(t, "opId") else { continue };
                if t.starts_with("{\"type\":\"op-ack\"") || t.contains("\"type\":\"op-ack\"") {
                    if let Some(sent) = sent_at.remove(op_id) {
                        let now = now_us();
                        stats.record(now.saturating_sub(sent), now);
                    }
                } else if t.contains("\"type\":\"error\"") && sent_at.remove(op_id).is_some() {
                    refused.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    });
    futures_util::future::join_all(tasks).await;
    let elapsed = started.elapsed().as_secs_f64();
    let acked = stats.delivered.load(Ordering::Relaxed);
    println!(
        "throughput: {} connections, window {}, {:.1} s: {acked} ops acknowledged ({:.0} ops/s), {} refused; op -> op-ack: p50 {:.1} ms, p99 {:.1} ms",
        args.connections,
        args.window,
        elapsed,
        acked as f64 / elapsed,
        refused.load(Ordering::Relaxed),
        stats.percentile_ms(0.50),
        stats.percentile_ms(0.99)
    );
    Ok(())
}

fn new_stats() -> Stats {
    Stats {
        delivered: AtomicU64::new(0),
        resynced: AtomicU64::new(0),
        max_us: AtomicU64::new(0),
        last_us: AtomicU64::new(0),
        buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
    }
}
