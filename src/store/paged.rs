//! The log's paged reads: catch-up history pages, `GET /api/events` (and the `events`
//! command) and the fork walk of a stale `since.blockHash`.
//!
//! # Every page walks one index in `seq` order
//!
//! A page is the next `limit` matching entries after a `seq` cursor. Each page reads one
//! index from the cursor, in the index's order, and stops once it has its rows:
//!
//! - no filter: the log's primary key;
//! - a contract (with or without a type, which is tested on the rows): `(contract_key,
//!   seq)`; a type alone: `(type_code, seq)`;
//! - an address: `address_entries (principal, seq)` and `address_recent (principal, seq)`,
//!   the next `limit` `seq`s of each, then those log rows by key;
//! - the blocks of one height (the fork walk): `(block_height, seq)`.
//!
//! What the index does not hold (the entry's kind, a height bound, a type beside a contract)
//! is tested on the rows the walk reads. A page therefore costs what its rows cost, as long
//! as the index holds few entries that the rest of the filter drops, which is so for kinds
//! (one block marker per block) and for a contract's types.
//!
//! A height bound (`since.blockHeight`, `fromBlockHeight`) is the exception: the entries of
//! blocks below it come first in `seq` order, and walking through them would cost the whole
//! stretch. So a page with a height bound reads at most [`HEIGHT_WINDOW`] `seq`s past its
//! cursor, and a window that holds no match jumps to the next entry above the height, found
//! through the `blocks` table and the height index ([`PagedSql::next_at_height`]).
//!
//! # Plans that do not depend on statistics
//!
//! These queries are what PostgreSQL would choose with fresh statistics. Without any (a
//! table loaded since the last `ANALYZE`; autovacuum off), its estimates for `seq > $1 AND
//! seq <= $2 AND …` are a fraction of a percent of the table, so it prefers a bitmap scan
//! of the whole range and a sort, whose cost grows with the range, not the page: pages
//! then cost a whole catch-up squared. The connections that run them set
//! [`PG_PAGED_READ_SETTINGS`](super::connect::PG_PAGED_READ_SETTINGS), which leave such a
//! plan no way to sort or scan a table whole: the index walk is the only plan left, whatever
//! the statistics say. SQLite, without `sqlite_stat1`, already walks the index these shapes
//! name. `tests/paged_plans.rs` shows each plan on tables that were never analysed.

use super::backend::on_backend;
use super::read::{principal_number, MAX_PAGE};
use super::schema::{address_entries, address_recent, blocks, log_entries};
use super::{Store, StoreError};
use crate::model::{EntryKind, EventType};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text};
use diesel_async::RunQueryDsl;

/// How many `seq`s past its cursor a page with a height bound reads at most.
pub const HEIGHT_WINDOW: i64 = 16 * MAX_PAGE;

/// Which kinds of entry a page keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kinds {
    /// Events and rollbacks: what subscribers receive.
    Delivered,
    Events,
    Rollbacks,
}

impl Kinds {
    fn codes(self) -> Vec<i16> {
        match self {
            Kinds::Delivered => vec![EntryKind::Event as i16, EntryKind::Rollback as i16],
            Kinds::Events => vec![EntryKind::Event as i16],
            Kinds::Rollbacks => vec![EntryKind::Rollback as i16],
        }
    }
}

/// A bound on the block height of the entries a page keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Height {
    /// Blocks above this height (`since.blockHeight`).
    Above(i64),
    /// Blocks at this height or above (`fromBlockHeight`).
    AtLeast(i64),
    /// Blocks at this height (the fork walk): the page walks the height index.
    At(i64),
}

impl Height {
    /// For a lower bound, the highest height it excludes.
    fn below(self) -> Option<i64> {
        match self {
            Height::Above(h) => Some(h),
            Height::AtLeast(h) => Some(h.saturating_sub(1)),
            Height::At(_) => None,
        }
    }
}

