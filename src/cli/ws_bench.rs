//! `bench-ws`: WebSocket fan-out under load, over loopback.
//!
//! Starts a server as a child process on a fresh store (or targets `--url`), opens N subscribers, ingests
//! synthetic print events over the webhook at `--rate` events/s for `--seconds`, and
//! reports delivered events/s, end-to-end latency percentiles and the server's RSS.
//! Each payload's print values carry the wall-clock time (µs) just before the webhook
//! POST is sent, so a latency is "POST sent → frame received": it includes the durable
//! commit, a stricter measure than "webhook accepted → received".
//!
//! `--idle N` measures instead the server RSS per idle connection (connected, one
//! subscription, nothing flowing). `--stalled K` adds K subscribers that never read
//! (small receive buffers): the server must cut them off with `resync` while the others
//! keep receiving, and its RSS must stay bounded; both are reported.
//!
//! `--nodes 2` (or `--url` with `--subscribe-url`) runs the subscribers on a second node of
//! the same PostgreSQL database while the webhooks go to the first: every delivery then
//! crosses nodes (commit on A, `NOTIFY`, read by `seq` on B, fan-out on B).
//!
//! Every loop here is bounded in count and time; connections go to loopback only, from
//! 127.0.0.2, 127.0.0.3, … (a new source address every [`PER_SOURCE_ADDR`] connections)
//! so that more connections than one address has ephemeral ports can be opened.

pub mod ops;
mod server;

use super::anyhow_like::{Error, Result};
use server::{raise_nofile, server_rss_fn, Nodes, Server};
use crate::synth;
use clap::Args;
use futures_util::{stream, SinkExt, StreamExt};
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Connections per loopback source address: below the ~28k ephemeral ports of one.
const PER_SOURCE_ADDR: usize = 20_000;
/// Connections being opened at once.
const OPEN_CONCURRENCY: usize = 256;
/// Latency histogram: 100 µs buckets up to 10 s.
const BUCKET_US: u64 = 100;
const BUCKETS: usize = 100_000;
/// How long to wait, after the last POST, for deliveries to finish.
const DRAIN: Duration = Duration::from_secs(10);
const SECRET: &str = "bench-ws-secret";

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Debug, Args)]
pub struct WsBenchArgs {
    /// A running server's base URL (`http://127.0.0.1:3000`) that takes the webhooks (and
    /// the subscribers, unless `--subscribe-url`); default: start one.
    #[arg(long)]
    pub url: Option<String>,
    /// With `--url`: the base URL of another node on the same database, where the
    /// subscribers connect instead.
    #[arg(long, requires = "url")]
    pub subscribe_url: Option<String>,
    /// The webhook secret of the `--url` server.
    #[arg(long, env = "CHAINHOOK_WEBHOOK_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Process id of the server the subscribers connect to (`--subscribe-url`, else
    /// `--url`), to read its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Where started servers keep the log: `postgres://USER@HOST/DB` gets a fresh database
    /// `timebank_bench_<random>` on that server for the run (DB only serves to create and
    /// drop it), `sqlite://PATH` fresh files in PATH's folder; default: SQLite in a temp folder.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Servers to start: 1, or 2 nodes on one PostgreSQL database (needs a PostgreSQL
    /// `--database-url`), webhooks to the first and subscribers on the second.
    #[arg(long, default_value_t = 1, conflicts_with = "url")]
    pub nodes: usize,
    /// Subscribers (one connection and one subscription each).
    #[arg(long, default_value_t = 1_000)]
    pub subscribers: usize,
    /// `all`: every subscriber takes `all`; `mix`: a quarter each of all, contract,
    /// event-type and user (one of 3 addresses, so each user subscription gets 1/3);
    /// `sparse`: every subscriber takes `user` on one of 20 principals, and each payload
    /// names one of them, so each subscriber gets 1/20 of the events (10,000 subscribers
    /// at 1,000 events/s: 500,000 deliveries/s).
    #[arg(long, default_value = "all")]
    pub filter: String,
    /// Ingested events per second.
    #[arg(long, default_value_t = 1_000)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Events per webhook payload (one block).
    #[arg(long, default_value_t = 50)]
    pub batch: usize,
    /// Measure RSS per idle connection with this many connections instead.
    #[arg(long, default_value_t = 0)]
    pub idle: usize,
    /// With `--idle`: connections only, no subscription (to tell the HTTP/WebSocket
    /// layer's share from the subscription's).
    #[arg(long)]
    pub bare: bool,
    /// Subscribers that never read.
    #[arg(long, default_value_t = 0)]
    pub stalled: usize,
    /// Worker threads of the bench's own runtime.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
}

