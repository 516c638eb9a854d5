//! Checking objects against a version's OpenAPI v3 schema, as kube-apiserver does for
//! custom resources: unknown fields (for `fieldValidation`), types, `required`, `enum`,
//! lengths and bounds. Returns one field error per violation.

use serde_json::{Map, Value};

use super::fields::{FieldError, FieldErrorType};

/// The fields of `metav1.ObjectMeta` a client may send.
const OBJECT_META_FIELDS: &[&str] = &[
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
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
];

/// What a schema check found.
#[derive(Debug, Default)]
pub struct SchemaCheck {
    /// Paths of fields the schema does not know, e.g. `spec.foo`.
    pub unknown: Vec<String>,
    /// Violations of the schema.
    pub errors: Vec<FieldError>,
}

/// Check a whole object (with `apiVersion`, `kind`, `metadata`) against `schema`.
pub fn check(schema: &Value, obj: &Value) -> SchemaCheck {
    let mut out = SchemaCheck::default();
    let Some(map) = obj.as_object() else {
        out.errors
            .push(FieldError::invalid("", obj, "must be an object"));
        return out;
    };
    let props = schema.get("properties").and_then(Value::as_object);
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {}
            "metadata" => {
                if let Some(meta) = v.as_object() {
                    for mk in meta.keys() {
                        if !OBJECT_META_FIELDS.contains(&mk.as_str()) {
                            out.unknown.push(format!("metadata.{mk}"));
                        }
                    }
                }
            }
            _ => match props.and_then(|p| p.get(k)) {
                Some(s) => walk(s, v, k, &mut out),
                None if preserves_unknown(schema) => {}
                None => out.unknown.push(k.clone()),
            },
        }
    }
    required(schema, map, "", &mut out);
    out
}

/// Remove the fields `check` reported as unknown (for `fieldValidation=Warn|Ignore`).
pub fn prune(obj: &mut Value, unknown: &[String]) {
    for path in unknown {
        let segs: Vec<&str> = path.split('.').collect();
        remove_path(obj, &segs);
    }
}

fn remove_path(cur: &mut Value, segs: &[&str]) {
    match segs {
        [] => {}
        [last] => {
            if let Some(m) = cur.as_object_mut() {
                m.remove(*last);
            }
        }
        [seg, rest @ ..] => {
            let (name, idx) = split_index(seg);
            let Some(mut next) = cur.get_mut(name) else {
                return;
            };
            if let Some(i) = idx {
                match next.get_mut(i) {
                    Some(n) => next = n,
                    None => return,
                }
            }
            remove_path(next, rest);
        }
    }
}

fn split_index(seg: &str) -> (&str, Option<usize>) {
    match seg.split_once('[') {
        Some((n, rest)) => (n, rest.trim_end_matches(']').parse().ok()),
        None => (seg, None),
    }
}

