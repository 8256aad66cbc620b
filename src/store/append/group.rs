//! One group commit inside its transaction: plan the payloads in stretches, number the
//! names, write the rows, commit.

use super::conn::WriteConn;
use super::names::number_names;
use super::phases::{Phase, Phases};
use super::snapshot::load_snapshot;
use super::sqlite::Queued;
use super::staging::{merge_addresses, Staging};
use super::op_append::catch_up;
use super::ops::{OpRows, OpsShared};
use super::{Appended, GroupFailure};
use crate::model::Payload;
use crate::store::plan::{self, FastMap, FastSet};
use crate::store::rows::{AddressRow, BlockRow, LogRow, OpLogRow, PrincipalRow};
use crate::store::StoreError;

/// Log rows per stretch of a group that is written while the next stretch is planned: at
/// least this many, else an eighth of the group. Each stretch costs one more trip to the
/// database (a round trip on PostgreSQL, a hand-over to the connection's thread on SQLite).
const STRETCH_MIN_ROWS: usize = 256;
const STRETCHES_PER_GROUP: usize = 8;

/// Every row one stretch (or the end of a group) inserts, keys numbered.
pub(super) struct Rows {
    pub principals: Vec<PrincipalRow>,
    pub log: Vec<LogRow>,
    pub addresses: Vec<AddressRow>,
    /// Whether `addresses` go into `address_recent` (else into `address_entries`).
    pub staged: bool,
    /// Blocks without a stored row: inserted.
    pub new_blocks: Vec<BlockRow>,
    /// Blocks with a stored row: upserted.
    pub blocks: Vec<BlockRow>,
    /// The `op_log` rows of the op entries among `log`.
    pub ops: Vec<OpLogRow>,
}

/// The blocks a group's payloads name, each once, in order of first mention.
pub(super) struct WantedBlocks {
    /// Block identifiers, (height, hash).
    pub ids: Vec<(i64, String)>,
    /// The ones some payload rolls back.
    pub rolled: FastSet<String>,
}

impl WantedBlocks {
    pub(super) fn of(payloads: &[Payload]) -> WantedBlocks {
        let mut ids: Vec<(i64, String)> = Vec::new();
        let mut seen = FastSet::default();
        let mut rolled = FastSet::default();
        for p in payloads {
            for b in p.rollback.iter().chain(p.apply.iter()) {
                if seen.insert((b.height, b.hash.as_str())) {
                    ids.push((b.height, b.hash.clone()));
                }
            }
            for b in &p.rollback {
                rolled.insert(b.hash.clone());
            }
        }
        WantedBlocks { ids, rolled }
    }
}

/// What a group reads as its transaction begins.
pub(super) struct GroupStart {
    /// The log's head `seq` (0 when empty).
    pub head: i64,
    /// The `blocks` rows of the group's blocks that exist.
    pub block_rows: Vec<BlockRow>,
    pub rolled: FastSet<String>,
}