pub async fn run(args: WsBenchArgs) -> Result {
    let threads = args.threads.max(1);
    let joined = tokio::task::spawn_blocking(move || -> Result {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()?;
        rt.block_on(bench(args))
    })
    .await;
    joined.map_err(|e| -> Error { e.to_string().into() })?
}

async fn bench(args: WsBenchArgs) -> Result {
    let nofile = raise_nofile();
    println!("RLIMIT_NOFILE {nofile}");
    let nodes = Nodes::start(&args).await?;
    let result = if args.idle > 0 { idle(nodes.subscribers(), args.idle, args.bare).await } else { load(&nodes, &args).await };
    nodes.stop().await;
    result
}

fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

fn filter_for(mode: &str, i: usize) -> serde_json::Value {
    match (mode, i % 4) {
        ("mix", 1) => json!({"type": "contract", "contractId": synth::CONTRACT}),
        ("mix", 2) => json!({"type": "event-type", "eventType": "print_event"}),
        ("bare", _) => serde_json::Value::Null,
        ("mix", 3) => json!({"type": "user", "address": user_of((i / 4 % 3) as i64)}),
        ("sparse", _) => json!({"type": "user", "address": sparse_user(i as i64)}),
        _ => json!({"type": "all"}),
    }
}

/// Connection `i`: TCP from its loopback source address, upgrade, one subscription,
/// read up to `caught-up`.
async fn open(server: SocketAddr, i: usize, filter: serde_json::Value, recv_buffer: Option<u32>) -> std::result::Result<Ws, Error> {
    let source = Ipv4Addr::new(127, 0, 0, 2 + (i / PER_SOURCE_ADDR) as u8);
    let socket = TcpSocket::new_v4()?;
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    socket.bind(SocketAddr::from((source, 0)))?;
    let tcp = tokio::time::timeout(Duration::from_secs(30), socket.connect(server)).await??;
    let url = format!("ws://{server}/ws");
    let (mut ws, _) = tokio_tungstenite::client_async_with_config(url, MaybeTlsStream::Plain(tcp), Some(crate::client::ws_config())).await?;
    if filter.is_null() {
        return Ok(ws);
    }
    ws.send(Message::text(json!({"type": "subscribe", "id": "b", "filter": filter}).to_string())).await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await? {
            Some(Ok(Message::Text(t))) if t.as_str().contains("\"caught-up\"") => return Ok(ws),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => return Err("closed while subscribing".into()),
        }
    }
}

async fn open_many(server: SocketAddr, n: usize, offset: usize, mode: &str, recv_buffer: Option<u32>) -> std::result::Result<Vec<Ws>, Error> {
    let started = Instant::now();
    let mode = mode.to_string();
    let opened: Vec<_> = stream::iter(0..n)
        .map(|i| open(server, offset + i, filter_for(&mode, i), recv_buffer))
        .buffer_unordered(OPEN_CONCURRENCY)
        .collect()
        .await;
    let opened = opened.into_iter().collect::<std::result::Result<Vec<_>, _>>()?;
    println!("opened {n} connections in {:.1} s", started.elapsed().as_secs_f64());
    Ok(opened)
}

async fn idle(server: &Server, n: usize, bare: bool) -> Result {
    let addr = server.addr()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = server.rss_kib().unwrap_or(0);
    let conns = open_many(addr, n, 0, if bare { "bare" } else { "all" }, None).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib().unwrap_or(0);
    let per = (after.saturating_sub(before)) as f64 * 1024.0 / n as f64;
    println!("idle connections: {n}{}", if bare { " (no subscription)" } else { " (one `all` subscription each)" });
    println!("server RSS: {before} KiB before, {after} KiB after");
    println!("server RSS per idle connection: {:.0} bytes ({:.2} KiB)", per, per / 1024.0);
    drop(conns);
    Ok(())
}

struct Stats {
    delivered: AtomicU64,
    /// Reading subscribers the server cut off anyway (they fell behind).
    resynced: AtomicU64,
    max_us: AtomicU64,
    last_us: AtomicU64,
    buckets: Vec<AtomicU64>,
}

