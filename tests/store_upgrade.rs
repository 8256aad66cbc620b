//! Stores written by earlier versions are upgraded at start-up:
//! - before block event ranges (the per-event `canonical_events` table): the canonical view
//!   it held is the one served afterwards, and redeliveries and rollbacks act on it as before;
//! - before compact index keys (text keys in the address, contract and type indexes): every
//!   filter finds what it found before, and new events of known principals join them;
//! - before body-only text (log rows holding copies of the transaction hash, event type and
//!   contract id): entries read back as before, and rolling back an old event repeats them.
mod common;
use common::{open_store, Backend, TestApp, TestDb};
use serde_json::json;
use timebank_realtime::model::EventType;
use timebank_realtime::model::EntryKind;
use timebank_realtime::synth::{address, block_hash, block_with_transfers, payload, tx_hash};

/// The migrations in order, as diesel records them; a store "before X" had those before X.
const MIGRATIONS: [(&str, &str); 4] = [
    ("20261124000001", "2026-11-24-000001_create_log"),
    ("20261125000001", "2026-11-25-000001_create_projections"),
    ("20261125000002", "2026-11-25-000002_block_event_ranges"),
    ("20261125000003", "2026-11-25-000003_compact_keys"),
];

/// The schema of the first `applied` migrations, from the repository's own files, marked
/// as applied.
async fn old_schema(db: &TestDb, applied: usize) {
    let dialect = if db.is_postgres() { "postgres" } else { "sqlite" };
    let mut sql = String::from(
        "CREATE TABLE __diesel_schema_migrations (version VARCHAR(50) PRIMARY KEY NOT NULL, \
         run_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);",
    );
    for (version, dir) in &MIGRATIONS[..applied] {
        let path = format!("{}/migrations/{dialect}/{dir}/up.sql", env!("CARGO_MANIFEST_DIR"));
        sql.push_str(&std::fs::read_to_string(&path).expect("migration file"));
        sql.push_str(&format!("\nINSERT INTO __diesel_schema_migrations (version) VALUES ('{version}');\n"));
    }
    db.execute(&sql).await;
}

fn event_row(seq: i64, hash: &str, height: i64, tx: i32, ev: i32) -> String {
    format!(
        "({seq}, 1, '{hash}', {height}, '{}', {tx}, {ev}, 'stx_transfer_event', NULL, NULL, \
         '{{\"affectedAddresses\":[\"{}\"]}}', 0)",
        tx_hash(height, 0, tx as usize),
        address(0)
    )
}

fn marker_row(seq: i64, kind: i16, hash: &str, height: i64) -> String {
    format!("({seq}, {kind}, '{hash}', {height}, NULL, NULL, NULL, NULL, NULL, NULL, '{{}}', 0)")
}

