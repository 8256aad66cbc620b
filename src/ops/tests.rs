//! Given/when/then tests of the rules that are easiest to get wrong, and a property: the
//! sweep of the touched groups decides exactly as the sweep of every pending op (the rule
//! as docs/ops.md writes it), on every vector and on random logs.

use super::*;
use proptest::prelude::{any, prop_assert, prop_oneof, proptest, Just, ProptestConfig};
use proptest::strategy::Strategy as _;
use serde_json::{json, Map, Value};

const A: &str = "SP1AAA";
const B: &str = "SP2BBB";
const E1: &str = "exchange:1";

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().cloned().unwrap_or_default()
}

fn op(seq: i64, id: &str, data: Value) -> OpSubmitted {
    OpSubmitted {
        seq,
        address: A.into(),
        op_id: id.into(),
        entity: E1.into(),
        kind: "update-exchange".into(),
        data: fields(data),
        base_version: None,
        tx_hash: None,
    }
}

fn with_tx(mut o: OpSubmitted, tx: &str) -> Input {
    o.tx_hash = Some(tx.into());
    Input::OpSubmitted(o)
}

fn block(seq: i64, height: i64, timestamp: i64, txs: &[&str]) -> Input {
    block_named(seq, height, &format!("0xb{height}"), timestamp, txs)
}

fn block_named(seq: i64, height: i64, hash: &str, timestamp: i64, txs: &[&str]) -> Input {
    Input::BlockApplied(BlockApplied {
        seq,
        height,
        hash: hash.into(),
        timestamp,
        txs: txs.iter().map(|t| Tx { tx_hash: (*t).into(), sender: Some(A.into()), success: true }).collect(),
    })
}

fn rollback(seq: i64, height: i64) -> Input {
    Input::BlockRolledBack(BlockRolledBack { seq, height, hash: format!("0xb{height}") })
}

fn change(seq: i64, fields: &[&str], tx: &str, version: i64) -> Input {
    Input::EntityChanged(EntityChanged {
        seq,
        entity: E1.into(),
        fields: fields.iter().map(|f| (*f).to_string()).collect(),
        tx_hash: tx.into(),
        version,
    })
}

fn small() -> Config {
    Config { final_depth: 2, expiry_secs: 100, tx_wait_secs: 30, ..Config::default() }
}

fn with_strategy(strategy: Strategy) -> Config {
    Config { default_strategy: strategy, ..small() }
}

/// (opId, status, reason) of each decision, for short assertions.
fn brief(decisions: &[Decision]) -> Vec<(String, Status, Option<Reason>)> {
    decisions.iter().map(|d| (d.op_id.clone(), d.status, d.reason)).collect()
}

fn d(id: &str, status: Status, reason: Option<Reason>) -> (String, Status, Option<Reason>) {
    (id.to_string(), status, reason)
}

#[test]
fn a_reorg_puts_a_confirmed_op_back_to_pending_and_the_new_fork_confirms_it_again() {
    // Given an op confirmed at height 11
    let mut r = Resolver::new(small());
    r.apply(&block(1, 10, 1000, &[]));
    r.apply(&with_tx(op(2, "a", json!({"status": "accepted"})), "0xt1"));
    assert_eq!(brief(&r.apply(&block(3, 11, 1010, &["0xt1"]))), [d("a", Status::Confirmed, None)]);
    // When its block is rolled back
    let back = r.apply(&rollback(4, 11));
    // Then it is pending again, naming the removed block
    assert_eq!(brief(&back), [d("a", Status::Pending, Some(Reason::RolledBack))]);
    assert_eq!((back[0].block_height, back[0].block_hash.as_deref()), (Some(11), Some("0xb11")));
    // And when the new fork holds the transaction, it is confirmed there, final two blocks on
    let again = r.apply(&block_named(5, 11, "0xc11", 1012, &["0xt1"]));
    assert_eq!(again[0].block_hash.as_deref(), Some("0xc11"));
    assert!(r.apply(&block_named(6, 12, "0xc12", 1020, &[])).is_empty());
    assert_eq!(brief(&r.apply(&block_named(7, 13, "0xc13", 1030, &[]))), [d("a", Status::Final, None)]);
}

