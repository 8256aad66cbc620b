//! `contracts`, given/when/then, without I/O: events folded from a log in memory, the
//! contract read as `GET /api/contracts/{contractId}` answers it.

use super::{render, Contract, NAME};
use crate::projections::engine::testing::*;
use serde_json::{json, Value};

/// The contract as served; `None` answers 404.
fn served(then: &Folded, contract_id: &str) -> Option<Value> {
    let contract: Contract = then.state(NAME, contract_id)?;
    let mut body = render(contract_id, &contract, 0)?;
    body.as_object_mut()?.remove("seq");
    Some(body)
}

fn exchange(id: u64) -> Value {
    json!({"event": "exchange-created", "exchange-id": id})
}

#[test]
fn counts_applied_events_per_type_with_the_last_block_and_entry() {
    let log = given().events([
        print(CONTRACT, exchange(1)).at(3),
        print(CONTRACT, exchange(2)).at(8),
        ft_mint(HOUR, ALICE, "5").at(5),
        stx_transfer(ALICE, BOB, "1").at(6).in_contract(CONTRACT),
    ]);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(
        served(&then, CONTRACT),
        Some(json!({
            "contractId": CONTRACT,
            "eventCounts": {"print_event": 2, "ft_mint_event": 1, "stx_transfer_event": 1},
            "lastBlockHeight": 8,
            "lastSeq": 4,
        }))
    );
}

#[test]
fn event_without_a_contract_changes_no_contract() {
    let log = given().events([stx_transfer(ALICE, BOB, "1"), stx_mint(ALICE, "2")]);

    let then = when_folded(projection(NAME), &log);

    assert!(then.rows().is_empty(), "{:?}", then.rows());
}

#[test]
fn rollback_lowers_its_types_count_and_restores_the_last_block() {
    let log = given()
        .events([
            print(CONTRACT, exchange(1)).at(3),
            print(CONTRACT, exchange(2)).at(8),
            ft_mint(HOUR, ALICE, "5").at(5),
        ])
        .rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    let contract = served(&then, CONTRACT).expect("contract");
    assert_eq!(contract["eventCounts"], json!({"print_event": 1, "ft_mint_event": 1}));
    assert_eq!(contract["lastBlockHeight"], json!(5));
    assert_eq!(contract["lastSeq"], json!(4), "the rollback entry is the last entry about it");
}

#[test]
fn undoing_every_event_leaves_no_contract() {
    let log = given().events([print(CONTRACT, exchange(1)), ft_mint(HOUR, ALICE, "5")]).rollback_of(2).rollback_of(1);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(served(&then, CONTRACT), None);
    assert!(then.rows().is_empty(), "{:?}", then.rows());
}
