//! `bench`: durable ingest throughput, in events per second, on the backend of
//! `--database-url`.
//!
//! For each block size, a fresh store receives `--events` events as payloads of one block
//! each, built by [`crate::synth`]. The payloads are parsed first (timed on their own), then
//! pushed through the path the webhook uses — [`Supervisor`] → `EventStoreWriter` — with
//! `--concurrency` of them in flight so the writer can group-commit. An event counts once
//! the commit holding it has answered. `--http` POSTs the same bodies to the real webhook
//! over loopback instead, so parsing, HTTP and the actors are all inside the timing.

mod http;

use super::anyhow_like::Error;
use super::scratch::Scratch;
use crate::actors::{Ingest, Supervisor, WriterConfig};
use crate::chainhook::parse_payload;
use crate::config::{DatabaseArgs, ServerConfig};
use crate::startup::Application;
use crate::store::Store;
use crate::synth;
use actix::prelude::*;
use clap::Args;
use futures_util::{stream, StreamExt};
use serde::Serialize;
use std::time::{Duration, Instant};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Where to measure. `postgres://USER@HOST/DB`: each run gets a fresh database
    /// `timebank_bench_<random>` on that server (DB only serves to create and drop it).
    /// `sqlite://PATH`: fresh files in PATH's folder. Unset: fresh SQLite files in a temp folder.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Events per block; one run per size, each on a fresh store.
    #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
    pub block_sizes: Vec<usize>,
    /// Events of the synthetic blocks. `transfers`: STX transfers among 4 principals.
    /// `mixed`: 60% STX transfers, 20% FT transfers, 10% NFT mints, 10% print events, all
    /// in calls of one contract, among `--principals` principals (a busy dApp's shape: one
    /// address-index entry per principal per event, spread over many principals).
    #[arg(long, value_enum, default_value_t = Shape::Transfers)]
    pub shape: Shape,
    /// Distinct principals of `--shape mixed`.
    #[arg(long, default_value_t = 10_000)]
    pub principals: usize,
    /// Events ingested per run.
    #[arg(long, default_value_t = 200_000)]
    pub events: usize,
    /// Payloads in flight at once; the writer group-commits those that wait.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// The server's `ADDRESS_MERGE_ROWS` (unset: the backend's default).
    #[arg(long, env = "ADDRESS_MERGE_ROWS")]
    pub address_merge_rows: Option<u64>,
    /// Events per group commit (the server's `WRITER_MAX_BATCH_EVENTS`).
    #[arg(long, default_value_t = WriterConfig::default().max_batch_events)]
    pub max_batch_events: usize,
    /// POST the payloads to the real webhook over loopback (one keep-alive connection per
    /// payload in flight) instead of sending them to the supervisor.
    #[arg(long)]
    pub http: bool,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Keep each run's store (database or files) for inspection instead of removing it;
    /// its URL is logged as the run starts.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    Transfers,
    Mixed,
}

/// One run: one block size on one fresh store.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BenchResult {
    pub backend: &'static str,
    /// `actors` (supervisor → writer) or `http` (webhook over loopback).
    pub mode: &'static str,
    pub shape: Shape,
    pub block_size: usize,
    pub events: u64,
    pub payloads: u64,
    pub seconds: f64,
    pub events_per_sec: f64,
    pub payloads_per_sec: f64,
    /// Time spent in `parse_payload` (actors mode; in http mode parsing is inside `seconds`).
    pub parse_seconds: Option<f64>,
    pub parse_events_per_sec: Option<f64>,
}

pub async fn run(args: BenchArgs) -> super::anyhow_like::Result {
    if args.events == 0 || args.block_sizes.contains(&0) || args.concurrency == 0 {
        return Err("--events, --block-sizes and --concurrency must be positive".into());
    }
    if !args.json {
        println!(
            "{:<8} {:<6} {:<9} {:>6} {:>9} {:>9} {:>8} {:>11} {:>11} {:>13}",
            "backend", "mode", "shape", "block", "events", "payloads", "seconds", "events/s", "payloads/s", "parse ev/s"
        );
    }
    for &block_size in &args.block_sizes {
        let scratch = Scratch::create(args.database_url.as_deref()).await?;
        tracing::info!(block_size, events = args.events, store = %scratch.url, "bench run starting");
        let result = if args.http {
            run_http(&args, block_size, &scratch).await
        } else {
            run_actors(&args, block_size, &scratch).await
        };
        if args.keep {
            tracing::info!(store = %scratch.url, "store kept");
        } else {
            scratch.remove().await;
        }
        let result = result?;
        if args.json {
            println!("{}", serde_json::to_string(&result)?);
        } else {
            println!(
                "{:<8} {:<6} {:<9} {:>6} {:>9} {:>9} {:>8.2} {:>11.0} {:>11.1} {:>13}",
                result.backend,
                result.mode,
                format!("{:?}", result.shape).to_lowercase(),
                result.block_size,
                result.events,
                result.payloads,
                result.seconds,
                result.events_per_sec,
                result.payloads_per_sec,
                result.parse_events_per_sec.map_or("-".to_string(), |r| format!("{r:.0}")),
            );
        }
    }
    Ok(())
}