#[test]
fn the_clock_is_the_greatest_block_timestamp_and_starts_at_the_first_block() {
    // Given an op appended before any block
    let mut r = Resolver::new(small());
    r.apply(&Input::OpSubmitted(op(1, "a", json!({"status": "x"}))));
    assert_eq!(r.op(A, "a").and_then(|o| o.start), None);
    // When the first block comes, it starts the op's clock and cannot expire it
    assert!(r.apply(&block(2, 10, 5000, &[])).is_empty());
    assert_eq!(r.op(A, "a").and_then(|o| o.start), Some(5000));
    // And a rollback does not turn the clock back
    r.apply(&block(3, 11, 5020, &[]));
    r.apply(&rollback(4, 11));
    assert_eq!(r.clock(), Some(5020));
    // Then the first block past start + txWaitSecs (strictly) expires it
    assert!(r.apply(&block_named(5, 11, "0xc11", 5030, &[])).is_empty());
    assert_eq!(brief(&r.apply(&block_named(6, 12, "0xc12", 5031, &[]))), [d("a", Status::Reverted, Some(Reason::Expired))]);
}

#[test]
fn merge_reverts_the_newest_op_first_so_an_older_fresh_op_keeps_its_field() {
    // Given a field the chain changed at version 2
    let mut r = Resolver::new(with_strategy(Strategy::Merge));
    r.apply(&change(1, &["status"], "0xc1", 1));
    r.apply(&change(2, &["status"], "0xc2", 2));
    r.apply(&Input::OpSubmitted(op(3, "a", json!({"status": "accepted"}))));
    // When a later op sets it from the older version 1
    let mut stale = op(4, "b", json!({"status": "declined"}));
    stale.base_version = Some(1);
    let decided = r.apply(&Input::OpSubmitted(stale));
    // Then only the stale op loses, and the view shows the fresh one
    assert_eq!(brief(&decided), [d("b", Status::Reverted, Some(Reason::Conflict))]);
    let view = r.view(A, E1, &fields(json!({"status": "closed"})));
    assert_eq!(Value::Object(view), json!({"status": "accepted"}));
}

#[test]
fn a_field_belongs_to_the_latest_op_that_sets_it_even_when_that_op_hides_it() {
    // Given an earlier pending op and a later op, confirmed, whose field its own
    // transaction then changed on chain
    let mut r = Resolver::new(with_strategy(Strategy::LastWriterWins));
    r.apply(&block(1, 10, 1000, &[]));
    r.apply(&Input::OpSubmitted(op(2, "a", json!({"status": "accepted", "hours": 2}))));
    r.apply(&with_tx(op(3, "b", json!({"hours": 3})), "0xt2"));
    r.apply(&block(4, 11, 1010, &["0xt2"]));
    r.apply(&change(5, &["hours"], "0xt2", 1));
    // When the view is read
    let view = r.view(A, E1, &fields(json!({"hours": 5})));
    // Then the hidden field shows the chain's value, not the earlier op's
    assert_eq!(Value::Object(view), json!({"status": "accepted", "hours": 5}));
    // And the earlier op, left with no field by a third op, is reverted
    let decided = r.apply(&Input::OpSubmitted(op(6, "c", json!({"status": "declined"}))));
    assert_eq!(brief(&decided), [d("a", Status::Reverted, Some(Reason::Conflict))]);
}

#[test]
fn chain_wins_judges_an_op_again_when_a_reorg_puts_it_back_to_pending() {
    // Given an op confirmed in a block where another address's transaction also changed
    // its field, and the undos of both changes
    let mut r = Resolver::new(small());
    r.apply(&block(1, 10, 1000, &[]));
    r.apply(&change(2, &["status"], "0xc0", 1));
    let mut o = op(3, "a", json!({"status": "accepted"}));
    o.base_version = Some(1);
    r.apply(&with_tx(o, "0xt1"));
    r.apply(&block(4, 11, 1010, &["0xt1"]));
    for (seq, tx, version) in [(5, "0xt2", 2), (6, "0xt1", 3), (7, "0xt1", 4), (8, "0xt2", 5)] {
        assert!(r.apply(&change(seq, &["status"], tx, version)).is_empty(), "a confirmed op never loses");
    }
    // When the block is rolled back
    let decided = r.apply(&rollback(9, 11));
    // Then it goes back to pending and, stale, is reverted in the same entry
    assert_eq!(
        brief(&decided),
        [d("a", Status::Pending, Some(Reason::RolledBack)), d("a", Status::Reverted, Some(Reason::Conflict))]
    );
    assert_eq!(r.open_count(A), 0);
}

