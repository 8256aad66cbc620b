//! Read queries of the projections' HTTP endpoints (PROTOCOL §5), through the store's
//! read pool. One statement joins the projection row to its active generation, so a read
//! never mixes a state of one generation with the checkpoint of another.

use super::schema::{projection_rows, projections};
use super::{accounts, contracts, entities};
use crate::store::backend::on_backend;
use crate::store::{Store, StoreError};
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use serde_json::Value;

/// `GET /api/projections`: where each projection stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable)]
#[serde(rename_all = "camelCase")]
pub struct ProjectionStatus {
    pub name: String,
    pub code_version: i64,
    pub generation: i64,
    /// The last `seq` folded into the served state.
    pub checkpoint: i64,
    /// A rebuild in progress: its generation and how far it got.
    pub building_generation: Option<i64>,
    pub building_checkpoint: Option<i64>,
}

pub async fn statuses(store: &Store) -> Result<Vec<ProjectionStatus>, StoreError> {
    Ok(on_backend!(&mut store.inner().conn().await?, |c| projections::table
        .order(projections::name)
        .select((
            projections::name,
            projections::code_version,
            projections::active_generation,
            projections::checkpoint,
            projections::building_generation,
            projections::building_checkpoint,
        ))
        .load(c)
        .await?))
}

/// The served state of `key` and the projection's checkpoint.
pub async fn state(
    store: &Store,
    projection: &str,
    key: &str,
) -> Result<Option<(i64, String)>, StoreError> {
    Ok(on_backend!(&mut store.inner().conn().await?, |c| projection_rows::table
        .inner_join(
            projections::table.on(projections::name
                .eq(projection_rows::projection)
                .and(projections::active_generation.eq(projection_rows::generation))),
        )
        .filter(projection_rows::projection.eq(projection))
        .filter(projection_rows::key.eq(key))
        .select((projections::checkpoint, projection_rows::value))
        .first(c)
        .await
        .optional()?))
}

fn decode<T: serde::de::DeserializeOwned>(json: &str) -> Result<T, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(format!("projection state: {e}")))
}

pub async fn account(store: &Store, principal: &str) -> Result<Option<Value>, StoreError> {
    let Some((seq, json)) = state(store, accounts::NAME, principal).await? else {
        return Ok(None);
    };
    Ok(accounts::render(principal, &decode(&json)?, seq))
}

pub async fn contract(store: &Store, contract_id: &str) -> Result<Option<Value>, StoreError> {
    let Some((seq, json)) = state(store, contracts::NAME, contract_id).await? else {
        return Ok(None);
    };
    Ok(contracts::render(contract_id, &decode(&json)?, seq))
}

pub async fn entity(store: &Store, kind: &str, id: &str) -> Result<Option<Value>, StoreError> {
    let Some((seq, json)) = state(store, entities::NAME, &entities::key(kind, id)).await? else {
        return Ok(None);
    };
    Ok(entities::render(kind, id, &decode(&json)?, seq))
}

/// Every served state: (projection, key, state JSON), ordered. For tests and audits
/// comparing a live state with a rebuilt one (generations differ, states must not).
pub async fn dump(store: &Store) -> Result<Vec<(String, String, String)>, StoreError> {
    Ok(on_backend!(&mut store.inner().conn().await?, |c| projection_rows::table
        .inner_join(
            projections::table.on(projections::name
                .eq(projection_rows::projection)
                .and(projections::active_generation.eq(projection_rows::generation))),
        )
        .order((projection_rows::projection, projection_rows::key))
        .select((
            projection_rows::projection,
            projection_rows::key,
            projection_rows::value
        ))
        .load(c)
        .await?))
}
