//! The webhook Chainhook delivers blocks to, `POST /api/webhooks/chainhook` (PROTOCOL §1):
//! authenticates the delivery, parses it with [`crate::chainhook`] and hands it to the
//! supervisor.

use super::{ApiError, AppState};
use crate::actors::Ingest;
use crate::chainhook::parse_payload;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use crate::telemetry::metrics as m;
use subtle::ConstantTimeEq;

/// Bodies above this size are parsed on the blocking pool so a large delivery does not
/// hold up the HTTP worker's other connections.
const PARSE_INLINE_LIMIT: usize = 256 * 1024;

pub async fn receive(req: HttpRequest, body: web::Payload, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let answer = store_delivery(req, body, state).await;
    let status = match &answer {
        Ok(res) => res.status(),
        Err(e) => actix_web::ResponseError::status_code(e),
    };
    metrics::counter!(m::WEBHOOK_REQUESTS, "status" => status.as_str().to_string()).increment(1);
    match &answer {
        Ok(_) => tracing::debug!(status = status.as_u16(), "webhook delivery stored"),
        Err(e) => tracing::info!(status = status.as_u16(), error = %e, "webhook delivery refused"),
    }
    answer
}

async fn store_delivery(
    req: HttpRequest,
    mut body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    // Authenticate before reading the body.
    if !authorized(&req, &state.webhook_secret) {
        return Err(ApiError::Unauthorized);
    }
    let limit = state.webhook_body_limit;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut bytes = web::BytesMut::with_capacity(declared.unwrap_or(8 * 1024).min(limit));
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| ApiError::BadRequest {
            code: "invalid_body",
            message: e.to_string(),
            path: String::new(),
        })?;
        if bytes.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        bytes.extend_from_slice(&chunk);
    }
    let bytes = bytes.freeze();
    let payload = if bytes.len() > PARSE_INLINE_LIMIT {
        web::block(move || parse_payload(&bytes))
            .await
            .map_err(|e| ApiError::Unavailable(e.to_string()))??
    } else {
        parse_payload(&bytes)?
    };
    let report = state
        .supervisor
        .send(Ingest { payload })
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))??;
    Ok(HttpResponse::Ok().json(report))
}

/// `Authorization` must be exactly `Bearer <secret>`, compared in constant time.
fn authorized(req: &HttpRequest, secret: &str) -> bool {
    let Some(value) = req.headers().get(header::AUTHORIZATION) else {
        return false;
    };
    let expected = format!("Bearer {secret}");
    value.as_bytes().ct_eq(expected.as_bytes()).into()
}
