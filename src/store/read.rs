//! Read queries over the log: the read API, catch-up and projections use these and
//! nothing else.

use super::entry::BodyFields;
use crate::model::{EntryKind, LogEntry};
use super::rows::LogRow;
use super::schema::{blocks, log_entries, principals};
use super::backend::on_backend;
use super::paged::{Height, Kinds, PageEntry, PagedSql, Walk};
use super::{Store, StoreError};
use crate::model::EventType;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Largest page any read returns; callers page with `afterSeq`.
pub const MAX_PAGE: i64 = 1_000;

/// `GET /api/head`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Head {
    /// The last log entry's `seq` (0 for an empty log).
    pub head_seq: i64,
    /// The highest canonical block, if any.
    pub head_block_height: Option<i64>,
    pub head_block_hash: Option<String>,
}

/// Filters of `GET /api/events` (all optional, combined with AND).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub contract_id: Option<String>,
    pub address: Option<String>,
    pub event_type: Option<EventType>,
    /// Only entries with a larger `seq`.
    pub after_seq: i64,
    /// Only events of blocks at this height or above.
    pub from_block_height: Option<i64>,
    /// Page size, capped at [`MAX_PAGE`].
    pub limit: i64,
}

impl EventQuery {
    /// The page this query reads.
    pub fn walk(&self) -> Walk<'_> {
        Walk {
            after: self.after_seq,
            upto: None,
            kinds: Kinds::Events,
            contract_id: self.contract_id.as_deref(),
            event_type: self.event_type,
            address: self.address.as_deref(),
            height: self.from_block_height.map(Height::AtLeast),
            block_hash: None,
            limit: self.limit.clamp(1, MAX_PAGE),
        }
    }
}

/// An event entry as stored, and whether a later rollback entry undid it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: i64,
    /// The event object as committed.
    pub body: String,
    pub rolled_back: bool,
}

impl StoredEvent {
    /// The event object, with `"rolledBack":true` when it was rolled back.
    pub fn to_json(&self) -> String {
        if self.rolled_back {
            if let Some(open) = self.body.strip_suffix('}') {
                return format!("{open},\"rolledBack\":true}}");
            }
        }
        self.body.clone()
    }
}

/// Which blocks and event identities are canonical: the derived state of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CanonicalView {
    /// block hash → (height, canonical)
    pub blocks: BTreeMap<String, (i64, bool)>,
    /// (block hash, tx_index, event_index) → seq of the applied event
    pub events: BTreeMap<(String, i32, i32), i64>,
}

