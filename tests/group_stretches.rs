//! A group commit large enough that the writer plans and writes it in stretches (the next
//! stretch planned while the last one is written) leaves the log that the same payloads
//! leave delivered one at a time: same entries, same canonical view, same answers to
//! address filters, although new principals turn up in every stretch and a late payload
//! rolls back a block applied early in the group.

mod common;
use common::{all_entries, open_store, Backend, TestDb};
use serde_json::Value;
use timebank_realtime::chainhook::parse_payload;
use timebank_realtime::model::Payload;
use timebank_realtime::model::EntryKind;
use timebank_realtime::store::{EventQuery, Store};
use timebank_realtime::synth;

const BLOCKS: i64 = 120;
const EVENTS_PER_BLOCK: usize = 5;
const PRINCIPALS: usize = 3_000;

fn payloads() -> Vec<Value> {
    let mut out: Vec<Value> = (1..=BLOCKS)
        .map(|h| synth::payload(vec![synth::block_mixed(h, EVENTS_PER_BLOCK, PRINCIPALS)], vec![]))
        .collect();
    // Block 2 is rolled back and another block takes its height; block 3 is redelivered.
    out.push(synth::payload(
        vec![synth::block_with_transfers(2, 1, 0, 3)],
        vec![synth::block_mixed(2, EVENTS_PER_BLOCK, PRINCIPALS)],
    ));
    out.push(synth::payload(vec![synth::block_mixed(3, EVENTS_PER_BLOCK, PRINCIPALS)], vec![]));
    out
}

fn parsed(payload: &Value) -> Payload {
    parse_payload(payload.to_string().as_bytes()).expect("payload parses")
}

async fn by_address(store: &Store, principal: &str) -> Vec<(i64, String, bool)> {
    let q = EventQuery { address: Some(principal.to_string()), limit: 1_000, ..EventQuery::default() };
    let events = store.events(&q).await.expect("address query");
    events.into_iter().map(|e| (e.seq, e.body, e.rolled_back)).collect()
}

async fn one_group_in_stretches(backend: Backend) {
    let (grouped_db, single_db) = (TestDb::new(backend).await, TestDb::new(backend).await);
    let (grouped, single) = (open_store(&grouped_db.url).await, open_store(&single_db.url).await);

    let mut writer = grouped.appender().await.expect("writer");
    let appended = writer.append(payloads().iter().map(parsed).collect()).await.expect("one group commits");
    let reports = appended.reports;
    let mut writer = single.appender().await.expect("writer");
    let mut one_by_one = Vec::new();
    for p in payloads() {
        let mut a = writer.append(vec![parsed(&p)]).await.expect("payload commits");
        one_by_one.append(&mut a.reports);
    }
    assert_eq!(reports, one_by_one);
    let rollback = &reports[BLOCKS as usize];
    assert_eq!((rollback.rolled_back_blocks, rollback.applied_blocks, rollback.events), (1, 1, 3));
    assert_eq!(reports[BLOCKS as usize + 1].duplicate_events, EVENTS_PER_BLOCK as u64);

    let (entries, expected) = (all_entries(&grouped).await, all_entries(&single).await);
    let events = entries.iter().filter(|e| e.kind == EntryKind::Event).count();
    assert_eq!(events, BLOCKS as usize * EVENTS_PER_BLOCK + 3);
    let rollbacks = entries.iter().filter(|e| e.kind == EntryKind::Rollback).count();
    assert_eq!(rollbacks, EVENTS_PER_BLOCK);
    assert_eq!(entries, expected);

    let view = grouped.canonical_view().await.expect("view");
    assert_eq!(view, grouped.canonical_view_from_log().await.expect("view from log"));
    assert_eq!(view, single.canonical_view().await.expect("view"));

    // Principal numbers are the store's own; what a client sees of them must not differ.
    let principals: std::collections::BTreeSet<&str> =
        entries.iter().flat_map(|e| e.affected_addresses.iter().map(String::as_str)).collect();
    assert!(principals.len() > 1_000, "new principals all through the group: {}", principals.len());
    for principal in principals.iter().step_by(97) {
        let found = by_address(&grouped, principal).await;
        assert!(!found.is_empty(), "{principal} has events");
        assert_eq!(found, by_address(&single, principal).await, "{principal}");
    }
}
both_backends!(one_group_in_stretches, one_group_in_stretches);

/// The entry whose insert the database refuses: in a stretch before the group's last (the
/// group has about 740 log rows; stretches after the first hold at least 256).
const REFUSED_SEQ: i64 = 400;

/// A statement that fails in a stretch before the last fails the whole group: nothing of it
/// is stored (the stretches before it are rolled back, the ones after it and the COMMIT do
/// not run), the caller gets the error, and the same writer commits the next group.
async fn a_failing_stretch_fails_the_whole_group(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = open_store(&db.url).await;
    if db.is_postgres() {
        db.execute(
            &format!(
                "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
                 RAISE EXCEPTION 'refused by the test'; END $$; \
                 CREATE TRIGGER refuse BEFORE INSERT ON log_entries FOR EACH ROW \
                 WHEN (NEW.seq = {REFUSED_SEQ}) EXECUTE FUNCTION refuse();"
            ),
        )
        .await;
    } else {
        db.execute(
            &format!(
                "CREATE TRIGGER refuse BEFORE INSERT ON log_entries WHEN NEW.seq = {REFUSED_SEQ} \
                 BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;"
            ),
        )
        .await;
    }
    let mut writer = store.appender().await.expect("writer");
    let err = writer.append(payloads().iter().map(parsed).collect()).await.expect_err("the group fails");
    assert!(err.to_string().contains("refused by the test"), "{err}");
    assert!(all_entries(&store).await.is_empty(), "nothing of the group is stored");
    assert_eq!(store.head().await.expect("head").head_seq, 0);
    assert!(store.canonical_view().await.expect("view").blocks.is_empty());

    db.execute(if db.is_postgres() { "DROP TRIGGER refuse ON log_entries" } else { "DROP TRIGGER refuse" }).await;
    let appended = writer.append(payloads().iter().map(parsed).collect()).await.expect("the next group commits");
    assert!(appended.head_seq > REFUSED_SEQ);
    let entries = all_entries(&store).await;
    let events = entries.iter().filter(|e| e.kind == EntryKind::Event).count();
    assert_eq!(events, BLOCKS as usize * EVENTS_PER_BLOCK + 3);
    assert_eq!(entries.last().map(|e| e.seq), Some(appended.head_seq));
}
both_backends!(a_failing_stretch_fails_the_whole_group, a_failing_stretch_fails_the_whole_group);