#[test]
fn an_op_whose_transaction_is_already_mined_settles_on_arrival() {
    // Given a block holding a failed transaction of the address
    let mut r = Resolver::new(small());
    let mut b = block(1, 10, 1000, &["0xt1"]);
    if let Input::BlockApplied(b) = &mut b {
        b.txs[0].success = false;
    }
    r.apply(&b);
    // When an op naming it arrives
    let decided = r.apply(&with_tx(op(2, "a", json!({"status": "x"})), "0xt1"));
    // Then it is reverted at once, naming the block
    assert_eq!(brief(&decided), [d("a", Status::Reverted, Some(Reason::TxFailed))]);
    assert_eq!(decided[0].block_height, Some(10));
}

#[test]
fn resends_are_answered_without_appending_and_attach_a_txhash_once() {
    let mut r = Resolver::new(small());
    let request = |tx: Option<&str>, data: Value| OpRequest {
        address: A.into(),
        op_id: "a".into(),
        entity: E1.into(),
        kind: "update-exchange".into(),
        data: fields(data),
        base_version: None,
        tx_hash: tx.map(str::to_string),
    };
    // Given a pending op without txHash
    assert_eq!(r.answer_op(&request(None, json!({"n": 2}))), Answer::Append);
    r.apply(&Input::OpSubmitted(op(1, "a", json!({"n": 2}))));
    // Then an identical resend is acknowledged, a first txHash attaches, a change mismatches
    assert_eq!(r.answer_op(&request(None, json!({"n": 2.0}))), Answer::Ack { status: Status::Pending, reason: None });
    assert_eq!(r.answer_op(&request(Some("0xt1"), json!({"n": 2}))), Answer::Attach);
    assert_eq!(r.answer_op(&request(None, json!({"n": 3}))), Answer::Mismatch);
    // When the txHash is attached, a different one is a mismatch and a cancel is refused
    r.apply(&Input::TxHashAttached(TxHashAttached { seq: 2, address: A.into(), op_id: "a".into(), tx_hash: "0xt1".into() }));
    assert_eq!(r.answer_op(&request(Some("0xt2"), json!({"n": 2}))), Answer::Mismatch);
    assert_eq!(r.answer_op(&request(None, json!({"n": 2}))), Answer::Ack { status: Status::Pending, reason: None });
    let cancel = CancelRequest { address: A.into(), op_id: "a".into() };
    assert_eq!(r.answer_cancel(&cancel), Answer::Refused);
    // And another address's opId space is its own
    assert_eq!(r.answer_cancel(&CancelRequest { address: B.into(), op_id: "a".into() }), Answer::Unknown);
}

#[test]
fn settled_ops_beyond_the_retention_are_forgotten_at_the_next_entry() {
    // Given a retention of one settled op per address
    let mut r = Resolver::new(Config { settled_retained_per_address: 1, ..small() });
    r.apply(&Input::OpSubmitted(op(1, "a", json!({"x": 1}))));
    r.apply(&Input::OpCancelled(OpCancelled { seq: 2, address: A.into(), op_id: "a".into() }));
    r.apply(&Input::OpSubmitted(op(3, "b", json!({"y": 1}))));
    // When a second op settles
    let decided = r.apply(&Input::OpCancelled(OpCancelled { seq: 4, address: A.into(), op_id: "b".into() }));
    // Then both can still be read right after that entry
    assert_eq!(decided.len(), 1);
    assert!(r.op(A, "a").is_some() && r.op(A, "b").is_some());
    assert!(!r.has_forgotten_ops_of(A));
    // And the oldest is forgotten at the next entry, the newest kept; the resolver says so,
    // so that an unknown opId of that address is looked up in the log
    r.apply(&block(5, 10, 1000, &[]));
    assert!(r.op(A, "a").is_none());
    assert!(r.has_forgotten_ops_of(A) && !r.has_forgotten_ops_of(B));
    assert_eq!(r.op(A, "b").map(|o| o.status), Some(Status::Reverted));
}

#[test]
fn open_ops_are_bounded_per_address() {
    // Given an address at the limit of open ops
    let mut r = Resolver::new(Config { max_open_ops_per_address: 3, ..small() });
    for (i, id) in ["a", "b", "c"].iter().enumerate() {
        let mut o = op(i as i64 + 1, id, json!({"x": 1}));
        o.entity = format!("exchange:{i}");
        assert!(r.apply(&Input::OpSubmitted(o)).is_empty());
    }
    // When it sends one more
    let decided = r.apply(&Input::OpSubmitted(op(4, "d", json!({"x": 1}))));
    // Then that op is rejected and the open count stays at the limit
    assert_eq!(decided[0].detail, Some(RejectDetail::TooManyOpenOps));
    assert_eq!(r.open_count(A), 3);
}

