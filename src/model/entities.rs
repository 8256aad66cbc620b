//! How print events become entity changes ([`EntityMapping`]): the one mapping the
//! entities projection folds and the ops rules read (`entity-change` inputs), so that both
//! see the same entity, fields and version. The mapping's defaults are described in
//! `projections::entities`.

use super::EventType;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// A JSON scalar as text: strings bare, anything else as its JSON.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    Create,
    Update,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRule {
    pub kind: String,
    pub op: Op,
}

/// How print events become entity changes. Every field has the default above, so a file
/// need only name what it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct EntityMapping {
    pub name_fields: Vec<String>,
    pub kind_fields: Vec<String>,
    pub id_fields: Vec<String>,
    pub payload_fields: Vec<String>,
    pub ops: BTreeMap<String, Op>,
    pub default_op: Op,
    pub events: BTreeMap<String, EventRule>,
    pub contracts: Option<Vec<String>>,
}

impl Default for EntityMapping {
    fn default() -> Self {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        EntityMapping {
            name_fields: s(&["event", "action"]),
            kind_fields: s(&["kind", "type", "entity"]),
            id_fields: s(&["{kind}-id", "id"]),
            payload_fields: s(&["data"]),
            ops: [
                ("created", Op::Create),
                ("updated", Op::Update),
                ("deleted", Op::Delete),
                ("cancelled", Op::Delete),
                ("canceled", Op::Delete),
                ("removed", Op::Delete),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            default_op: Op::Update,
            events: BTreeMap::new(),
            contracts: None,
        }
    }
}

/// One entity change read off a print event.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub kind: String,
    pub id: String,
    pub op: Op,
    pub fields: Map<String, Value>,
}

impl EntityMapping {
    /// A stable 48-bit hash of the mapping (FNV-1a of its canonical JSON).
    pub fn fingerprint(&self) -> i64 {
        let text = serde_json::to_string(self).unwrap_or_default();
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        (h >> 16) as i64
    }

    /// The entity change a print event makes, if any.
    pub fn map(&self, contract_id: Option<&str>, value: &Value) -> Option<Mapped> {
        if let Some(allowed) = &self.contracts {
            if !contract_id.is_some_and(|c| allowed.iter().any(|a| a == c)) {
                return None;
            }
        }
        let tuple = value.as_object()?;
        let (name_field, name) = self.name_fields.iter().find_map(|f| {
            tuple
                .get(f)
                .and_then(Value::as_str)
                .map(|v| (f.as_str(), v))
        })?;
        let mut kind_field = None;
        let (kind, op) = if let Some(rule) = self.events.get(name) {
            (rule.kind.clone(), rule.op)
        } else {
            let (kind, verb) = match name.rsplit_once('-') {
                Some((kind, verb)) if !kind.is_empty() && !verb.is_empty() => {
                    (kind.to_string(), verb)
                }
                _ => {
                    let (f, k) = self.kind_fields.iter().find_map(|f| {
                        tuple
                            .get(f)
                            .and_then(Value::as_str)
                            .map(|v| (f.as_str(), v))
                    })?;
                    kind_field = Some(f);
                    (k.to_string(), name)
                }
            };
            (kind, self.ops.get(verb).copied().unwrap_or(self.default_op))
        };
        if kind.is_empty() {
            return None;
        }
        let payload = self.payload_fields.iter().find_map(|f| {
            tuple
                .get(f)
                .and_then(Value::as_object)
                .map(|o| (f.as_str(), o))
        });
        let id_names: Vec<String> = self
            .id_fields
            .iter()
            .map(|f| f.replace("{kind}", &kind))
            .collect();
        let find_id = |o: &Map<String, Value>| {
            id_names.iter().find_map(|f| {
                o.get(f)
                    .filter(|v| !v.is_null())
                    .map(|v| (f.clone(), scalar_text(v)))
            })
        };
        let (id_field, id) = find_id(tuple).or_else(|| payload.and_then(|(_, p)| find_id(p)))?;
        if id.is_empty() {
            return None;
        }
        let source = payload.map_or(tuple, |(_, p)| p);
        let fields = source
            .iter()
            .filter(|(k, _)| {
                let k = k.as_str();
                k != id_field && (payload.is_some() || (k != name_field && Some(k) != kind_field))
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Some(Mapped {
            kind,
            id,
            op,
            fields,
        })
    }
}

impl EntityMapping {
    /// The entity change an event makes, if any: only a successful print event with a
    /// decoded value changes an entity.
    pub fn change_of(&self, event_type: EventType, success: bool, contract_id: Option<&str>, value: Option<&Value>) -> Option<Mapped> {
        if event_type != EventType::PrintEvent || !success {
            return None;
        }
        self.map(contract_id, value?)
    }
}

/// `kind:id`: how PROTOCOL §4 names an entity.
pub fn entity_name(kind: &str, id: &str) -> String {
    format!("{kind}:{id}")
}
