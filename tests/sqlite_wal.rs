//! The SQLite WAL stays bounded while ingestion never pauses: the write connection leaves
//! checkpoints to a thread of its own, and once the WAL passes `SQLITE_WAL_LIMIT_MB` the
//! writer makes it start over between two group commits.
mod common;
use common::{Backend, TestApp, TestDb};
use futures_util::stream::{self, StreamExt};
use timebank_realtime::synth::{block_mixed, payload};

/// Payloads in flight at once: the writer always has a next group waiting.
const IN_FLIGHT: usize = 8;
const PAYLOADS: i64 = 240;
const EVENTS_PER_BLOCK: usize = 100;

#[actix_web::test]
async fn wal_stays_bounded_under_continuous_ingest() {
    let db = TestDb::new(Backend::Sqlite).await;
    let path = db.sqlite_path().expect("sqlite path");
    let wal = path.with_file_name(format!("{}-wal", path.file_name().and_then(|n| n.to_str()).expect("name")));
    let app = TestApp::spawn_with(db, |c| c.database.sqlite_wal_limit_mb = 1).await;

    let mut largest_wal = 0;
    let mut replies = stream::iter(1..=PAYLOADS)
        .map(|height| {
            let app = &app;
            async move { app.post_payload(&payload(vec![block_mixed(height, EVENTS_PER_BLOCK, 1_000)], vec![])).await }
        })
        .buffer_unordered(IN_FLIGHT);
    while let Some((status, report)) = replies.next().await {
        assert_eq!(status, 200, "{report}");
        largest_wal = largest_wal.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
    }
    let events = app.all_events().await.len();
    assert_eq!(events, PAYLOADS as usize * EVENTS_PER_BLOCK, "every event is stored");

    let written = std::fs::metadata(&path).expect("database file").len() + largest_wal;
    assert!(written > 16 << 20, "the run writes well past the limit ({written} bytes)");
    // The limit, plus what the groups committed while the restart was due (a group holds
    // at most IN_FLIGHT payloads here, well under 1 MiB each).
    assert!(largest_wal < 6 << 20, "WAL reached {largest_wal} bytes with a 1 MiB limit");
}
