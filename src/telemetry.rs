//! Structured logs to standard error, and the process's metrics ([`metrics`]).
//!
//! `RUST_LOG` filters the logs (default `info`); `LOG_FORMAT=json` writes one JSON object
//! per line (with the fields of the spans each line is in, such as a request's `request_id`)
//! instead of text for people.

pub mod metrics;

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_target(false);
    let _ = if json {
        builder.json().with_current_span(false).with_span_list(true).try_init()
    } else {
        builder.try_init()
    };
}
