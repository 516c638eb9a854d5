//! The shape of an object as merging sees it, read from an OpenAPI v3 schema with the
//! markers CRDs use: `x-kubernetes-list-type` (`atomic`, `set`, `map`),
//! `x-kubernetes-list-map-keys`, `x-kubernetes-map-type` (`granular`, `atomic`) and
//! `x-kubernetes-preserve-unknown-fields`. The defaults are those of CRDs: a list is
//! atomic unless marked, an object is granular.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

/// How the items of a list are told apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListKind {
    /// The list is one value: replaced whole, owned whole.
    Atomic,
    /// Scalars, each item its own key (`x-kubernetes-list-type: set`).
    Set,
    /// Objects keyed by these fields (`x-kubernetes-list-type: map`).
    Map(Vec<String>),
}

/// A node of the schema.
#[derive(Clone, Debug, PartialEq)]
pub enum Type {
    /// A string, number, boolean or null: always a leaf.
    Scalar,
    /// An object: named fields, and the type of any other key (`additionalProperties`,
    /// or [`Type::Untyped`] when unknown fields are preserved). An object with neither
    /// has no other keys.
    Map {
        fields: BTreeMap<String, Arc<Type>>,
        elements: Option<Arc<Type>>,
        atomic: bool,
    },
    /// An array of `items`.
    List { items: Arc<Type>, kind: ListKind },
    /// Nothing is known: decided by the value, as structured-merge-diff's deduced type
    /// (objects granular with untyped values, arrays atomic, anything else a scalar).
    Untyped,
}

/// The untyped object: what an untyped value that is a JSON object is merged as.
fn untyped_map() -> Type {
    Type::Map {
        fields: BTreeMap::new(),
        elements: Some(Arc::new(Type::Untyped)),
        atomic: false,
    }
}

impl Type {
    /// The type an untyped node takes for this value.
    pub fn resolve<'a>(&'a self, v: &Value) -> std::borrow::Cow<'a, Type> {
        match self {
            Type::Untyped => std::borrow::Cow::Owned(match v {
                Value::Object(_) => untyped_map(),
                Value::Array(_) => Type::List {
                    items: Arc::new(Type::Untyped),
                    kind: ListKind::Atomic,
                },
                _ => Type::Scalar,
            }),
            t => std::borrow::Cow::Borrowed(t),
        }
    }

    /// The type of field or key `name` of a map, if it may have one.
    pub fn field(&self, name: &str) -> Option<&Arc<Type>> {
        match self {
            Type::Map {
                fields, elements, ..
            } => fields.get(name).or(elements.as_ref()),
            _ => None,
        }
    }

    /// Whether `name` is a declared field (not an `additionalProperties` key).
    pub fn declares(&self, name: &str) -> bool {
        matches!(self, Type::Map { fields, .. } if fields.contains_key(name))
    }

    /// Read an OpenAPI v3 schema (no `$ref`s: the structural schemas plugins publish).
    pub fn from_openapi(s: &Value) -> Result<Type, String> {
        from_openapi(s, "")
    }

    /// The type of a whole object of a kind whose schema is `schema`: `apiVersion`,
    /// `kind` and `metadata` are Kubernetes' own whatever the schema says.
    pub fn object(schema: &Value) -> Result<Type, String> {
        let mut t = Type::from_openapi(schema)?;
        if let Type::Map { fields, .. } = &mut t {
            fields.insert("apiVersion".into(), Arc::new(Type::Scalar));
            fields.insert("kind".into(), Arc::new(Type::Scalar));
            fields.insert("metadata".into(), Arc::new(object_meta()));
        }
        Ok(t)
    }
}

fn map(fields: &[(&str, Type)], elements: Option<Type>) -> Type {
    Type::Map {
        fields: fields
            .iter()
            .map(|(k, t)| (k.to_string(), Arc::new(t.clone())))
            .collect(),
        elements: elements.map(Arc::new),
        atomic: false,
    }
}

/// `metav1.ObjectMeta` with its list and map markers (finalizers a set, owner
/// references a map keyed by uid, labels and annotations granular).
pub fn object_meta() -> Type {
    let string_map = map(&[], Some(Type::Scalar));
    let owner_ref = map(
        &[
            ("apiVersion", Type::Scalar),
            ("kind", Type::Scalar),
            ("name", Type::Scalar),
            ("uid", Type::Scalar),
            ("controller", Type::Scalar),
            ("blockOwnerDeletion", Type::Scalar),
        ],
        None,
    );
    let mut fields: Vec<(&str, Type)> = [
        "name",
        "generateName",
        "namespace",
        "selfLink",
        "uid",
        "resourceVersion",
        "generation",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
    ]
    .into_iter()
    .map(|f| (f, Type::Scalar))
    .collect();
    fields.push(("labels", string_map.clone()));
    fields.push(("annotations", string_map));
    fields.push((
        "finalizers",
        Type::List {
            items: Arc::new(Type::Scalar),
            kind: ListKind::Set,
        },
    ));
    fields.push((
        "ownerReferences",
        Type::List {
            items: Arc::new(owner_ref),
            kind: ListKind::Map(vec!["uid".into()]),
        },
    ));
    fields.push((
        "managedFields",
        Type::List {
            items: Arc::new(Type::Untyped),
            kind: ListKind::Atomic,
        },
    ));
    map(&fields, None)
}

