//! `metadata.managedFields` as kube-apiserver reads and writes it: one entry per manager
//! and operation (an updater per API version, an applier once), each with its field set
//! as `FieldsV1`, sorted as k8s.io/apimachinery sorts them.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::set::Set;

/// `Apply` or `Update`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    Apply,
    Update,
}

impl Operation {
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

/// Who owns a set of fields: kube-apiserver's manager identifier. An applier is one
/// manager whatever version it applies in; an updater is one per version.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ManagerId {
    pub manager: String,
    pub operation: Operation,
    /// Empty for appliers.
    pub api_version: String,
    pub subresource: String,
}

impl ManagerId {
    pub fn new(manager: &str, operation: Operation, api_version: &str, subresource: &str) -> Self {
        ManagerId {
            manager: if manager.is_empty() {
                "unknown".into()
            } else {
                manager.into()
            },
            operation,
            api_version: match operation {
                Operation::Apply => String::new(),
                Operation::Update => api_version.into(),
            },
            subresource: subresource.into(),
        }
    }

    /// How a conflict names the manager (k8s.io/apimachinery's `printManager`).
    pub fn describe(&self, time: Option<&str>) -> String {
        let mut s = format!("{:?}", self.manager);
        if !self.subresource.is_empty() {
            s = format!("{s} with subresource {:?}", self.subresource);
        }
        if self.operation == Operation::Update {
            s = match time {
                Some(t) => format!("{s} using {} at {t}", self.api_version),
                None => format!("{s} using {}", self.api_version),
            };
        }
        s
    }
}

/// A manager's fields, in the API version they were recorded in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionedSet {
    pub set: Set,
    pub api_version: String,
    pub applied: bool,
}

/// Every manager's fields and when each last changed something.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Managed {
    pub fields: BTreeMap<ManagerId, VersionedSet>,
    pub times: BTreeMap<ManagerId, String>,
}

impl Managed {
    /// Decode `metadata.managedFields` (absent or null is none). An entry that is not
    /// kube's shape is an error, as `DecodeManagedFields` makes it.
    pub fn decode(v: Option<&Value>) -> Result<Managed, String> {
        let mut out = Managed::default();
        let entries = match v {
            None | Some(Value::Null) => return Ok(out),
            Some(Value::Array(a)) => a,
            Some(_) => return Err("managedFields must be a list".into()),
        };
        for (i, e) in entries.iter().enumerate() {
            let bad = |what: &str| format!("managedFields[{i}]: {what}");
            let Value::Object(m) = e else {
                return Err(bad("must be an object"));
            };
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or_default();
            let operation = match s("operation") {
                "Apply" => Operation::Apply,
                "Update" => Operation::Update,
                other => {
                    return Err(bad(&format!(
                        "operation {other:?} is neither Apply nor Update"
                    )))
                }
            };
            match s("fieldsType") {
                "FieldsV1" => {}
                other => return Err(bad(&format!("fieldsType {other:?} is not FieldsV1"))),
            }
            let set = Set::from_fields_v1(m.get("fieldsV1").unwrap_or(&json!({})))
                .map_err(|e| bad(&e))?;
            let id = ManagerId::new(s("manager"), operation, s("apiVersion"), s("subresource"));
            if out.fields.contains_key(&id) {
                return Err(bad("duplicate manager"));
            }
            if let Some(t) = m.get("time").and_then(Value::as_str) {
                out.times.insert(id.clone(), t.to_string());
            }
            out.fields.insert(
                id,
                VersionedSet {
                    set,
                    api_version: s("apiVersion").to_string(),
                    applied: operation == Operation::Apply,
                },
            );
        }
        Ok(out)
    }

    /// The wire form, sorted by operation (Apply first), time, manager, version and
    /// subresource (`sortEncodedManagedFields`).
    pub fn encode(&self) -> Value {
        let mut entries: Vec<(&ManagerId, &VersionedSet, Option<&String>)> = self
            .fields
            .iter()
            .map(|(id, vs)| (id, vs, self.times.get(id)))
            .collect();
        entries.sort_by(|a, b| {
            a.0.operation
                .cmp(&b.0.operation)
                .then_with(|| a.2.cmp(&b.2))
                .then_with(|| a.0.manager.cmp(&b.0.manager))
                .then_with(|| a.1.api_version.cmp(&b.1.api_version))
                .then_with(|| a.0.subresource.cmp(&b.0.subresource))
        });
        Value::Array(
            entries
                .into_iter()
                .map(|(id, vs, time)| {
                    let mut m = Map::new();
                    m.insert("manager".into(), json!(id.manager));
                    m.insert("operation".into(), json!(id.operation.as_str()));
                    m.insert("apiVersion".into(), json!(vs.api_version));
                    if let Some(t) = time {
                        m.insert("time".into(), json!(t));
                    }
                    m.insert("fieldsType".into(), json!("FieldsV1"));
                    m.insert("fieldsV1".into(), vs.set.to_fields_v1());
                    if !id.subresource.is_empty() {
                        m.insert("subresource".into(), json!(id.subresource));
                    }
                    Value::Object(m)
                })
                .collect(),
        )
    }
}

/// Whether a client's managedFields ask for a reset: `[]` or `[{}]`
/// (`isResetManagedFields`).
pub fn is_reset(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Array(a)) => {
            a.is_empty() || (a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_sorts_appliers_first() {
        let wire = json!([
            {"manager": "b", "operation": "Update", "apiVersion": "g/v1", "time": "2026-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:a": {}}}},
            {"manager": "a", "operation": "Apply", "apiVersion": "g/v2", "time": "2026-01-02T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:b": {}}}, "subresource": "status"}
        ]);
        let m = Managed::decode(Some(&wire)).unwrap();
        assert_eq!(m.fields.len(), 2);
        let enc = m.encode();
        assert_eq!(enc[0]["manager"], "a");
        assert_eq!(enc[1], wire[0]);
        assert_eq!(enc[0], wire[1]);
    }

    #[test]
    fn malformed_entries_are_errors() {
        for bad in [
            json!({"a": 1}),
            json!([1]),
            json!([{"manager": "m", "operation": "Patch", "fieldsType": "FieldsV1"}]),
            json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV2"}]),
            json!([{"manager": "m", "operation": "Apply", "fieldsType": "FieldsV1", "fieldsV1": {"q:x": {}}}]),
        ] {
            assert!(Managed::decode(Some(&bad)).is_err(), "{bad}");
        }
        assert!(is_reset(Some(&json!([]))));
        assert!(is_reset(Some(&json!([{}]))));
        assert!(!is_reset(None));
    }

    #[test]
    fn managers_print_as_kube_prints_them() {
        let u = ManagerId::new("kubectl-edit", Operation::Update, "g/v1", "");
        assert_eq!(u.describe(None), "\"kubectl-edit\" using g/v1");
        assert_eq!(
            u.describe(Some("2026-01-01T00:00:00Z")),
            "\"kubectl-edit\" using g/v1 at 2026-01-01T00:00:00Z"
        );
        let a = ManagerId::new("flux", Operation::Apply, "g/v1", "status");
        assert_eq!(a.describe(None), "\"flux\" with subresource \"status\"");
        assert_eq!(a.api_version, "");
    }
}
