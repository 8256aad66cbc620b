//! Observability: `GET /metrics` is Prometheus text whose counters move with the traffic a
//! test drives; every answer carries a request id, and with `LOG_FORMAT=json` each log
//! line of a request is a JSON object naming it.

mod common;
use common::node::Node;
use common::ws::WsClient;
use common::{Backend, TestApp, TestDb};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;
use timebank_realtime::synth::{block_with_transfers, payload};

/// Samples of a Prometheus text exposition, keyed by `name{labels}` as written; panics on
/// a line that is not a comment, blank, or `name[{labels}] value`.
fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut samples = BTreeMap::new();
    let mut typed = BTreeMap::new();
    for line in text.lines() {
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            let parts: Vec<&str> = comment.split_whitespace().collect();
            if parts.first() == Some(&"TYPE") {
                assert!(
                    matches!(parts.get(2), Some(&("counter" | "gauge" | "histogram" | "summary" | "untyped"))),
                    "bad TYPE line: {line}"
                );
                typed.insert(parts[1].to_string(), parts[2].to_string());
            }
            continue;
        }
        let (key, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        let name = key.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line}"
        );
        if let Some(labels) = key.strip_prefix(name).filter(|l| !l.is_empty()) {
            assert!(labels.starts_with('{') && labels.ends_with('}'), "bad labels: {line}");
            for pair in labels[1..labels.len() - 1].split(',').filter(|p| !p.is_empty()) {
                let (k, v) = pair.split_once('=').unwrap_or_else(|| panic!("bad label: {line}"));
                assert!(!k.is_empty() && v.starts_with('"') && v.ends_with('"'), "bad label: {line}");
            }
        }
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        assert!(typed.contains_key(name) || typed.contains_key(family), "sample before its TYPE: {line}");
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
        samples.insert(key.to_string(), value);
    }
    samples
}

async fn scrape(app: &TestApp) -> BTreeMap<String, f64> {
    let res = app.client.get(format!("{}/metrics", app.base)).send().await.expect("request");
    assert_eq!(res.status(), 200);
    let content_type = res.headers()["content-type"].to_str().expect("ascii").to_string();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    parse_prometheus(&res.text().await.expect("body"))
}

fn value(samples: &BTreeMap<String, f64>, key: &str) -> f64 {
    samples.get(key).copied().unwrap_or(0.0)
}

#[actix_web::test]
async fn metrics_count_what_the_server_does() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let before = scrape(&app).await;

    let mut ws = WsClient::connect(&app).await;
    ws.subscribe("all", json!({"type": "all"}), None).await;
    assert_eq!(ws.recv().await["type"], "caught-up");
    assert_eq!(app.post_payload(&payload(vec![block_with_transfers(1, 0, 0, 4)], vec![])).await.0, 200);
    for _ in 0..4 {
        assert_eq!(ws.recv().await["type"], "event");
    }
    let unauthorized = app.post_raw("{}", None).await;
    assert_eq!(unauthorized.status(), 401);

    let after = scrape(&app).await;
    let delta = |key: &str| value(&after, key) - value(&before, key);
    assert_eq!(delta(r#"timebank_webhook_requests_total{status="200"}"#), 1.0, "{after:?}");
    assert_eq!(delta(r#"timebank_webhook_requests_total{status="401"}"#), 1.0);
    assert_eq!(delta("timebank_group_commit_seconds_count"), 1.0);
    // One block: four events and the block's marker.
    assert_eq!(delta("timebank_group_commit_entries_sum"), 5.0);
    assert_eq!(delta("timebank_delivered_entries_total"), 4.0);
    assert_eq!(value(&after, "timebank_ws_connections"), 1.0);
    assert_eq!(value(&after, "timebank_ws_subscriptions"), 1.0);
    assert_eq!(value(&after, "timebank_topics"), 1.0);
    assert_eq!(value(&after, "timebank_routed_seq"), 5.0);
    assert_eq!(value(&after, "timebank_writer_queue_depth"), 0.0);

    // The projections fold what was committed: their checkpoint reaches the head, the lag 0.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let now = scrape(&app).await;
        if value(&now, "timebank_projection_seq") == 5.0 {
            assert_eq!(value(&now, "timebank_projection_lag_seq"), 0.0, "{now:?}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "projections never reached seq 5: {now:?}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn each_answer_names_its_request_and_json_logs_carry_it() {
    let db = TestDb::new(Backend::Sqlite).await;
    let node = Node::start(&db.url, &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")]).await;
    // Given by a load balancer: kept.
    let res = node
        .client
        .post(format!("{}/api/webhooks/chainhook", node.base))
        .header("x-request-id", "lb-42")
        .body("{}")
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-request-id"], "lb-42");
    // None given: one is made, different each time.
    let mut made = Vec::new();
    for _ in 0..2 {
        let res = node.client.get(format!("{}/healthz", node.base)).send().await.expect("request");
        made.push(res.headers()["x-request-id"].to_str().expect("ascii").to_string());
    }
    assert!(made.iter().all(|id| !id.is_empty()) && made[0] != made[1], "{made:?}");

    // The refusal's log line is JSON, inside the request's span.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let line: Value = loop {
        let found = node
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|l| l["fields"]["message"] == "webhook delivery refused");
        if let Some(line) = found {
            break line;
        }
        assert!(tokio::time::Instant::now() < deadline, "no JSON log line of the refusal");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(line["level"], "INFO", "{line}");
    let spans = line["spans"].as_array().expect("the line lists its spans");
    assert!(spans.iter().any(|s| s["name"] == "request" && s["request_id"] == "lb-42"), "{line}");
}
