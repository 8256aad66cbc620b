//! History reads for WebSocket catch-up: delivered entries (events and rollbacks) matching
//! a filter, in `seq` order, in pages bounded above by the topic's handover `seq`.
//!
//! Every query is keyset-paged by `seq` and served by an index: `(contract_key, seq)`,
//! `(type_code, seq)`, `address_entries (principal, seq)`, `(block_height, seq)`.

use crate::model::{EntryKind, EventType};
use super::paged::{Height, Kinds, Page, PageEntry, PagedSql, Walk};
use super::read::MAX_PAGE;
use super::schema::{blocks, log_entries, op_log};
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
    /// The `ops` filter: the op entries of this address, and nothing else.
    pub ops_of: Option<String>,
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

/// A page of [`Store::history_rollbacks_of_block`]: the block's height's entries after
/// `after`, through the height index.
pub fn rollbacks_of_block_walk(block_hash: &str, height: i64, after: i64, upto: i64) -> Walk<'_> {
    Walk {
        upto: Some(upto),
        kinds: Kinds::Rollbacks,
        height: Some(Height::At(height)),
        block_hash: Some(block_hash),
        ..Walk::after(after, MAX_PAGE)
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
    ) -> Result<Page, StoreError> {
        if let Some(address) = &filter.ops_of {
            return self.ops_page(address, after, upto, limit).await;
        }
        self.page(&filter.since_seq_walk(after, upto, limit)).await
    }

    /// The delivered op entries of `address` with `seq` in `(after, upto]`, by the
    /// `op_log (address, seq)` key.
    async fn ops_page(&self, address: &str, after: i64, upto: i64, limit: i64) -> Result<Page, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let delivered = [EntryKind::Op as i16, EntryKind::OpTx as i16, EntryKind::OpStatus as i16];
        let rows: Vec<(i64, i16, String)> = on_backend!(&mut self.inner.conn().await?, |c| op_log::table
            .inner_join(log_entries::table)
            .filter(op_log::address.eq(address))
            .filter(op_log::seq.gt(after))
            .filter(op_log::seq.le(upto))
            .filter(op_log::kind.eq_any(delivered))
            .order(op_log::seq.asc())
            .limit(limit)
            .select((log_entries::seq, log_entries::kind, log_entries::body))
            .load(c)
            .await?);
        let done = (rows.len() as i64) < limit;
        let cursor = if done { upto } else { rows.last().map_or(upto, |r| r.0) };
        let entries = rows
            .into_iter()
            .map(|(seq, kind, body)| PageEntry::from_row((seq, kind, None, body)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Page { entries, cursor, done })
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
    ) -> Result<Page, StoreError> {
        let mut page = self.page(&filter.canonical_above_walk(height, after, upto, limit)).await?;
        let seqs: Vec<i64> = page.entries.iter().map(|e| e.seq).collect();
        if !seqs.is_empty() {
            let undone: Vec<(i64, Option<i64>)> =
                on_backend!(&mut self.inner.conn().await?, |c| PagedSql::undone(&seqs).load(c).await?);
            let undone: Vec<i64> = undone.into_iter().filter(|(seq, _)| *seq <= upto).filter_map(|(_, of)| of).collect();
            page.entries.retain(|e| !undone.contains(&e.seq));
        }
        Ok(page)
    }

    /// The rollback entries of block `(height, block_hash)` with `seq` in `(after, upto]`,
    /// in order: those of one application of the block, when `after` is its marker.
    pub async fn history_rollbacks_of_block(
        &self,
        block_hash: &str,
        height: i64,
        after: i64,
        upto: i64,
    ) -> Result<Vec<PageEntry>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = after;
        loop {
            let p = self.page(&rollbacks_of_block_walk(block_hash, height, cursor, upto)).await?;
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
}