/// One page of the log: entries of `kinds` with `seq` in `(after, upto]` matching every
/// filter that is set, in `seq` order, at most `limit` of them.
#[derive(Debug, Clone, Copy)]
pub struct Walk<'a> {
    pub after: i64,
    /// The last `seq` the page may reach (a catch-up's handover); `None`: the log's end.
    pub upto: Option<i64>,
    pub kinds: Kinds,
    pub contract_id: Option<&'a str>,
    pub event_type: Option<EventType>,
    /// The principal must be among the entry's `affectedAddresses`.
    pub address: Option<&'a str>,
    pub height: Option<Height>,
    pub block_hash: Option<&'a str>,
    pub limit: i64,
}

impl<'a> Walk<'a> {
    /// Every delivered entry after `after`, up to `limit` of them.
    pub fn after(after: i64, limit: i64) -> Walk<'a> {
        Walk {
            after,
            upto: None,
            kinds: Kinds::Delivered,
            contract_id: None,
            event_type: None,
            address: None,
            height: None,
            block_hash: None,
            limit,
        }
    }

    /// This walk with its range cut at `seq` `end` (the end of a height window).
    pub fn window(&self, end: i64) -> Walk<'a> {
        Walk { upto: Some(self.upto.map_or(end, |u| u.min(end))), ..*self }
    }

    fn end(&self) -> i64 {
        self.upto.unwrap_or(i64::MAX)
    }
}

/// An entry as a page returns it: what a subscriber's frame and the read API need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageEntry {
    pub seq: i64,
    pub kind: EntryKind,
    /// The wire object, as committed.
    pub body: String,
}

impl PageEntry {
    pub(crate) fn from_row((seq, kind, _, body): PageRow) -> Result<PageEntry, StoreError> {
        let kind = EntryKind::from_i16(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("entry {seq} has unknown kind {kind}")))?;
        Ok(PageEntry { seq, kind, body })
    }
}

/// What one page read found.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub entries: Vec<PageEntry>,
    /// The last `seq` the page looked at: the next page starts after it. A page may be
    /// short, even empty, and still not the last.
    pub cursor: i64,
    /// No matching entry remains in the range.
    pub done: bool,
}

/// A page's rows: `(seq, kind, type_code, body)`.
pub type PageRow = (i64, i16, Option<i16>, String);
/// The SQL type of [`PageRow`].
pub type PageRowSql = (BigInt, SmallInt, Nullable<SmallInt>, Text);
/// The query of one page, for backend `DB`.
pub type WalkQuery<'a, DB> = log_entries::BoxedQuery<'a, DB, PageRowSql>;
/// The next `seq`s of one principal in one of the address tables.
pub type AddressQuery<'a, DB> = address_entries::BoxedQuery<'a, DB, BigInt>;
pub type RecentAddressQuery<'a, DB> = address_recent::BoxedQuery<'a, DB, BigInt>;
/// The query that finds which of a page's events were rolled back: `(seq, rollback_of)`.
pub type UndoneQuery<'a, DB> = log_entries::BoxedQuery<'a, DB, (BigInt, Nullable<BigInt>)>;
/// The first `seq` after a cursor of an entry above a height.
pub type NextAtHeightQuery<'a, DB> = blocks::BoxedQuery<'a, DB, Nullable<BigInt>>;

/// The paged reads, for each backend (the same text, type-checked once per backend).
pub trait PagedSql: diesel::backend::Backend + Sized {
    /// The query of one [`Walk`] without an address: its index from `after`, in order.
    fn walk<'a>(w: &Walk<'a>) -> WalkQuery<'a, Self>;
    /// The next `limit` `seq`s of the walk's address in `address_entries`.
    fn address_walk<'a>(w: &Walk<'a>) -> AddressQuery<'a, Self>;
    /// The same in `address_recent` (rows the appender has not merged yet).
    fn recent_address_walk<'a>(w: &Walk<'a>) -> RecentAddressQuery<'a, Self>;
    /// The entries `seqs` (found by an address walk) that match the rest of the walk.
    fn rows<'a>(w: &Walk<'a>, seqs: &'a [i64]) -> WalkQuery<'a, Self>;
    /// The rollback entries that undo one of `seqs`, through the `rollback_of` index (a
    /// bound on their own `seq` would let the planner prefer the primary key's range).
    fn undone<'a>(seqs: &'a [i64]) -> UndoneQuery<'a, Self>;
    /// The first `seq` after `after` of an entry of a block above `height`: for each block
    /// above it that has entries after `after` (its `last_seq`), its height's first entry
    /// after `after`, through the height index.
    fn next_at_height<'a>(height: i64, after: i64) -> NextAtHeightQuery<'a, Self>;
}