impl Stats {
    fn record(&self, latency_us: u64, now: u64) {
        self.delivered.fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(latency_us, Ordering::Relaxed);
        self.last_us.fetch_max(now, Ordering::Relaxed);
        let b = ((latency_us / BUCKET_US) as usize).min(BUCKETS - 1);
        self.buckets[b].fetch_add(1, Ordering::Relaxed);
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        let rank = ((total as f64) * p).ceil() as u64;
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank.max(1) {
                return ((i as u64 + 1) * BUCKET_US) as f64 / 1000.0;
            }
        }
        0.0
    }
}

/// The send time stamped in an event frame's print value.
fn stamp(text: &str) -> Option<u64> {
    const KEY: &str = "\"bench_t\":";
    let at = text.find(KEY)? + KEY.len();
    let digits: &str = text[at..].trim_start_matches([' ', '"']);
    let end = digits.find(|c: char| !c.is_ascii_digit()).unwrap_or(digits.len());
    digits[..end].parse().ok()
}

async fn read_deliveries(mut ws: Ws, stats: Arc<Stats>, stop: Arc<AtomicU64>) {
    while stop.load(Ordering::Relaxed) == 0 {
        let next = tokio::time::timeout(Duration::from_millis(500), ws.next()).await;
        match next {
            Ok(Some(Ok(Message::Text(t)))) => {
                if let Some(sent) = stamp(t.as_str()) {
                    let now = now_us();
                    stats.record(now.saturating_sub(sent), now);
                } else if t.as_str().contains("\"type\":\"resync\"") {
                    stats.resynced.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(Some(Err(_))) | Ok(None) => return,
        }
    }
}

/// A minimal HTTP/1.1 keep-alive client for the webhook (loopback only, no dependency).
struct Webhook {
    stream: BufReader<TcpStream>,
    host: String,
    secret: String,
}

impl Webhook {
    async fn connect(server: &Server) -> std::result::Result<Webhook, Error> {
        let stream = TcpStream::connect(server.addr()?).await?;
        stream.set_nodelay(true)?;
        Ok(Webhook { stream: BufReader::new(stream), host: server.addr()?.to_string(), secret: server.secret().to_string() })
    }

    async fn post(&mut self, body: &[u8]) -> std::result::Result<u16, Error> {
        let head = format!(
            "POST /api/webhooks/chainhook HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            self.secret,
            body.len()
        );
        let s = self.stream.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        let mut line = String::new();
        self.stream.read_line(&mut line).await?;
        let status: u16 = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("bad status line")?;
        let mut length = 0usize;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err("connection closed".into());
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.stream.read_exact(&mut body).await?;
        Ok(status)
    }
}

/// The user a payload's print values name: one of 3 (the sender, address 0, is in all).
fn user_of(height: i64) -> &'static str {
    synth::address(height as usize % 3 + 1)
}

/// Principals of the `sparse` mode.
const SPARSE_USERS: i64 = 20;

/// The `sparse` principal of payload (or subscriber) `n`: testnet, hash160 of `n`.
fn sparse_user(n: i64) -> String {
    let mut hash = [0u8; 20];
    hash[12..].copy_from_slice(&(n.rem_euclid(SPARSE_USERS) + 1).to_be_bytes());
    crate::chainhook::principal::encode_address(26, &hash).unwrap_or_default()
}

fn bench_payload(height: i64, events: usize, sent_us: u64, mode: &str) -> Vec<u8> {
    let user = if mode == "sparse" { sparse_user(height) } else { user_of(height).to_string() };
    let prints = (0..events)
        .map(|_| synth::print_event(synth::CONTRACT, json!({"bench_t": sent_us, "user": user})))
        .collect::<Vec<_>>();
    let tx = synth::transaction(height, 0, 0, synth::address(0), Some(synth::CONTRACT), prints);
    synth::payload(vec![synth::block(height, 0, 0, vec![tx])], vec![]).to_string().into_bytes()
}

async fn load(nodes: &Nodes, args: &WsBenchArgs) -> Result {
    let server = nodes.subscribers();
    let addr = server.addr()?;
    let rss_start = server.rss_kib().unwrap_or(0);
    let conns = open_many(addr, args.subscribers, 0, &args.filter, None).await?;
    let stalled = open_many(addr, args.stalled, args.subscribers, "all", Some(16 * 1024)).await?;
    let rss_connected = server.rss_kib().unwrap_or(0);
    let stats = Arc::new(Stats {
        delivered: AtomicU64::new(0),
        resynced: AtomicU64::new(0),
        max_us: AtomicU64::new(0),
        last_us: AtomicU64::new(0),
        buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
    });
    let stop = Arc::new(AtomicU64::new(0));
    let readers: Vec<_> = conns.into_iter().map(|ws| tokio::spawn(read_deliveries(ws, stats.clone(), stop.clone()))).collect();

    // RSS sampled during the run, to show it stays bounded.
    let rss_peak = Arc::new(AtomicU64::new(rss_connected));
    let sampler = {
        let (peak, stop) = (rss_peak.clone(), stop.clone());
        let sample = server_rss_fn(server);
        tokio::spawn(async move {
            while stop.load(Ordering::Relaxed) == 0 {
                if let Some(kib) = sample() {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let mut webhook = Webhook::connect(nodes.webhook()).await?;
    let batch = args.batch.max(1);
    let payloads = (args.rate.max(1) * args.seconds).div_ceil(batch as u64);
    let interval = Duration::from_secs_f64(batch as f64 / args.rate.max(1) as f64);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let start_us = now_us();
    let mut ingested = 0u64;
    for n in 0..payloads {
        ticker.tick().await;
        let sent = now_us();
        let status = webhook.post(&bench_payload(n as i64 + 1, batch, sent, &args.filter)).await?;
        if status != 200 {
            return Err(format!("webhook answered {status}").into());
        }
        ingested += batch as u64;
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let expected: u64 = (0..args.subscribers)
        .map(|i| match (args.filter.as_str(), i % 4) {
        ("mix", 3) => (1..=payloads as i64).filter(|h| user_of(*h) == user_of((i / 4 % 3) as i64)).count() as u64 * batch as u64,
            ("sparse", _) => {
                (1..=payloads as i64).filter(|h| (h - i as i64).rem_euclid(SPARSE_USERS) == 0).count() as u64 * batch as u64
            }
            _ => ingested,
        })
        .sum();
    let drain_deadline = Instant::now() + DRAIN;
    while stats.delivered.load(Ordering::Relaxed) < expected && Instant::now() < drain_deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(1, Ordering::Relaxed);
    let _ = sampler.await;
    for r in readers {
        let _ = r.await;
    }
    let rss_end = server.rss_kib().unwrap_or(0);
    let delivered = stats.delivered.load(Ordering::Relaxed);
    let span_s = (stats.last_us.load(Ordering::Relaxed).saturating_sub(start_us)) as f64 / 1e6;

    println!("subscribers: {} (filter {}), stalled: {}", args.subscribers, args.filter, args.stalled);
    println!("ingested: {ingested} events in {payloads} payloads over {ingest_secs:.1} s ({:.0} events/s)", ingested as f64 / ingest_secs);
    println!(
        "delivered: {delivered} of {expected} expected, {:.0} events/s; reading subscribers cut off with resync: {}",
        delivered as f64 / span_s.max(1e-3),
        stats.resynced.load(Ordering::Relaxed)
    );
    println!(
        "latency (POST sent → received): p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        stats.percentile_ms(0.50),
        stats.percentile_ms(0.90),
        stats.percentile_ms(0.99),
        stats.max_us.load(Ordering::Relaxed) as f64 / 1000.0
    );
    let conns_total = (args.subscribers + args.stalled).max(1) as f64;
    println!(
        "server RSS: {rss_start} KiB at start, {rss_connected} KiB connected ({:.1} KiB/connection), peak {} KiB, end {rss_end} KiB",
        rss_connected.saturating_sub(rss_start) as f64 / conns_total,
        rss_peak.load(Ordering::Relaxed)
    );
    if !stalled.is_empty() {
        let resynced = count_resyncs(stalled).await;
        println!("stalled subscribers cut off with resync: {resynced} of {}", args.stalled);
    }
    Ok(())
}

/// Reads what the stalled subscribers were sent; how many got a `resync`.
async fn count_resyncs(stalled: Vec<Ws>) -> usize {
    let counts: Vec<bool> = stream::iter(stalled)
        .map(|mut ws| async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while let Ok(Some(Ok(m))) = tokio::time::timeout_at(deadline, ws.next()).await {
                if let Message::Text(t) = m {
                    if t.as_str().contains("\"type\":\"resync\"") {
                        return true;
                    }
                }
            }
            false
        })
        .buffer_unordered(64)
        .collect()
        .await;
    counts.into_iter().filter(|b| *b).count()
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_stamp() {
        let frame = r#"{"sub":"b","type":"event","event":{"seq":3,"data":{"value":{"bench_t":1700000000123456,"user":"ST1"}}}}"#;
        assert_eq!(super::stamp(frame), Some(1_700_000_000_123_456));
        assert_eq!(super::stamp(r#"{"type":"caught-up"}"#), None);
    }
}