async fn upgraded_store_keeps_its_canonical_view(backend: Backend) {
    let db = TestDb::new(backend).await;
    old_schema(&db, 2).await;
    // Block 1 applied with two events; block 2 applied, rolled back, applied again with
    // one event; block 3 applied with none.
    let (a, b, c) = (block_hash(1, 0), block_hash(2, 0), block_hash(3, 0));
    let rows = [
        marker_row(1, 3, &a, 1),
        event_row(2, &a, 1, 0, 0),
        event_row(3, &a, 1, 0, 1),
        marker_row(4, 3, &b, 2),
        event_row(5, &b, 2, 0, 1),
        format!(
            "(6, 2, '{b}', 2, '{}', NULL, NULL, 'stx_transfer_event', NULL, 5, '{{\"affectedAddresses\":[]}}', 0)",
            tx_hash(2, 0, 0)
        ),
        marker_row(7, 4, &b, 2),
        marker_row(8, 3, &b, 2),
        event_row(9, &b, 2, 0, 0),
        marker_row(10, 3, &c, 3),
    ];
    let canonical = if db.is_postgres() { "true" } else { "1" };
    db.execute(
        &format!(
            "INSERT INTO log_entries (seq, kind, block_hash, block_height, tx_hash, tx_index, event_index, \
             event_type, contract_id, rollback_of, body, committed_at) VALUES {};
             INSERT INTO blocks (block_hash, block_height, parent_hash, canonical, last_seq) VALUES
               ('{a}', 1, NULL, {canonical}, 3), ('{b}', 2, '{a}', {canonical}, 9), ('{c}', 3, '{b}', {canonical}, 10);
             INSERT INTO canonical_events (block_hash, tx_index, event_index, seq) VALUES
               ('{a}', 0, 0, 2), ('{a}', 0, 1, 3), ('{b}', 0, 0, 9);",
            rows.join(", ")
        ),
    )
    .await;

    let app = TestApp::spawn_with(db, |_| {}).await;
    let store = open_store(&app.db.url).await;
    let view = store.canonical_view().await.expect("view");
    assert_eq!(view, store.canonical_view_from_log().await.expect("view from log"));
    let events: Vec<_> = view.events.iter().map(|((h, t, e), s)| (h.clone(), *t, *e, *s)).collect();
    let mut expected = vec![(a.clone(), 0, 0, 2), (a.clone(), 0, 1, 3), (b.clone(), 0, 0, 9)];
    expected.sort();
    assert_eq!(events, expected);

    // Redelivering block 1 (same identities) stores nothing new.
    let (status, report) = app.post_payload(&payload(vec![block_with_transfers(1, 0, 0, 2)], vec![])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!((report["events"].as_u64(), report["duplicateEvents"].as_u64()), (Some(0), Some(2)), "{report}");
    assert_eq!(app.head().await["headSeq"], 10);

    // Rolling block 2 back undoes exactly its current event (seq 9), not the one of its
    // earlier application (seq 5, already undone by seq 6).
    let (status, report) = app.post_payload(&payload(vec![], vec![block_with_transfers(2, 0, 0, 1)])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rolledBackBlocks"], 1, "{report}");
    let entries = common::all_entries(&store).await;
    let undone: Vec<Option<i64>> = entries.iter().filter(|e| e.seq > 10).map(|e| e.rollback_of).collect();
    assert_eq!(undone, vec![Some(9), None], "one rollback entry for seq 9, then the block marker");
    let view = store.canonical_view().await.expect("view");
    assert_eq!(view, store.canonical_view_from_log().await.expect("view from log"));
    assert_eq!(view.blocks.get(&b), Some(&(2, false)));
    assert_eq!(view.events.len(), 2, "block 1's two events stay canonical");
}
both_backends!(upgraded_store_keeps_its_canonical_view, upgraded_store_keeps_its_canonical_view);

/// `seq`s `/api/events` returns for a query string.
async fn event_seqs(app: &TestApp, query: &str) -> Vec<i64> {
    let (status, page) = app.get_json(&format!("/api/events?{query}")).await;
    assert_eq!(status, 200, "{query}: {page}");
    page["events"].as_array().expect("events").iter().filter_map(|e| e["seq"].as_i64()).collect()
}

async fn upgraded_store_keeps_its_filters(backend: Backend) {
    let db = TestDb::new(backend).await;
    old_schema(&db, 3).await;
    let (a0, a1, a2) = (address(0), address(1), address(2));
    let contract = format!("{a0}.time-bank-core");
    let hash = block_hash(1, 0);
    let event = |seq: i64, ev: i32, event_type: &str, contract: Option<&str>, addresses: &[&str]| {
        let listed: Vec<String> = addresses.iter().map(|a| format!("\"{a}\"")).collect();
        format!(
            "({seq}, 1, '{hash}', 1, '{}', 0, {ev}, '{event_type}', {}, NULL, \
             '{{\"seq\":{seq},\"affectedAddresses\":[{}]}}', 0)",
            tx_hash(1, 0, 0),
            contract.map_or("NULL".to_string(), |c| format!("'{c}'")),
            listed.join(",")
        )
    };
    let rows = [
        marker_row(1, 3, &hash, 1),
        event(2, 0, "stx_transfer_event", None, &[a0, a1]),
        event(3, 1, "ft_transfer_event", Some(&contract), &[a1, a2]),
        event(4, 2, "print_event", Some(&contract), &[]),
    ];
    let canonical = if db.is_postgres() { "true" } else { "1" };
    db.execute(
        &format!(
            "INSERT INTO log_entries (seq, kind, block_hash, block_height, tx_hash, tx_index, event_index, \
             event_type, contract_id, rollback_of, body, committed_at) VALUES {};
             INSERT INTO entry_addresses (address, seq) VALUES ('{a0}', 2), ('{a1}', 2), ('{a1}', 3), ('{a2}', 3);
             INSERT INTO blocks (block_hash, block_height, parent_hash, canonical, last_seq, applied_seq) VALUES
               ('{hash}', 1, NULL, {canonical}, 4, 1);",
            rows.join(", ")
        ),
    )
    .await;

    let app = TestApp::spawn_with(db, |_| {}).await;
    assert_eq!(event_seqs(&app, &format!("address={a1}")).await, vec![2, 3]);
    assert_eq!(event_seqs(&app, &format!("contractId={contract}")).await, vec![3, 4]);
    assert_eq!(event_seqs(&app, "eventType=ft_transfer_event").await, vec![3]);
    assert_eq!(event_seqs(&app, &format!("address={a2}&contractId={contract}")).await, vec![3]);
    assert_eq!(event_seqs(&app, &format!("address={}", address(3))).await, Vec::<i64>::new());

    // Block 2: transfers a0 → a1 (seq 6) and a1 → a2 (seq 7). The writer finds the
    // principals the upgrade numbered instead of numbering them again.
    let (status, report) = app.post_payload(&payload(vec![block_with_transfers(2, 0, 0, 2)], vec![])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["events"], 2, "{report}");
    assert_eq!(event_seqs(&app, &format!("address={a1}")).await, vec![2, 3, 6, 7]);
    assert_eq!(event_seqs(&app, &format!("address={a2}")).await, vec![3, 7]);
    assert_eq!(event_seqs(&app, "eventType=stx_transfer_event").await, vec![2, 6, 7]);
    assert_eq!(event_seqs(&app, &format!("contractId={contract}")).await, vec![3, 4]);
}
both_backends!(upgraded_store_keeps_its_filters, upgraded_store_keeps_its_filters);

async fn upgraded_store_rolls_back_old_events_from_their_bodies(backend: Backend) {
    let db = TestDb::new(backend).await;
    old_schema(&db, 4).await;
    let (a0, a1, a2) = (address(0), address(1), address(2));
    let contract = format!("{a0}.time-bank-core");
    let hash = block_hash(1, 0);
    // Block 1 as that version stored it: a marker, an STX transfer (no contract) and an FT
    // transfer of `contract`, each event with its full event object as body and the text
    // copies in their own columns.
    let body = |seq: i64, tx: usize, event_type: EventType, contract: Option<&str>, addresses: [&str; 2]| {
        json!({"seq": seq, "txHash": tx_hash(1, 0, tx), "txIndex": tx, "eventIndex": 0, "blockHeight": 1,
               "blockHash": hash, "contractId": contract, "eventType": event_type.as_str(),
               "data": {"sender": addresses[0], "recipient": addresses[1], "amount": "5"},
               "affectedAddresses": addresses, "success": true, "timestamp": 1_700_000_000})
        .to_string()
    };
    let (stx, ft) = (EventType::StxTransferEvent, EventType::FtTransferEvent);
    let canonical = if db.is_postgres() { "true" } else { "1" };
    db.execute(
        &format!(
            "INSERT INTO principals (id, name) VALUES (1, '{a0}'), (2, '{a1}'), (3, '{a2}'), (4, '{contract}');
             INSERT INTO log_entries (seq, kind, block_hash, block_height, tx_hash, tx_index, event_index,
                 event_type, contract_id, rollback_of, body, committed_at, type_code, contract_key) VALUES
               (1, 3, '{hash}', 1, NULL, NULL, NULL, NULL, NULL, NULL, '{{}}', 0, NULL, NULL),
               (2, 1, '{hash}', 1, '{tx0}', 0, 0, '{stx_name}', NULL, NULL, '{body2}', 0, {stx_code}, NULL),
               (3, 1, '{hash}', 1, '{tx1}', 1, 0, '{ft_name}', '{contract}', NULL, '{body3}', 0, {ft_code}, 4);
             INSERT INTO address_entries (principal, seq) VALUES (1, 2), (2, 2), (2, 3), (3, 3);
             INSERT INTO blocks (block_hash, block_height, parent_hash, canonical, last_seq, applied_seq) VALUES
               ('{hash}', 1, NULL, {canonical}, 3, 1);",
            tx0 = tx_hash(1, 0, 0),
            tx1 = tx_hash(1, 0, 1),
            stx_name = stx.as_str(),
            ft_name = ft.as_str(),
            stx_code = stx.code(),
            ft_code = ft.code(),
            body2 = body(2, 0, stx, None, [a0, a1]),
            body3 = body(3, 1, ft, Some(&contract), [a1, a2]),
        ),
    )
    .await;

    let app = TestApp::spawn_with(db, |_| {}).await;
    let store = open_store(&app.db.url).await;
    let old = common::all_entries(&store).await;
    let seen: Vec<_> = old.iter().map(|e| (e.seq, e.event_type, e.contract_id.clone(), e.affected_addresses.clone())).collect();
    assert_eq!(
        seen,
        vec![
            (1, None, None, vec![]),
            (2, Some(stx), None, vec![a0.to_string(), a1.to_string()]),
            (3, Some(ft), Some(contract.clone()), vec![a1.to_string(), a2.to_string()]),
        ]
    );
    assert_eq!(event_seqs(&app, &format!("contractId={contract}&eventType={}", ft.as_str())).await, vec![3]);

    // Rolling block 1 back undoes both events, newest first; each rollback object repeats
    // its event's transaction hash, type, contract id and addresses, now read from the body.
    let (status, report) = app.post_payload(&payload(vec![], vec![block_with_transfers(1, 0, 0, 2)])).await;
    assert_eq!(status, 200, "{report}");
    assert_eq!(report["rolledBackBlocks"], 1, "{report}");
    let rollbacks: Vec<_> = common::all_entries(&store)
        .await
        .into_iter()
        .filter(|e| e.kind == EntryKind::Rollback)
        .map(|e| {
            let body: serde_json::Value = serde_json::from_str(&e.body).expect("rollback body");
            (e.rollback_of, e.event_type, e.contract_id, body["txHash"].clone(), body["contractId"].clone(),
             body["eventType"].clone(), body["affectedAddresses"].clone())
        })
        .collect();
    assert_eq!(
        rollbacks,
        vec![
            (Some(3), Some(ft), Some(contract.clone()), json!(tx_hash(1, 0, 1)), json!(contract), json!(ft.as_str()), json!([a1, a2])),
            (Some(2), Some(stx), None, json!(tx_hash(1, 0, 0)), json!(null), json!(stx.as_str()), json!([a0, a1])),
        ]
    );
    // The read API marks the old event as rolled back.
    let (status, page) = app.get_json(&format!("/api/events?contractId={contract}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["events"][0]["seq"], 3, "{page}");
    assert_eq!(page["events"][0]["rolledBack"], true, "{page}");
}
both_backends!(upgraded_store_rolls_back_old_events_from_their_bodies, upgraded_store_rolls_back_old_events_from_their_bodies);
