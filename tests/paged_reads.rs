//! Paged reads answer with exactly the matching entries, in `seq` order, however far into
//! a long log the first match lies and however the pages fall: `/api/events` page by page
//! (a height bound whose first block lies more than one window of entries into the log, an
//! address, a contract with a type, both with small and full pages), and catch-up
//! subscriptions (`since.blockHeight` near the head, an address `since.seq` 0) in small
//! history pages. The expectation is computed from the whole log with the live delivery's
//! own filter.

mod common;
use common::ws::WsClient;
use common::{all_entries, append_long_log, open_store, Backend, TestApp, TestDb};
use serde_json::json;
use timebank_realtime::model::{EntryKind, LogEntry};
use timebank_realtime::protocol::Filter;
use timebank_realtime::store::paged::HEIGHT_WINDOW;
use timebank_realtime::synth;

const BLOCKS: i64 = 250;
const EVENTS_PER_BLOCK: usize = 120;
const PRINCIPALS: usize = 300;
/// Near the head: its first entry lies more than a height window into the log.
const HIGH: i64 = BLOCKS - 20;
const PAGE: i64 = 97;

/// The `/api/events` listing for `query`, page by page as a client follows `nextAfterSeq`:
/// `(seq, rolled back)` of each event.
async fn listing(app: &TestApp, query: &str, limit: i64) -> Vec<(i64, bool)> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let (status, page) = app.get_json(&format!("/api/events?{query}&afterSeq={after}&limit={limit}")).await;
        assert_eq!(status, 200, "{page}");
        let events = page["events"].as_array().cloned().unwrap_or_default();
        if events.is_empty() {
            return out;
        }
        assert!(events.len() as i64 <= limit);
        after = page["nextAfterSeq"].as_i64().expect("nextAfterSeq");
        out.extend(events.iter().map(|e| (e["seq"].as_i64().expect("seq"), e["rolledBack"] == true)));
    }
}

/// The events of `log` the read API lists for a filter and a lowest height.
fn expected_listing(log: &[LogEntry], filter: &Filter, from_height: i64) -> Vec<(i64, bool)> {
    let undone: Vec<i64> = log.iter().filter_map(|e| e.rollback_of).collect();
    log.iter()
        .filter(|e| e.kind == EntryKind::Event && e.block_height >= from_height && filter.matches(e))
        .map(|e| (e.seq, undone.contains(&e.seq)))
        .collect()
}

/// Asserts that `got` is `want`, naming the first difference rather than printing both.
fn assert_same<T: PartialEq + std::fmt::Debug>(got: &[T], want: &[T], what: &str) {
    if let Some(i) = (0..got.len().max(want.len())).find(|&i| got.get(i) != want.get(i)) {
        panic!(
            "{what}: {} entries, {} expected; first difference at {i}: {:?} instead of {:?}",
            got.len(),
            want.len(),
            got.get(i),
            want.get(i)
        );
    }
}

/// Reads subscription `id` through its `caught-up`: the `seq`s of its entries.
async fn catch_up(ws: &mut WsClient, id: &str) -> Vec<i64> {
    let got = ws.collect_until(|by| by.get(id).is_some_and(|m| m.iter().any(|x| x["type"] == "caught-up"))).await;
    common::ws::seqs(&got[id])
}

async fn reads_find_every_match_however_far_into_the_log(backend: Backend) {
    let db = TestDb::new(backend).await;
    let log = {
        let store = open_store(&db.url).await;
        append_long_log(&store, BLOCKS, EVENTS_PER_BLOCK, PRINCIPALS).await;
        all_entries(&store).await
    };
    let first_high = log.iter().find(|e| e.block_height >= HIGH).map(|e| e.seq).expect("entries at HIGH");
    assert!(first_high > HEIGHT_WINDOW, "the height starts {first_high} entries in");
    let app = TestApp::spawn_with(db, |c| c.ws_history_page = PAGE).await;

    let contract = synth::CONTRACT;
    let address = synth::principal(7);
    let contract_print = Filter::Contract { contract_id: contract.into(), event_type: Some(timebank_realtime::model::EventType::PrintEvent) };
    let cases = [
        (format!("fromBlockHeight={HIGH}"), Filter::All, HIGH),
        ("fromBlockHeight=140".to_string(), Filter::All, 140),
        (format!("contractId={contract}&fromBlockHeight={HIGH}"), Filter::Contract { contract_id: contract.into(), event_type: None }, HIGH),
        (format!("contractId={contract}&eventType=print_event"), contract_print.clone(), 0),
        (format!("address={address}"), Filter::User { address: address.clone() }, 0),
    ];
    for (query, filter, from_height) in &cases {
        let want = expected_listing(&log, filter, *from_height);
        assert!(!want.is_empty(), "{query}");
        for limit in [PAGE, 1000] {
            assert_same(&listing(&app, query, limit).await, &want, &format!("{query}, pages of {limit}"));
        }
    }

    // Catch-up near the head by height: the canonical events above it.
    let head = log.last().map_or(0, |e| e.seq);
    let undone: Vec<i64> = log.iter().filter_map(|e| e.rollback_of).collect();
    let mut ws = WsClient::connect(&app).await;
    for (id, filter, wire) in [
        ("all", Filter::All, json!({"type": "all"})),
        ("print", contract_print, json!({"type": "contract", "contractId": contract, "eventType": "print_event"})),
    ] {
        let reply = ws.subscribe(id, wire, Some(json!({"blockHeight": HIGH}))).await;
        assert_eq!(reply["headSeq"], head);
        let want: Vec<i64> = log
            .iter()
            .filter(|e| e.kind == EntryKind::Event && e.block_height > HIGH && !undone.contains(&e.seq) && filter.matches(e))
            .map(|e| e.seq)
            .collect();
        assert!(!want.is_empty());
        assert_same(&catch_up(&mut ws, id).await, &want, &format!("{id} since.blockHeight {HIGH}"));
    }
    // An address from the start: its events and their rollbacks.
    let user = Filter::User { address: address.clone() };
    ws.subscribe("user", json!({"type": "user", "address": address}), Some(json!({"seq": 0}))).await;
    let want: Vec<i64> = log.iter().filter(|e| user.matches(e)).map(|e| e.seq).collect();
    assert!(want.iter().any(|s| log.iter().any(|e| e.seq == *s && e.kind == EntryKind::Rollback)));
    assert_same(&catch_up(&mut ws, "user").await, &want, "user since.seq 0");
}

both_backends!(reads_find_every_match_however_far_into_the_log, reads_find_every_match_however_far_into_the_log);
