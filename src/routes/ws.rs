//! `GET /ws`: the WebSocket upgrade (PROTOCOL §3). The session actor does the rest.

use super::AppState;
use crate::actors::WsSession;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    WsSession::new(state.topics.clone(), state.store.clone(), state.ws.clone()).start(&req, stream)
}