/// The filters of a walk that its index does not answer, on `$query` (a [`WalkQuery`]).
macro_rules! rest_of_walk {
    ($query:ident, $w:expr) => {{
        let w = $w;
        let mut query = $query.filter(log_entries::kind.eq_any(w.kinds.codes()));
        if let Some(contract) = w.contract_id {
            query = query.filter(log_entries::contract_key.eq(principal_number(contract)));
        }
        // Beside a contract, the type is tested on the rows the contract's index gives:
        // with both in the query, the planner could walk the type's index instead, and
        // read every entry of that type from every contract.
        if let (None, Some(t)) = (w.contract_id, w.event_type) {
            query = query.filter(log_entries::type_code.eq(t.code()));
        }
        match w.height {
            Some(Height::Above(h)) => query = query.filter(log_entries::block_height.gt(h)),
            Some(Height::AtLeast(h)) => query = query.filter(log_entries::block_height.ge(h)),
            Some(Height::At(h)) => query = query.filter(log_entries::block_height.eq(h)),
            None => {}
        }
        if let Some(hash) = w.block_hash {
            query = query.filter(log_entries::block_hash.eq(hash));
        }
        query
    }};
}

macro_rules! paged_sql {
    ($db:ty) => {
        impl PagedSql for $db {
            fn walk<'a>(w: &Walk<'a>) -> WalkQuery<'a, $db> {
                let mut query = log_entries::table
                    .filter(log_entries::seq.gt(w.after))
                    .order(log_entries::seq.asc())
                    .limit(w.limit)
                    .select((log_entries::seq, log_entries::kind, log_entries::type_code, log_entries::body))
                    .into_boxed();
                if let Some(upto) = w.upto {
                    query = query.filter(log_entries::seq.le(upto));
                }
                rest_of_walk!(query, w)
            }

            fn address_walk<'a>(w: &Walk<'a>) -> AddressQuery<'a, $db> {
                let number = principal_number(w.address.unwrap_or_default());
                let mut query = address_entries::table
                    .filter(address_entries::principal.nullable().eq(number))
                    .filter(address_entries::seq.gt(w.after))
                    .order(address_entries::seq.asc())
                    .limit(w.limit)
                    .select(address_entries::seq)
                    .into_boxed();
                if let Some(upto) = w.upto {
                    query = query.filter(address_entries::seq.le(upto));
                }
                query
            }

            fn recent_address_walk<'a>(w: &Walk<'a>) -> RecentAddressQuery<'a, $db> {
                let number = principal_number(w.address.unwrap_or_default());
                let mut query = address_recent::table
                    .filter(address_recent::principal.nullable().eq(number))
                    .filter(address_recent::seq.gt(w.after))
                    .order(address_recent::seq.asc())
                    .limit(w.limit)
                    .select(address_recent::seq)
                    .into_boxed();
                if let Some(upto) = w.upto {
                    query = query.filter(address_recent::seq.le(upto));
                }
                query
            }

            fn rows<'a>(w: &Walk<'a>, seqs: &'a [i64]) -> WalkQuery<'a, $db> {
                let query = log_entries::table
                    .filter(log_entries::seq.eq_any(seqs))
                    .select((log_entries::seq, log_entries::kind, log_entries::type_code, log_entries::body))
                    .into_boxed();
                rest_of_walk!(query, w)
            }

            fn undone<'a>(seqs: &'a [i64]) -> UndoneQuery<'a, $db> {
                log_entries::table
                    .filter(log_entries::rollback_of.eq_any(seqs))
                    .select((log_entries::seq, log_entries::rollback_of))
                    .into_boxed()
            }

            fn next_at_height<'a>(height: i64, after: i64) -> NextAtHeightQuery<'a, $db> {
                let first_after = log_entries::table
                    .filter(log_entries::block_height.eq(blocks::block_height))
                    .filter(log_entries::seq.gt(after))
                    .order(log_entries::seq.asc())
                    .limit(1)
                    .select(log_entries::seq)
                    .single_value();
                blocks::table
                    .filter(blocks::block_height.gt(height))
                    .filter(blocks::last_seq.gt(after))
                    .select(diesel::dsl::min(first_after))
                    .into_boxed()
            }
        }
    };
}

