//! `events`: stored events as JSON lines, with the read API's filters.

use super::anyhow_like::Result;
use crate::config::DatabaseArgs;
use crate::store::{EventQuery, Store};
use clap::Args;

#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[arg(long)]
    pub contract_id: Option<String>,
    #[arg(long)]
    pub address: Option<String>,
    #[arg(long)]
    pub event_type: Option<String>,
    /// Start after this `seq`.
    #[arg(long, default_value_t = 0)]
    pub after_seq: i64,
    #[arg(long)]
    pub from_block_height: Option<i64>,
    /// Stop after this many events (default: all).
    #[arg(long)]
    pub limit: Option<u64>,
}

pub async fn run(args: EventsArgs) -> Result {
    let store = Store::open(args.database.store_config()?).await?;
    let event_type = match args.event_type.as_deref() {
        Some(t) => Some(t.parse()?),
        None => None,
    };
    let mut query = EventQuery {
        contract_id: args.contract_id,
        address: args.address,
        event_type,
        after_seq: args.after_seq,
        from_block_height: args.from_block_height,
        limit: crate::store::read::MAX_PAGE,
    };
    let mut left = args.limit.unwrap_or(u64::MAX);
    while left > 0 {
        let page = store.events(&query).await?;
        let Some(last) = page.last() else { break };
        query.after_seq = last.seq;
        for e in page.iter().take(left.min(usize::MAX as u64) as usize) {
            println!("{}", e.to_json());
            left -= 1;
        }
    }
    Ok(())
}