impl Store {
    /// Whether the store answers a trivial query.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_backend!(&mut self.inner.conn().await?, |c| {
            diesel::select(1.into_sql::<diesel::sql_types::Integer>())
                .get_result::<i32>(c)
                .await?;
        });
        Ok(())
    }

    pub async fn head(&self) -> Result<Head, StoreError> {
        on_backend!(&mut self.inner.conn().await?, |c| {
            let head_seq: Option<i64> = log_entries::table
                .select(diesel::dsl::max(log_entries::seq))
                .first(c)
                .await?;
            // Down the primary key (block_height, block_hash) from the top: the first
            // canonical block is at most a reorganisation's depth below.
            let block: Option<(String, i64)> = blocks::table
                .filter(blocks::canonical.eq(true))
                .order((blocks::block_height.desc(), blocks::last_seq.desc()))
                .select((blocks::block_hash, blocks::block_height))
                .first(c)
                .await
                .optional()?;
            Ok(Head {
                head_seq: head_seq.unwrap_or(0),
                head_block_height: block.as_ref().map(|b| b.1),
                head_block_hash: block.map(|b| b.0),
            })
        })
    }

    /// Event entries in `seq` order, canonical and rolled back alike.
    pub async fn events(&self, q: &EventQuery) -> Result<Vec<StoredEvent>, StoreError> {
        let mut walk = q.walk();
        let limit = walk.limit;
        let mut rows: Vec<PageEntry> = Vec::new();
        // A page may come back short (a height window without enough matches): read on.
        loop {
            let page = self.page(&walk).await?;
            rows.extend(page.entries);
            if page.done || rows.len() as i64 >= limit {
                break;
            }
            walk.after = page.cursor;
            walk.limit = limit - rows.len() as i64;
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        let undone: Vec<(i64, Option<i64>)> = if seqs.is_empty() {
            Vec::new()
        } else {
            on_backend!(&mut self.inner.conn().await?, |c| PagedSql::undone(&seqs).load(c).await?)
        };
        let undone: Vec<i64> = undone.into_iter().filter_map(|(_, of)| of).collect();
        Ok(rows
            .into_iter()
            .map(|e| StoredEvent { seq: e.seq, rolled_back: undone.contains(&e.seq), body: e.body })
            .collect())
    }

    /// Every entry (all kinds) with `seq` in `(after_seq, after_seq + limit]`, in order.
    pub async fn entries_after(&self, after_seq: i64, limit: i64) -> Result<Vec<LogEntry>, StoreError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let rows: Vec<LogRow> = on_backend!(&mut self.inner.conn().await?, |c| log_entries::table
            .filter(log_entries::seq.gt(after_seq))
            .order(log_entries::seq.asc())
            .limit(limit)
            .select(LogRow::as_select())
            .load(c)
            .await?);
        rows.into_iter().map(entry_from_row).collect()
    }

    /// The block entry (as committed when the block was last applied: hash, height,
    /// parent, timestamp, delivered transactions with their `success`) and whether the
    /// block is canonical now. `None` for a block never applied.
    ///
    /// With its `height`, the block is found by its key. Without, the `blocks` table is
    /// searched from the newest height down: blocks are keyed by (height, hash), and no
    /// index on the hash alone is kept, since every new block would write one page of it.
    pub async fn block(&self, hash: &str, height: Option<i64>) -> Result<Option<(String, bool)>, StoreError> {
        on_backend!(&mut self.inner.conn().await?, |c| {
            let mut query = blocks::table.filter(blocks::block_hash.eq(hash)).into_boxed();
            if let Some(height) = height {
                query = query.filter(blocks::block_height.eq(height));
            }
            let state: Option<(i64, bool)> = query
                .order(blocks::block_height.desc())
                .select((blocks::block_height, blocks::canonical))
                .first(c)
                .await
                .optional()?;
            let Some((height, canonical)) = state else { return Ok(None) };
            // The height index finds the block's entries without an index on the hash.
            let kinds: [i16; 2] = [EntryKind::BlockApplied as i16, EntryKind::BlockExtended as i16];
            let last_applied: Option<i64> = log_entries::table
                .filter(log_entries::block_height.eq(height))
                .filter(log_entries::block_hash.eq(hash))
                .filter(log_entries::kind.eq(kinds[0]))
                .select(diesel::dsl::max(log_entries::seq))
                .first(c)
                .await?;
            let Some(applied) = last_applied else { return Ok(None) };
            let bodies: Vec<String> = log_entries::table
                .filter(log_entries::block_height.eq(height))
                .filter(log_entries::block_hash.eq(hash))
                .filter(log_entries::kind.eq_any(kinds))
                .filter(log_entries::seq.ge(applied))
                .order(log_entries::seq.asc())
                .select(log_entries::body)
                .load(c)
                .await?;
            Ok(merge_block_entries(bodies).map(|b| (b, canonical)))
        })
    }

    /// The canonical view as the derived `blocks` table holds it now: a canonical block's
    /// events are its event entries since the marker of its latest application.
    pub async fn canonical_view(&self) -> Result<CanonicalView, StoreError> {
        type BlockRows = Vec<(String, i64, bool, i64, i64)>;
        type EventRows = Vec<(String, Option<i32>, Option<i32>, i64)>;
        let (blocks, events): (BlockRows, EventRows) = on_backend!(&mut self.inner.conn().await?, |c| {
            let b: BlockRows = blocks::table
                .select((
                    blocks::block_hash,
                    blocks::block_height,
                    blocks::canonical,
                    blocks::applied_seq,
                    blocks::last_seq,
                ))
                .load(c)
                .await?;
            let mut e: EventRows = Vec::new();
            for (hash, _, _, applied, last) in b.iter().filter(|b| b.2) {
                let rows: Vec<(i64, Option<i32>, Option<i32>)> =
                    block_events(hash, *applied, *last).load(c).await?;
                e.extend(rows.into_iter().map(|(seq, t, ev)| (hash.clone(), t, ev, seq)));
            }
            (b, e)
        });
        Ok(CanonicalView {
            blocks: blocks.into_iter().map(|(h, height, c, _, _)| (h, (height, c))).collect(),
            events: events
                .into_iter()
                .map(|(h, t, e, s)| ((h, t.unwrap_or(0), e.unwrap_or(0)), s))
                .collect(),
        })
    }

    /// The canonical view rebuilt from the log alone, reading it in pages. Equal to
    /// [`Store::canonical_view`] unless the derived tables were damaged.
    pub async fn canonical_view_from_log(&self) -> Result<CanonicalView, StoreError> {
        let mut view = CanonicalView::default();
        // seq of an applied event → its identity, to undo it when its rollback comes.
        let mut identity: BTreeMap<i64, (String, i32, i32)> = BTreeMap::new();
        let mut after = 0;
        loop {
            let rows: Vec<LogRow> = on_backend!(&mut self.inner.conn().await?, |c| log_entries::table
                .filter(log_entries::seq.gt(after))
                .order(log_entries::seq.asc())
                .limit(MAX_PAGE)
                .select(LogRow::as_select())
                .load(c)
                .await?);
            let Some(last) = rows.last() else { break };
            after = last.seq;
            for r in rows {
                match EntryKind::from_i16(r.kind) {
                    Some(EntryKind::BlockApplied) => {
                        view.blocks.insert(r.block_hash, (r.block_height, true));
                    }
                    Some(EntryKind::BlockRolledBack) => {
                        view.blocks.insert(r.block_hash, (r.block_height, false));
                    }
                    Some(EntryKind::Event) => {
                        let key = (r.block_hash, r.tx_index.unwrap_or(0), r.event_index.unwrap_or(0));
                        identity.insert(r.seq, key.clone());
                        view.events.insert(key, r.seq);
                    }
                    Some(EntryKind::Rollback) => {
                        if let Some(key) = r.rollback_of.and_then(|s| identity.remove(&s)) {
                            view.events.remove(&key);
                        }
                    }
                    // An extension adds transactions to a block already canonical; ops change
                    // nothing on chain.
                    Some(EntryKind::BlockExtended | EntryKind::Op | EntryKind::OpTx | EntryKind::OpCancel | EntryKind::OpStatus) | None => {}
                }
            }
        }
        Ok(view)
    }
}