#[test]
fn input_json_reads_back_as_written() {
    let inputs = [
        with_tx(op(1, "a", json!({"n": 12345678901234567890u64})), "0xt1"),
        block(2, 10, 1000, &["0xt1"]),
        rollback(3, 10),
        change(4, &["n"], "0xt1", 1),
        Input::TxHashAttached(TxHashAttached { seq: 5, address: A.into(), op_id: "a".into(), tx_hash: "0xt".into() }),
        Input::OpCancelled(OpCancelled { seq: 6, address: A.into(), op_id: "a".into() }),
    ];
    for input in inputs {
        let text = serde_json::to_string(&input).unwrap_or_default();
        let back: Input = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(back, input, "{text}");
        assert_eq!(back.seq(), input.seq());
    }
    assert!(serde_json::from_str::<Input>(r#"{"type":"nope","seq":1}"#).is_err());
}

// The sweep: touched groups versus every pending op.

/// Runs entries through a resolver sweeping touched groups and one sweeping everything,
/// and checks both decide alike and keep their open-op counts true.
fn same_with_full_sweep(config: &Config, entries: &[Input]) -> Result<(), String> {
    let mut touched = Resolver::new(config.clone());
    let mut full = Resolver::new(config.clone());
    full.sweep_everything();
    for entry in entries {
        let (a, b) = (touched.apply(entry), full.apply(entry));
        if a != b {
            return Err(format!("{entry:?}\n touched: {a:?}\n full: {b:?}"));
        }
        for address in [A, B] {
            if touched.open_count(address) as usize != touched.open_ops_counted(address) {
                return Err(format!("open count of {address} drifted after {entry:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn every_vector_decides_alike_with_the_full_sweep() {
    let file: Value = serde_json::from_str(include_str!("../../tests/vectors/ops.json")).unwrap_or_default();
    let vectors = file["vectors"].as_array().cloned().unwrap_or_default();
    assert!(!vectors.is_empty());
    for v in vectors {
        let config: Config = serde_json::from_value(v["config"].clone()).unwrap_or_default();
        let entries: Vec<Input> = v["steps"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("entry"))
            .map(|e| serde_json::from_value(e.clone()).unwrap_or_else(|err| panic!("{e}: {err}")))
            .collect();
        if let Err(e) = same_with_full_sweep(&config, &entries) {
            panic!("{}: {e}", v["name"]);
        }
    }
}

/// One step of a random log, over a small world so that ops collide often.
#[derive(Debug, Clone)]
enum Step {
    Op { address: usize, id: u8, entity: u8, fields: Vec<u8>, stale_base: bool, tx: Option<u8> },
    Attach { address: usize, id: u8, tx: u8 },
    Cancel { address: usize, id: u8 },
    Block { txs: Vec<(u8, usize, bool)>, secs: u8 },
    Rollback,
    Change { entity: u8, fields: Vec<u8>, tx: u8 },
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    let field_set = proptest::collection::vec(0u8..3, 1..3);
    prop_oneof![
        4 => (0usize..2, 0u8..6, 0u8..2, field_set.clone(), any::<bool>(), proptest::option::of(0u8..4))
            .prop_map(|(address, id, entity, fields, stale_base, tx)| Step::Op { address, id, entity, fields, stale_base, tx }),
        1 => (0usize..2, 0u8..6, 0u8..4).prop_map(|(address, id, tx)| Step::Attach { address, id, tx }),
        1 => (0usize..2, 0u8..6).prop_map(|(address, id)| Step::Cancel { address, id }),
        3 => (proptest::collection::vec((0u8..4, 0usize..2, any::<bool>()), 0..3), 0u8..40)
            .prop_map(|(txs, secs)| Step::Block { txs, secs }),
        1 => Just(Step::Rollback),
        2 => (0u8..2, field_set, 0u8..5).prop_map(|(entity, fields, tx)| Step::Change { entity, fields, tx }),
    ]
}

/// Turns steps into entries with increasing `seq`, a linear chain of blocks that
/// rollbacks shorten, and entity versions that rise by one per change.
fn entries(steps: &[Step]) -> Vec<Input> {
    let addresses = [A, B];
    let field = |f: &u8| ["status", "hours", "note"][*f as usize].to_string();
    let mut out = Vec::new();
    let mut chain: Vec<(i64, String)> = Vec::new();
    let (mut forks, mut timestamp) = (0, 1000i64);
    let mut versions = [0i64; 2];
    for (i, s) in steps.iter().enumerate() {
        let seq = i as i64 + 1;
        out.push(match s {
            Step::Op { address, id, entity, fields, stale_base, tx } => Input::OpSubmitted(OpSubmitted {
                seq,
                address: addresses[*address].into(),
                op_id: format!("o{id}"),
                entity: format!("exchange:{entity}"),
                kind: "k".into(),
                data: fields.iter().map(|f| (field(f), json!(seq))).collect(),
                base_version: stale_base.then(|| (versions[*entity as usize] - 1).max(0)),
                tx_hash: tx.map(|t| format!("0xt{t}")),
            }),
            Step::Attach { address, id, tx } => Input::TxHashAttached(TxHashAttached {
                seq,
                address: addresses[*address].into(),
                op_id: format!("o{id}"),
                tx_hash: format!("0xt{tx}"),
            }),
            Step::Cancel { address, id } => {
                Input::OpCancelled(OpCancelled { seq, address: addresses[*address].into(), op_id: format!("o{id}") })
            }
            Step::Block { txs, secs } => {
                timestamp += i64::from(*secs);
                let height = chain.last().map_or(10, |(h, _)| h + 1);
                let hash = format!("0x{forks}b{height}");
                chain.push((height, hash.clone()));
                Input::BlockApplied(BlockApplied {
                    seq,
                    height,
                    hash,
                    timestamp,
                    txs: txs
                        .iter()
                        .map(|(t, sender, success)| Tx {
                            tx_hash: format!("0xt{t}"),
                            sender: Some(addresses[*sender].into()),
                            success: *success,
                        })
                        .collect(),
                })
            }
            Step::Rollback => match chain.pop() {
                Some((height, hash)) => {
                    forks += 1;
                    Input::BlockRolledBack(BlockRolledBack { seq, height, hash })
                }
                None => continue,
            },
            Step::Change { entity, fields, tx } => {
                versions[*entity as usize] += 1;
                Input::EntityChanged(EntityChanged {
                    seq,
                    entity: format!("exchange:{entity}"),
                    fields: fields.iter().map(field).collect(),
                    tx_hash: format!("0xt{tx}"),
                    version: versions[*entity as usize],
                })
            }
        });
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_logs_decide_alike_with_the_full_sweep(
        steps in proptest::collection::vec(step(), 1..40),
        strategy in prop_oneof![Just(Strategy::ChainWins), Just(Strategy::LastWriterWins), Just(Strategy::Merge)],
        final_depth in 0u32..3,
    ) {
        let config = Config { final_depth, max_open_ops_per_address: 4, settled_retained_per_address: 2, ..with_strategy(strategy) };
        let log = entries(&steps);
        prop_assert!(same_with_full_sweep(&config, &log).is_ok(), "{:?}", same_with_full_sweep(&config, &log));
    }

    #[test]
    fn statuses_only_move_along_the_lifecycle(
        steps in proptest::collection::vec(step(), 1..40),
        strategy in prop_oneof![Just(Strategy::ChainWins), Just(Strategy::LastWriterWins), Just(Strategy::Merge)],
    ) {
        let mut r = Resolver::new(with_strategy(strategy));
        let mut last: std::collections::BTreeMap<(String, String), Status> = Default::default();
        for entry in entries(&steps) {
            if let Input::OpSubmitted(o) = &entry {
                last.entry((o.address.clone(), o.op_id.clone())).or_insert(Status::Pending);
            }
            for d in r.apply(&entry) {
                let before = last.insert((d.address.clone(), d.op_id.clone()), d.status);
                let allowed = match (before, d.status) {
                    (Some(Status::Pending), Status::Confirmed | Status::Reverted) => true,
                    (Some(Status::Confirmed), Status::Final) => true,
                    (Some(Status::Confirmed), Status::Pending) => d.reason == Some(Reason::RolledBack),
                    _ => false,
                };
                prop_assert!(allowed, "{before:?} -> {d:?} at {entry:?}");
            }
        }
    }
}
