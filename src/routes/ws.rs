//! `GET /ws`: the WebSocket upgrade (PROTOCOL §3). The session actor does the rest.

use super::{ApiError, AppState};
use crate::actors::WsSession;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.shutdown.is_draining() {
        return Err(ApiError::ShuttingDown.into());
    }
    WsSession::new(state.topics.clone(), state.store.clone(), state.ws.clone())
        .closing_on(state.shutdown.clone())
        .start(&req, stream)
}
