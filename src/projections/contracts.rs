//! `contracts`: per contract (the event's `contractId`), what the canonical events say.
//!
//! - `eventCounts`: applied events per `eventType`.
//! - `lastBlockHeight`: the highest block holding an applied event of the contract (from a
//!   per-height count, so undoing the newest block restores the previous one).
//! - `lastSeq`: the `seq` of the last log entry about the contract — an event, or the
//!   rollback entry that undid one. It only rises; a replay reproduces it exactly.
//!
//! A contract whose every event was undone has no state (and answers 404).

use super::accounts::Heights;
use super::input::Input;
use super::state::{Projection, States};
use super::ProjectionError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

pub const NAME: &str = "contracts";
pub const VERSION: i64 = 1;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Contract {
    #[serde(default)]
    pub counts: BTreeMap<String, i64>,
    #[serde(default)]
    pub heights: Heights,
    #[serde(default)]
    pub last_seq: i64,
}

pub struct Contracts;

impl Projection for Contracts {
    type State = Contract;

    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i64 {
        VERSION
    }

    fn is_empty(state: &Contract) -> bool {
        state.counts.is_empty()
    }

    fn apply(
        &self,
        input: &Input<'_>,
        states: &mut States<'_, '_, Contract>,
    ) -> Result<(), ProjectionError> {
        let e = input.event;
        let Some(contract) = e.contract_id.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(());
        };
        let sign = input.direction.sign();
        let c = states.get_mut(contract)?;
        let t = e.event_type.as_str();
        match c.counts.get_mut(t) {
            Some(n) => {
                *n += sign;
                if *n == 0 {
                    c.counts.remove(t);
                }
            }
            None => {
                c.counts.insert(t.to_string(), sign);
            }
        }
        c.heights.bump(e.block_height, sign);
        c.last_seq = c.last_seq.max(input.seq);
        Ok(())
    }
}

/// `GET /api/contracts/{contractId}` (PROTOCOL §5).
pub fn render(contract_id: &str, c: &Contract, seq: i64) -> Option<Value> {
    if Contracts::is_empty(c) {
        return None;
    }
    Some(json!({
        "contractId": contract_id,
        "eventCounts": c.counts,
        "lastBlockHeight": c.heights.last(),
        "lastSeq": c.last_seq,
        "seq": seq,
    }))
}

#[cfg(test)]
#[path = "contracts_tests.rs"]
mod tests;
