//! The command line: `serve`, `migrate`, `ingest`, `events`, `bench`, `replay`, `bench-replay`.

use crate::config::{DatabaseArgs, ServerConfig};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

mod bench;
mod scratch;
mod events;
mod ingest;
pub mod replay;

pub use bench::BenchArgs;
mod tail;
mod ws_bench;

#[derive(Debug, Parser)]
#[command(name = "timebank-realtime", version, about = "Chainhook → event log → WebSocket subscribers")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServerConfig>),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Load Chainhook payload files (one JSON payload, or JSON lines as Chainhook's
    /// file_append writes them) through the same path as the webhook.
    Ingest {
        #[command(flatten)]
        database: DatabaseArgs,
        /// Files to load, in order.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Hide the progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Print stored events as JSON lines, filtered like `GET /api/events`.
    Events(events::EventsArgs),
    /// Rebuild projections from the log into fresh generations, swapped in atomically.
    Replay(replay::ReplayArgs),
    /// Fill an empty store with synthetic events and time a replay of all projections.
    BenchReplay(replay::BenchReplayArgs),
    /// Measure durable ingest throughput (events/s) on a fresh store of the configured
    /// backend, per block size.
    Bench(BenchArgs),
    /// Print a filtered live stream from a server as JSON lines (one event or rollback
    /// object per line), resuming after reconnects.
    Tail(tail::TailArgs),
    /// Benchmark WebSocket fan-out over loopback: N subscribers, ingestion at a set rate;
    /// reports delivered events/s, latency percentiles and server RSS.
    BenchWs(ws_bench::WsBenchArgs),
    /// Benchmark optimistic ops over loopback: signed-in connections, the latency from a
    /// confirming block's webhook to `confirmed` on the client, and ops acknowledged per second.
    BenchOps(ws_bench::ops::OpsBenchArgs),
}

/// Runs the parsed command; the process exit code follows the result.
pub fn run(cli: Cli) -> anyhow_like::Result {
    let system = actix::System::new();
    system.block_on(async move {
        match cli.command {
            Command::Serve(config) => serve(*config).await,
            Command::Migrate(db) => {
                let store = crate::store::Store::open(db.store_config()?).await?;
                println!("migrations applied to {}", store.url());
                Ok(())
            }
            Command::Ingest { database, files, quiet } => ingest::run(database, files, quiet).await,
            Command::Events(args) => events::run(args).await,
            Command::Replay(args) => replay::run(args).await,
            Command::BenchReplay(args) => replay::bench(args).await,
            Command::Bench(args) => bench::run(args).await,
            Command::Tail(args) => tail::run(args).await,
            Command::BenchWs(args) => ws_bench::run(args).await,
            Command::BenchOps(args) => ws_bench::ops::run(args).await,
        }
    })
}

async fn serve(config: ServerConfig) -> anyhow_like::Result {
    let app = crate::startup::Application::build(config).await?;
    if app.webhook_secret_generated() {
        println!("CHAINHOOK_WEBHOOK_SECRET not set; generated one for this run: {}", app.webhook_secret());
    }
    println!("listening on http://{}:{}", app.host(), app.port());
    let stopper = app.stopper();
    actix_web::rt::spawn(async move {
        match stop_signal().await {
            Ok(signal) => {
                tracing::info!(signal, "stop signal");
                stopper.stop().await;
            }
            Err(e) => tracing::error!(error = %e, "cannot wait for stop signals; stop the process with SIGKILL"),
        }
    });
    app.run_until_stopped().await?;
    Ok(())
}

/// The first SIGTERM (Docker, Kubernetes, systemd) or SIGINT (Ctrl-C).
#[cfg(unix)]
async fn stop_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<&'static str> {
    tokio::signal::ctrl_c().await.map(|()| "Ctrl-C")
}

/// A boxed error for command results: commands print it and exit non-zero.
pub mod anyhow_like {
    pub type Error = Box<dyn std::error::Error + Send + Sync>;
    pub type Result = std::result::Result<(), Error>;
}
