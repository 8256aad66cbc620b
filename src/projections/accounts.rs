//! `accounts`: per principal, what the canonical events did to it.
//!
//! - `stxBalanceChange`: STX received (transfers in, mints) minus STX sent (transfers
//!   out, burns), over applied events of successful transactions. Locks move nothing.
//! - `fungibleTokens`: the same per FT asset (`ADDR.contract::asset`); zero balances are
//!   left out.
//! - `nfts`: NFTs held: mints and transfers in add, transfers out and burns remove. Kept
//!   as a count per token so that undoing in any order is exact.
//! - `firstActivityHeight` / `lastActivityHeight` / `eventCount`: over applied events whose
//!   `affectedAddresses` name the principal (failed transactions included). The heights
//!   come from a per-height event count, so undoing the newest block restores the
//!   previous last height exactly.
//!
//! Every field is a sum over applied events, so an undo subtracts what the apply added and
//! a principal whose every event was undone has no state (and answers 404).

use super::amount::Amount;
use super::input::{scalar_text, Direction, EventView, Input};
use super::state::{Projection, States};
use super::ProjectionError;
use crate::model::EventType;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const NAME: &str = "accounts";
/// Bump when the fold changes: the stored generation is then rebuilt beside the old one.
pub const VERSION: i64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Account {
    #[serde(default)]
    pub stx: Amount,
    #[serde(default)]
    pub ft: BTreeMap<String, Amount>,
    /// asset class → token id → how many times held (1 normally).
    #[serde(default)]
    pub nft: BTreeMap<String, BTreeMap<String, i64>>,
    /// Applied events touching the principal, per block height.
    #[serde(default)]
    pub heights: Heights,
    #[serde(default)]
    pub events: i64,
}

pub struct Accounts;

impl Projection for Accounts {
    type State = Account;

    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i64 {
        VERSION
    }

    fn is_empty(state: &Account) -> bool {
        state.events == 0 && state.stx.is_zero() && state.ft.is_empty() && state.nft.is_empty()
    }

    fn apply(
        &self,
        input: &Input<'_>,
        states: &mut States<'_, '_, Account>,
    ) -> Result<(), ProjectionError> {
        let e = input.event;
        let sign = input.direction.sign();
        for address in e.affected_addresses.iter().filter(|a| !a.is_empty()) {
            let a = states.get_mut(address)?;
            a.events += sign;
            a.heights.bump(e.block_height, sign);
        }
        if !e.success {
            return Ok(());
        }
        let undo = input.direction == Direction::Undo;
        let d = &e.data;
        let amount = || match d.amount.as_ref()? {
            Value::String(s) => s.parse::<Amount>().ok(),
            other => other.to_string().parse::<Amount>().ok(),
        };
        match e.event_type {
            EventType::StxTransferEvent | EventType::StxMintEvent | EventType::StxBurnEvent => {
                let Some(amount) = amount() else {
                    return Ok(());
                };
                if let Some(from) = sender(e) {
                    states.get_mut(from)?.stx.add_signed(&amount, !undo);
                }
                if let Some(to) = recipient(e) {
                    states.get_mut(to)?.stx.add_signed(&amount, undo);
                }
            }
            EventType::FtTransferEvent | EventType::FtMintEvent | EventType::FtBurnEvent => {
                let Some(amount) = amount() else {
                    return Ok(());
                };
                let Some(asset) = d
                    .asset_identifier
                    .as_ref()
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                else {
                    return Ok(());
                };
                if let Some(from) = sender(e) {
                    ft_add(states.get_mut(from)?, asset, &amount, !undo);
                }
                if let Some(to) = recipient(e) {
                    ft_add(states.get_mut(to)?, asset, &amount, undo);
                }
            }
            EventType::NftTransferEvent | EventType::NftMintEvent | EventType::NftBurnEvent => {
                let (Some(class), Some(id)) = (
                    d.asset_class_identifier.as_deref(),
                    d.asset_identifier.as_ref(),
                ) else {
                    return Ok(());
                };
                let id = scalar_text(id);
                if let Some(from) = sender(e) {
                    nft_add(states.get_mut(from)?, class, &id, -sign);
                }
                if let Some(to) = recipient(e) {
                    nft_add(states.get_mut(to)?, class, &id, sign);
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The event's sender, for the event types where one gives something away.
fn sender(e: &EventView) -> Option<&str> {
    match e.event_type {
        EventType::StxMintEvent | EventType::FtMintEvent | EventType::NftMintEvent => None,
        _ => e.data.sender.as_deref().filter(|s| !s.is_empty()),
    }
}

fn recipient(e: &EventView) -> Option<&str> {
    match e.event_type {
        EventType::StxBurnEvent | EventType::FtBurnEvent | EventType::NftBurnEvent => None,
        _ => e.data.recipient.as_deref().filter(|s| !s.is_empty()),
    }
}

/// A count per block height, zero counts left out, sorted by height.
///
/// A sorted vector rather than a tree: heights arrive mostly in increasing order, so the
/// common case is bumping the last entry or pushing one, on memory that stays compact —
/// the replay's hot loop touches thousands of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Heights(Vec<(i64, i64)>);

impl Heights {
    pub fn bump(&mut self, height: i64, by: i64) {
        let v = &mut self.0;
        let i = match v.last() {
            Some(last) if last.0 == height => v.len() - 1,
            Some(last) if last.0 > height => match v.binary_search_by_key(&height, |e| e.0) {
                Ok(i) => i,
                Err(i) => {
                    v.insert(i, (height, 0));
                    i
                }
            },
            _ => {
                v.push((height, 0));
                v.len() - 1
            }
        };
        v[i].1 += by;
        if v[i].1 == 0 {
            v.remove(i);
        }
    }

    pub fn first(&self) -> Option<i64> {
        self.0.first().map(|e| e.0)
    }

    pub fn last(&self) -> Option<i64> {
        self.0.last().map(|e| e.0)
    }
}

fn ft_add(a: &mut Account, asset: &str, amount: &Amount, negate: bool) {
    let balance = a.ft.entry(asset.to_string()).or_default();
    balance.add_signed(amount, negate);
    if balance.is_zero() {
        a.ft.remove(asset);
    }
}

fn nft_add(a: &mut Account, class: &str, id: &str, by: i64) {
    let tokens = a.nft.entry(class.to_string()).or_default();
    let n = tokens.entry(id.to_string()).or_insert(0);
    *n += by;
    if *n == 0 {
        tokens.remove(id);
    }
    if tokens.is_empty() {
        a.nft.remove(class);
    }
}

/// `GET /api/accounts/{principal}` (PROTOCOL §5); `None` when nothing is applied for it.
pub fn render(principal: &str, a: &Account, seq: i64) -> Option<Value> {
    if Accounts::is_empty(a) {
        return None;
    }
    let nfts: Vec<Value> = a
        .nft
        .iter()
        .flat_map(|(class, ids)| {
            ids.iter()
                .filter(|(_, n)| **n > 0)
                .map(move |(id, _)| json!({"assetClass": class, "id": id}))
        })
        .collect();
    let fts: serde_json::Map<String, Value> =
        a.ft.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
    Some(json!({
        "principal": principal,
        "stxBalanceChange": a.stx.to_string(),
        "fungibleTokens": fts,
        "nfts": nfts,
        "firstActivityHeight": a.heights.first(),
        "lastActivityHeight": a.heights.last(),
        "eventCount": a.events,
        "seq": seq,
    }))
}

#[cfg(test)]
#[path = "accounts_tests.rs"]
mod tests;
