//! Projection reads (PROTOCOL §5): `GET /api/accounts/{principal}`,
//! `/api/contracts/{contractId}`, `/api/entities/{kind}/{id}`, and `/api/projections`.

use super::{ApiError, AppState};
use crate::projections::read;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

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

#[derive(serde::Deserialize)]
struct EntityQuery {
    view: Option<String>,
}

/// `pendingOps` and `?view=optimistic` are the caller's own: the address of the client
/// token in `Authorization: Bearer` (a token that does not verify is 401; none: no ops).
/// An entity the chain does not know yet is answered (version 0, no fields) when the
/// caller has standing ops on it, so a device sees the entity its op creates.
async fn entity(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    query: web::Query<EntityQuery>,
) -> Result<HttpResponse, ApiError> {
    let (kind, id) = path.into_inner();
    let address = match req.headers().get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| v.split_once(' '))
                .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                .map(|(_, t)| t.trim())
                .ok_or(ApiError::Unauthorized)?;
            let identity = state.sign_in.tokens().verify(token, crate::auth::unix_now()).map_err(|_| ApiError::Unauthorized)?;
            Some(identity.address)
        }
    };
    let optimistic = query.view.as_deref() == Some("optimistic");
    let chain = read::entity(&state.store, &kind, &id).await?;
    let name = format!("{kind}:{id}");
    let standing = match (address.as_deref(), state.store.ops()) {
        (Some(a), Some(ops)) => {
            let feed = ops.lock();
            let resolver = feed.resolver();
            let pending: Vec<Value> = resolver.standing(a, &name).into_iter().map(pending_op).collect();
            let fields = chain.as_ref().and_then(|c| c.get("fields")).and_then(Value::as_object).cloned().unwrap_or_default();
            Some((pending, resolver.view(a, &name, &fields)))
        }
        _ => None,
    };
    let mut body = match (chain, &standing) {
        (Some(body), _) => body,
        (None, Some((pending, _))) if !pending.is_empty() => {
            json!({"kind": kind, "id": id, "version": 0, "fields": {}, "pendingOps": [], "seq": state.store.head().await.map(|h| h.head_seq).unwrap_or(0)})
        }
        (None, _) => return Err(ApiError::NotFound),
    };
    let (pending, view) = standing.unwrap_or_default();
    body["pendingOps"] = Value::Array(pending);
    if optimistic {
        body["optimistic"] = Value::Object(view);
    }
    Ok(HttpResponse::Ok().json(body))
}

/// One of the caller's standing ops, as `pendingOps` lists it.
fn pending_op(op: &crate::ops::OpRecord) -> Value {
    json!({
        "seq": op.seq,
        "opId": op.op_id,
        "kind": op.kind,
        "entity": op.entity,
        "status": op.status,
        "reason": op.reason,
        "txHash": op.tx_hash,
        "blockHeight": op.confirmation.as_ref().map(|c| c.height),
        "blockHash": op.confirmation.as_ref().map(|c| c.hash.clone()),
        "data": op.data,
        "baseVersion": op.base_version,
    })
}

async fn statuses(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let list = read::statuses(&state.store).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "projections": list })))
}