/// The JSON bodies of one run: `events` events in blocks of `block_size`, heights 1, 2, …
fn bodies(events: usize, block_size: usize, shape: Shape, principals: usize) -> impl Iterator<Item = (usize, String)> {
    (0..events.div_ceil(block_size)).map(move |i| {
        let size = block_size.min(events - i * block_size);
        let height = i as i64 + 1;
        let block = match shape {
            Shape::Transfers => synth::block_with_transfers(height, 0, 0, size),
            Shape::Mixed => synth::block_mixed(height, size, principals),
        };
        (size, synth::payload(vec![block], vec![]).to_string())
    })
}

async fn run_actors(args: &BenchArgs, block_size: usize, scratch: &Scratch) -> Result<BenchResult, Error> {
    let mut parse_time = Duration::ZERO;
    let mut payloads = Vec::new();
    for (_, body) in bodies(args.events, block_size, args.shape, args.principals) {
        let started = Instant::now();
        let payload = parse_payload(body.as_bytes())?;
        parse_time += started.elapsed();
        payloads.push(payload);
    }
    let n_payloads = payloads.len() as u64;
    let mut database = DatabaseArgs::new(&scratch.url);
    database.address_merge_rows = args.address_merge_rows;
    let store = Store::open(database.store_config()?).await?;
    let writer = WriterConfig { max_batch_events: args.max_batch_events.max(1), ..WriterConfig::default() };
    let supervisor = Supervisor::new(store, writer, 0).start();

    let started = Instant::now();
    let mut replies = stream::iter(payloads)
        .map(|payload| supervisor.send(Ingest { payload }))
        .buffered(args.concurrency);
    let (mut stored, mut head) = (0, 0);
    while let Some(reply) = replies.next().await {
        let report = reply??;
        stored += report.events;
        head = head.max(report.head_seq);
    }
    let seconds = started.elapsed().as_secs_f64();
    check(stored, args.events)?;
    // One block marker per payload besides the events.
    if head != (stored + n_payloads) as i64 {
        return Err(format!("head seq {head}, expected {}", stored + n_payloads).into());
    }
    Ok(result(scratch, Run { mode: "actors", shape: args.shape, block_size }, stored, n_payloads, seconds, Some(parse_time.as_secs_f64())))
}

async fn run_http(args: &BenchArgs, block_size: usize, scratch: &Scratch) -> Result<BenchResult, Error> {
    let bodies: Vec<String> =
        bodies(args.events, block_size, args.shape, args.principals).map(|(_, body)| body).collect();
    let secret = uuid::Uuid::new_v4().simple().to_string();
    let mut config = ServerConfig::new(&scratch.url);
    config.chainhook_webhook_secret = Some(secret.clone());
    config.writer_max_batch_events = args.max_batch_events;
    config.database.address_merge_rows = args.address_merge_rows;
    config.writer_max_pending = config.writer_max_pending.max(args.concurrency);
    let app = Application::build(config).await?;
    let addr = std::net::SocketAddr::new(app.host().parse()?, app.port());
    let handle = app.handle();
    let server = actix_web::rt::spawn(app.run_until_stopped());

    let started = Instant::now();
    let posted = http::post_all(addr, &secret, &bodies, args.concurrency).await;
    let seconds = started.elapsed().as_secs_f64();
    handle.stop(true).await;
    let _ = server.await;
    let stored = posted?;
    check(stored, args.events)?;
    Ok(result(scratch, Run { mode: "http", shape: args.shape, block_size }, stored, bodies.len() as u64, seconds, None))
}

fn check(stored: u64, expected: usize) -> Result<(), Error> {
    if stored != expected as u64 {
        return Err(format!("stored {stored} events, expected {expected}").into());
    }
    Ok(())
}

/// Which run a result belongs to.
struct Run {
    mode: &'static str,
    shape: Shape,
    block_size: usize,
}

fn result(
    scratch: &Scratch,
    Run { mode, shape, block_size }: Run,
    events: u64,
    payloads: u64,
    seconds: f64,
    parse_seconds: Option<f64>,
) -> BenchResult {
    BenchResult {
        backend: scratch.backend(),
        mode,
        shape,
        block_size,
        events,
        payloads,
        seconds,
        events_per_sec: events as f64 / seconds,
        payloads_per_sec: payloads as f64 / seconds,
        parse_seconds,
        parse_events_per_sec: parse_seconds.map(|s| events as f64 / s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_cover_every_event_once() {
        let sizes: Vec<usize> = bodies(25, 10, Shape::Transfers, 1).map(|(n, _)| n).collect();
        assert_eq!(sizes, vec![10, 10, 5]);
    }
}
