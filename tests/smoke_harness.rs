mod common;
use common::{Backend, TestApp};
use timebank_realtime::synth;

async fn ingest_one_block(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let p = synth::payload(vec![synth::block_with_transfers(1, 0, 0, 3)], vec![]);
    let (status, body) = app.post_payload(&p).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events"], 3);
    assert_eq!(app.all_events().await.len(), 3);
}
both_backends!(ingest_one_block, ingest_one_block);
