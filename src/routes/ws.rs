//! `GET /ws`: the WebSocket upgrade (PROTOCOL §3). The session actor does the rest,
//! including verifying the client token read here (PROTOCOL §4 Identity).

use super::{ApiError, AppState};
use crate::actors::WsSession;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn upgrade(
    req: HttpRequest,
    stream: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    if state.shutdown.is_draining() {
        return Err(ApiError::ShuttingDown.into());
    }
    let token = upgrade_token(&req);
    WsSession::new(
        state.topics.clone(),
        state.store.clone(),
        state.ws.clone(),
        state.sign_in.tokens().clone(),
        token,
    )
    .closing_on(state.shutdown.clone())
    .with_ops(state.supervisor.clone().recipient())
    .start(&req, stream)
}

#[derive(serde::Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// The client token of an upgrade request: `Authorization: Bearer <token>` when the header
/// is there (it wins over the query), else `?token=`. `Err` names what could not be read;
/// the session turns it into an `unauthorized` frame.
fn upgrade_token(req: &HttpRequest) -> Option<Result<String, String>> {
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        let bearer = value
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_string());
        return Some(bearer.ok_or_else(|| "Authorization must be `Bearer <token>`".to_string()));
    }
    match web::Query::<TokenQuery>::from_query(req.query_string()) {
        Ok(query) => query.into_inner().token.map(Ok),
        Err(e) => Some(Err(format!("cannot read the query string: {e}"))),
    }
}
