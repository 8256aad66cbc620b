//! Liveness and readiness.

use super::{ApiError, AppState};
use crate::actors::GetStats;
use actix_web::{web, HttpResponse};

/// The process answers.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The store answers too; the body carries the supervisor's counters. A stopping server is
/// not ready: load balancers stop sending it new work.
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.shutdown.is_draining() {
        return Err(ApiError::ShuttingDown);
    }
    state.store.ping().await?;
    let stats = state
        .supervisor
        .send(GetStats)
        .await
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"status": "ready", "supervisor": stats})))
}
