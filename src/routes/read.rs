//! Read API (PROTOCOL §1b).

use super::{ApiError, AppState};
use crate::store::{EventQuery, StoredEvent};
use actix_web::{web, HttpResponse};
use serde::Deserialize;

/// Page size when the client names none.
pub const DEFAULT_LIMIT: i64 = 100;

pub async fn head(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.store.head().await?))
}

#[derive(Debug, Deserialize)]
pub struct BlockParams {
    /// The block's height: the block is then found by its key (height, hash).
    height: Option<i64>,
}

/// `GET /api/blocks/{hash}[?height=N]`: the block entry plus `"canonical"`.
pub async fn block(
    state: web::Data<AppState>,
    hash: web::Path<String>,
    params: web::Query<BlockParams>,
) -> Result<HttpResponse, ApiError> {
    let (body, canonical) = state.store.block(&hash, params.height).await?.ok_or(ApiError::NotFound)?;
    let open = body.strip_suffix('}').unwrap_or(&body);
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(format!("{open},\"canonical\":{canonical}}}")))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventsParams {
    contract_id: Option<String>,
    address: Option<String>,
    event_type: Option<String>,
    after_seq: Option<i64>,
    from_block_height: Option<i64>,
    limit: Option<i64>,
}

pub async fn events(
    state: web::Data<AppState>,
    params: web::Query<EventsParams>,
) -> Result<HttpResponse, ApiError> {
    let p = params.into_inner();
    let event_type = match p.event_type.as_deref() {
        Some(t) => Some(t.parse().map_err(|e: crate::model::UnknownEventType| ApiError::BadRequest {
            code: "invalid_query",
            message: e.to_string(),
            path: "eventType".into(),
        })?),
        None => None,
    };
    let after_seq = p.after_seq.unwrap_or(0);
    let query = EventQuery {
        contract_id: p.contract_id,
        address: p.address,
        event_type,
        after_seq,
        from_block_height: p.from_block_height,
        limit: p.limit.unwrap_or(DEFAULT_LIMIT),
    };
    let events = state.store.events(&query).await?;
    Ok(HttpResponse::Ok().content_type("application/json").body(events_page(&events, after_seq)))
}

/// `{"events":[…],"nextAfterSeq":S}`, splicing the stored objects without re-encoding.
fn events_page(events: &[StoredEvent], after_seq: i64) -> String {
    let next = events.last().map_or(after_seq, |e| e.seq);
    let mut out = String::with_capacity(32 + events.iter().map(|e| e.body.len() + 1).sum::<usize>());
    out.push_str("{\"events\":[");
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&e.to_json());
    }
    out.push_str("],\"nextAfterSeq\":");
    out.push_str(&next.to_string());
    out.push('}');
    out
}
