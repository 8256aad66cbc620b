//! The write planner, given/when/then, without I/O.
//!
//! `given()` starts from an empty log kept in memory; `.delivered(payload)` plans a payload
//! and keeps its rows as the writer would commit them. `.when_delivered(payload)` (or
//! `.when_group(payloads)` for one group commit) plans the next delivery from the snapshot
//! the writer would read — the same rule as `append::load_snapshot`: the stored rows of the
//! blocks the payloads name, the events of the canonical ones, and the details of the
//! events a payload rolls back. `then` shows what that delivery wrote, as lines such as
//! `applied 3`, `event 3 0.1` (transaction 0, event 1 of block 3), `undo 3 0.1` and
//! `rolled back 3`; blocks are named by height, with a letter for a fork (`3b`).

use super::*;
use crate::model::{Block, NewEvent};
use crate::store::entry::BodyFields;
use crate::synth;
use std::collections::BTreeSet;

// ---------------------------------------------------------------------------------------
// Building payloads

const FORKS: [&str; 4] = ["", "b", "c", "d"];

/// (height, fork) of a block name: `"3"` → (3, 0), `"3b"` → (3, 1).
fn parse_name(name: &str) -> (i64, u32) {
    let digits: String = name.chars().take_while(char::is_ascii_digit).collect();
    let fork = FORKS.iter().position(|f| *f == &name[digits.len()..]).expect("fork letter a-d");
    (digits.parse().expect("block height"), fork as u32)
}

fn hash(name: &str) -> String {
    let (height, fork) = parse_name(name);
    synth::block_hash(height, fork)
}

/// The name of a block hash made by [`hash`].
fn name_of(hash: &str) -> String {
    for height in 0..=64 {
        for (fork, letter) in FORKS.iter().enumerate() {
            if synth::block_hash(height, fork as u32) == hash {
                return format!("{height}{letter}");
            }
        }
    }
    panic!("{hash} is not a test block")
}

/// Event `ev` of transaction `tx` of a block at `height`. Its type, contract and principals
/// depend on its place, so a rollback entry that repeated another event's details shows.
fn event(height: i64, tx: i32, ev: i32) -> NewEvent {
    let n = (height as usize) * 100 + (tx as usize) * 10 + ev as usize;
    let (event_type, contract_id) = match n % 3 {
        0 => (EventType::StxTransferEvent, None),
        1 => (EventType::PrintEvent, Some(synth::CONTRACT.to_string())),
        _ => (EventType::FtTransferEvent, Some(format!("{}-{n}", synth::CONTRACT))),
    };
    NewEvent {
        tx_hash: synth::tx_hash(height, 0, tx as usize),
        tx_index: tx,
        event_index: ev,
        event_type,
        contract_id,
        data: serde_json::json!({ "n": n }),
        // The same principal twice: the address rows must still name it once.
        affected_addresses: vec![synth::principal(n), synth::principal(n + 1), synth::principal(n)],
        success: true,
        encoded: None,
    }
}

/// Block `name` carrying the events `(tx, ev)` listed (a predicate's view of the block).
fn block(name: &str, events: &[(i32, i32)]) -> Block {
    let (height, fork) = parse_name(name);
    Block {
        hash: hash(name),
        height,
        parent_hash: Some(synth::block_hash(height - 1, fork)),
        timestamp: 1_700_000_000 + height,
        transactions: transactions(height, events),
        events: events.iter().map(|&(tx, ev)| event(height, tx, ev)).collect(),
    }
}

/// The transactions a predicate delivers with the events `(tx, ev)`: each one once.
fn transactions(height: i64, events: &[(i32, i32)]) -> Vec<TxSummary> {
    let indexes: BTreeSet<i32> = events.iter().map(|&(tx, _)| tx).collect();
    indexes
        .into_iter()
        .map(|tx| TxSummary {
            tx_hash: synth::tx_hash(height, 0, tx as usize),
            tx_index: tx,
            sender: Some(synth::principal(tx as usize)),
            success: true,
            result: None,
            event_count: events.iter().filter(|e| e.0 == tx).count(),
        })
        .collect()
}

fn apply(blocks: Vec<Block>) -> Payload {
    Payload { rollback: Vec::new(), apply: blocks }
}

/// A reorg as Chainhook sends it: `rollback` newest first, `apply` oldest first.
fn reorg(rollback: Vec<Block>, apply: Vec<Block>) -> Payload {
    Payload { rollback, apply }
}

