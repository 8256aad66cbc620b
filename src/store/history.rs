//! History reads for WebSocket catch-up: delivered entries (events and rollbacks) matching
//! a filter, in `seq` order, in pages bounded above by the topic's handover `seq`.
//!
//! Every query is keyset-paged by `seq` and served by an index: `(contract_key, seq)`,
//! `(type_code, seq)`, `address_entries (principal, seq)`, `(block_height, seq)`.

use crate::model::{EntryKind, LogEntry};
use super::read::{entry_from_row, principal_number, touches, MAX_PAGE};
use super::rows::LogRow;
use super::schema::{blocks, log_entries};
use super::backend::on_backend;
use super::{Store, StoreError};
use crate::model::EventType;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

/// Which delivered entries a history read selects; every field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EntryFilter {
    pub contract_id: Option<String>,
    pub event_type: Option<EventType>,
    /// The address must be among the entry's `affectedAddresses`.
    pub address: Option<String>,
}

/// One page of history.
#[derive(Debug, Clone, Default)]
pub struct HistoryPage {
    pub entries: Vec<LogEntry>,
    /// The last `seq` the page looked at: the next page starts after it.
    pub cursor: i64,
    /// No matching entry remains in the range.
    pub done: bool,
}

/// Which kinds of entry a history query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kinds {
    EventsAndRollbacks,
    Events,
    Rollbacks,
}

/// Bounds of one history query.
struct Range<'a> {
    filter: &'a EntryFilter,
    kinds: Kinds,
    after: i64,
    upto: i64,
    above_height: Option<i64>,
    block_hash: Option<&'a str>,
    limit: i64,
}

impl Store {
    /// Events and rollbacks matching `filter` with `seq` in `(after, upto]`, in order.
    pub async fn history_since_seq(
        &self,
        filter: &EntryFilter,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<HistoryPage, StoreError> {
        let range = Range { filter, kinds: Kinds::EventsAndRollbacks, after, upto, above_height: None, block_hash: None, limit };
        let rows = self.load_range(&range).await?;
        page(rows, &range)
    }

    /// Events matching `filter` of blocks above `height`, with `seq` in `(after, upto]`,
    /// that no rollback with `seq <= upto` undid: the canonical view as of `upto`.
    pub async fn history_canonical_above(
        &self,
        filter: &EntryFilter,
        height: i64,
        after: i64,
        upto: i64,
        limit: i64,
    ) -> Result<HistoryPage, StoreError> {
        let range = Range { filter, kinds: Kinds::Events, after, upto, above_height: Some(height), block_hash: None, limit };
        let rows = self.load_range(&range).await?;
        let mut page = page(rows, &range)?;
        let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        if !seqs.is_empty() {
            let undone: Vec<Option<i64>> = on_backend!(&mut self.inner.conn().await?, |c| log_entries::table
                .filter(log_entries::rollback_of.eq_any(&seqs))
                .filter(log_entries::seq.le(upto))
                .select(log_entries::rollback_of)
                .load(c)
                .await?);
            page.entries.retain(|e| !undone.contains(&Some(e.seq)));
        }
        Ok(page)
    }

    /// Rollback entries matching `filter` of block `block_hash` with `seq` in
    /// `(after, upto]`, in order.
    pub async fn history_rollbacks_of_block(
        &self,
        filter: &EntryFilter,
        block_hash: &str,
        after: i64,
        upto: i64,
    ) -> Result<Vec<LogEntry>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let range = Range {
                filter,
                kinds: Kinds::Rollbacks,
                after: cursor,
                upto,
                above_height: None,
                block_hash: Some(block_hash),
                limit: MAX_PAGE,
            };
            let rows = self.load_range(&range).await?;
            let p = page(rows, &range)?;
            out.extend(p.entries);
            if p.done {
                return Ok(out);
            }
            cursor = p.cursor;
        }
    }

    /// A block as the derived `blocks` table holds it: `(parent hash, canonical)`.
    pub async fn block_info(&self, block_hash: &str, height: i64) -> Result<Option<(Option<String>, bool)>, StoreError> {
        Ok(on_backend!(&mut self.inner.conn().await?, |c| blocks::table
            .filter(blocks::block_height.eq(height))
            .filter(blocks::block_hash.eq(block_hash))
            .select((blocks::parent_hash, blocks::canonical))
            .first(c)
            .await
            .optional()?))
    }

    /// The `seq` of the last `BlockApplied` marker of the block `(height, block_hash)`, up to
    /// `upto`: where the block's latest application starts.
    pub async fn last_applied_marker(&self, block_hash: &str, height: i64, upto: i64) -> Result<Option<i64>, StoreError> {
        Ok(on_backend!(&mut self.inner.conn().await?, |c| log_entries::table
            .filter(log_entries::block_height.eq(height))
            .filter(log_entries::block_hash.eq(block_hash))
            .filter(log_entries::kind.eq(EntryKind::BlockApplied as i16))
            .filter(log_entries::seq.le(upto))
            .select(diesel::dsl::max(log_entries::seq))
            .first::<Option<i64>>(c)
            .await?))
    }

    async fn load_range(&self, r: &Range<'_>) -> Result<Vec<LogRow>, StoreError> {
        let limit = r.limit.clamp(1, MAX_PAGE);
        let kinds: Vec<i16> = match r.kinds {
            Kinds::EventsAndRollbacks => vec![EntryKind::Event as i16, EntryKind::Rollback as i16],
            Kinds::Events => vec![EntryKind::Event as i16],
            Kinds::Rollbacks => vec![EntryKind::Rollback as i16],
        };
        Ok(on_backend!(&mut self.inner.conn().await?, |c| {
            let mut query = log_entries::table
                .filter(log_entries::seq.gt(r.after))
                .filter(log_entries::seq.le(r.upto))
                .filter(log_entries::kind.eq_any(kinds.clone()))
                .order(log_entries::seq.asc())
                .limit(limit)
                .select(LogRow::as_select())
                .into_boxed();
            if let Some(contract) = &r.filter.contract_id {
                query = query.filter(log_entries::contract_key.eq(principal_number(contract)));
            }
            if let Some(t) = r.filter.event_type {
                query = query.filter(log_entries::type_code.eq(t.code()));
            }
            if let Some(h) = r.above_height {
                query = query.filter(log_entries::block_height.gt(h));
            }
            if let Some(hash) = r.block_hash {
                query = query.filter(log_entries::block_hash.eq(hash));
            }
            if let Some(address) = &r.filter.address {
                query = query.filter(touches(address, r.after, r.upto));
            }
            query.load(c).await?
        }))
    }
}

fn page(rows: Vec<LogRow>, r: &Range<'_>) -> Result<HistoryPage, StoreError> {
    let done = (rows.len() as i64) < r.limit.clamp(1, MAX_PAGE);
    let cursor = rows.last().map_or(r.upto, |row| row.seq);
    let entries = rows.into_iter().map(entry_from_row).collect::<Result<Vec<_>, _>>()?;
    Ok(HistoryPage { entries, cursor: if done { r.upto } else { cursor }, done })
}
