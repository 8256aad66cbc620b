//! `entities`: the Time Banking Protocol's domain objects (exchanges, offers, members, …)
//! as the contracts announce them in print events.
//!
//! Which print events change which entity is data, an [`EntityMapping`]: a built-in
//! default, overridable by a JSON file (`--entity-mapping FILE` / `ENTITY_MAPPING_FILE`).
//!
//! # The default mapping
//!
//! A print event whose decoded `value` is a tuple (a JSON object):
//! 1. Event name: the first of `nameFields` (`event`, `action`) holding a string.
//! 2. Kind and verb: an entry of `events` for that exact name wins (`{"kind","op"}`).
//!    Otherwise the name splits at its last `-`: `exchange-created` → kind `exchange`,
//!    verb `created`. A name without `-` is a bare verb and the kind comes from the first of
//!    `kindFields` (`kind`, `type`, `entity`) holding a string.
//! 3. Operation: `ops[verb]` (`created` → create; `updated` → update; `deleted`,
//!    `cancelled`, `canceled`, `removed` → delete), else `defaultOp` (update).
//! 4. Id: the first of `idFields` (`{kind}-id`, `id`; `{kind}` is replaced) present in the
//!    tuple, else in its `payloadFields` object (`data`). Strings bare, numbers as digits.
//! 5. Fields: the `payloadFields` object when there is one, else the tuple, minus the
//!    name, kind and id fields.
//!
//! A print event that does not fit (not a tuple, no name, no kind, no id) changes nothing.
//! `contracts`, when set, limits the mapping to print events of those contracts.
//!
//! # State
//!
//! Each entity keeps its changes in log order, each tagged with the `seq` of the event
//! that made it; the fields are the fold of those changes (create replaces, update
//! merges, delete marks deleted). Undoing an event removes its change and re-folds.
//! `version` rises by one with every change — applied or undone, since an undo changes the
//! entity too — so it is a pure function of the log. An entity with no change left
//! answers 404 but keeps its version for when it comes back.
//!
//! `render` leaves `pendingOps` empty: the route fills in the caller's own standing ops and
//! optimistic view from the ops rules (`store::OpsShared`), which read entity changes with
//! this same mapping.

use super::input::Input;
use super::state::{Projection, States};
use super::ProjectionError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::Path;

pub const NAME: &str = "entities";
/// Code version; the mapping's hash is folded in, so a new mapping rebuilds too.
pub const CODE_VERSION: i64 = 1;

pub use crate::model::entities::{EntityMapping, EventRule, Mapped, Op};

impl EntityMapping {
    /// Reads a mapping file (JSON); fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<EntityMapping, ProjectionError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ProjectionError::Config(format!("{}: {e}", path.display())))?;
        serde_json::from_str(&text)
            .map_err(|e| ProjectionError::Config(format!("{}: {e}", path.display())))
    }

    /// `None`: the built-in default; `Some(path)`: that file.
    pub fn load(path: Option<&Path>) -> Result<EntityMapping, ProjectionError> {
        match path {
            Some(p) => EntityMapping::from_file(p),
            None => Ok(EntityMapping::default()),
        }
    }
}

/// One change of an entity, tagged with the `seq` of the event that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub seq: i64,
    pub op: Op,
    pub fields: Map<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    #[serde(default)]
    pub version: i64,
    #[serde(default)]
    pub changes: Vec<Change>,
}

impl Entity {
    /// The fields the changes fold to, and whether the last word was a delete.
    pub fn fold(&self) -> (Map<String, Value>, bool) {
        let mut fields = Map::new();
        let mut deleted = false;
        for c in &self.changes {
            match c.op {
                Op::Create => {
                    fields = c.fields.clone();
                    deleted = false;
                }
                Op::Update => {
                    for (k, v) in &c.fields {
                        fields.insert(k.clone(), v.clone());
                    }
                    deleted = false;
                }
                Op::Delete => {
                    for (k, v) in &c.fields {
                        fields.insert(k.clone(), v.clone());
                    }
                    deleted = true;
                }
            }
        }
        (fields, deleted)
    }
}

pub struct Entities {
    mapping: EntityMapping,
}

impl Entities {
    pub fn new(mapping: EntityMapping) -> Entities {
        Entities { mapping }
    }
}

/// The row key of an entity.
pub fn key(kind: &str, id: &str) -> String {
    format!("{kind}/{id}")
}

impl Projection for Entities {
    type State = Entity;

    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i64 {
        (CODE_VERSION * 1_000_000_007) ^ self.mapping.fingerprint()
    }