// ---------------------------------------------------------------------------------------
// The log in memory

/// What the writer's tables hold: log rows and block rows.
#[derive(Default)]
struct Log {
    rows: Vec<LogRow>,
    /// The rows of the address table, (principal, seq).
    addresses: Vec<(String, i64)>,
    blocks: BTreeMap<String, BlockRow>,
}

impl Log {
    fn head(&self) -> i64 {
        self.rows.last().map_or(0, |r| r.seq)
    }

    /// The canonical state of the blocks `payloads` name, as the writer reads it when a
    /// group begins (`append::load_snapshot`).
    fn snapshot(&self, payloads: &[Payload]) -> Snapshot {
        let rolled: BTreeSet<&str> =
            payloads.iter().flat_map(|p| p.rollback.iter().map(|b| b.hash.as_str())).collect();
        let mut snapshot = Snapshot::default();
        for b in payloads.iter().flat_map(|p| p.rollback.iter().chain(&p.apply)) {
            let Some(row) = self.blocks.get(&b.hash) else { continue };
            snapshot.blocks.insert(
                b.hash.clone(),
                BlockState {
                    stored: true,
                    height: row.block_height,
                    parent_hash: row.parent_hash.clone(),
                    canonical: row.canonical,
                    last_seq: row.last_seq,
                    applied_seq: row.applied_seq,
                },
            );
            if !row.canonical {
                continue;
            }
            let latest = |r: &&LogRow| r.block_hash == b.hash && (row.applied_seq..=row.last_seq).contains(&r.seq);
            let markers = [EntryKind::BlockApplied as i16, EntryKind::BlockExtended as i16];
            let listed = snapshot.txs.entry(b.hash.clone()).or_default();
            for r in self.rows.iter().filter(latest).filter(|r| markers.contains(&r.kind)) {
                let body: serde_json::Value = serde_json::from_str(&r.body).expect("block entry");
                for t in body["transactions"].as_array().expect("transactions") {
                    listed.insert(t["txHash"].as_str().expect("txHash").to_string());
                }
            }
            let events = snapshot.events.entry(b.hash.clone()).or_default();
            for r in self.rows.iter().filter(|r| {
                r.kind == EntryKind::Event as i16
                    && r.block_hash == b.hash
                    && (row.applied_seq..=row.last_seq).contains(&r.seq)
            }) {
                events.insert((r.tx_index.expect("tx_index"), r.event_index.expect("event_index")), r.seq);
                if rolled.contains(b.hash.as_str()) {
                    let fields: BodyFields = serde_json::from_str(&r.body).expect("event body");
                    snapshot.details.insert(
                        r.seq,
                        EventDetail {
                            tx_hash: fields.tx_hash.unwrap_or_default(),
                            event_type: r.type_code.and_then(EventType::from_code).expect("type code"),
                            contract_id: fields.contract_id,
                            affected_addresses: fields.affected_addresses,
                            block_height: r.block_height,
                        },
                    );
                }
            }
        }
        snapshot
    }

    /// Plans a group of payloads and keeps its rows, as one group commit does. With
    /// `take_between`, the rows are taken after every payload, as the writer does when it
    /// writes a group in stretches.
    fn commit(&mut self, payloads: Vec<Payload>, take_between: bool) -> Result<Vec<IngestReport>, StoreError> {
        let head = self.head();
        let mut planner = Planner::new(head, self.snapshot(&payloads), &payloads, 1_700_000_000);
        let mut rows = Vec::new();
        let mut addresses = Vec::new();
        for payload in payloads {
            planner.push(payload)?;
            if take_between && planner.pending_rows() > 0 {
                let taken = planner.take_rows();
                let seqs = |rows: &[LogRow]| rows.iter().map(|r| r.seq).collect::<Vec<_>>();
                assert_eq!(seqs(&taken.rows), taken.entries.iter().map(|e| e.seq).collect::<Vec<_>>());
                rows.extend(taken.rows);
                addresses.extend(taken.addresses);
            }
        }
        let plan = planner.finish()?;
        let entries = plan.entries;
        rows.extend(plan.writes.rows);
        addresses.extend(plan.writes.addresses);

        // What every plan keeps to: seqs follow the head without a gap, one entry per row.
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, (head + 1..=head + rows.len() as i64).collect::<Vec<_>>(), "seqs follow the head");
        assert_eq!(plan.head, head + rows.len() as i64);
        assert_eq!(entries.iter().map(|e| (e.seq, e.kind as i16)).collect::<Vec<_>>(),
                   rows.iter().map(|r| (r.seq, r.kind)).collect::<Vec<_>>(), "entries match rows");
        assert_eq!(plan.reports.last().map_or(head, |r| r.head_seq), plan.head);

