//! Row structs of the log's tables.

use super::schema::{address_entries, blocks, log_entries, op_log, principals};
use diesel::prelude::*;

#[derive(Debug, Clone, Insertable, Queryable, Selectable)]
#[diesel(table_name = log_entries, treat_none_as_default_value = false)]
pub(crate) struct LogRow {
    pub seq: i64,
    pub kind: i16,
    pub block_hash: String,
    pub block_height: i64,
    pub tx_index: Option<i32>,
    pub event_index: Option<i32>,
    pub rollback_of: Option<i64>,
    pub body: String,
    pub committed_at: i64,
    /// [`crate::model::EventType::code`] of the entry's event type: the type index's key.
    pub type_code: Option<i16>,
    /// The number of the entry's contract id in `principals`: the contract index's key.
    /// The type, the contract id and the transaction hash are read from `body`.
    pub contract_key: Option<i64>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = address_entries, treat_none_as_default_value = false)]
pub(crate) struct AddressRow {
    pub principal: i64,
    pub seq: i64,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = principals, treat_none_as_default_value = false)]
pub(crate) struct PrincipalRow {
    pub id: i64,
    pub name: String,
}

#[derive(Debug, Clone, Insertable, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = blocks, treat_none_as_default_value = false)]
pub(crate) struct BlockRow {
    pub block_hash: String,
    pub block_height: i64,
    pub parent_hash: Option<String>,
    pub canonical: bool,
    /// The newest entry of the block: its last event or its latest marker.
    pub last_seq: i64,
    /// The marker of the block's latest application: while the block is canonical, its
    /// events are the event entries of this block with seq in `applied_seq..=last_seq`.
    pub applied_seq: i64,
}

/// The address row of an op entry (`op_log`).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = op_log, treat_none_as_default_value = false)]
pub(crate) struct OpLogRow {
    pub address: String,
    pub seq: i64,
    pub op_id: String,
    pub kind: i16,
}
