//! `entities` folded, given/when/then, without I/O: print events folded from a log in
//! memory, the entity read as `GET /api/entities/{kind}/{id}` answers it.

use super::{key, render, Entities, Entity, EntityMapping, NAME};
use crate::projections::engine::testing::*;
use crate::projections::state::{Fold, Folder};
use serde_json::{json, Value};

/// The entity as served; `None` answers 404.
fn served(then: &Folded, kind: &str, id: &str) -> Option<Value> {
    let entity: Entity = then.state(NAME, &key(kind, id))?;
    let mut body = render(kind, id, &entity, 0)?;
    body.as_object_mut()?.remove("seq");
    Some(body)
}

fn exchange(then: &Folded) -> Option<Value> {
    served(then, "exchange", "7")
}

fn created() -> Event {
    print(CONTRACT, json!({"event": "exchange-created", "exchange-id": 7, "hours": 2, "provider": ALICE}))
}

fn updated(fields: Value) -> Event {
    let mut value = json!({"event": "exchange-updated", "exchange-id": 7});
    for (k, v) in fields.as_object().expect("fields").clone() {
        value[k] = v;
    }
    print(CONTRACT, value)
}

fn cancelled() -> Event {
    print(CONTRACT, json!({"event": "exchange-cancelled", "exchange-id": 7, "reason": "no-show"}))
}

#[test]
fn created_entity_has_the_fields_of_its_create() {
    let log = given().event(created());

    let then = when_folded(projection(NAME), &log);

    assert_eq!(
        exchange(&then),
        Some(json!({
            "kind": "exchange", "id": "7", "version": 1,
            "fields": {"hours": 2, "provider": ALICE}, "pendingOps": [],
        }))
    );
}

#[test]
fn update_merges_its_fields_and_raises_the_version() {
    let log = given().events([created(), updated(json!({"hours": 3, "note": "late"}))]);

    let then = when_folded(projection(NAME), &log);

    let entity = exchange(&then).expect("entity");
    assert_eq!(entity["fields"], json!({"hours": 3, "provider": ALICE, "note": "late"}));
    assert_eq!(entity["version"], json!(2));
}

#[test]
fn delete_marks_the_entity_deleted_and_keeps_it_readable() {
    let log = given().events([created(), cancelled()]);

    let then = when_folded(projection(NAME), &log);

    let entity = exchange(&then).expect("entity");
    assert_eq!(entity["deleted"], json!(true));
    assert_eq!(entity["fields"], json!({"hours": 2, "provider": ALICE, "reason": "no-show"}));
}

#[test]
fn rollback_of_an_update_restores_the_fields_before_it_and_raises_the_version() {
    let log = given().events([created(), updated(json!({"hours": 3}))]).rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    let entity = exchange(&then).expect("entity");
    assert_eq!(entity["fields"], json!({"hours": 2, "provider": ALICE}));
    assert_eq!(entity["version"], json!(3), "the undo is a change too");
}

#[test]
fn rollback_of_a_change_in_the_middle_refolds_the_changes_after_it() {
    let log = given()
        .events([created(), updated(json!({"hours": 3, "note": "late"})), updated(json!({"hours": 5}))])
        .rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    assert_eq!(exchange(&then).expect("entity")["fields"], json!({"hours": 5, "provider": ALICE}));
}

#[test]
fn rollback_of_a_delete_brings_the_entity_back() {
    let log = given().events([created(), cancelled()]).rollback_of(2);

    let then = when_folded(projection(NAME), &log);

    let entity = exchange(&then).expect("entity");
    assert_eq!(entity.get("deleted"), None);
    assert_eq!(entity["fields"], json!({"hours": 2, "provider": ALICE}));
}

#[test]
fn rollback_of_the_create_leaves_no_entity_until_it_is_created_again() {
    let undone = given().event(created()).rollback_of(1);

    let then = when_folded(projection(NAME), &undone);
    assert_eq!(exchange(&then), None);

    let then = when_folded(projection(NAME), &undone.event(created()));
    assert_eq!(exchange(&then).expect("entity")["version"], json!(3), "the version goes on");
}

#[test]
fn print_of_a_failed_transaction_changes_nothing() {
    let log = given().event(created().failed());

    let then = when_folded(projection(NAME), &log);

    assert!(then.rows().is_empty(), "{:?}", then.rows());
}

#[test]
fn print_that_maps_to_no_entity_changes_nothing() {
    let log = given().events([
        print(CONTRACT, json!("Hello World")),
        print(CONTRACT, json!({"event": "exchange-created"})),
        print(CONTRACT, json!({"hours": 2, "exchange-id": 7})),
    ]);

    let then = when_folded(projection(NAME), &log);

    assert!(then.rows().is_empty(), "{:?}", then.rows());
}

#[test]
fn mapping_limited_to_some_contracts_ignores_the_others() {
    let mapping = EntityMapping { contracts: Some(vec![CONTRACT.to_string()]), ..EntityMapping::default() };
    let limited = || -> Vec<Box<dyn Folder>> { vec![Box::new(Fold::new(Entities::new(mapping.clone())))] };
    let elsewhere = "ST1PQHQKV0RJXZFY1DGX8MNSNYVE3VGZJSRTPGZGM.other";
    let log = given().events([
        created(),
        print(elsewhere, json!({"event": "offer-created", "offer-id": 1, "title": "garden"})),
    ]);

    let then = when_folded(limited(), &log);

    assert!(exchange(&then).is_some());
    assert_eq!(served(&then, "offer", "1"), None);
}
