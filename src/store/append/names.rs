//! Principal and contract numbering.
//!
//! The log's rows name principals and contracts by number (`principals`), so the address
//! index and the contract column hold integers. Numbers are given inside the append
//! transaction, which serialises appends, so they stay unique; they are never changed, so
//! the appender may remember them across groups.

use super::conn::WriteConn;
use crate::store::backend::on_backend;
use crate::store::classify;
use crate::store::plan::FastMap;
use crate::store::rows::PrincipalRow;
use crate::store::schema::principals;
use crate::model::LogEntry;
use crate::store::StoreError;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use std::collections::BTreeSet;

/// Values per `IN (…)` list.
const LOOKUP_CHUNK: usize = 1_000;
/// Principal and contract numbers the appender remembers. Past this many it forgets them
/// all and looks up again, a query per group for the names it has not seen since.
const NAME_CACHE: usize = 262_144;

/// Committed `principals` rows: name → number. Only rows of committed transactions get
/// here, so an entry stays true.
#[derive(Default)]
pub(super) struct NameCache {
    known: FastMap<String, i64>,
}

impl NameCache {
    pub(super) fn known(&self) -> &FastMap<String, i64> {
        &self.known
    }

    /// Remembers the numbers a committed group looked up or made, within [`NAME_CACHE`].
    pub(super) fn remember(&mut self, numbered: FastMap<String, i64>) {
        if self.known.len() + numbered.len() > NAME_CACHE {
            self.known.clear();
        }
        self.known.extend(numbered);
    }
}

/// Numbers every contract id of `entries` and principal of `addresses` that neither `known`
/// nor `numbered` holds: the ones `principals` holds already, and the next free numbers for
/// new ones (in name order), all added to `numbered`. Returns the `principals` rows to
/// insert for the new ones. Rows of earlier stretches of the group are inserted by then.
pub(super) async fn number_names(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    numbered: &mut FastMap<String, i64>,
    entries: &[LogEntry],
    addresses: &[(String, i64)],
) -> Result<Vec<PrincipalRow>, StoreError> {
    let missing: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| e.contract_id.as_deref())
        .chain(addresses.iter().map(|(name, _)| name.as_str()))
        .filter(|name| !known.contains_key(*name) && !numbered.contains_key(*name))
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let missing: Vec<&str> = missing.into_iter().collect();
    let mut found_rows = 0;
    for chunk in missing.chunks(LOOKUP_CHUNK) {
        let found: Vec<(i64, String)> = on_backend!(&mut conn.0, |c| principals::table
            .filter(principals::name.eq_any(chunk))
            .select((principals::id, principals::name))
            .load(c)
            .await)
        .map_err(classify)?;
        found_rows += found.len();
        numbered.extend(found.into_iter().map(|(id, name)| (name, id)));
    }
    let mut new = Vec::new();
    if found_rows < missing.len() {
        let max: Option<i64> =
            on_backend!(&mut conn.0, |c| principals::table.select(diesel::dsl::max(principals::id)).first(c).await)
                .map_err(classify)?;
        let mut next = max.unwrap_or(0);
        for name in missing {
            if !numbered.contains_key(name) {
                next += 1;
                numbered.insert(name.to_string(), next);
                new.push(PrincipalRow { id: next, name: name.to_string() });
            }
        }
    }
    Ok(new)
}