fn from_openapi(s: &Value, at: &str) -> Result<Type, String> {
    let ty = s.get("type").and_then(Value::as_str).unwrap_or_default();
    let preserve = s
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if s.get("x-kubernetes-int-or-string").and_then(Value::as_bool) == Some(true) {
        return Ok(Type::Scalar);
    }
    if s.get("x-kubernetes-embedded-resource")
        .and_then(Value::as_bool)
        == Some(true)
    {
        let mut t = from_plain_object(s, at, preserve)?;
        if let Type::Map { fields, .. } = &mut t {
            fields.insert("apiVersion".into(), Arc::new(Type::Scalar));
            fields.insert("kind".into(), Arc::new(Type::Scalar));
            fields.insert("metadata".into(), Arc::new(object_meta()));
        }
        return Ok(t);
    }
    match ty {
        "object" => from_plain_object(s, at, preserve),
        "array" => {
            let items = match s.get("items") {
                Some(i) => from_openapi(i, &format!("{at}[]"))?,
                None => Type::Untyped,
            };
            let kind = match s.get("x-kubernetes-list-type").and_then(Value::as_str) {
                None | Some("atomic") => ListKind::Atomic,
                Some("set") => {
                    if matches!(items, Type::Map { .. } | Type::List { .. }) {
                        return Err(format!(
                            "{at}: x-kubernetes-list-type set needs scalar items"
                        ));
                    }
                    ListKind::Set
                }
                Some("map") => {
                    let keys: Vec<String> = s
                        .get("x-kubernetes-list-map-keys")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|k| k.as_str().map(str::to_string))
                                .collect()
                        })
                        .unwrap_or_default();
                    if keys.is_empty() {
                        return Err(format!(
                            "{at}: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
                        ));
                    }
                    if !matches!(items, Type::Map { .. }) {
                        return Err(format!(
                            "{at}: x-kubernetes-list-type map needs object items"
                        ));
                    }
                    ListKind::Map(keys)
                }
                Some(other) => {
                    return Err(format!(
                        "{at}: unknown x-kubernetes-list-type {other:?} (atomic, set or map)"
                    ))
                }
            };
            Ok(Type::List {
                items: Arc::new(items),
                kind,
            })
        }
        "" if s.get("properties").is_some() || s.get("additionalProperties").is_some() => {
            from_plain_object(s, at, preserve)
        }
        "" => Ok(Type::Untyped),
        _ => Ok(Type::Scalar),
    }
}

fn from_plain_object(s: &Value, at: &str, preserve: bool) -> Result<Type, String> {
    let mut fields = BTreeMap::new();
    if let Some(props) = s.get("properties").and_then(Value::as_object) {
        for (k, v) in props {
            let path = if at.is_empty() {
                k.clone()
            } else {
                format!("{at}.{k}")
            };
            fields.insert(k.clone(), Arc::new(from_openapi(v, &path)?));
        }
    }
    let elements = match s.get("additionalProperties") {
        Some(Value::Object(a)) => Some(Arc::new(from_openapi(
            &Value::Object(a.clone()),
            &format!("{at}.*"),
        )?)),
        Some(Value::Bool(true)) => Some(Arc::new(Type::Untyped)),
        // No properties at all: nothing is known of the keys.
        _ if preserve || fields.is_empty() => Some(Arc::new(Type::Untyped)),
        _ => None,
    };
    let atomic = match s.get("x-kubernetes-map-type").and_then(Value::as_str) {
        None | Some("granular") => false,
        Some("atomic") => true,
        Some(other) => {
            return Err(format!(
                "{at}: unknown x-kubernetes-map-type {other:?} (granular or atomic)"
            ))
        }
    };
    Ok(Type::Map {
        fields,
        elements,
        atomic,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn markers_and_crd_defaults() {
        let t = Type::object(&json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "ports": {"type": "array", "x-kubernetes-list-type": "map",
                        "x-kubernetes-list-map-keys": ["port", "protocol"],
                        "items": {"type": "object", "properties": {"port": {"type": "integer"}}}},
                    "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
                    "args": {"type": "array", "items": {"type": "string"}},
                    "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
                        "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}
            }
        }))
        .unwrap();
        let spec = t.field("spec").unwrap();
        assert!(matches!(&**spec.field("ports").unwrap(),
            Type::List { kind: ListKind::Map(k), .. } if k == &["port", "protocol"]));
        assert!(matches!(
            &**spec.field("tags").unwrap(),
            Type::List {
                kind: ListKind::Set,
                ..
            }
        ));
        assert!(matches!(
            &**spec.field("args").unwrap(),
            Type::List {
                kind: ListKind::Atomic,
                ..
            }
        ));
        assert!(matches!(
            &**spec.field("selector").unwrap(),
            Type::Map { atomic: true, .. }
        ));
        assert_eq!(
            **spec.field("free").unwrap().field("anything").unwrap(),
            Type::Untyped
        );
        assert!(spec.field("unknown").is_none());
        assert!(matches!(
            &**t.field("metadata").unwrap().field("finalizers").unwrap(),
            Type::List {
                kind: ListKind::Set,
                ..
            }
        ));
    }

    #[test]
    fn bad_markers_are_errors_naming_the_field() {
        let e = Type::from_openapi(&json!({"type": "object", "properties": {
            "l": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}}}}))
        .unwrap_err();
        assert_eq!(
            e,
            "l: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"
        );
        let e = Type::from_openapi(&json!({"type": "array", "x-kubernetes-list-type": "bag"}))
            .unwrap_err();
        assert!(e.contains("unknown x-kubernetes-list-type \"bag\""), "{e}");
        let e = Type::from_openapi(
            &json!({"type": "object", "properties": {"o": {"type": "array",
            "x-kubernetes-list-type": "set", "items": {"type": "object"}}}}),
        )
        .unwrap_err();
        assert_eq!(e, "o: x-kubernetes-list-type set needs scalar items");
        let e = Type::from_openapi(
            &json!({"type": "object", "properties": {"m": {"type": "object",
            "x-kubernetes-map-type": "lumpy"}}}),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "m: unknown x-kubernetes-map-type \"lumpy\" (granular or atomic)"
        );
    }
}