    fn apply(
        &self,
        input: &Input<'_>,
        states: &mut States<'_, '_, Entity>,
    ) -> Result<(), ProjectionError> {
        let e = input.event;
        let Some(m) = self.mapping.change_of(e.event_type, e.success, e.contract_id.as_deref(), e.data.value.as_ref()) else {
            return Ok(());
        };
        let entity = states.get_mut(&key(&m.kind, &m.id))?;
        match input.direction {
            super::input::Direction::Apply => {
                entity.changes.push(Change {
                    seq: e.seq,
                    op: m.op,
                    fields: m.fields,
                });
            }
            super::input::Direction::Undo => {
                entity.changes.retain(|c| c.seq != e.seq);
            }
        }
        entity.version += 1;
        Ok(())
    }
}

/// `GET /api/entities/{kind}/{id}` (PROTOCOL §5). `deleted` is an extension: present and
/// `true` once the last change was a delete (the entity stays readable).
pub fn render(kind: &str, id: &str, entity: &Entity, seq: i64) -> Option<Value> {
    if entity.changes.is_empty() {
        return None;
    }
    let (fields, deleted) = entity.fold();
    let mut out = json!({
        "kind": kind,
        "id": id,
        "version": entity.version,
        "fields": fields,
        "pendingOps": [],
        "seq": seq,
    });
    if deleted {
        out["deleted"] = Value::Bool(true);
    }
    Some(out)
}

#[cfg(test)]
#[path = "entities_tests.rs"]
mod fold_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_mapping_reads_names_ids_and_ops() {
        let m = EntityMapping::default();
        let v =
            json!({"event": "exchange-created", "exchange-id": 123, "hours": 2, "provider": "ST1"});
        let got = m.map(None, &v).expect("maps");
        assert_eq!(
            (got.kind.as_str(), got.id.as_str(), got.op),
            ("exchange", "123", Op::Create)
        );
        assert_eq!(
            Value::Object(got.fields),
            json!({"hours": 2, "provider": "ST1"})
        );

        let v = json!({"action": "offer-cancelled", "id": "o-9"});
        let got = m.map(None, &v).expect("maps");
        assert_eq!(
            (got.kind.as_str(), got.id.as_str(), got.op),
            ("offer", "o-9", Op::Delete)
        );

        let v = json!({"event": "member-joined", "member-id": "ST2"});
        assert_eq!(m.map(None, &v).expect("maps").op, Op::Update);

        // Arkadiko style: a bare verb, the kind in `type`, the id inside `data`.
        let v = json!({"action": "created", "type": "vault", "data": {"id": 7, "owner": "SP1"}});
        let got = m.map(None, &v).expect("maps");
        assert_eq!(
            (got.kind.as_str(), got.id.as_str(), got.op),
            ("vault", "7", Op::Create)
        );
        assert_eq!(Value::Object(got.fields), json!({"owner": "SP1"}));

        assert_eq!(m.map(None, &json!("Hello World")), None);
        assert_eq!(
            m.map(None, &json!({"event": "exchange-created"})),
            None,
            "no id"
        );
    }

    #[test]
    fn mapping_file_overrides_and_changes_the_version() {
        let custom: EntityMapping =
            serde_json::from_value(json!({"events": {"hours-logged": {"kind": "exchange", "op": "update"}}, "idFields": ["ref"]}))
                .expect("mapping parses");
        let v = json!({"event": "hours-logged", "ref": 5, "hours": 3});
        let got = custom.map(None, &v).expect("maps");
        assert_eq!(
            (got.kind.as_str(), got.id.as_str(), got.op),
            ("exchange", "5", Op::Update)
        );
        assert_ne!(
            Entities::new(custom).version(),
            Entities::new(EntityMapping::default()).version()
        );
    }

    #[test]
    fn undo_removes_the_change_and_version_keeps_rising() {
        let mut e = Entity::default();
        e.changes.push(Change {
            seq: 1,
            op: Op::Create,
            fields: json!({"a": 1}).as_object().cloned().unwrap_or_default(),
        });
        e.changes.push(Change {
            seq: 2,
            op: Op::Update,
            fields: json!({"b": 2}).as_object().cloned().unwrap_or_default(),
        });
        assert_eq!(Value::Object(e.fold().0), json!({"a": 1, "b": 2}));
        e.changes.retain(|c| c.seq != 2);
        assert_eq!(Value::Object(e.fold().0), json!({"a": 1}));
    }
}
