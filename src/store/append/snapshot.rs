//! What a group reads before planning: the canonical state of the blocks it names.

use super::conn::WriteConn;
use super::group::GroupStart;
use crate::model::EventType;
use crate::store::backend::on_backend;
use crate::store::classify;
use crate::store::entry::BodyFields;
use crate::store::plan::{BlockState, EventDetail, Snapshot};
use crate::store::read::{block_events, block_markers};
use serde::Deserialize;
use crate::store::rows::LogRow;
use crate::store::schema::log_entries;
use crate::store::StoreError;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Values per `IN (…)` list.
const LOOKUP_CHUNK: usize = 1_000;

/// The canonical state of a group's blocks, from the rows read as it began.
pub(super) async fn load_snapshot(conn: &mut WriteConn, start: GroupStart) -> Result<Snapshot, StoreError> {
    let GroupStart { block_rows, rolled, .. } = start;
    let mut snapshot = Snapshot::default();
    for r in block_rows {
        snapshot.blocks.insert(
            r.block_hash,
            BlockState {
                stored: true,
                height: r.block_height,
                parent_hash: r.parent_hash,
                canonical: r.canonical,
                last_seq: r.last_seq,
                applied_seq: r.applied_seq,
            },
        );
    }
    // The events of each canonical block: its event entries since its latest application.
    // Only blocks seen before (redeliveries, rollbacks) get here, never a new block.
    for (hash, b) in snapshot.blocks.iter().filter(|(_, b)| b.canonical) {
        let rows: Vec<(i64, Option<i32>, Option<i32>)> =
            on_backend!(&mut conn.0, |c| block_events(hash, b.applied_seq, b.last_seq).load(c).await)
                .map_err(classify)?;
        let events = snapshot.events.entry(hash.clone()).or_default();
        for (seq, tx_index, event_index) in rows {
            match (tx_index, event_index) {
                (Some(t), Some(e)) => events.insert((t, e), seq),
                _ => return Err(StoreError::Corrupt(format!("event entry {seq} has no identity"))),
            };
        }
        let bodies: Vec<String> =
            on_backend!(&mut conn.0, |c| block_markers(hash, b.applied_seq, b.last_seq).load(c).await)
                .map_err(classify)?;
        let listed = snapshot.txs.entry(hash.clone()).or_default();
        for body in bodies {
            let m: MarkerTxs = serde_json::from_str(&body)
                .map_err(|e| StoreError::Corrupt(format!("block entry of {hash}: {e}")))?;
            match m.transactions {
                Some(txs) => listed.extend(txs.into_iter().map(|t| t.tx_hash)),
                None => {
                    snapshot.unlisted.insert(hash.clone());
                }
            }
        }
    }
    // Rollbacks repeat the undone event's type, contract and addresses: load those for
    // the canonical events of every block that some payload rolls back.
    let to_detail: Vec<i64> = snapshot
        .events
        .iter()
        .filter(|(hash, _)| rolled.contains(hash.as_str()))
        .flat_map(|(_, evs)| evs.values().copied())
        .collect();
    for chunk in to_detail.chunks(LOOKUP_CHUNK) {
        let rows: Vec<LogRow> = on_backend!(&mut conn.0, |c| log_entries::table
            .filter(log_entries::seq.eq_any(chunk))
            .select(LogRow::as_select())
            .load(c)
            .await)
        .map_err(classify)?;
        for r in rows {
            let event_type = r
                .type_code
                .and_then(EventType::from_code)
                .ok_or_else(|| StoreError::Corrupt(format!("entry {} has no event type", r.seq)))?;
            let fields: BodyFields = serde_json::from_str(&r.body)
                .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", r.seq)))?;
            snapshot.details.insert(
                r.seq,
                EventDetail {
                    tx_hash: fields.tx_hash.unwrap_or_default(),
                    event_type,
                    contract_id: fields.contract_id,
                    affected_addresses: fields.affected_addresses,
                    block_height: r.block_height,
                },
            );
        }
    }
    Ok(snapshot)
}

/// The transactions a block entry lists, by hash.
#[derive(Deserialize)]
struct MarkerTxs {
    /// Absent from a store's earliest block entries.
    transactions: Option<Vec<MarkerTx>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkerTx {
    tx_hash: String,
}
