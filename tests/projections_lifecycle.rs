//! Projections over time: a changed projection (here: a new entity mapping, which is part
//! of the entities projection's version) is rebuilt beside the served one at start; a
//! projection with no stored state builds itself from the whole log on first start; and
//! `replay` while payloads keep arriving swaps in a state equal to the live one.
mod common;
mod projection_support;

use common::{Backend, TestApp};
use projection_support::{dump, get, run_replay, wait_projected};
use serde_json::{json, Value};
use std::time::Duration;
use timebank_realtime::projections::db::Db;
use timebank_realtime::store::DatabaseUrl;
use timebank_realtime::synth;

fn print_block(height: i64, values: Vec<Value>) -> Value {
    let txs = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            synth::transaction(
                height,
                0,
                i,
                synth::address(0),
                Some(synth::CONTRACT),
                vec![synth::print_event(synth::CONTRACT, v)],
            )
        })
        .collect();
    synth::block(height, 0, 0, txs)
}

fn status_of(list: &Value, name: &str) -> Value {
    list["projections"]
        .as_array()
        .and_then(|l| l.iter().find(|p| p["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// Runs a blocking closure on the projection engine's kind of connection.
async fn with_db(url: &str, f: impl FnOnce(&mut Db) + Send + 'static) {
    let url = DatabaseUrl::parse(url).expect("url");
    tokio::task::spawn_blocking(move || {
        let mut db = Db::open(&url, Duration::from_secs(5)).expect("db opens");
        f(&mut db);
    })
    .await
    .expect("db task");
}

async fn changed_and_new_projections_build_on_start(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let payload = synth::payload(
        vec![print_block(
            1,
            vec![
                json!({"event": "exchange-created", "exchange-id": 1, "hours": 2}),
                json!({"event": "hours-logged", "ref": 5, "hours": 3}),
            ],
        )],
        vec![],
    );
    let (status, _) = app.post_payload(&payload).await;
    assert_eq!(status, 200);
    let head = wait_projected(&app).await;
    assert_eq!(
        get(&app, "/api/entities/exchange/1").await["fields"],
        json!({"hours": 2})
    );
    let (status, _) = app.get_json("/api/entities/exchange/5").await;
    assert_eq!(status, 404, "the default mapping knows no `hours-logged`");
    let before = get(&app, "/api/projections").await;
    app.stop().await;
    let db = app.db;

    // "contracts" loses everything, as if it were added by a newer version.
    with_db(&db.url, |d| d.forget("contracts").expect("forget")).await;
    // A mapping file that also maps `hours-logged` to an exchange update.
    let dir = tempfile::tempdir().expect("temp dir");
    let mapping = dir.path().join("mapping.json");
    std::fs::write(
        &mapping,
        json!({"events": {"hours-logged": {"kind": "exchange", "op": "update"}}, "idFields": ["{kind}-id", "ref"]}).to_string(),
    )
    .expect("mapping written");

    let app = TestApp::spawn_with(db, |c| c.entity_mapping = Some(mapping.clone())).await;
    assert_eq!(wait_projected(&app).await, head);
    let after = get(&app, "/api/projections").await;
    let (e0, e1) = (
        status_of(&before, "entities"),
        status_of(&after, "entities"),
    );
    assert_ne!(e1["codeVersion"], e0["codeVersion"], "{after}");
    assert!(
        e1["generation"].as_i64() > e0["generation"].as_i64(),
        "rebuilt into a new generation: {after}"
    );
    assert_eq!(
        status_of(&after, "accounts")["generation"],
        status_of(&before, "accounts")["generation"],
        "untouched"
    );
    assert_eq!(
        status_of(&after, "contracts")["checkpoint"],
        head,
        "built from the whole log: {after}"
    );

    let logged = get(&app, "/api/entities/exchange/5").await;
    assert_eq!(logged["fields"], json!({"hours": 3}));
    assert_eq!(logged["version"], 1);
    assert_eq!(
        get(&app, "/api/entities/exchange/1").await["fields"],
        json!({"hours": 2})
    );
    let contract = get(&app, &format!("/api/contracts/{}", synth::CONTRACT)).await;
    assert_eq!(contract["eventCounts"], json!({"print_event": 2}));
    app.stop().await;
}
both_backends!(
    changed_and_new_projections_build_on_start,
    changed_and_new_projections_build_on_start
);

async fn replay_while_ingesting(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for h in 1..=20 {
        let (status, _) = app
            .post_payload(&synth::payload(
                vec![synth::block_with_transfers(h, 0, 0, 50)],
                vec![],
            ))
            .await;
        assert_eq!(status, 200);
    }
    wait_projected(&app).await;
    let ingest = async {
        for h in 21..=60 {
            if h % 7 == 0 {
                // Roll the previous block back, then apply it again with the next one.
                let rollback =
                    synth::payload(vec![], vec![synth::block_with_transfers(h - 1, 0, 0, 50)]);
                let (status, body) = app.post_payload(&rollback).await;
                assert_eq!(status, 200, "{body}");
                assert_eq!(body["rolledBackBlocks"], 1, "{body}");
            }
            let apply = if h % 7 == 0 {
                vec![
                    synth::block_with_transfers(h - 1, 0, 0, 50),
                    synth::block_with_transfers(h, 0, 0, 50),
                ]
            } else {
                vec![synth::block_with_transfers(h, 0, 0, 50)]
            };
            let (status, body) = app.post_payload(&synth::payload(apply, vec![])).await;
            assert_eq!(status, 200, "{body}");
        }
    };
    let (report, ()) = tokio::join!(run_replay(&app.db.url, None, 0), ingest);
    assert!(report.checkpoint > 0);
    let head = wait_projected(&app).await;
    let live = dump(&app.db.url).await;
    let rebuilt = run_replay(&app.db.url, None, 0).await;
    assert_eq!(rebuilt.checkpoint, head);
    assert_eq!(
        dump(&app.db.url).await,
        live,
        "live after a concurrent replay equals a fresh replay"
    );
    app.stop().await;
}
both_backends!(replay_while_ingesting, replay_while_ingesting);
