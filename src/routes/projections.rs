//! Projection reads (PROTOCOL §5): `GET /api/accounts/{principal}`,
//! `/api/contracts/{contractId}`, `/api/entities/{kind}/{id}`, and `/api/projections`.

use super::{ApiError, AppState};
use crate::projections::read;
use actix_web::{web, HttpResponse};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/api/accounts/{principal}", web::get().to(account))
        .route("/api/contracts/{contract_id}", web::get().to(contract))
        .route("/api/entities/{kind}/{id}", web::get().to(entity))
        .route("/api/projections", web::get().to(statuses));
}

async fn account(
    state: web::Data<AppState>,
    principal: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let body = read::account(&state.store, &principal)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(body))
}

async fn contract(
    state: web::Data<AppState>,
    contract_id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let body = read::contract(&state.store, &contract_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(body))
}

async fn entity(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let body = read::entity(&state.store, &kind, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(body))
}

async fn statuses(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = read::statuses(&state.store).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "projections": list })))
}
