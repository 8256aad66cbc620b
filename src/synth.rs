//! Chainhook payloads built in code, for tests, benchmarks and demos that must not depend
//! on fixture files. They have the shape of real Chainhook v1 Stacks `http_post` bodies.

use serde_json::{json, Value};

/// A deterministic, well-formed index block hash for `(height, fork)`. Like a real chain's
/// hashes, consecutive blocks' hashes are unrelated, so an index keyed by hash takes them
/// at random places (as it would in production), not one after the other.
pub fn block_hash(height: i64, fork: u32) -> String {
    let mut state = (height as u64) ^ (u64::from(fork) << 48) ^ 0xb10c;
    let mut word = || {
        // splitmix64
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    format!("0x{:016x}{:016x}{:016x}{:016x}", word(), word(), word(), word())
}

/// A deterministic transaction hash.
pub fn tx_hash(height: i64, fork: u32, tx_index: usize) -> String {
    format!("0x{:016x}{:08x}{:08x}{:032x}", height, fork, tx_index, 0x7e_u64)
}

/// A valid testnet standard principal (c32check) per small number, for affected addresses.
pub fn address(n: usize) -> &'static str {
    const ADDRESSES: [&str; 4] = [
        "ST1248190BE9SM0HG64ZXWD0EF4J60T1MDWQWZ3EH",
        "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM",
        "ST1SJ3DTE5DN7X54YDH5D64R3BCB6A2AG2ZQ8YPD5",
        "ST2CY5V39NHDPWSXMW9QDT3HC3GD6Q6XX4CFRK9AG",
    ];
    ADDRESSES[n % ADDRESSES.len()]
}

/// A contract the synthetic print events come from.
pub const CONTRACT: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.timebank-foundation";

/// An STXTransferEvent receipt event.
pub fn stx_transfer(sender: &str, recipient: &str, amount: u64) -> Value {
    json!({"type": "STXTransferEvent",
           "data": {"sender": sender, "recipient": recipient, "amount": amount.to_string()}})
}

/// A print event whose value is already decoded (`decode_clarity_values: true`).
pub fn print_event(contract: &str, value: Value) -> Value {
    json!({"type": "SmartContractEvent",
           "data": {"contract_identifier": contract, "topic": "print", "value": value}})
}

/// A transaction with the given receipt events, calling `contract` when given.
pub fn transaction(height: i64, fork: u32, tx_index: usize, sender: &str, contract: Option<&str>, events: Vec<Value>) -> Value {
    let kind = match contract {
        Some(c) => json!({"type": "ContractCall", "data": {"contract_identifier": c, "method": "run", "args": []}}),
        None => json!({"type": "NativeTokenTransfer"}),
    };
    let events: Vec<Value> = events
        .into_iter()
        .enumerate()
        .map(|(i, mut e)| {
            e["position"] = json!({"index": i});
            e
        })
        .collect();
    json!({
        "transaction_identifier": {"hash": tx_hash(height, fork, tx_index)},
        "operations": [],
        "metadata": {
            "success": true, "sender": sender, "fee": 180, "nonce": tx_index,
            "kind": kind, "position": {"index": tx_index}, "result": "(ok true)",
            "receipt": {"events": events, "mutated_assets_radius": [], "mutated_contracts_radius": [],
                        "contract_calls_stack": []},
            "description": "synthetic", "raw_tx": "0x00", "execution_cost": null, "proof": null
        }
    })
}

/// A block at `height` on fork `fork` whose parent is `(height - 1, parent_fork)`.
pub fn block(height: i64, fork: u32, parent_fork: u32, transactions: Vec<Value>) -> Value {
    json!({
        "block_identifier": {"hash": block_hash(height, fork), "index": height},
        "parent_block_identifier": {"hash": block_hash(height - 1, parent_fork), "index": height - 1},
        "timestamp": 1_700_000_000 + height,
        "metadata": {"bitcoin_anchor_block_identifier": {"hash": "0x00", "index": 1}, "pox_cycle_index": 1,
                     "pox_cycle_length": 20, "pox_cycle_position": 1, "confirm_microblock_identifier": null,
                     "stacks_block_hash": "0x00"},
        "transactions": transactions
    })
}

/// A block with `n` STX transfer events, 10 per transaction, rotating senders.
pub fn block_with_transfers(height: i64, fork: u32, parent_fork: u32, n: usize) -> Value {
    let txs = (0..n.div_ceil(10))
        .map(|t| {
            let count = (n - t * 10).min(10);
            let events = (0..count)
                .map(|i| stx_transfer(address(t + i), address(t + i + 1), (height as u64) * 1000 + i as u64))
                .collect();
            transaction(height, fork, t, address(t), None, events)
        })
        .collect();
    block(height, fork, parent_fork, txs)
}

