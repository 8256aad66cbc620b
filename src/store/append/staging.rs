//! Staged address rows.
//!
//! Each entry has one address row per principal it touches, keyed `(principal, seq)`. A
//! group of a busy dApp touches thousands of principals, so inserted straight into the
//! index its rows land on as many leaf pages, and SQLite writes every page a commit dirtied
//! to the WAL (4 KiB for a 16-byte row), then copies it into the database file. So the
//! appender inserts them into the small `address_recent` instead, and once it holds `limit`
//! rows, moves them all into `address_entries` in one sorted pass, in the next group's
//! transaction: each index page is then written once per merge instead of once per group.
//! Readers look in both tables ([`crate::store::read`]); a merge is atomic, so each row is
//! in exactly one. PostgreSQL logs each index insert rather than each dirtied page, so it
//! does not stage by default (`ADDRESS_MERGE_ROWS`).

use super::conn::WriteConn;
use crate::store::backend::on_backend;
use crate::store::classify;
use crate::store::schema::address_recent;
use crate::store::StoreError;
use diesel::prelude::*;
use diesel_async::{RunQueryDsl, SimpleAsyncConnection};

#[derive(Clone, Copy)]
pub(super) struct Staging {
    /// Rows staged before a merge; 0: no staging, rows go straight into the index.
    pub limit: u64,
    /// Rows staged now, if known.
    pub staged: Option<u64>,
}

const MERGE_ADDRESSES: &str =
    "INSERT INTO address_entries (principal, seq) SELECT principal, seq FROM address_recent ORDER BY principal, seq";

/// Moves every staged address row into the index, when `staging` says it is time. Returns
/// the rows staged afterwards (`None` without staging).
pub(super) async fn merge_addresses(conn: &mut WriteConn, staging: Staging) -> Result<Option<u64>, StoreError> {
    if staging.limit == 0 {
        return Ok(None);
    }
    let staged = match staging.staged {
        Some(n) => n,
        None => {
            let n: i64 =
                on_backend!(&mut conn.0, |c| address_recent::table.count().get_result(c).await).map_err(classify)?;
            n.max(0) as u64
        }
    };
    if staged < staging.limit {
        return Ok(Some(staged));
    }
    let empty = conn.empty_recent_sql();
    on_backend!(&mut conn.0, |c| c.batch_execute(&format!("{MERGE_ADDRESSES}; {empty};")).await).map_err(classify)?;
    tracing::debug!(rows = staged, "address rows merged");
    Ok(Some(0))
}
