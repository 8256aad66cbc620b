//! `ingest FILE…`: payload files through the same parse → supervisor → writer path.

use super::anyhow_like::Result;
use crate::actors::{Ingest, Supervisor};
use crate::chainhook::parse_payload;
use crate::config::DatabaseArgs;
use crate::store::Store;
use actix::prelude::*;
use futures_util::{stream, StreamExt};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::value::RawValue;
use std::path::PathBuf;

/// Payloads in flight at once: enough for the writer to group-commit them. Order is kept
/// (one sender, one mailbox, FIFO).
const IN_FLIGHT: usize = 64;

pub async fn run(database: DatabaseArgs, files: Vec<PathBuf>, quiet: bool) -> Result {
    let store = Store::open(database.store_config()?).await?;
    let head = store.head().await?;
    let supervisor = Supervisor::new(store, Default::default(), head.head_seq).start();
    for file in files {
        let bytes = std::fs::read(&file).map_err(|e| format!("{}: {e}", file.display()))?;
        let bar = if quiet { ProgressBar::hidden() } else { ProgressBar::new(bytes.len() as u64) };
        bar.set_style(
            ProgressStyle::with_template("{msg} {bar:40} {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(file.display().to_string());
        // One JSON document, or many (JSON lines): a stream of values covers both.
        let mut values = Vec::new();
        let mut iter = serde_json::Deserializer::from_slice(&bytes).into_iter::<&RawValue>();
        loop {
            match iter.next() {
                Some(Ok(raw)) => values.push((raw, iter.byte_offset())),
                Some(Err(e)) => return Err(format!("{}: payload {}: {e}", file.display(), values.len() + 1).into()),
                None => break,
            }
        }
        let mut totals = crate::store::IngestReport::default();
        let mut results = stream::iter(values.into_iter().enumerate())
            .map(|(i, (raw, offset))| {
                let parsed = parse_payload(raw.get().as_bytes());
                let supervisor = supervisor.clone();
                async move {
                    let payload = parsed.map_err(|e| format!("payload {}: {e}", i + 1))?;
                    let report = supervisor
                        .send(Ingest { payload })
                        .await
                        .map_err(|e| format!("payload {}: {e}", i + 1))?
                        .map_err(|e| format!("payload {}: {e}", i + 1))?;
                    Ok::<_, String>((report, offset))
                }
            })
            .buffered(IN_FLIGHT);
        while let Some(result) = results.next().await {
            let (report, offset) = result.map_err(|e| format!("{}: {e}", file.display()))?;
            totals.applied_blocks += report.applied_blocks;
            totals.rolled_back_blocks += report.rolled_back_blocks;
            totals.events += report.events;
            totals.duplicate_events += report.duplicate_events;
            totals.head_seq = report.head_seq;
            bar.set_position(offset as u64);
        }
        bar.finish_and_clear();
        println!(
            "{}: {}",
            file.display(),
            serde_json::to_string(&totals).unwrap_or_default()
        );
    }
    Ok(())
}