        for b in plan.writes.new_blocks {
            assert!(self.blocks.insert(b.block_hash.clone(), b).is_none(), "a new block has no row yet");
        }
        for b in plan.writes.block_upserts {
            assert!(self.blocks.insert(b.block_hash.clone(), b).is_some(), "an upserted block has a row");
        }
        self.rows.extend(rows);
        self.addresses.extend(addresses);
        Ok(plan.reports)
    }
}

// ---------------------------------------------------------------------------------------
// given / when / then

struct Given {
    log: Log,
}

/// An empty log.
fn given() -> Given {
    Given { log: Log::default() }
}

impl Given {
    /// The log after `payload` was delivered (and committed).
    fn delivered(mut self, payload: Payload) -> Given {
        self.log.commit(vec![payload], false).expect("the given delivery plans");
        self
    }

    fn when_delivered(self, payload: Payload) -> Then {
        self.when_group(vec![payload])
    }

    /// Several deliveries planned in one group commit.
    fn when_group(self, payloads: Vec<Payload>) -> Then {
        self.plan(payloads, false)
    }

    /// As [`Given::when_group`], the writer taking the rows planned after every payload.
    fn when_group_written_in_stretches(self, payloads: Vec<Payload>) -> Then {
        self.plan(payloads, true)
    }

    fn plan(mut self, payloads: Vec<Payload>, take_between: bool) -> Then {
        let before = self.log.rows.len();
        let reports = self.log.commit(payloads, take_between).expect("the delivery plans");
        Then { log: self.log, before, reports }
    }
}

struct Then {
    log: Log,
    /// Rows the log held before the delivery.
    before: usize,
    reports: Vec<IngestReport>,
}

impl Then {
    /// The rows the delivery wrote, one line each.
    fn wrote(&self) -> Vec<String> {
        self.new_rows().map(|r| self.line(r)).collect()
    }

    fn line(&self, r: &LogRow) -> String {
        let block = name_of(&r.block_hash);
        let identity = |r: &LogRow| {
            format!("{}.{}", r.tx_index.expect("tx_index"), r.event_index.expect("event_index"))
        };
        match EntryKind::from_i16(r.kind).expect("known kind") {
            EntryKind::BlockApplied => format!("applied {block}"),
            EntryKind::BlockRolledBack => format!("rolled back {block}"),
            EntryKind::BlockExtended => {
                let body: serde_json::Value = serde_json::from_str(&r.body).expect("block entry");
                let txs: Vec<String> = body["transactions"]
                    .as_array()
                    .expect("transactions")
                    .iter()
                    .map(|t| t["txIndex"].to_string())
                    .collect();
                format!("extended {block} tx {}", txs.join(","))
            }
            EntryKind::Event => format!("event {block} {}", identity(r)),
            EntryKind::Rollback => {
                let original = self.row(r.rollback_of.expect("rollback_of"));
                assert_eq!(original.block_hash, r.block_hash, "a rollback undoes an event of its block");
                format!("undo {block} {}", identity(original))
            }
            kind @ (EntryKind::Op | EntryKind::OpTx | EntryKind::OpCancel | EntryKind::OpStatus) => {
                format!("{kind:?} {}", r.body)
            }
        }
    }

    fn new_rows(&self) -> impl Iterator<Item = &LogRow> {
        self.log.rows[self.before..].iter()
    }

    /// The principals the address rows name for the entry `seq`, in order.
    fn principals_of(&self, seq: i64) -> Vec<String> {
        self.log.addresses.iter().filter(|(_, s)| *s == seq).map(|(a, _)| a.clone()).collect()
    }

    fn row(&self, seq: i64) -> &LogRow {
        self.log.rows.iter().find(|r| r.seq == seq).expect("row of seq")
    }

    /// The one report of a single delivery.
    fn report(&self) -> IngestReport {
        assert_eq!(self.reports.len(), 1, "one payload, one report");
        self.reports[0]
    }

