//! `tail`: a filtered live stream as JSON lines, through [`crate::client::Client`], so it
//! resumes after reconnects (and after `resync`) from the last `seq` it printed.

use super::anyhow_like::Result;
use crate::client::{Backoff, Client, ClientConfig, ClientEvent};
use crate::protocol::{Filter, Since};
use clap::Args;
use std::io::Write;
use std::time::Duration;

#[derive(Debug, Args)]
pub struct TailArgs {
    /// The server's WebSocket endpoint.
    #[arg(long, default_value = "ws://127.0.0.1:3000/ws")]
    pub url: String,
    /// `all`, `contract:<contractId>[:<eventType>]`, `user:<address>` or `event-type:<eventType>`.
    #[arg(long, default_value = "all")]
    pub filter: String,
    /// Start after this `seq` (the exact resume cursor).
    #[arg(long, conflicts_with = "since_height")]
    pub since: Option<i64>,
    /// Start above this block height: `<height>` or `<height>:<blockHash>`.
    #[arg(long)]
    pub since_height: Option<String>,
    /// Exit after printing this many entries.
    #[arg(long)]
    pub max: Option<u64>,
    /// First reconnect delay ceiling, in milliseconds (doubles per attempt).
    #[arg(long, default_value_t = 100)]
    pub backoff_base_ms: u64,
    /// Largest reconnect delay ceiling, in milliseconds.
    #[arg(long, default_value_t = 10_000)]
    pub backoff_cap_ms: u64,
    /// Give up after this many consecutive failed reconnects (default: never).
    #[arg(long)]
    pub max_attempts: Option<u32>,
}

/// Parses the `--filter` syntax.
pub fn parse_filter(spec: &str) -> std::result::Result<Filter, String> {
    let bad = |m: &str| format!("--filter {spec:?}: {m}");
    let nonempty = |s: &str, what: &str| if s.is_empty() { Err(bad(&format!("empty {what}"))) } else { Ok(s.to_string()) };
    if spec == "all" {
        return Ok(Filter::All);
    }
    if let Some(rest) = spec.strip_prefix("contract:") {
        // Contract ids contain `.` but never `:`.
        let (contract, event_type) = match rest.split_once(':') {
            Some((c, t)) => (c, Some(t.parse().map_err(|e| bad(&format!("{e}")))?)),
            None => (rest, None),
        };
        return Ok(Filter::Contract { contract_id: nonempty(contract, "contract id")?, event_type });
    }
    if let Some(address) = spec.strip_prefix("user:") {
        return Ok(Filter::User { address: nonempty(address, "address")? });
    }
    if let Some(t) = spec.strip_prefix("event-type:") {
        return Ok(Filter::EventType { event_type: t.parse().map_err(|e| bad(&format!("{e}")))? });
    }
    Err(bad("expected all, contract:<id>[:<eventType>], user:<address> or event-type:<eventType>"))
}

/// Parses `--since-height <h>[:<hash>]`.
pub fn parse_since_height(spec: &str) -> std::result::Result<Since, String> {
    let (h, hash) = match spec.split_once(':') {
        Some((h, hash)) => (h, Some(hash.to_string())),
        None => (spec, None),
    };
    let height = h.parse::<i64>().ok().filter(|h| *h >= 0).ok_or_else(|| format!("--since-height {spec:?}: not a height"))?;
    Ok(Since::BlockHeight { height, block_hash: hash })
}

pub async fn run(args: TailArgs) -> Result {
    let filter = parse_filter(&args.filter)?;
    let since = match (args.since, &args.since_height) {
        (Some(seq), _) if seq < 0 => return Err("--since must be >= 0".into()),
        (Some(seq), _) => Some(Since::Seq(seq)),
        (None, Some(h)) => Some(parse_since_height(h)?),
        (None, None) => None,
    };
    let config = ClientConfig {
        backoff: Backoff {
            base: Duration::from_millis(args.backoff_base_ms.max(1)),
            cap: Duration::from_millis(args.backoff_cap_ms.max(args.backoff_base_ms).max(1)),
            max_attempts: args.max_attempts,
        },
        ..ClientConfig::default()
    };
    let mut client = Client::connect(&args.url, config)?;
    client.subscribe("tail", filter, since);
    let mut printed: u64 = 0;
    let mut out = std::io::stdout().lock();
    while args.max.is_none_or(|max| printed < max) {
        let Some(event) = client.next().await else {
            return Err("connection lost and reconnect attempts exhausted".into());
        };
        match event {
            ClientEvent::Event { raw, .. } | ClientEvent::Rollback { raw, .. } => {
                writeln!(out, "{}", raw.get())?;
                out.flush()?;
                printed += 1;
            }
            ClientEvent::Error { id, code, message } => {
                tracing::warn!(?id, code = %code, message = %message, "error");
                if code == "invalid_filter" {
                    return Err(message.into());
                }
            }
            ClientEvent::CaughtUp { seq, .. } => tracing::info!(seq, "caught up, now live"),
            other => tracing::debug!(event = ?other, "client event"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventType;

    #[test]
    fn filter_syntax() {
        assert_eq!(parse_filter("all"), Ok(Filter::All));
        assert_eq!(
            parse_filter("contract:ST1.x-y"),
            Ok(Filter::Contract { contract_id: "ST1.x-y".into(), event_type: None })
        );
        assert_eq!(
            parse_filter("contract:ST1.x:print_event"),
            Ok(Filter::Contract { contract_id: "ST1.x".into(), event_type: Some(EventType::PrintEvent) })
        );
        assert_eq!(parse_filter("user:ST2"), Ok(Filter::User { address: "ST2".into() }));
        assert_eq!(parse_filter("event-type:ft_mint_event"), Ok(Filter::EventType { event_type: EventType::FtMintEvent }));
        for bad in ["", "contract:", "user:", "event-type:nope", "contract:ST1.x:nope", "planet:x"] {
            assert!(parse_filter(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_since_height("12"), Ok(Since::BlockHeight { height: 12, block_hash: None }));
        assert_eq!(parse_since_height("12:0xab"), Ok(Since::BlockHeight { height: 12, block_hash: Some("0xab".into()) }));
        assert!(parse_since_height("x").is_err() && parse_since_height("-1").is_err());
    }
}