/// The event entries of block `hash` with `seq` in `applied..=last`, as (seq, tx_index,
/// event_index): while the block is canonical, its canonical events (see `blocks.applied_seq`).
#[diesel::dsl::auto_type(no_type_alias)]
pub(crate) fn block_events<'a>(hash: &'a str, applied: i64, last: i64) -> _ {
    let kind: i16 = EntryKind::Event as i16;
    log_entries::table
        .filter(log_entries::seq.between(applied, last))
        .filter(log_entries::block_hash.eq(hash))
        .filter(log_entries::kind.eq(kind))
        .select((log_entries::seq, log_entries::tx_index, log_entries::event_index))
}

/// One block entry from the `block applied` body and the `block extended` ones after it:
/// the first, with the others' transactions appended in log order.
fn merge_block_entries(mut bodies: Vec<String>) -> Option<String> {
    use serde_json::Value;
    if bodies.len() <= 1 {
        return bodies.pop();
    }
    let parsed: Result<Vec<Value>, _> = bodies.iter().map(|b| serde_json::from_str::<Value>(b)).collect();
    let Ok(mut parsed) = parsed else { return bodies.into_iter().next() };
    let mut extra = Vec::new();
    for entry in &mut parsed[1..] {
        if let Some(Value::Array(txs)) = entry.get_mut("transactions").map(Value::take) {
            extra.extend(txs);
        }
    }
    if let Some(Value::Array(txs)) = parsed[0].get_mut("transactions") {
        txs.extend(extra);
    }
    Some(parsed[0].to_string())
}

