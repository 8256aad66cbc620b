//! The folding loop, given/when/then, without I/O: every built-in projection folded from a
//! log in memory ([`super::super::testing`]).

use super::super::testing::*;
use crate::projections::{accounts, contracts, entities, ProjectionError};
use crate::model::EntryKind;
use serde_json::json;
use std::collections::BTreeMap;

/// A log touching every built-in projection: STX, FT and NFT moves, a failed transfer,
/// entity changes from print events, block markers and rollbacks (events 10 and 9 undone).
fn busy_log() -> Log {
    given()
        .marker(EntryKind::BlockApplied)
        .events([
            stx_mint(ALICE, "1000").at(1),
            stx_transfer(ALICE, BOB, "300").at(1).in_contract(CONTRACT),
            ft_mint(HOUR, ALICE, "5").at(2),
            ft_transfer(HOUR, ALICE, CAROL, "2").at(2),
            nft_mint(BADGE, json!(1), BOB).at(3),
            nft_transfer(BADGE, json!(1), BOB, CAROL).at(3),
            print(CONTRACT, json!({"event": "exchange-created", "exchange-id": 7, "hours": 2, "provider": BOB})).at(3),
            print(CONTRACT, json!({"event": "exchange-updated", "exchange-id": 7, "hours": 3})).at(4),
            stx_transfer(BOB, CAROL, "50").at(4).failed(),
        ])
        .marker(EntryKind::BlockRolledBack)
        .rollback_of(10)
        .rollback_of(9)
        .marker(EntryKind::BlockApplied)
        .events([
            print(CONTRACT, json!({"event": "exchange-updated", "exchange-id": 7, "hours": 4})).at(4),
            stx_burn(CAROL, "1").at(5),
            print(CONTRACT, json!({"event": "exchange-cancelled", "exchange-id": 7})).at(5),
        ])
}

/// The events of the busy log that no rollback entry undoes.
const LIVE_EVENTS: [i64; 10] = [2, 3, 4, 5, 6, 7, 8, 15, 16, 17];

#[test]
fn folding_in_two_batches_equals_folding_at_once() {
    let log = busy_log();
    let at_once = when_folded(all_projections(), &log);
    assert_eq!(at_once.rows().len(), 5, "three accounts, a contract and an entity to compare");

    for split in 0..=log.head() {
        for restart_between in [false, true] {
            let mut folded = Folded::new(all_projections());
            folded.fold_to(&log, split).expect("first batch folds");
            if restart_between {
                folded.restart();
            }
            folded.fold_to(&log, log.head()).expect("second batch folds");

            assert_eq!(folded.rows(), at_once.rows(), "split after {split}, restart: {restart_between}");
            assert_eq!(folded.checkpoints(), vec![log.head(); 3]);
        }
    }
}

#[test]
fn folding_one_entry_at_a_time_equals_folding_at_once() {
    let log = busy_log();
    let at_once = when_folded(all_projections(), &log);

    let mut folded = Folded::new(all_projections());
    for seq in 1..=log.head() {
        folded.fold_to(&log, seq).expect("entry folds");
        folded.restart();
    }

    assert_eq!(folded.rows(), at_once.rows());
}

#[test]
fn rollback_entry_undoes_exactly_its_event() {
    let log = busy_log();
    for seq in LIVE_EVENTS {
        let rolled_back = when_folded(all_projections(), &log.clone().rollback_of(seq));

        let never_happened = when_folded(all_projections(), &log.without_event(seq));

        assert_eq!(
            rolled_back.rows_of(accounts::NAME),
            never_happened.rows_of(accounts::NAME),
            "accounts after undoing {seq}"
        );
        // What a rollback may leave besides: a contract's `lastSeq` names the rollback
        // entry, an entity's version counts the undo too.
        let counts = |f: &Folded| -> BTreeMap<String, (BTreeMap<String, i64>, Option<i64>)> {
            f.rows_of(contracts::NAME)
                .into_keys()
                .map(|k| {
                    let c: contracts::Contract = f.state(contracts::NAME, &k).expect("state");
                    (k, (c.counts, c.heights.last()))
                })
                .collect()
        };
        assert_eq!(counts(&rolled_back), counts(&never_happened), "contracts after undoing {seq}");
        let changes = |f: &Folded| -> BTreeMap<String, Vec<entities::Change>> {
            f.rows_of(entities::NAME)
                .into_keys()
                .map(|k| (k.clone(), f.state::<entities::Entity>(entities::NAME, &k).expect("state").changes))
                .filter(|(_, changes)| !changes.is_empty())
                .collect()
        };
        assert_eq!(changes(&rolled_back), changes(&never_happened), "entities after undoing {seq}");
    }
}

#[test]
fn undoing_every_event_in_any_order_leaves_no_account_and_no_contract() {
    let newest_first = LIVE_EVENTS.iter().rev().fold(busy_log(), |log, &seq| log.rollback_of(seq));
    let oldest_first = LIVE_EVENTS.iter().fold(busy_log(), |log, &seq| log.rollback_of(seq));

    for log in [newest_first, oldest_first] {
        let then = when_folded(all_projections(), &log);

        assert_eq!(then.rows_of(accounts::NAME), BTreeMap::new());
        assert_eq!(then.rows_of(contracts::NAME), BTreeMap::new());
        let exchange: entities::Entity = then.state(entities::NAME, "exchange/7").expect("keeps its version");
        assert!(exchange.changes.is_empty(), "{exchange:?}");
    }
}

#[test]
fn entries_already_folded_are_skipped() {
    let log = busy_log();
    let mut then = when_folded(all_projections(), &log);
    let before = then.rows().clone();

    then.fold_entries_of(&log, 0, log.head()).expect("a redelivered batch folds");

    assert_eq!(then.rows(), &before);
    assert_eq!(then.checkpoints(), vec![log.head(); 3]);
}

#[test]
fn batch_overlapping_the_checkpoint_folds_only_its_new_entries() {
    // Live batches can overlap what catch-up already read from the log.
    let log = busy_log();
    let expected = when_folded(all_projections(), &log);
    let mut then = Folded::new(all_projections());
    then.fold_to(&log, 8).expect("folds");

    then.fold_entries_of(&log, 4, log.head()).expect("the overlapping batch folds");

    assert_eq!(then.rows(), expected.rows());
    assert_eq!(then.checkpoints(), vec![log.head(); 3]);
}

#[test]
fn entry_after_a_gap_is_refused_and_nothing_is_written() {
    let log = busy_log();
    let mut then = Folded::new(all_projections());

    let result = then.fold_entries_of(&log, 2, log.head());

    assert!(matches!(result, Err(ProjectionError::Corrupt(ref why)) if why.contains("gap")), "{result:?}");
    assert!(then.rows().is_empty());
    assert_eq!(then.checkpoints(), vec![0; 3]);
}

#[test]
fn block_markers_change_no_state_but_pass_the_checkpoint() {
    let log = given().marker(EntryKind::BlockApplied).marker(EntryKind::BlockRolledBack);

    let then = when_folded(all_projections(), &log);

    assert!(then.rows().is_empty());
    assert_eq!(then.checkpoints(), vec![2; 3]);
}

#[test]
fn rollback_of_an_event_not_in_the_log_is_refused() {
    let log = given().event(stx_mint(ALICE, "1")).rollback_of(7);
    let mut then = Folded::new(all_projections());

    let result = then.fold_to(&log, log.head());

    assert!(matches!(result, Err(ProjectionError::Corrupt(_))), "{result:?}");
}
