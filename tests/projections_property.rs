//! Property: for random sequences of applies, rollbacks and re-applies, the state the
//! projector reaches live equals the state `replay` rebuilds from zero, and the state it
//! rebuilds from a snapshot at any checkpoint in the middle — on both backends. The STX
//! balances also equal those of a model that sums only the events still canonical.
mod common;
mod projection_support;

use common::{Backend, TestApp};
use projection_support::{dump, get, run_replay, wait_projected};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use timebank_realtime::synth;

/// Cases per backend: few, to keep the suite short on 2 cores.
const CASES: u32 = 12;
const ASSET: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.hours-token::hour";
const BADGE: &str = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.badges::badge";

#[derive(Debug, Clone)]
enum Ev {
    Stx { from: usize, to: usize, amount: u64 },
    FtMint { to: usize, amount: u64 },
    FtTransfer { from: usize, to: usize, amount: u64 },
    NftMint { to: usize, id: u8 },
    NftTransfer { from: usize, to: usize, id: u8 },
    Print { verb: u8, id: u8 },
}

#[derive(Debug, Clone)]
enum Step {
    /// Apply a new block on top of the chain.
    Apply(Vec<Ev>),
    /// Roll back the top `n` blocks (newest first), in one payload.
    Rollback(usize),
    /// Apply again the most recently rolled-back block, when it fits on top.
    Reapply,
    /// Re-deliver the top block (at-least-once delivery: a no-op).
    Redeliver,
}

fn ev() -> impl Strategy<Value = Ev> {
    let p = 0usize..4;
    prop_oneof![
        3 => (p.clone(), p.clone(), 1u64..1_000_000).prop_map(|(from, to, amount)| Ev::Stx { from, to, amount }),
        1 => (p.clone(), 1u64..1_000).prop_map(|(to, amount)| Ev::FtMint { to, amount }),
        1 => (p.clone(), p.clone(), 1u64..1_000).prop_map(|(from, to, amount)| Ev::FtTransfer { from, to, amount }),
        1 => (p.clone(), 0u8..4).prop_map(|(to, id)| Ev::NftMint { to, id }),
        1 => (p.clone(), p.clone(), 0u8..4).prop_map(|(from, to, id)| Ev::NftTransfer { from, to, id }),
        2 => (0u8..4, 0u8..3).prop_map(|(verb, id)| Ev::Print { verb, id }),
    ]
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    let step = prop_oneof![
        4 => proptest::collection::vec(ev(), 1..5).prop_map(Step::Apply),
        2 => (1usize..3).prop_map(Step::Rollback),
        2 => Just(Step::Reapply),
        1 => Just(Step::Redeliver),
    ];
    proptest::collection::vec(step, 1..14)
}

fn receipt(e: &Ev) -> Value {
    let a = synth::address;
    match e {
        Ev::Stx { from, to, amount } => synth::stx_transfer(a(*from), a(*to), *amount),
        Ev::FtMint { to, amount } => json!({"type": "FTMintEvent",
            "data": {"recipient": a(*to), "amount": amount.to_string(), "asset_identifier": ASSET}}),
        Ev::FtTransfer { from, to, amount } => json!({"type": "FTTransferEvent",
            "data": {"sender": a(*from), "recipient": a(*to), "amount": amount.to_string(), "asset_identifier": ASSET}}),
        Ev::NftMint { to, id } => json!({"type": "NFTMintEvent",
            "data": {"recipient": a(*to), "asset_class_identifier": BADGE, "asset_identifier": id}}),
        Ev::NftTransfer { from, to, id } => json!({"type": "NFTTransferEvent",
            "data": {"sender": a(*from), "recipient": a(*to), "asset_class_identifier": BADGE, "asset_identifier": id}}),
        Ev::Print { verb, id } => {
            let name = [
                "exchange-created",
                "exchange-updated",
                "exchange-accepted",
                "exchange-cancelled",
            ][*verb as usize];
            synth::print_event(
                synth::CONTRACT,
                json!({"event": name, "exchange-id": id, "hours": verb}),
            )
        }
    }
}

/// A block of the model chain: (height, fork) identifies it.
#[derive(Debug, Clone)]
struct ModelBlock {
    height: i64,
    fork: u32,
    parent_fork: u32,
    events: Vec<Ev>,
}

impl ModelBlock {
    fn json(&self) -> Value {
        let txs = self
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| {
                synth::transaction(
                    self.height,
                    self.fork,
                    i,
                    synth::address(0),
                    Some(synth::CONTRACT),
                    vec![receipt(e)],
                )
            })
            .collect();
        synth::block(self.height, self.fork, self.parent_fork, txs)
    }
}

