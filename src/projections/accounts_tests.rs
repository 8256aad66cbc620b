//! `accounts`, given/when/then, without I/O: events folded from a log in memory, the
//! account read as `GET /api/accounts/{principal}` answers it.

use super::{render, Account, NAME};
use crate::projections::engine::testing::*;
use serde_json::{json, Value};

/// The account of `principal` as served; `None` answers 404.
fn served(then: &Folded, principal: &str) -> Option<Value> {
    let account: Account = then.state(NAME, principal)?;
    let mut body = render(principal, &account, 0)?;
    body.as_object_mut()?.remove("seq");
    Some(body)
}

fn balance(then: &Folded, principal: &str) -> Value {
    served(then, principal).expect("account")["stxBalanceChange"].clone()
}

#[test]
fn stx_transfer_moves_the_amount_from_sender_to_recipient() {
    let log = given().event(stx_transfer(ALICE, BOB, "100").at(7));

    let then = when_folded(projection(NAME), &log);

    assert_eq!(
        served(&then, ALICE),
        Some(json!({
            "principal": ALICE, "stxBalanceChange": "-100", "fungibleTokens": {}, "nfts": [],
            "firstActivityHeight": 7, "lastActivityHeight": 7, "eventCount": 1,
        }))
    );
    assert_eq!(balance(&then, BOB), json!("100"));
}

#[test]
fn mint_credits_the_recipient_and_burn_debits_the_sender() {
    let log = given().events([stx_mint(ALICE, "50"), stx_burn(ALICE, "20")]);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(balance(&then, ALICE), json!("30"));
    assert_eq!(served(&then, ALICE).expect("account")["eventCount"], json!(2));
}

#[test]
fn lock_moves_nothing_but_counts_as_activity() {
    let log = given().event(stx_lock(ALICE, "500").at(4));

    let then = when_folded(projection(NAME), &log);

    assert_eq!(balance(&then, ALICE), json!("0"));
    assert_eq!(served(&then, ALICE).expect("account")["eventCount"], json!(1));
}

#[test]
fn failed_transaction_counts_as_activity_but_moves_nothing() {
    let log = given().events([
        stx_transfer(ALICE, BOB, "100").failed(),
        ft_transfer(HOUR, ALICE, BOB, "3").failed(),
        nft_mint(BADGE, json!(1), BOB).failed(),
    ]);

    let then = when_folded(projection(NAME), &log);

    for who in [ALICE, BOB] {
        let account = served(&then, who).expect("account");
        assert_eq!(
            (&account["stxBalanceChange"], &account["fungibleTokens"], &account["nfts"]),
            (&json!("0"), &json!({}), &json!([])),
            "{who}"
        );
    }
    assert_eq!(served(&then, BOB).expect("account")["eventCount"], json!(3));
}

#[test]
fn fungible_tokens_are_kept_per_asset_and_a_zero_balance_is_left_out() {
    let other = "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG.other::coin";
    let log = given().events([
        ft_mint(HOUR, ALICE, "5"),
        ft_mint(other, ALICE, "9"),
        ft_transfer(HOUR, ALICE, BOB, "5"),
    ]);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(served(&then, ALICE).expect("account")["fungibleTokens"], json!({ other: "9" }));
    assert_eq!(served(&then, BOB).expect("account")["fungibleTokens"], json!({ HOUR: "5" }));
}

#[test]
fn nft_is_held_from_its_mint_until_it_is_transferred_or_burnt() {
    let log = given().events([
        nft_mint(BADGE, json!(1), ALICE),
        nft_mint(BADGE, json!(2), ALICE),
        nft_transfer(BADGE, json!(1), ALICE, BOB),
        nft_mint(BADGE, json!("u3"), CAROL),
        nft_burn(BADGE, json!("u3"), CAROL),
    ]);

    let then = when_folded(projection(NAME), &log);

    let nfts = |who| served(&then, who).expect("account")["nfts"].clone();
    assert_eq!(nfts(ALICE), json!([{"assetClass": BADGE, "id": "2"}]));
    assert_eq!(nfts(BOB), json!([{"assetClass": BADGE, "id": "1"}]));
    assert_eq!(nfts(CAROL), json!([]));
}

#[test]
fn amounts_beyond_128_bits_sum_exactly() {
    let max = u128::MAX.to_string();
    let log = given().events([stx_mint(ALICE, &max), stx_mint(ALICE, &max), stx_burn(ALICE, "1")]);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(balance(&then, ALICE), json!("680564733841876926926749214863536422909"));
}

#[test]
fn activity_heights_span_the_first_to_the_last_block() {
    let log = given().events([stx_mint(ALICE, "1").at(3), stx_mint(ALICE, "1").at(9), stx_mint(ALICE, "1").at(5)]);

    let then = when_folded(projection(NAME), &log);

    let account = served(&then, ALICE).expect("account");
    assert_eq!((&account["firstActivityHeight"], &account["lastActivityHeight"]), (&json!(3), &json!(9)));
}

#[test]
fn rollback_of_the_newest_block_restores_the_previous_last_height_and_balance() {
    let log = given()
        .events([stx_mint(ALICE, "10").at(3), stx_transfer(ALICE, BOB, "4").at(9)])
        .rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    let account = served(&then, ALICE).expect("account");
    assert_eq!(
        (&account["stxBalanceChange"], &account["lastActivityHeight"], &account["eventCount"]),
        (&json!("10"), &json!(3), &json!(1))
    );
    assert_eq!(served(&then, BOB), None, "BOB's only event was undone: 404");
}

#[test]
fn rollback_undoes_exactly_its_event() {
    let log = given().events([
        stx_mint(ALICE, "10").at(1),
        ft_transfer(HOUR, ALICE, BOB, "3").at(2),
        nft_mint(BADGE, json!(4), ALICE).at(2),
        stx_transfer(ALICE, CAROL, "6").at(3),
    ]);

    for seq in 1..=log.head() {
        let then = when_folded(projection(NAME), &log.clone().rollback_of(seq));

        let never_happened = when_folded(projection(NAME), &log.without_event(seq));
        assert_eq!(then.rows(), never_happened.rows(), "undoing event {seq}");
    }
}

#[test]
fn undoing_every_event_leaves_no_account() {
    let log = given()
        .events([stx_mint(ALICE, "10"), stx_transfer(ALICE, BOB, "4"), ft_mint(HOUR, BOB, "1")])
        .rollback_of(3)
        .rollback_of(1)
        .rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    assert_eq!((served(&then, ALICE), served(&then, BOB)), (None, None));
    assert!(then.rows().is_empty(), "no row left: {:?}", then.rows());
}
