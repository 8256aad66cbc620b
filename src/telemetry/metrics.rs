//! The process's metrics, rendered for `GET /metrics` in Prometheus' text format.
//!
//! Code records through the `metrics` facade under the names below; [`install`] sets the
//! Prometheus recorder once per process, and [`render`] writes what it holds. Metrics are
//! per process: with several nodes, Prometheus scrapes each one.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Open WebSocket connections (gauge).
pub const WS_CONNECTIONS: &str = "timebank_ws_connections";
/// Active subscriptions, over all connections (gauge).
pub const WS_SUBSCRIPTIONS: &str = "timebank_ws_subscriptions";
/// Topics, one per distinct filter subscribed to (gauge).
pub const TOPICS: &str = "timebank_topics";
/// Webhook deliveries answered, by `status` (counter).
pub const WEBHOOK_REQUESTS: &str = "timebank_webhook_requests_total";
/// Log entries per group commit (histogram).
pub const GROUP_COMMIT_ENTRIES: &str = "timebank_group_commit_entries";
/// Payloads per group commit (histogram).
pub const GROUP_COMMIT_PAYLOADS: &str = "timebank_group_commit_payloads";
/// Seconds from a group's start to its commit (histogram).
pub const GROUP_COMMIT_SECONDS: &str = "timebank_group_commit_seconds";
/// Group commits that failed (nothing stored) (counter).
pub const GROUP_COMMIT_FAILURES: &str = "timebank_group_commit_failures_total";
/// Payloads waiting for the writer (gauge).
pub const WRITER_QUEUE_DEPTH: &str = "timebank_writer_queue_depth";
/// Entries topics handed to WebSocket sessions, live (counter).
pub const DELIVERED_ENTRIES: &str = "timebank_delivered_entries_total";
/// Subscriptions ended with `resync`, by `reason` (counter).
pub const RESYNCS: &str = "timebank_resyncs_total";
/// The last `seq` routed to this node's topics and projections (gauge).
pub const ROUTED_SEQ: &str = "timebank_routed_seq";
/// The lowest checkpoint of the live projections: every entry up to it is folded (gauge).
pub const PROJECTION_SEQ: &str = "timebank_projection_seq";
/// Entries committed to the projector and not folded yet by its slowest projection (gauge).
pub const PROJECTION_LAG: &str = "timebank_projection_lag_seq";
/// Notifications of other nodes' commits received (counter).
pub const CLUSTER_NOTIFICATIONS: &str = "timebank_cluster_notifications_total";
/// Store reads that routed entries this node did not commit (counter).
pub const CLUSTER_GAP_FILLS: &str = "timebank_cluster_gap_fills_total";
/// Entries those reads routed (counter).
pub const CLUSTER_FILLED_ENTRIES: &str = "timebank_cluster_filled_entries_total";
/// Times the log listener connection was reopened (counter).
pub const CLUSTER_LISTENER_RECONNECTS: &str = "timebank_cluster_listener_reconnects_total";

/// How often histograms are folded into their buckets when nobody scrapes, so their
/// samples do not pile up.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the Prometheus recorder (once per process; later calls do nothing). Without it
/// the facade's calls cost next to nothing and record nothing.
pub fn install() {
    HANDLE.get_or_init(|| {
        let built = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_SECONDS.into()), &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ])
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_ENTRIES.into()), &[
                    1.0, 10.0, 100.0, 1_000.0, 5_000.0, 10_000.0, 20_000.0, 50_000.0,
                ])
            })
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full(GROUP_COMMIT_PAYLOADS.into()), &[
                    1.0, 2.0, 4.0, 16.0, 64.0, 256.0, 1_024.0, 4_096.0,
                ])
            })
            .and_then(PrometheusBuilder::install_recorder);
        match built {
            Ok(handle) => {
                describe();
                let upkeep = handle.clone();
                let _ = std::thread::Builder::new().name("metrics-upkeep".into()).spawn(move || loop {
                    std::thread::sleep(UPKEEP_INTERVAL);
                    upkeep.run_upkeep();
                });
                Some(handle)
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics recorder not installed; /metrics stays empty");
                None
            }
        }
    });
}

/// Everything recorded so far, in Prometheus' text format.
pub fn render() -> String {
    HANDLE.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default()
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_gauge!(WS_CONNECTIONS, "Open WebSocket connections.");
    describe_gauge!(WS_SUBSCRIPTIONS, "Active WebSocket subscriptions.");
    describe_gauge!(TOPICS, "Topics (one per distinct filter subscribed to).");
    describe_counter!(WEBHOOK_REQUESTS, "Chainhook webhook deliveries answered, by HTTP status.");
    describe_histogram!(GROUP_COMMIT_ENTRIES, "Log entries per group commit.");
    describe_histogram!(GROUP_COMMIT_PAYLOADS, "Payloads per group commit.");
    describe_histogram!(GROUP_COMMIT_SECONDS, Unit::Seconds, "Time from a group's start to its commit.");
    describe_counter!(GROUP_COMMIT_FAILURES, "Group commits that failed; nothing of them was stored.");
    describe_gauge!(WRITER_QUEUE_DEPTH, "Payloads waiting for the event-store writer.");
    describe_counter!(DELIVERED_ENTRIES, "Entries handed to WebSocket sessions by topics (live delivery).");
    describe_counter!(RESYNCS, "Subscriptions ended with resync, by reason.");
    describe_gauge!(ROUTED_SEQ, "Last seq routed to this node's topics and projections.");
    describe_gauge!(PROJECTION_SEQ, "Lowest checkpoint of the live projections: every entry up to it is folded.");
    describe_gauge!(PROJECTION_LAG, "Entries committed to the projector and not yet folded by its slowest projection.");
    describe_counter!(CLUSTER_NOTIFICATIONS, "Notifications of other nodes' commits received.");
    describe_counter!(CLUSTER_GAP_FILLS, "Store reads that routed entries this node did not commit.");
    describe_counter!(CLUSTER_FILLED_ENTRIES, "Entries routed by those reads.");
    describe_counter!(CLUSTER_LISTENER_RECONNECTS, "Times the log listener connection was reopened.");
}