/// Appends inside the open transaction and commits it. Also returns the principal numbers
/// this group looked up or made, for the cache, and the address rows staged after it.
///
/// The group is planned in stretches of payloads: while one stretch's rows are written,
/// the next is planned, so the database (or SQLite's thread) and the planner work at once
/// instead of in turn. Block rows go last, once the whole group is planned. It is still one
/// transaction, and the rows are the ones planning the group at once would give.
pub(super) async fn append_in_transaction(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    payloads: Vec<Payload>,
    start: GroupStart,
    staging: Staging,
    ops: Option<&OpsShared>,
    phases: &mut Phases,
) -> Result<(Appended, FastMap<String, i64>, Option<u64>), GroupFailure> {
    let head = start.head;
    if let Some(ops) = ops {
        catch_up(conn, ops, head).await?;
    }
    let snapshot = load_snapshot(conn, start).await?;
    let mut staged = merge_addresses(conn, staging).await?;
    phases.lap(Phase::Load);
    let committed_at = chrono::Utc::now().timestamp_millis();
    let expected_rows: usize = payloads.iter().map(|p| p.apply_event_count() + p.apply.len()).sum();
    let stretch = (expected_rows / STRETCHES_PER_GROUP).max(STRETCH_MIN_ROWS);
    let mut planner = plan::Planner::new(head, snapshot, &payloads, committed_at);
    let mut payloads = payloads.into_iter();
    plan_stretch(&mut planner, &mut payloads, conn.first_stretch_rows(stretch))?;
    phases.lap(Phase::Plan);

    let mut numbered = FastMap::default();
    let mut queued = Queued::default();
    loop {
        let last = payloads.len() == 0;
        let taken = planner.take_rows();
        let mut rows = numbered_rows(conn, known, &mut numbered, taken, staged.is_some()).await?;
        staged = staged.map(|n| n + rows.addresses.len() as u64);
        if last {
            let plan::Plan { writes, reports, mut entries, mut head } = planner.finish()?;
            debug_assert!(writes.rows.is_empty() && writes.addresses.is_empty());
            rows.new_blocks = writes.new_blocks;
            rows.blocks = writes.block_upserts;
            if let Some(ops) = ops {
                // The decisions the group's entries cause, in the same transaction.
                let decided = decide(ops, &entries, head, committed_at)?;
                head = decided.1;
                rows.log.extend(decided.0.log);
                rows.ops = decided.0.ops;
                entries.extend(decided.0.entries);
            }
            phases.lap(Phase::Write);
            let new_head = (!entries.is_empty()).then_some(head);
            conn.write_and_commit(rows, queued, new_head).await?;
            phases.lap(Phase::Commit);
            return Ok((Appended { reports, entries, head_seq: head }, numbered, staged));
        }
        conn.write_stretch(rows, &mut queued, || plan_stretch(&mut planner, &mut payloads, stretch)).await?;
    }
}

/// Feeds the rules a group's entries; the `op-status` entries of their decisions follow
/// the group's last entry. Returns them and the new head.
fn decide(ops: &OpsShared, entries: &[crate::model::LogEntry], head: i64, committed_at: i64) -> Result<(OpRows, i64), StoreError> {
    let mut feed = ops.lock();
    let mut rows = OpRows::new(committed_at);
    let mut next = head + 1;
    for e in entries {
        let decisions = feed.feed(e.seq, e.kind, e.event_type, e.rollback_of, &e.body)?;
        next = rows.push_decisions(&feed, &decisions, e.seq, next);
    }
    Ok((rows, next - 1))
}

/// Plans payloads until `rows` log rows wait to be written or the payloads run out.
fn plan_stretch(
    planner: &mut plan::Planner,
    payloads: &mut std::vec::IntoIter<Payload>,
    rows: usize,
) -> Result<(), StoreError> {
    while planner.pending_rows() < rows {
        match payloads.next() {
            Some(payload) => planner.push(payload)?,
            None => break,
        }
    }
    Ok(())
}

/// A stretch's rows with their keys numbered: contract ids and principals get the numbers
/// `known` or `numbered` hold, or new ones (added to `numbered`, and their `principals`
/// rows to the result).
async fn numbered_rows(
    conn: &mut WriteConn,
    known: &FastMap<String, i64>,
    numbered: &mut FastMap<String, i64>,
    taken: plan::Taken<'_>,
    staged: bool,
) -> Result<Rows, StoreError> {
    let plan::Taken { mut rows, addresses, entries } = taken;
    let new_principals = number_names(conn, known, numbered, entries, &addresses).await?;
    let number = |name: &str| {
        known
            .get(name)
            .or_else(|| numbered.get(name))
            .copied()
            .ok_or_else(|| StoreError::Corrupt(format!("principal {name} has no number")))
    };
    debug_assert!(rows.iter().zip(entries).all(|(r, e)| r.seq == e.seq) && rows.len() == entries.len());
    for (row, entry) in rows.iter_mut().zip(entries) {
        if let Some(contract) = &entry.contract_id {
            row.contract_key = Some(number(contract)?);
        }
    }
    let mut address_rows = addresses
        .iter()
        .map(|(name, seq)| Ok(AddressRow { principal: number(name)?, seq: *seq }))
        .collect::<Result<Vec<_>, StoreError>>()?;
    // In key order, consecutive inserts into the address index land on the same or the
    // next leaf page instead of one page per principal at random.
    address_rows.sort_unstable_by_key(|a| (a.principal, a.seq));
    Ok(Rows { principals: new_principals, log: rows, addresses: address_rows, staged, new_blocks: Vec::new(), blocks: Vec::new(), ops: Vec::new() })
}