    /// Names of the blocks the log holds as canonical, by height.
    fn canonical(&self) -> Vec<String> {
        let mut rows: Vec<&BlockRow> = self.log.blocks.values().filter(|b| b.canonical).collect();
        rows.sort_by_key(|b| (b.block_height, b.block_hash.clone()));
        rows.iter().map(|b| name_of(&b.block_hash)).collect()
    }

    fn is_canonical(&self, name: &str) -> bool {
        self.log.blocks.get(&hash(name)).expect("block row").canonical
    }

    fn head(&self) -> i64 {
        self.log.head()
    }
}

fn lines(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// An [`IngestReport`]: (applied blocks, rolled-back blocks, events, duplicates, head seq).
fn report(applied: u64, rolled_back: u64, events: u64, duplicates: u64, head_seq: i64) -> IngestReport {
    IngestReport {
        applied_blocks: applied,
        rolled_back_blocks: rolled_back,
        events,
        duplicate_events: duplicates,
        head_seq,
    }
}

// ---------------------------------------------------------------------------------------
// Applying

#[test]
fn new_block_is_applied_with_its_events_in_order() {
    let then = given().when_delivered(apply(vec![block("1", &[(0, 0), (0, 1), (1, 0)])]));

    assert_eq!(then.wrote(), lines(&["applied 1", "event 1 0.0", "event 1 0.1", "event 1 1.0"]));
    assert_eq!(then.report(), report(1, 0, 3, 0, 4));
    assert_eq!(then.canonical(), lines(&["1"]));
}

#[test]
fn block_without_events_is_still_recorded_as_applied() {
    let then = given().when_delivered(apply(vec![block("1", &[]), block("2", &[])]));

    assert_eq!(then.wrote(), lines(&["applied 1", "applied 2"]));
    assert_eq!(then.report(), report(2, 0, 0, 0, 2));
    assert_eq!(then.canonical(), lines(&["1", "2"]));
}

#[test]
fn redelivered_block_adds_nothing() {
    let given = given().delivered(apply(vec![block("1", &[(0, 0), (0, 1)])]));

    let then = given.when_delivered(apply(vec![block("1", &[(0, 0), (0, 1)])]));

    assert_eq!(then.wrote(), lines(&[]));
    assert_eq!(then.report(), report(0, 0, 0, 2, 3), "both events are duplicates; the head stays");
}

#[test]
fn event_repeated_inside_one_payload_is_stored_once() {
    let then = given().when_delivered(apply(vec![block("1", &[(0, 0), (0, 0)])]));

    assert_eq!(then.wrote(), lines(&["applied 1", "event 1 0.0"]));
    assert_eq!(then.report(), report(1, 0, 1, 1, 2));
}

#[test]
fn each_entry_names_each_principal_once_in_the_address_rows() {
    let then = given().when_delivered(apply(vec![block("1", &[(0, 0)])]));

    assert_eq!(then.principals_of(then.head()), vec![synth::principal(100), synth::principal(101)]);
}

// ---------------------------------------------------------------------------------------
// Partial blocks: two predicates, two views of one block

#[test]
fn partial_block_from_a_second_predicate_adds_only_its_new_events() {
    // Predicate A matched transactions 0 and 1; predicate B matches 1 and 2.
    let given = given().delivered(apply(vec![block("1", &[(0, 0), (1, 0), (1, 1)])]));

    let then = given.when_delivered(apply(vec![block("1", &[(1, 0), (1, 1), (2, 0)])]));

    assert_eq!(then.wrote(), lines(&["extended 1 tx 2", "event 1 2.0"]), "the new transaction, then its event");
    assert_eq!(then.report(), report(0, 0, 1, 2, 6));
    assert_eq!(then.canonical(), lines(&["1"]));
}

#[test]
fn second_predicate_redelivered_adds_nothing() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0)])]))
        .delivered(apply(vec![block("1", &[(2, 0)])]));

    let then = given.when_delivered(apply(vec![block("1", &[(2, 0)])]));

    assert_eq!(then.wrote(), lines(&[]));
    assert_eq!(then.report(), report(0, 0, 0, 1, 4));
}

#[test]
fn both_predicates_in_one_group_extend_the_block_once() {
    let then = given().when_group(vec![
        apply(vec![block("1", &[(0, 0)])]),
        apply(vec![block("1", &[(0, 0), (1, 0)])]),
        apply(vec![block("1", &[(1, 0)])]),
    ]);

    assert_eq!(then.wrote(), lines(&["applied 1", "event 1 0.0", "extended 1 tx 1", "event 1 1.0"]));
}

