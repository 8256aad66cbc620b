//! Runs every vector of `tests/vectors/ops.json` (format: docs/ops.md "Test vectors")
//! through the `ops::Resolver`: each entry's decisions, each answer to a resend or cancel,
//! each optimistic view. Failures name the vector and step, and all of them are reported
//! at once. The same file is run by every client library, so this test reads it exactly as
//! documented and nothing more.

use serde_json::{Map, Value};
use std::collections::BTreeSet;
use timebank_realtime::ops::decision::json_eq;
use timebank_realtime::ops::{Answer, CancelRequest, Config, Decision, Input, OpRequest, Reason, RejectDetail, Resolver, Status};

const VECTORS: &str = include_str!("vectors/ops.json");

fn vectors() -> Vec<Value> {
    let file: Value = serde_json::from_str(VECTORS).expect("ops.json is JSON");
    assert_eq!(file["format"], Value::from(1), "format");
    file["vectors"].as_array().expect("vectors is an array").clone()
}

fn parse<T: serde::de::DeserializeOwned>(value: &Value, what: &str) -> Result<T, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("{what} does not parse: {e}: {value}"))
}

/// An `ask` message: the wire message with its `type`, which selects the request kind.
fn answer(resolver: &Resolver, message: &Value) -> Result<Answer, String> {
    let mut fields = message.as_object().cloned().ok_or("ask is not an object")?;
    let kind = fields.remove("type");
    let body = Value::Object(fields);
    match kind.as_ref().and_then(Value::as_str) {
        Some("op") => Ok(resolver.answer_op(&parse::<OpRequest>(&body, "ask")?)),
        Some("op-cancel") => Ok(resolver.answer_cancel(&parse::<CancelRequest>(&body, "ask")?)),
        other => Err(format!("ask of unknown type {other:?}")),
    }
}

fn step(resolver: &mut Resolver, step: &Value) -> Result<(), String> {
    if let Some(entry) = step.get("entry") {
        let input: Input = parse(entry, "entry")?;
        let expected: Vec<Decision> = parse(&step["decisions"], "decisions")?;
        let got = resolver.apply(&input);
        if got != expected {
            return Err(format!(
                "entry {entry}\n      expected {}\n      got      {}",
                serde_json::to_string(&expected).unwrap_or_default(),
                serde_json::to_string(&got).unwrap_or_default()
            ));
        }
    } else if let Some(message) = step.get("ask") {
        let expected: Answer = parse(&step["answer"], "answer")?;
        let got = answer(resolver, message)?;
        if got != expected {
            return Err(format!("ask {message}\n      expected {expected:?}\n      got      {got:?}"));
        }
    } else if let Some(view) = step.get("view") {
        let address = view["address"].as_str().ok_or("view.address")?;
        let entity = view["entity"].as_str().ok_or("view.entity")?;
        let chain: Map<String, Value> = parse(&view["chain"], "view.chain")?;
        let got = Value::Object(resolver.view(address, entity, &chain));
        if !json_eq(&got, &step["fields"]) {
            return Err(format!("view {view}\n      expected {}\n      got      {got}", step["fields"]));
        }
    } else {
        return Err(format!("unknown step {step}"));
    }
    Ok(())
}

#[test]
fn every_vector_decides_as_documented() {
    let mut failures = Vec::new();
    let all = vectors();
    for vector in &all {
        let name = vector["name"].as_str().unwrap_or("(unnamed)");
        let config: Config = match parse(&vector["config"], "config") {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
        };
        let mut resolver = Resolver::new(config);
        for (i, s) in vector["steps"].as_array().into_iter().flatten().enumerate() {
            if let Err(e) = step(&mut resolver, s) {
                failures.push(format!("{name}, step {i}: {e}"));
                break;
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} vectors fail:\n{}", failures.len(), all.len(), failures.join("\n"));
}

/// The file keeps covering every outcome: each status, reason and rejection detail is
/// expected by some vector, and names are unique (a failure names one vector).
#[test]
fn vectors_cover_every_outcome() {
    let all = vectors();
    let names: BTreeSet<&str> = all.iter().filter_map(|v| v["name"].as_str()).collect();
    assert_eq!(names.len(), all.len(), "vector names are unique and present");
    let decisions: Vec<Decision> = all
        .iter()
        .flat_map(|v| v["steps"].as_array().cloned().unwrap_or_default())
        .filter_map(|s| s.get("decisions").cloned())
        .flat_map(|d| serde_json::from_value::<Vec<Decision>>(d).expect("decisions parse"))
        .collect();
    let statuses: BTreeSet<Status> = decisions.iter().map(|d| d.status).collect();
    let reasons: BTreeSet<Reason> = decisions.iter().filter_map(|d| d.reason).collect();
    let details: BTreeSet<RejectDetail> = decisions.iter().filter_map(|d| d.detail).collect();
    assert_eq!(statuses.len(), 4, "statuses: {statuses:?}");
    assert_eq!(reasons.len(), 7, "reasons: {reasons:?}");
    assert_eq!(details.len(), 6, "details: {details:?}");
    for strategy in ["chain-wins", "last-writer-wins", "merge"] {
        for case in ["two-devices-overlapping", "two-devices-disjoint", "stale-op", "chain-changes-a-pending-field", "later-op-overrides-every-field", "partial-overlap"] {
            let name = format!("{strategy}-{case}");
            assert!(names.contains(name.as_str()), "no vector {name}");
        }
    }
}
