//! Address rows are staged in `address_recent` and merged into the address index in batches
//! (`ADDRESS_MERGE_ROWS`). Address filters — the read API and WebSocket catch-up — find
//! every entry whether its row is staged or merged, across merges, a reorg and page
//! boundaries.
mod common;
use common::ws::{matches, seqs, WsClient};
use common::{open_store, Backend, TestApp, TestDb};
use diesel::sql_types::BigInt;
use diesel::Connection;
use diesel_async::AsyncConnection;
use serde_json::{json, Value};
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{address, block_with_transfers, payload};

/// Small enough that most groups below merge what the ones before them staged.
const MERGE_ROWS: u64 = 7;

async fn post(app: &TestApp, apply: Vec<Value>, rollback: Vec<Value>) {
    let (status, report) = app.post_payload(&payload(apply, rollback)).await;
    assert_eq!(status, 200, "{report}");
}

/// Rows in `table`, read straight from the database.
async fn rows_in(db: &TestDb, table: &str) -> i64 {
    let count = diesel::select(diesel::dsl::sql::<BigInt>(&format!("(SELECT count(*) FROM {table})")));
    if db.is_postgres() {
        let mut c = diesel_async::AsyncPgConnection::establish(&db.url).await.expect("connect");
        diesel_async::RunQueryDsl::get_result(count, &mut c).await.expect("count")
    } else {
        let path = db.sqlite_path().expect("sqlite path");
        let mut c = diesel::SqliteConnection::establish(path.to_str().expect("utf-8")).expect("connect");
        diesel::RunQueryDsl::get_result(count, &mut c).expect("count")
    }
}

/// Every `seq` `/api/events?address=…` returns, three per page.
async fn address_seqs(app: &TestApp, address: &str) -> Vec<i64> {
    let mut out = Vec::new();
    loop {
        let after = out.last().copied().unwrap_or(0);
        let (status, page) = app.get_json(&format!("/api/events?address={address}&limit=3&afterSeq={after}")).await;
        assert_eq!(status, 200, "{page}");
        let got: Vec<i64> = page["events"].as_array().expect("events").iter().filter_map(|e| e["seq"].as_i64()).collect();
        if got.is_empty() {
            return out;
        }
        out.extend(got);
    }
}

async fn address_filters_see_staged_and_merged_rows(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| {
        c.database.address_merge_rows = Some(MERGE_ROWS);
        c.ws_history_page = 4;
    })
    .await;
    // One block per group, 2 to 10 transfers each (two address rows per transfer): some
    // groups merge, the rest only stage.
    for height in 1..=9 {
        post(&app, vec![block_with_transfers(height, 0, 0, height as usize + 1)], vec![]).await;
    }
    // A reorg replaces block 9: its rollback entries have address rows too.
    post(&app, vec![block_with_transfers(9, 1, 0, 4)], vec![block_with_transfers(9, 0, 0, 10)]).await;
    // Both tables hold rows now, so the filters below read from both.
    assert!(rows_in(&app.db, "address_entries").await > 0, "merged rows");
    assert!(rows_in(&app.db, "address_recent").await > 0, "staged rows");

    let store = open_store(&app.db.url).await;
    let entries = common::all_entries(&store).await;
    let events = app.all_events().await;
    let head = app.head().await["headSeq"].as_i64().expect("headSeq");
    for n in 0..4 {
        let who = address(n);
        let filter = json!({"type": "user", "address": who});
        let want: Vec<i64> = events.iter().filter(|e| matches(&filter, e)).filter_map(|e| e["seq"].as_i64()).collect();
        assert!(want.len() > 10, "{who} is in many events");
        assert_eq!(address_seqs(&app, who).await, want, "read API, {who}");

        // Catch-up from the start: every event and rollback that names the principal.
        let want: Vec<i64> = entries
            .iter()
            .filter(|e| matches!(e.kind, EntryKind::Event | EntryKind::Rollback))
            .filter(|e| e.affected_addresses.iter().any(|a| a == who))
            .map(|e| e.seq)
            .collect();
        let mut ws = WsClient::connect(&app).await;
        ws.subscribe("s", filter, Some(json!({"seq": 0}))).await;
        let got = ws.collect_until(|by| by.get("s").is_some_and(|m| m.iter().any(|x| x["type"] == "caught-up"))).await;
        let msgs = &got["s"];
        assert_eq!(msgs.last().map(|m| m["seq"].clone()), Some(json!(head)), "caught up at the head");
        assert_eq!(seqs(msgs), want, "catch-up, {who}");
    }
}
both_backends!(address_filters_see_staged_and_merged_rows, address_filters_see_staged_and_merged_rows);