#[test]
fn a_transaction_without_events_from_a_second_predicate_extends_the_block() {
    let given = given().delivered(apply(vec![block("1", &[(0, 0)])]));
    let mut second = block("1", &[]);
    second.transactions = transactions(1, &[(3, 0)]);

    let then = given.when_delivered(apply(vec![second]));

    assert_eq!(then.wrote(), lines(&["extended 1 tx 3"]));
    assert_eq!(then.report(), report(0, 0, 0, 0, 3));
}

#[test]
fn block_reapplied_after_its_rollback_lists_its_transactions_afresh() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0)])]))
        .delivered(apply(vec![block("1", &[(1, 0)])]))
        .delivered(reorg(vec![block("1", &[])], vec![]));

    let then = given.when_delivered(apply(vec![block("1", &[(1, 0)])]));

    assert_eq!(then.wrote(), lines(&["applied 1", "event 1 1.0"]), "a fresh application, no extension");
}

#[test]
fn rollback_after_a_partial_block_undoes_the_events_of_both_predicates() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0)])]))
        .delivered(apply(vec![block("1", &[(2, 0)])]));

    let then = given.when_delivered(reorg(vec![block("1", &[(0, 0)])], vec![]));

    assert_eq!(then.wrote(), lines(&["undo 1 2.0", "undo 1 0.0", "rolled back 1"]));
    assert_eq!(then.report(), report(0, 1, 0, 0, 7));
}

// ---------------------------------------------------------------------------------------
// Rollbacks

#[test]
fn rollback_undoes_each_event_newest_first_and_marks_the_block_non_canonical() {
    let given = given().delivered(apply(vec![block("1", &[]), block("2", &[(0, 0), (0, 1), (1, 0)])]));

    let then = given.when_delivered(reorg(vec![block("2", &[])], vec![]));

    assert_eq!(then.wrote(), lines(&["undo 2 1.0", "undo 2 0.1", "undo 2 0.0", "rolled back 2"]));
    assert_eq!(then.report(), report(0, 1, 0, 0, 9));
    assert!(!then.is_canonical("2"));
    assert_eq!(then.canonical(), lines(&["1"]));
}

#[test]
fn rollback_entry_repeats_the_undone_events_type_contract_and_addresses() {
    let given = given().delivered(apply(vec![block("1", &[(0, 0), (0, 1), (0, 2)])]));

    let then = given.when_delivered(reorg(vec![block("1", &[])], vec![]));

    let undos: Vec<&LogRow> = then.new_rows().filter(|r| r.kind == EntryKind::Rollback as i16).collect();
    assert_eq!(undos.len(), 3);
    for undo in undos {
        let original = then.row(undo.rollback_of.expect("rollback_of"));
        let was: EventObject = serde_json::from_str(&original.body).expect("event object");
        let is: RollbackObject = serde_json::from_str(&undo.body).expect("rollback object");
        assert_eq!(
            (is.seq, is.rollback_of, &is.tx_hash, is.block_height, &is.block_hash),
            (undo.seq, original.seq, &was.tx_hash, was.block_height, &was.block_hash)
        );
        assert_eq!(
            (is.event_type, &is.contract_id, &is.affected_addresses),
            (was.event_type, &was.contract_id, &was.affected_addresses),
            "undo of {}", original.seq
        );
        assert_eq!(undo.type_code, original.type_code, "indexed under the same type");
        assert_eq!(then.principals_of(undo.seq), then.principals_of(original.seq), "found under the same principals");
    }
}

#[test]
fn redelivered_rollback_adds_nothing() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0)])]))
        .delivered(reorg(vec![block("1", &[(0, 0)])], vec![]));

    let then = given.when_delivered(reorg(vec![block("1", &[(0, 0)])], vec![]));

    assert_eq!(then.wrote(), lines(&[]));
    assert_eq!(then.report(), report(0, 0, 0, 0, 4));
}

#[test]
fn rollback_of_a_block_never_seen_adds_nothing() {
    let given = given().delivered(apply(vec![block("1", &[(0, 0)])]));

    let then = given.when_delivered(reorg(vec![block("2", &[(0, 0)])], vec![]));

    assert_eq!(then.wrote(), lines(&[]));
    assert_eq!(then.report(), report(0, 0, 0, 0, 2));
}