fn preserves_unknown(schema: &Value) -> bool {
    schema
        .get("x-kubernetes-preserve-unknown-fields")
        .and_then(Value::as_bool)
        == Some(true)
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn required(schema: &Value, map: &Map<String, Value>, path: &str, out: &mut SchemaCheck) {
    for r in schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(name) = r.as_str() {
            if !map.contains_key(name) {
                out.errors.push(FieldError::required(join(path, name), ""));
            }
        }
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn walk(schema: &Value, v: &Value, path: &str, out: &mut SchemaCheck) {
    let want = schema.get("type").and_then(Value::as_str);
    if v.is_null() {
        if schema.get("nullable").and_then(Value::as_bool) != Some(true) && want.is_some() {
            out.errors.push(FieldError::invalid(
                path,
                &Value::String("null".into()),
                format!(
                    "{path} in body must be of type {}: \"null\"",
                    want.unwrap_or_default()
                ),
            ));
        }
        return;
    }
    let actual = type_name(v);
    if let Some(want) = want {
        let ok = want == actual || (want == "number" && actual == "integer");
        if !ok {
            out.errors.push(FieldError::invalid(
                path,
                &Value::String(actual.into()),
                format!("{path} in body must be of type {want}: {actual:?}"),
            ));
            return;
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(v) {
            let mut e = FieldError::new(FieldErrorType::NotSupported, path, Some(v), "");
            e.supported_values = options
                .iter()
                .map(|o| {
                    o.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| o.to_string())
                })
                .collect();
            out.errors.push(e);
        }
    }
    match v {
        Value::Object(map) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let additional = schema.get("additionalProperties").filter(|a| a.is_object());
            for (k, child) in map {
                let child_path = join(path, k);
                match (props.and_then(|p| p.get(k)), additional) {
                    (Some(s), _) | (None, Some(s)) => walk(s, child, &child_path, out),
                    (None, None) if preserves_unknown(schema) => {}
                    (None, None) => out.unknown.push(child_path),
                }
            }
            required(schema, map, path, out);
        }
        Value::Array(items) => {
            if let Some(max) = schema.get("maxItems").and_then(Value::as_u64) {
                if items.len() as u64 > max {
                    out.errors.push(FieldError::new(
                        FieldErrorType::TooMany,
                        path,
                        Some(&Value::from(items.len())),
                        format!("must have at most {max} items"),
                    ));
                }
            }
            if let Some(item_schema) = schema.get("items") {
                for (i, item) in items.iter().enumerate() {
                    walk(item_schema, item, &format!("{path}[{i}]"), out);
                }
            }
        }
        Value::String(s) => {
            let len = s.chars().count() as u64;
            if let Some(max) = schema.get("maxLength").and_then(Value::as_u64) {
                if len > max {
                    out.errors.push(FieldError::new(
                        FieldErrorType::TooLong,
                        path,
                        Some(v),
                        format!("may not be more than {max} bytes"),
                    ));
                }
            }
            if let Some(min) = schema.get("minLength").and_then(Value::as_u64) {
                if len < min {
                    out.errors.push(FieldError::invalid(
                        path,
                        v,
                        format!("{path} in body should be at least {min} chars long"),
                    ));
                }
            }
        }
        Value::Number(n) => {
            let x = n.as_f64().unwrap_or_default();
            if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
                if x > max {
                    out.errors.push(FieldError::invalid(
                        path,
                        v,
                        format!("{path} in body should be less than or equal to {max}"),
                    ));
                }
            }
            if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
                if x < min {
                    out.errors.push(FieldError::invalid(
                        path,
                        v,
                        format!("{path} in body should be greater than or equal to {min}"),
                    ));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> Value {
        json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["msg"],
            "properties": {"msg": {"type": "string", "maxLength": 3}, "n": {"type": "integer"},
                           "kind": {"type": "string", "enum": ["A", "B"]},
                           "tags": {"type": "array", "items": {"type": "string"}}}}}})
    }

    #[test]
    fn reports_every_violation_and_unknown_field() {
        let obj = json!({"apiVersion": "g/v1", "kind": "K", "metadata": {"name": "a", "bogus": 1},
            "spec": {"n": "x", "kind": "C", "tags": ["a", 2], "extra": true}, "top": 1});
        let c = check(&schema(), &obj);
        assert_eq!(c.unknown, ["metadata.bogus", "spec.extra", "top"]);
        let msgs: Vec<String> = c.errors.iter().map(FieldError::message).collect();
        assert_eq!(msgs, [
            "spec.n: Invalid value: \"string\": spec.n in body must be of type integer: \"string\"",
            "spec.kind: Unsupported value: \"C\": supported values: \"A\", \"B\"",
            "spec.tags[1]: Invalid value: \"integer\": spec.tags[1] in body must be of type string: \"integer\"",
            "spec.msg: Required value",
        ]);
        let mut pruned = obj.clone();
        prune(&mut pruned, &c.unknown);
        assert!(pruned["spec"].get("extra").is_none() && pruned.get("top").is_none());
        assert!(pruned["metadata"].get("bogus").is_none());
    }

    #[test]
    fn valid_objects_pass() {
        let c = check(&schema(), &json!({"spec": {"msg": "abc", "tags": ["x"]}}));
        assert!(c.unknown.is_empty() && c.errors.is_empty(), "{c:?}");
        let c = check(&schema(), &json!({"spec": {"msg": "abcd"}}));
        assert_eq!(
            c.errors[0].message(),
            "spec.msg: Too long: may not be more than 3 bytes"
        );
    }
}
