//! Connection limits: the server's heartbeat closes silent peers and keeps live ones,
//! and an oversized frame closes the connection with 1009.

mod common;
use common::ws::WsClient;
use common::{Backend, TestApp, TestDb};
use serde_json::json;
use std::time::Duration;

async fn heartbeat_closes_silent_peers_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| {
        c.ws_heartbeat_secs = 1;
        c.ws_client_timeout_secs = 2;
    })
    .await;
    let mut live = WsClient::connect(&app).await;
    let mut silent = WsClient::connect(&app).await;
    // `live` reads (answering the server's pings); `silent` does not read at all.
    assert!(live.drain(Duration::from_secs(4)).await.is_empty());
    live.send(json!({"type": "ping"})).await;
    assert_eq!(live.recv().await, json!({"type": "pong"}), "a peer that answers pings stays connected");
    assert_eq!(silent.close_code(Duration::from_secs(5)).await, Some(1001), "a silent peer is closed (going away)");
}
both_backends!(heartbeat_closes_silent_peers_only, heartbeat_closes_silent_peers_only);

async fn oversized_frames_close_with_1009(backend: Backend) {
    let db = TestDb::new(backend).await;
    let app = TestApp::spawn_with(db, |c| c.ws_max_frame_bytes = 2048).await;
    let mut ws = WsClient::connect(&app).await;
    let filler = "x".repeat(1500);
    ws.send(json!({"type": "ping", "pad": filler})).await;
    assert_eq!(ws.recv().await, json!({"type": "pong"}), "frames under the limit are fine");
    let filler = "x".repeat(4096);
    ws.send(json!({"type": "ping", "pad": filler})).await;
    assert_eq!(ws.close_code(Duration::from_secs(5)).await, Some(1009));
}
both_backends!(oversized_frames_close_with_1009, oversized_frames_close_with_1009);