/// The bodies of the block entries (`block applied`, `block extended`) of block `hash` with
/// `seq` in `applied..=last`: while the block is canonical, those of its latest application.
#[diesel::dsl::auto_type(no_type_alias)]
pub(crate) fn block_markers<'a>(hash: &'a str, applied: i64, last: i64) -> _ {
    let kinds: [i16; 2] = [EntryKind::BlockApplied as i16, EntryKind::BlockExtended as i16];
    log_entries::table
        .filter(log_entries::seq.between(applied, last))
        .filter(log_entries::block_hash.eq(hash))
        .filter(log_entries::kind.eq_any(kinds))
        .select(log_entries::body)
}

/// The number of principal or contract id `name` in `principals`, as a scalar subquery:
/// NULL, which matches nothing, for a name the log never mentioned.
#[diesel::dsl::auto_type]
pub(crate) fn principal_number<'a>(name: &'a str) -> _ {
    principals::table.filter(principals::name.eq(name)).select(principals::id).single_value()
}

pub(crate) fn entry_from_row(r: LogRow) -> Result<LogEntry, StoreError> {
    let kind = EntryKind::from_i16(r.kind)
        .ok_or_else(|| StoreError::Corrupt(format!("entry {} has unknown kind {}", r.seq, r.kind)))?;
    let event_type = match r.type_code {
        Some(code) => Some(
            EventType::from_code(code)
                .ok_or_else(|| StoreError::Corrupt(format!("entry {} has unknown type code {code}", r.seq)))?,
        ),
        None => None,
    };
    let (affected_addresses, contract_id) = if kind.is_delivered() {
        let fields = serde_json::from_str::<BodyFields>(&r.body)
            .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", r.seq)))?;
        (fields.affected_addresses, fields.contract_id)
    } else if kind.is_op() {
        // An op entry's one address (its owner) is in its body.
        #[derive(serde::Deserialize)]
        struct Owner {
            address: String,
        }
        let owner = serde_json::from_str::<Owner>(&r.body)
            .map_err(|e| StoreError::Corrupt(format!("entry {}: {e}", r.seq)))?;
        (vec![owner.address], None)
    } else {
        (Vec::new(), None)
    };
    Ok(LogEntry {
        seq: r.seq,
        kind,
        block_height: r.block_height,
        block_hash: r.block_hash,
        event_type,
        contract_id,
        affected_addresses,
        rollback_of: r.rollback_of,
        body: Arc::from(r.body),
    })
}

/// Reads of the log by `seq` for code that owns a connection of its own (the projection
/// engine's sync connection): each returns a query to run with either backend's `load`.
pub mod log_queries {
    use crate::store::schema::log_entries;
    use diesel::prelude::*;

    /// Up to `limit` entries after `after`, in `seq` order, as (seq, kind, rollback_of, body).
    #[diesel::dsl::auto_type(no_type_alias)]
    pub fn entries_after(after: i64, limit: i64) -> _ {
        log_entries::table
            .filter(log_entries::seq.gt(after))
            .order(log_entries::seq.asc())
            .limit(limit)
            .select((log_entries::seq, log_entries::kind, log_entries::rollback_of, log_entries::body))
    }

    /// The bodies of the entries `seqs`, as (seq, body).
    #[diesel::dsl::auto_type(no_type_alias)]
    pub fn bodies<'a>(seqs: &'a [i64]) -> _ {
        log_entries::table.filter(log_entries::seq.eq_any(seqs)).select((log_entries::seq, log_entries::body))
    }

    /// The log's last `seq` (no row when empty): the primary key's last entry.
    #[diesel::dsl::auto_type(no_type_alias)]
    pub fn last_seq() -> _ {
        log_entries::table.select(log_entries::seq).order(log_entries::seq.desc()).limit(1_i64)
    }
}
