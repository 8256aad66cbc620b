use clap::Parser;

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
use timebank_realtime::{cli, telemetry};

fn main() -> std::process::ExitCode {
    // SAFETY: first thing in the process: no thread has started and nothing has used SQLite.
    let sqlite_configured = unsafe { timebank_realtime::store::configure_sqlite_process() };
    telemetry::init();
    if !sqlite_configured {
        tracing::warn!("SQLite kept its serialized threading mode (it was initialised already)");
    }
    match cli::run(cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
