//! A projection's working set, given/when/then, without I/O: which states are loaded,
//! cached, written and deleted, with a counting projection and a loader standing for the
//! stored rows.

use super::*;
use crate::projections::input::{Direction, EventView};
use std::cell::RefCell;
use std::collections::BTreeMap;

/// Counts applied events per event type (its key); zero is no state.
struct Counter;

impl Projection for Counter {
    type State = i64;

    fn name(&self) -> &'static str {
        "counter"
    }

    fn version(&self) -> i64 {
        1
    }

    fn is_empty(state: &i64) -> bool {
        *state == 0
    }

    fn apply(&self, input: &Input<'_>, states: &mut States<'_, '_, i64>) -> Result<(), ProjectionError> {
        *states.get_mut(input.event.event_type.as_str())? += input.direction.sign();
        Ok(())
    }
}

fn event(event_type: &str) -> EventView {
    EventView::parse(&format!(r#"{{"seq":1,"blockHeight":1,"eventType":"{event_type}"}}"#)).expect("event view")
}

/// Stored rows and the keys loaded from them, in order.
#[derive(Default)]
struct Rows {
    stored: BTreeMap<String, String>,
    loads: RefCell<Vec<String>>,
}

impl Rows {
    fn with(rows: &[(&str, &str)]) -> Rows {
        Rows { stored: rows.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(), ..Rows::default() }
    }

    fn loads(&self) -> Vec<String> {
        self.loads.borrow().clone()
    }
}

/// Folds `events` (type, direction) into `fold`, loading from `rows`.
fn when_folded(fold: &mut Fold<Counter>, rows: &Rows, events: &[(&str, Direction)]) -> Result<(), ProjectionError> {
    for (seq, (event_type, direction)) in events.iter().enumerate() {
        let view = event(event_type);
        let input = Input { seq: seq as i64 + 1, direction: *direction, event: &view };
        let mut load = |key: &str| {
            rows.loads.borrow_mut().push(key.to_string());
            Ok(rows.stored.get(key).cloned())
        };
        fold.apply(&input, &mut load)?;
    }
    Ok(())
}

fn written(list: &[(&str, Option<&str>)]) -> Vec<(String, Option<String>)> {
    list.iter().map(|(k, v)| (k.to_string(), v.map(str::to_string))).collect()
}

const APPLY: Direction = Direction::Apply;
const UNDO: Direction = Direction::Undo;

#[test]
fn state_missing_from_the_cache_is_loaded_from_its_row_once() {
    let rows = Rows::with(&[("print_event", "41")]);
    let mut fold = Fold::new(Counter);

    when_folded(&mut fold, &rows, &[("print_event", APPLY), ("print_event", APPLY)]).expect("folds");

    assert_eq!(rows.loads(), vec!["print_event"]);
    assert_eq!(fold.take_dirty().expect("dirty"), written(&[("print_event", Some("43"))]));
}

#[test]
fn generation_built_from_empty_never_loads() {
    let rows = Rows::with(&[("print_event", "41")]);
    let mut fold = Fold::new(Counter);
    fold.reset(true);

    when_folded(&mut fold, &rows, &[("print_event", APPLY)]).expect("folds");

    assert_eq!(rows.loads(), Vec::<String>::new());
    assert_eq!(fold.take_dirty().expect("dirty"), written(&[("print_event", Some("1"))]));
}

#[test]
fn seeded_cache_holds_every_state_and_never_loads() {
    let rows = Rows::with(&[("nft_mint_event", "9")]);
    let mut fold = Fold::new(Counter);
    fold.seed(vec![("print_event".into(), "41".into())]).expect("seeds");

    when_folded(&mut fold, &rows, &[("print_event", APPLY), ("nft_mint_event", APPLY)]).expect("folds");

    assert_eq!(rows.loads(), Vec::<String>::new());
    assert_eq!(
        fold.take_dirty().expect("dirty"),
        written(&[("nft_mint_event", Some("1")), ("print_event", Some("42"))])
    );
}

#[test]
fn changed_states_are_written_once_each_in_key_order() {
    let rows = Rows::default();
    let mut fold = Fold::new(Counter);

    when_folded(&mut fold, &rows, &[("stx_mint_event", APPLY), ("print_event", APPLY), ("stx_mint_event", APPLY)])
        .expect("folds");

    assert_eq!(
        fold.take_dirty().expect("dirty"),
        written(&[("print_event", Some("1")), ("stx_mint_event", Some("2"))])
    );
    assert_eq!(fold.take_dirty().expect("dirty"), written(&[]), "written states are clean");
}

#[test]
fn state_that_became_empty_is_written_as_a_delete() {
    let rows = Rows::with(&[("print_event", "1")]);
    let mut fold = Fold::new(Counter);

    when_folded(&mut fold, &rows, &[("print_event", UNDO)]).expect("folds");

    assert_eq!(fold.take_dirty().expect("dirty"), written(&[("print_event", None)]));
}

#[test]
fn trim_drops_written_states_and_they_are_loaded_again() {
    let rows = Rows::with(&[("print_event", "5")]);
    let mut fold = Fold::new(Counter);
    when_folded(&mut fold, &rows, &[("print_event", APPLY)]).expect("folds");
    fold.take_dirty().expect("dirty");

    fold.trim(0);
    when_folded(&mut fold, &rows, &[("print_event", APPLY)]).expect("folds");

    assert_eq!(rows.loads(), vec!["print_event", "print_event"]);
}

#[test]
fn trim_keeps_states_not_written_yet() {
    let rows = Rows::default();
    let mut fold = Fold::new(Counter);
    when_folded(&mut fold, &rows, &[("print_event", APPLY)]).expect("folds");

    fold.trim(0);

    assert_eq!(fold.cached(), 1);
    assert_eq!(fold.take_dirty().expect("dirty"), written(&[("print_event", Some("1"))]));
}

#[test]
fn unreadable_stored_state_is_refused_as_corrupt() {
    let rows = Rows::with(&[("print_event", "not json")]);
    let mut fold = Fold::new(Counter);

    let result = when_folded(&mut fold, &rows, &[("print_event", APPLY)]);

    assert!(matches!(result, Err(ProjectionError::Corrupt(_))), "{result:?}");
}