#[test]
fn block_reapplied_after_its_rollback_gets_a_new_marker_and_new_event_entries() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0), (0, 1)])]))
        .delivered(reorg(vec![block("1", &[])], vec![]));

    let then = given.when_delivered(apply(vec![block("1", &[(0, 0), (0, 1)])]));

    assert_eq!(then.wrote(), lines(&["applied 1", "event 1 0.0", "event 1 0.1"]));
    assert_eq!(then.report(), report(1, 0, 2, 0, 9));
    assert!(then.is_canonical("1"));
    let row = &then.log.blocks[&hash("1")];
    assert_eq!((row.applied_seq, row.last_seq), (7, 9), "its canonical events are the new ones");
}

#[test]
fn block_reapplied_after_its_rollback_can_be_rolled_back_again() {
    let given = given()
        .delivered(apply(vec![block("1", &[(0, 0)])]))
        .delivered(reorg(vec![block("1", &[])], vec![]))
        .delivered(apply(vec![block("1", &[(0, 0)])]));

    let then = given.when_delivered(reorg(vec![block("1", &[])], vec![]));

    assert_eq!(then.wrote(), lines(&["undo 1 0.0", "rolled back 1"]));
    let undo = then.new_rows().next().expect("an undo");
    assert_eq!(undo.rollback_of, Some(6), "undoes the event of the latest application, not the first");
}

// ---------------------------------------------------------------------------------------
// Reorgs: rollback and apply in one payload

#[test]
fn reorg_rolls_back_newest_first_then_applies_oldest_first() {
    let given = given().delivered(apply(vec![
        block("1", &[(0, 0)]),
        block("2", &[(0, 0)]),
        block("3", &[(0, 0), (0, 1)]),
    ]));

    let then = given.when_delivered(reorg(
        vec![block("3", &[]), block("2", &[])],
        vec![block("2b", &[(0, 0)]), block("3b", &[(0, 0)]), block("4b", &[])],
    ));

    assert_eq!(
        then.wrote(),
        lines(&[
            "undo 3 0.1",
            "undo 3 0.0",
            "rolled back 3",
            "undo 2 0.0",
            "rolled back 2",
            "applied 2b",
            "event 2b 0.0",
            "applied 3b",
            "event 3b 0.0",
            "applied 4b",
        ])
    );
    assert_eq!(then.report(), report(3, 2, 2, 0, 17));
    assert_eq!(then.canonical(), lines(&["1", "2b", "3b", "4b"]));
}

#[test]
fn redelivered_reorg_adds_nothing() {
    let reorg_payload = || reorg(vec![block("2", &[])], vec![block("2b", &[(0, 0)])]);
    let given = given().delivered(apply(vec![block("1", &[]), block("2", &[(0, 0)])])).delivered(reorg_payload());

    let then = given.when_delivered(reorg_payload());

    assert_eq!(then.wrote(), lines(&[]));
    assert_eq!(then.report(), report(0, 0, 0, 1, 7));
    assert_eq!(then.canonical(), lines(&["1", "2b"]));
}

#[test]
fn payload_that_rolls_back_and_reapplies_a_block_keeps_it_and_its_events() {
    // Another predicate's events of block 2 stay: the block ends canonical either way.
    let given = given()
        .delivered(apply(vec![block("1", &[]), block("2", &[(0, 0)])]))
        .delivered(apply(vec![block("2", &[(5, 0)])]));

    let then = given.when_delivered(reorg(vec![block("2", &[])], vec![block("2", &[(0, 0), (0, 1)])]));

    assert_eq!(then.wrote(), lines(&["event 2 0.1"]));
    assert_eq!(then.report(), report(0, 0, 1, 1, 6));
    assert!(then.is_canonical("2"));
}

#[test]
fn reorg_back_to_the_first_fork_reapplies_its_blocks() {
    let given = given()
        .delivered(apply(vec![block("1", &[]), block("2", &[(0, 0)])]))
        .delivered(reorg(vec![block("2", &[])], vec![block("2b", &[(0, 0)])]));

    let then = given.when_delivered(reorg(vec![block("2b", &[])], vec![block("2", &[(0, 0)])]));

    assert_eq!(then.wrote(), lines(&["undo 2b 0.0", "rolled back 2b", "applied 2", "event 2 0.0"]));
    assert_eq!(then.report(), report(1, 1, 1, 0, 11));
    assert_eq!(then.canonical(), lines(&["1", "2"]));
}