/// A valid testnet standard principal for any number (its hash160 is `n`, big-endian):
/// as many distinct principals as a benchmark wants.
pub fn principal(n: usize) -> String {
    let mut hash = [0u8; crate::chainhook::principal::HASH160_LEN];
    hash[12..].copy_from_slice(&(n as u64).to_be_bytes());
    // Version 26: testnet single-signature ("ST…"); any 20 bytes encode.
    crate::chainhook::principal::encode_address(26, &hash).unwrap_or_else(|_| address(n).to_string())
}

/// An FTTransferEvent receipt event.
pub fn ft_transfer(asset: &str, sender: &str, recipient: &str, amount: u64) -> Value {
    json!({"type": "FTTransferEvent",
           "data": {"asset_identifier": asset, "sender": sender, "recipient": recipient, "amount": amount.to_string()}})
}

/// An NFTMintEvent receipt event, in decoded form.
pub fn nft_mint(asset_class: &str, recipient: &str, token: u64) -> Value {
    json!({"type": "NFTMintEvent",
           "data": {"asset_class_identifier": asset_class, "asset_identifier": token, "recipient": recipient}})
}

/// A block with `n` events shaped like a busy Time Banking chain, 10 per transaction: 60%
/// STX transfers, 20% FT transfers, 10% NFT mints and 10% print events (exchange tuples) of
/// [`CONTRACT`], among `principals` principals.
pub fn block_mixed(height: i64, n: usize, principals: usize) -> Value {
    let who = |k: usize| principal(k % principals.max(1));
    let txs = (0..n.div_ceil(10))
        .map(|t| {
            let count = (n - t * 10).min(10);
            let events = (0..count)
                .map(|i| {
                    let k = height as usize * 7_919 + t * 10 + i;
                    let (from, to) = (who(k), who(k * 31 + 1));
                    match i {
                        0..=5 => stx_transfer(&from, &to, (k % 1_000 + 1) as u64),
                        6 | 7 => ft_transfer(&format!("{CONTRACT}::hour"), &from, &to, 1_000),
                        8 => nft_mint(&format!("{CONTRACT}::badge"), &to, k as u64),
                        _ => print_event(
                            CONTRACT,
                            json!({"event": "exchange-created", "exchange-id": k % 10_000, "hours": k % 8, "provider": from}),
                        ),
                    }
                })
                .collect();
            transaction(height, 0, t, &who(height as usize + t), Some(CONTRACT), events)
        })
        .collect();
    block(height, 0, 0, txs)
}

/// A Chainhook payload: `rollback` blocks newest first, `apply` blocks oldest first.
pub fn payload(apply: Vec<Value>, rollback: Vec<Value>) -> Value {
    json!({
        "apply": apply,
        "rollback": rollback,
        "chainhook": {"uuid": "00000000-0000-4000-8000-000000000000", "is_streaming_blocks": true,
                      "predicate": {"scope": "block_height", "higher_than": 0}}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chainhook::{is_principal, parse_payload};

    #[test]
    fn synthetic_payloads_parse_like_real_ones() {
        let body = payload(vec![block_with_transfers(5, 0, 0, 25)], vec![]);
        let parsed = parse_payload(body.to_string().as_bytes()).expect("synthetic payload parses");
        assert_eq!(parsed.apply.len(), 1);
        let block = &parsed.apply[0];
        assert_eq!(block.hash, block_hash(5, 0));
        assert_eq!(block.events.len(), 25);
        assert_eq!(block.events[24].tx_index, 2);
        assert_eq!(block.events[24].event_index, 4);
        for n in 0..4 {
            assert!(is_principal(address(n)), "{} is a valid principal", address(n));
        }
        let (a, b) = (principal(0), principal(9_999));
        assert!(is_principal(&a) && is_principal(&b) && a != b, "{a} {b}");
    }

    #[test]
    fn mixed_blocks_parse_with_their_types_contracts_and_principals() {
        use crate::model::EventType;
        let body = payload(vec![block_mixed(3, 20, 100)], vec![]);
        let parsed = parse_payload(body.to_string().as_bytes()).expect("mixed payload parses");
        let events = &parsed.apply[0].events;
        assert_eq!(events.len(), 20);
        let count = |t: EventType| events.iter().filter(|e| e.event_type == t).count();
        assert_eq!(
            [count(EventType::StxTransferEvent), count(EventType::FtTransferEvent), count(EventType::NftMintEvent), count(EventType::PrintEvent)],
            [12, 4, 2, 2]
        );
        for e in events {
            // Every transaction calls the contract, so STX transfers carry its id too.
            assert_eq!(e.contract_id.as_deref(), Some(CONTRACT), "{:?}", e.event_type);
            assert!(!e.affected_addresses.is_empty(), "{:?} names its principals", e.event_type);
        }
    }
}
