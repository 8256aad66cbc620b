//! `replay`: rebuilds projections from the log into fresh generations, swapped in
//! atomically while a running server keeps serving (and updating) the old ones; and
//! `bench-replay`: fills a fresh store with synthetic events and times a replay.

use super::anyhow_like::Result;
use crate::config::DatabaseArgs;
use crate::model::{Block, EventType, NewEvent, Payload, TxSummary};
use crate::projections::db::Db;
use crate::projections::{builtin, Engine, EngineSettings, EntityMapping, RebuildReport, BUILTIN};
use crate::store::{DatabaseUrl, Store};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::json;
use std::path::PathBuf;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Projection to rebuild (`accounts`, `contracts`, `entities`), or `all`.
    #[arg(long, default_value = "all")]
    pub projection: String,
    /// Start from the newest snapshot at or below this `seq` instead of from zero.
    #[arg(long)]
    pub from_seq: Option<i64>,
    /// Keep a snapshot every N `seq`s, for later `--from-seq` replays (0: none).
    #[arg(long, default_value_t = 0)]
    pub snapshot_every: i64,
    /// Snapshots kept per projection.
    #[arg(long, default_value_t = 4)]
    pub keep_snapshots: usize,
    /// Entity mapping file (default: the built-in mapping). Must match the server's.
    #[arg(long, env = "ENTITY_MAPPING_FILE")]
    pub entity_mapping: Option<PathBuf>,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

impl ReplayArgs {
    pub fn new(database_url: impl Into<String>) -> ReplayArgs {
        ReplayArgs {
            database: DatabaseArgs::new(database_url),
            projection: "all".into(),
            from_seq: None,
            snapshot_every: 0,
            keep_snapshots: 4,
            entity_mapping: None,
            quiet: true,
        }
    }
}

pub async fn run(args: ReplayArgs) -> Result {
    // Opening the store applies pending migrations.
    Store::open(args.database.store_config()?).await?;
    let report = replay(args).await?;
    print_report(&report);
    Ok(())
}

fn print_report(r: &RebuildReport) {
    println!(
        "{}",
        json!({
            "projections": r.projections,
            "startedAt": r.started_at,
            "checkpoint": r.checkpoint,
            "entries": r.entries,
            "seconds": (r.seconds * 1000.0).round() / 1000.0,
            "entriesPerSecond": r.entries_per_second().round(),
        })
    );
}

/// Runs a rebuild on a thread of its own (the engine's connection is synchronous).
pub async fn replay(
    args: ReplayArgs,
) -> std::result::Result<RebuildReport, super::anyhow_like::Error> {
    let url = DatabaseUrl::parse(&args.database.database_url)?;
    let names: Vec<&'static str> = if args.projection == "all" {
        BUILTIN.to_vec()
    } else {
        match BUILTIN.iter().find(|n| **n == args.projection) {
            Some(n) => vec![*n],
            None => {
                return Err(format!(
                    "unknown projection {:?}; expected one of {BUILTIN:?} or all",
                    args.projection
                )
                .into())
            }
        }
    };
    let mapping = EntityMapping::load(args.entity_mapping.as_deref())?;
    let settings = EngineSettings {
        snapshot_every: args.snapshot_every.max(0),
        keep_snapshots: args.keep_snapshots.max(1),
        ..EngineSettings::default()
    };
    let busy = Duration::from_millis(args.database.sqlite_busy_timeout_ms.max(10_000));
    let quiet = args.quiet;
    let from_seq = args.from_seq;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("replay".into())
        .spawn(move || {
            let result = (|| {
                let db = Db::open(&url, busy)?;
                let mut engine =
                    Engine::new(db, builtin(mapping), settings).with_prefetch(url.clone());
                let bar = if quiet {
                    ProgressBar::hidden()
                } else {
                    ProgressBar::new(0)
                };
                bar.set_style(
                    ProgressStyle::with_template(
                        "replay {bar:40} {pos}/{len} seq ({per_sec}, {eta})",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                let report = engine.rebuild(&names, from_seq, &mut |at, head| {
                    bar.set_length(head.max(0) as u64);
                    bar.set_position(at.max(0) as u64);
                });
                bar.finish_and_clear();
                report
            })();
            let _ = tx.send(result);
        })?;
    Ok(rx
        .await
        .map_err(|_| "replay thread ended without an answer")??)
}

#[derive(Debug, Clone, Args)]
pub struct BenchReplayArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Events to append before timing the replay (into an empty log).
    #[arg(long, default_value_t = 1_000_000)]
    pub events: usize,
    /// Events per block.
    #[arg(long, default_value_t = 1_000)]
    pub block_events: usize,
    /// Time the replay of what the store already holds.
    #[arg(long)]
    pub skip_fill: bool,
}

/// Principals the synthetic events rotate through.
const BENCH_PRINCIPALS: usize = 10_000;
/// Entities the synthetic print events change.
const BENCH_ENTITIES: usize = 10_000;