paged_sql!(diesel::pg::Pg);
paged_sql!(diesel::sqlite::Sqlite);

/// How many times one page read jumps over a stretch without matches before it returns an
/// empty page (the caller reads on from its cursor).
const JUMPS_PER_PAGE: usize = 2;

impl Store {
    /// One page of `w` (see the module's documentation for what it reads).
    pub async fn page(&self, w: &Walk<'_>) -> Result<Page, StoreError> {
        let below = w.height.and_then(Height::below);
        let mut w = *w;
        for _ in 0..=JUMPS_PER_PAGE {
            let page = match below {
                Some(_) if w.address.is_none() => {
                    let window_end = w.after.saturating_add(HEIGHT_WINDOW);
                    let page = self.walk_page(&w.window(window_end)).await?;
                    if page.done && window_end < w.end() {
                        Page { done: false, ..page }
                    } else {
                        page
                    }
                }
                _ => self.walk_page(&w).await?,
            };
            let Some(below) = below.filter(|_| page.entries.is_empty() && !page.done) else { return Ok(page) };
            // A stretch without matches: on to the next entry above the height.
            let next: Option<i64> = on_backend!(&mut self.inner.conn().await?, |c| {
                PagedSql::next_at_height(below, page.cursor).first(c).await?
            });
            match next {
                Some(next) if next <= w.end() => w.after = next - 1,
                _ => return Ok(Page { entries: Vec::new(), cursor: w.end(), done: true }),
            }
        }
        Ok(Page { entries: Vec::new(), cursor: w.after, done: false })
    }

    /// One walk of `w`'s index (for an address, of both address tables).
    async fn walk_page(&self, w: &Walk<'_>) -> Result<Page, StoreError> {
        let end = w.end();
        if w.address.is_none() {
            let rows: Vec<PageRow> = on_backend!(&mut self.inner.conn().await?, |c| PagedSql::walk(w).load(c).await?);
            let done = (rows.len() as i64) < w.limit;
            let cursor = if done { end } else { rows.last().map_or(end, |r| r.0) };
            return Ok(Page { entries: entries(rows, w)?, cursor, done });
        }
        let (mut seqs, recent): (Vec<i64>, Vec<i64>) = on_backend!(&mut self.inner.conn().await?, |c| {
            let merged: Vec<i64> = PagedSql::address_walk(w).load(c).await?;
            let recent: Vec<i64> = PagedSql::recent_address_walk(w).load(c).await?;
            (merged, recent)
        });
        // Each entry's address row is in one of the two tables: the page is the first
        // `limit` of both.
        seqs.extend(recent);
        seqs.sort_unstable();
        seqs.truncate(w.limit.max(0) as usize);
        let done = (seqs.len() as i64) < w.limit;
        let cursor = if done { end } else { seqs.last().copied().unwrap_or(end) };
        if seqs.is_empty() {
            return Ok(Page { entries: Vec::new(), cursor, done });
        }
        let mut rows: Vec<PageRow> =
            on_backend!(&mut self.inner.conn().await?, |c| PagedSql::rows(w, &seqs).load(c).await?);
        rows.sort_unstable_by_key(|r| r.0);
        Ok(Page { entries: entries(rows, w)?, cursor, done })
    }
}

/// The rows of a walk that match it (a type beside a contract is tested here).
fn entries(rows: Vec<PageRow>, w: &Walk<'_>) -> Result<Vec<PageEntry>, StoreError> {
    let wanted = w.contract_id.and(w.event_type).map(|t| t.code());
    rows.into_iter()
        .filter(|r| wanted.is_none() || r.2 == wanted)
        .map(PageEntry::from_row)
        .collect()
}