// ---------------------------------------------------------------------------------------
// Groups: several payloads in one commit

#[test]
fn group_reports_each_payload_on_its_own() {
    let given = given().delivered(apply(vec![block("1", &[(0, 0)])]));

    let then = given.when_group(vec![
        apply(vec![block("1", &[(0, 0)])]),
        apply(vec![block("2", &[(0, 0), (0, 1)])]),
        reorg(vec![block("2", &[])], vec![block("2b", &[])]),
    ]);

    assert_eq!(
        then.reports,
        vec![report(0, 0, 0, 1, 2), report(1, 0, 2, 0, 5), report(1, 1, 0, 0, 9)],
        "counts per payload; head_seq is the head once that payload is in"
    );
}

#[test]
fn block_applied_and_rolled_back_in_one_group_undoes_the_events_the_group_added() {
    let then = given().when_group(vec![
        apply(vec![block("1", &[(0, 0), (0, 1)])]),
        reorg(vec![block("1", &[])], vec![block("1b", &[(0, 0)])]),
    ]);

    assert_eq!(
        then.wrote(),
        lines(&[
            "applied 1",
            "event 1 0.0",
            "event 1 0.1",
            "undo 1 0.1",
            "undo 1 0.0",
            "rolled back 1",
            "applied 1b",
            "event 1b 0.0",
        ])
    );
    assert_eq!(then.canonical(), lines(&["1b"]));
}

#[test]
fn group_equals_its_payloads_delivered_one_by_one() {
    let payloads = || {
        vec![
            apply(vec![block("1", &[(0, 0)]), block("2", &[(0, 0), (1, 0)])]),
            apply(vec![block("2", &[(1, 0), (2, 0)])]),
            reorg(vec![block("2", &[])], vec![block("2b", &[(0, 0)])]),
            apply(vec![block("2b", &[(0, 0)]), block("3b", &[(0, 0)])]),
        ]
    };
    let one_by_one = payloads().into_iter().fold(given(), |g, p| g.delivered(p));

    let then = given().when_group(payloads());

    let written = |log: &Log| {
        let rows: Vec<_> = log.rows.iter().map(|r| (r.seq, r.kind, r.rollback_of, r.body.clone())).collect();
        let blocks: Vec<_> = log.blocks.values().map(|b| (b.canonical, b.applied_seq, b.last_seq)).collect();
        (rows, blocks, log.addresses.clone())
    };
    assert_eq!(written(&then.log), written(&one_by_one.log));
}

#[test]
fn rows_taken_between_payloads_are_the_rows_planned_at_once() {
    let payloads = || {
        vec![
            apply(vec![block("1", &[(0, 0)]), block("2", &[(0, 0)])]),
            reorg(vec![block("2", &[])], vec![block("2b", &[(0, 0), (0, 1)])]),
            apply(vec![block("3b", &[(0, 0)])]),
        ]
    };
    let at_once = given().when_group(payloads());

    let in_stretches = given().when_group_written_in_stretches(payloads());

    assert_eq!(in_stretches.wrote(), at_once.wrote());
    assert_eq!(in_stretches.reports, at_once.reports);
    assert_eq!(in_stretches.log.addresses, at_once.log.addresses);
}

// ---------------------------------------------------------------------------------------
// Refusals

#[test]
fn canonical_event_without_its_details_is_refused_as_corrupt() {
    let log = given().delivered(apply(vec![block("1", &[(0, 0)])])).log;
    let payloads = vec![reorg(vec![block("1", &[])], vec![])];
    let mut snapshot = log.snapshot(&payloads);
    snapshot.details.clear();

    let mut planner = Planner::new(log.head(), snapshot, &payloads, 0);
    let result = planner.push(payloads.into_iter().next().expect("one payload"));

    assert!(matches!(result, Err(StoreError::Corrupt(_))), "{result:?}");
}

// ---------------------------------------------------------------------------------------
// Helpers of the planner

#[test]
fn dedup_keeps_first_places() {
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut few = names(&["b", "a", "b", "c", "a"]);
    dedup_in_order(&mut few);
    assert_eq!(few, names(&["b", "a", "c"]));

    let mut many: Vec<String> = (0..40).map(|i| format!("p{}", i % 25)).collect();
    dedup_in_order(&mut many);
    assert_eq!(many, (0..25).map(|i| format!("p{i}")).collect::<Vec<_>>());
}