pub async fn bench(args: BenchReplayArgs) -> Result {
    let store = Store::open(args.database.store_config()?).await?;
    if !args.skip_fill {
        let head = store.head().await?;
        if head.head_seq != 0 {
            return Err(
                "bench-replay fills an empty log; use a fresh database or --skip-fill".into(),
            );
        }
        let started = Instant::now();
        let mut appender = store.appender().await?;
        let blocks = args.events.div_ceil(args.block_events.max(1));
        let mut events = 0;
        let mut group = Vec::new();
        for b in 0..blocks {
            let n = (args.events - events).min(args.block_events);
            group.push(bench_payload(b as i64 + 1, n));
            events += n;
            // A one-block reorg now and then, so the replay undoes too.
            if b % 100 == 99 {
                appender.append(std::mem::take(&mut group)).await?;
                // Separate payloads: one that rolls a block back and re-applies it at
                // once leaves it canonical and stores nothing.
                let mut rollback = bench_payload(b as i64 + 1, n);
                rollback.rollback = std::mem::take(&mut rollback.apply);
                appender.append(vec![rollback]).await?;
                appender.append(vec![bench_payload(b as i64 + 1, n)]).await?;
            }
            if group.len() >= 10 {
                appender.append(std::mem::take(&mut group)).await?;
            }
        }
        if !group.is_empty() {
            appender.append(group).await?;
        }
        let head = store.head().await?;
        println!(
            "{}",
            json!({"filled": {"events": events, "headSeq": head.head_seq, "seconds": started.elapsed().as_secs_f64()}})
        );
    }
    let mut args_replay = ReplayArgs::new(args.database.database_url.clone());
    args_replay.quiet = false;
    let report = replay(args_replay).await?;
    println!(
        "{}",
        json!({
            "backend": if store.is_postgres() { "postgres" } else { "sqlite" },
            "entries": report.entries,
            "seconds": (report.seconds * 1000.0).round() / 1000.0,
            "entriesPerSecond": report.entries_per_second().round(),
        })
    );
    Ok(())
}

/// A block of `n` events: 60% STX transfers, 20% FT transfers, 10% NFT mints and 10%
/// print events changing entities, among [`BENCH_PRINCIPALS`] principals.
fn bench_payload(height: i64, n: usize) -> Payload {
    let principal = |i: usize| format!("ST{:038}", i % BENCH_PRINCIPALS);
    let contract = "ST000000000000000000002AMW42H.timebank";
    let mut events = Vec::with_capacity(n);
    let mut txs = Vec::new();
    for i in 0..n {
        let k = height as usize * 7_919 + i;
        let tx_index = (i / 10) as i32;
        let (from, to) = (principal(k), principal(k * 31 + 1));
        let (event_type, contract_id, data, addresses) = match i % 10 {
            0..=5 => (
                EventType::StxTransferEvent,
                None,
                json!({"sender": from, "recipient": to, "amount": (k % 1_000 + 1).to_string()}),
                vec![from, to],
            ),
            6 | 7 => (
                EventType::FtTransferEvent,
                Some(contract.to_string()),
                json!({"sender": from, "recipient": to, "amount": "1000",
                       "asset_identifier": format!("{contract}::hour")}),
                vec![from, to],
            ),
            8 => (
                EventType::NftMintEvent,
                Some(contract.to_string()),
                json!({"recipient": to, "asset_class_identifier": format!("{contract}::badge"),
                       "asset_identifier": k}),
                vec![to],
            ),
            _ => (
                EventType::PrintEvent,
                Some(contract.to_string()),
                json!({"contract_identifier": contract, "topic": "print",
                       "value": {"event": if k.is_multiple_of(3) { "exchange-created" } else { "exchange-updated" },
                                 "exchange-id": k % BENCH_ENTITIES, "hours": k % 8, "provider": from}}),
                vec![from],
            ),
        };
        events.push(NewEvent {
            tx_hash: format!("0x{height:016x}{tx_index:048x}"),
            tx_index,
            event_index: (i % 10) as i32,
            event_type,
            contract_id,
            data,
            affected_addresses: addresses,
            success: true,
            encoded: None,
        });
    }
    for t in 0..n.div_ceil(10) {
        txs.push(TxSummary {
            tx_hash: format!("0x{height:016x}{t:048x}"),
            tx_index: t as i32,
            sender: Some(principal(t)),
            success: true,
            result: Some("(ok true)".into()),
            event_count: (n - t * 10).min(10),
        });
    }
    Payload {
        rollback: Vec::new(),
        apply: vec![Block {
            hash: crate::synth::block_hash(height, 0),
            height,
            parent_hash: Some(crate::synth::block_hash(height - 1, 0)),
            timestamp: 1_700_000_000 + height,
            transactions: txs,
            events,
        }],
    }
}
