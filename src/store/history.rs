//! History reads for WebSocket catch-up: delivered entries (events and rollbacks) matching
//! a filter, in `seq` order, in pages bounded above by the topic's handover `seq`.
//!
//! Every query is keyset-paged by `seq` and served by an index: `(contract_key, seq)`,
//! `(type_code, seq)`, `address_entries (principal, seq)`, `(block_height, seq)`.

use crate::model::{EntryKind, EventType};
use super::paged::{Height, Kinds, PageEntry, PageRow, PagedSql, Walk};
use super::read::MAX_PAGE;
use super::schema::{blocks, log_entries};
use super::backend::on_backend;
use super::{Store, StoreError};
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
    pub entries: Vec<PageEntry>,
    /// The last `seq` the page looked at: the next page starts after it.
    pub cursor: i64,
    /// No matching entry remains in the range.
    pub done: bool,
}

impl EntryFilter {
    /// The page of [`Store::history_since_seq`].
    pub fn since_seq_walk(&self, after: i64, upto: i64, limit: i64) -> Walk<'_> {
        Walk { upto: Some(upto), ..self.walk(Kinds::Delivered, after, limit) }
    }

    /// The page of [`Store::history_canonical_above`] (before the rollbacks are checked).
    pub fn canonical_above_walk(&self, height: i64, after: i64, upto: i64, limit: i64) -> Walk<'_> {
        Walk { upto: Some(upto), height: Some(Height::Above(height)), ..self.walk(Kinds::Events, after, limit) }
    }

    /// A page of [`Store::history_rollbacks_of_block`].
    pub fn rollbacks_of_block_walk<'a>(&'a self, block_hash: &'a str, after: i64, upto: i64) -> Walk<'a> {
        Walk { upto: Some(upto), block_hash: Some(block_hash), ..self.walk(Kinds::Rollbacks, after, MAX_PAGE) }
    }

    fn walk(&self, kinds: Kinds, after: i64, limit: i64) -> Walk<'_> {
        Walk {
            kinds,
            contract_id: self.contract_id.as_deref(),
            event_type: self.event_type,
            address: self.address.as_deref(),
            ..Walk::after(after, limit.clamp(1, MAX_PAGE))
        }
    }
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
        self.history_page(&filter.since_seq_walk(after, upto, limit)).await
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
        let mut page = self.history_page(&filter.canonical_above_walk(height, after, upto, limit)).await?;
        let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        if !seqs.is_empty() {
            let undone: Vec<Option<i64>> =
                on_backend!(&mut self.inner.conn().await?, |c| PagedSql::undone(&seqs, Some(upto)).load(c).await?);
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
    ) -> Result<Vec<PageEntry>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let p = self.history_page(&filter.rollbacks_of_block_walk(block_hash, cursor, upto)).await?;
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

    async fn history_page(&self, walk: &Walk<'_>) -> Result<HistoryPage, StoreError> {
        let rows: Vec<PageRow> = on_backend!(&mut self.inner.conn().await?, |c| PagedSql::walk(walk).load(c).await?);
        let upto = walk.upto.unwrap_or(i64::MAX);
        let done = (rows.len() as i64) < walk.limit;
        let cursor = if done { upto } else { rows.last().map_or(upto, |row| row.0) };
        let entries = rows.into_iter().map(PageEntry::from_row).collect::<Result<Vec<_>, _>>()?;
        Ok(HistoryPage { entries, cursor, done })
    }
}
