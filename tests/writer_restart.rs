//! The supervisor restarts the event-store writer when it stops on damaged data, and the
//! server goes on accepting deliveries.
mod common;
use common::{Backend, TestApp};
use timebank_realtime::synth::{block_with_transfers, payload};

async fn writer_restarts_after_damage(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (status, _) = app.post_payload(&payload(vec![block_with_transfers(1, 0, 0, 2)], vec![])).await;
    assert_eq!(status, 200);
    // Damage the stored body of an event: rolling its block back needs to read it.
    app.db.execute("UPDATE log_entries SET body = 'not json' WHERE kind = 1").await;
    let before = app.head().await;
    let (_, ready) = app.get_json("/readyz").await;
    assert_eq!(ready["supervisor"]["writerStarts"], 1, "{ready}");

    let (status, body) = app.post_payload(&payload(vec![], vec![block_with_transfers(1, 0, 0, 2)])).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(app.head().await, before, "a failed append stores nothing");

    // A fresh writer takes over (the supervisor reports its start): other deliveries are
    // accepted.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, ready) = app.get_json("/readyz").await;
        if ready["supervisor"]["writerStarts"] == 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the writer was not restarted: {ready}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (status, body) = app.post_payload(&payload(vec![block_with_transfers(2, 0, 0, 3)], vec![])).await;
    assert_eq!(status, 200, "the restarted writer accepts deliveries: {body}");
    let (_, ready) = app.get_json("/readyz").await;
    assert_eq!(ready["supervisor"]["writerStarts"], 2, "the writer was restarted once: {ready}");
    assert_eq!(app.head().await["headBlockHeight"], 2);
}
both_backends!(writer_restarts_after_damage, writer_restarts_after_damage);