async fn live_equals_replay(backend: Backend) {
    let mut runner = TestRunner::new(Config {
        cases: CASES,
        ..Config::default()
    });
    let strategy = steps();
    for case in 0..CASES {
        let steps = strategy.new_tree(&mut runner).expect("strategy").current();
        run_case(backend, case, &steps).await;
    }
}

async fn run_case(backend: Backend, case: u32, steps: &[Step]) {
    let app = TestApp::spawn(backend).await;
    let mut chain: Vec<ModelBlock> = Vec::new();
    let mut rolled: Vec<ModelBlock> = Vec::new();
    let mut next_fork = 1u32;
    for step in steps {
        let payload = match step {
            Step::Apply(events) => {
                let parent_fork = chain.last().map_or(0, |b| b.fork);
                let b = ModelBlock {
                    height: chain.len() as i64 + 1,
                    fork: next_fork,
                    parent_fork,
                    events: events.clone(),
                };
                next_fork += 1;
                chain.push(b.clone());
                synth::payload(vec![b.json()], vec![])
            }
            Step::Rollback(n) => {
                let n = (*n).min(chain.len());
                if n == 0 {
                    continue;
                }
                let mut undone = Vec::new();
                for _ in 0..n {
                    if let Some(b) = chain.pop() {
                        undone.push(b.json());
                        rolled.push(b);
                    }
                }
                synth::payload(vec![], undone)
            }
            Step::Reapply => {
                let fits = rolled.last().is_some_and(|b| {
                    b.height == chain.len() as i64 + 1
                        && b.parent_fork == chain.last().map_or(0, |p| p.fork)
                });
                if !fits {
                    continue;
                }
                let Some(b) = rolled.pop() else { continue };
                chain.push(b.clone());
                synth::payload(vec![b.json()], vec![])
            }
            Step::Redeliver => match chain.last() {
                Some(b) => synth::payload(vec![b.json()], vec![]),
                None => continue,
            },
        };
        let (status, body) = app.post_payload(&payload).await;
        assert_eq!(status, 200, "case {case} {steps:?}: {body}");
    }
    let head = wait_projected(&app).await;
    let live = dump(&app.db.url).await;

    // The model: STX balances of the events still canonical.
    let mut stx: BTreeMap<&str, i128> = BTreeMap::new();
    for b in &chain {
        for e in &b.events {
            if let Ev::Stx { from, to, amount } = e {
                *stx.entry(synth::address(*from)).or_default() -= *amount as i128;
                *stx.entry(synth::address(*to)).or_default() += *amount as i128;
            }
        }
    }
    for n in 0..4 {
        let address = synth::address(n);
        let (status, body) = app.get_json(&format!("/api/accounts/{address}")).await;
        let expected = stx.get(address).copied().unwrap_or(0);
        if status == 404 {
            assert_eq!(expected, 0, "case {case} {steps:?}");
        } else {
            assert_eq!(
                body["stxBalanceChange"],
                expected.to_string(),
                "case {case} {steps:?}"
            );
            assert_eq!(body["seq"], head);
        }
    }

    // Replay from zero, leaving a snapshot every 3 seqs, equals live.
    let report = run_replay(&app.db.url, None, 3).await;
    assert_eq!(report.checkpoint, head);
    assert_eq!(
        dump(&app.db.url).await,
        live,
        "case {case}: replay from zero differs; {steps:?}"
    );

    // Replay from (a snapshot at or below) several checkpoints in the middle equals live.
    for middle in [head / 3, head / 2, head - 1] {
        if middle <= 0 {
            continue;
        }
        let report = run_replay(&app.db.url, Some(middle), 0).await;
        assert!(
            report.started_at <= middle && report.started_at > middle - 3,
            "{report:?} for {middle}"
        );
        assert_eq!(
            dump(&app.db.url).await,
            live,
            "case {case}: replay from {middle} differs; {steps:?}"
        );
    }
    let (status, body) = app.get_json("/api/projections").await;
    assert_eq!(status, 200);
    for p in body["projections"].as_array().cloned().unwrap_or_default() {
        assert_eq!(p["checkpoint"], head, "{body}");
        assert_eq!(p["buildingGeneration"], Value::Null, "{body}");
    }
    let _ = get(&app, "/api/head").await;
    app.stop().await;
}
both_backends!(live_equals_replay, live_equals_replay);
