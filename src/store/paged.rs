//! The log's paged reads as queries: catch-up history pages, `GET /api/events` (and the
//! `events` command) and the fork walk of a stale `since.blockHash`. Each function here
//! returns the query a page runs, so that what the server sends is what a test can show
//! the plan of.

use super::read::{principal_number, touches};
use super::schema::log_entries;
use super::StoreError;
use crate::model::{EntryKind, EventType};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, SmallInt, Text};

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
    pub(crate) fn from_row((seq, kind, body): PageRow) -> Result<PageEntry, StoreError> {
        let kind = EntryKind::from_i16(kind)
            .ok_or_else(|| StoreError::Corrupt(format!("entry {seq} has unknown kind {kind}")))?;
        Ok(PageEntry { seq, kind, body })
    }
}

/// A page's rows: `(seq, kind, body)`.
pub type PageRow = (i64, i16, String);
/// The SQL type of [`PageRow`].
pub type PageRowSql = (BigInt, SmallInt, Text);
/// The query of one page, for backend `DB`.
pub type WalkQuery<'a, DB> = log_entries::BoxedQuery<'a, DB, PageRowSql>;

/// The query that finds which of a page's events were rolled back.
pub type UndoneQuery<'a, DB> = log_entries::BoxedQuery<'a, DB, Nullable<BigInt>>;

/// The paged reads, for each backend (the same text, type-checked once per backend).
pub trait PagedSql: diesel::backend::Backend + Sized {
    /// The query of one [`Walk`].
    fn walk<'a>(w: &Walk<'a>) -> WalkQuery<'a, Self>;
    /// `rollback_of` of the rollback entries (up to `upto`) that undo one of `seqs`.
    fn undone<'a>(seqs: &'a [i64], upto: Option<i64>) -> UndoneQuery<'a, Self>;
}

macro_rules! paged_sql {
    ($db:ty) => {
        impl PagedSql for $db {
            fn walk<'a>(w: &Walk<'a>) -> WalkQuery<'a, $db> {
                let mut query = log_entries::table
                    .filter(log_entries::seq.gt(w.after))
                    .filter(log_entries::kind.eq_any(w.kinds.codes()))
                    .order(log_entries::seq.asc())
                    .limit(w.limit)
                    .select((log_entries::seq, log_entries::kind, log_entries::body))
                    .into_boxed();
                if let Some(upto) = w.upto {
                    query = query.filter(log_entries::seq.le(upto));
                }
                if let Some(contract) = w.contract_id {
                    query = query.filter(log_entries::contract_key.eq(principal_number(contract)));
                }
                if let Some(t) = w.event_type {
                    query = query.filter(log_entries::type_code.eq(t.code()));
                }
                match w.height {
                    Some(Height::Above(h)) => query = query.filter(log_entries::block_height.gt(h)),
                    Some(Height::AtLeast(h)) => query = query.filter(log_entries::block_height.ge(h)),
                    None => {}
                }
                if let Some(hash) = w.block_hash {
                    query = query.filter(log_entries::block_hash.eq(hash));
                }
                if let Some(address) = w.address {
                    query = query.filter(touches(address, w.after, w.upto.unwrap_or(i64::MAX)));
                }
                query
            }

            fn undone<'a>(seqs: &'a [i64], upto: Option<i64>) -> UndoneQuery<'a, $db> {
                let mut query = log_entries::table
                    .filter(log_entries::rollback_of.eq_any(seqs))
                    .select(log_entries::rollback_of)
                    .into_boxed();
                if let Some(upto) = upto {
                    query = query.filter(log_entries::seq.le(upto));
                }
                query
            }
        }
    };
}

paged_sql!(diesel::pg::Pg);
paged_sql!(diesel::sqlite::Sqlite);
