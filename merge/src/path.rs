//! Field paths: the steps from an object's root to one of its fields, as
//! structured-merge-diff names them. A step is a field of a map, an item of a list map
//! (by its keys), an item of a set (by its value) or an item of an atomic position
//! (by index). They print as `.spec.ports[port=80,protocol="TCP"].name` and travel in
//! `FieldsV1` as `f:spec`, `k:{"port":80,"protocol":"TCP"}`, `v:"a"`, `i:0`.

use std::cmp::Ordering;
use std::fmt;

use serde_json::{Map, Value};

/// One step of a [`Path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathElement {
    /// A field of a map.
    Field(String),
    /// An item of a list map, by its key fields (sorted by name).
    Key(Vec<(String, Value)>),
    /// An item of a set, by its value.
    Value(Value),
    /// An item by position.
    Index(usize),
}

/// A path from the root of an object.
pub type Path = Vec<PathElement>;

/// A total order on JSON values (structured-merge-diff's `value.Compare`): null, then
/// booleans, numbers, strings, lists, maps.
pub fn compare_values(a: &Value, b: &Value) -> Ordering {
    fn rank(v: &Value) -> u8 {
        match v {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Number(_) => 2,
            Value::String(_) => 3,
            Value::Array(_) => 4,
            Value::Object(_) => 5,
        }
    }
    match (a, b) {
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .total_cmp(&y.as_f64().unwrap_or(0.0)),
        },
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                match compare_values(i, j) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut xs: Vec<_> = x.iter().collect();
            let mut ys: Vec<_> = y.iter().collect();
            xs.sort_by(|a, b| a.0.cmp(b.0));
            ys.sort_by(|a, b| a.0.cmp(b.0));
            for ((ka, va), (kb, vb)) in xs.iter().zip(&ys) {
                match ka.cmp(kb).then_with(|| compare_values(va, vb)) {
                    Ordering::Equal => {}
                    o => return o,
                }
            }
            xs.len().cmp(&ys.len())
        }
        _ => rank(a).cmp(&rank(b)),
    }
}

impl Ord for PathElement {
    fn cmp(&self, other: &Self) -> Ordering {
        use PathElement::*;
        let rank = |e: &PathElement| match e {
            Field(_) => 0,
            Key(_) => 1,
            Value(_) => 2,
            Index(_) => 3,
        };
        match (self, other) {
            (Field(a), Field(b)) => a.cmp(b),
            (Key(a), Key(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                    match ka.cmp(kb).then_with(|| compare_values(va, vb)) {
                        Ordering::Equal => {}
                        o => return o,
                    }
                }
                a.len().cmp(&b.len())
            }
            (Value(a), Value(b)) => compare_values(a, b),
            (Index(a), Index(b)) => a.cmp(b),
            _ => rank(self).cmp(&rank(other)),
        }
    }
}

impl PartialOrd for PathElement {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PathElement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(n) => write!(f, ".{n}"),
            PathElement::Key(keys) => {
                let parts: Vec<String> = keys.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path as structured-merge-diff prints it: `.spec.ports[port=80].name`.
pub fn display(path: &[PathElement]) -> String {
    path.iter().map(|e| e.to_string()).collect()
}

impl PathElement {
    /// The `FieldsV1` key of this step.
    pub fn to_key(&self) -> String {
        match self {
            PathElement::Field(n) => format!("f:{n}"),
            PathElement::Key(keys) => {
                let m: Map<String, Value> = keys.iter().cloned().collect();
                format!("k:{}", Value::Object(m))
            }
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Read a `FieldsV1` key.
    pub fn from_key(s: &str) -> Result<PathElement, String> {
        let bad = || format!("unknown field path element {s:?}");
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        match kind {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let v: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                let Value::Object(m) = v else {
                    return Err(bad());
                };
                let mut keys: Vec<(String, Value)> = m.into_iter().collect();
                keys.sort_by(|a, b| a.0.cmp(&b.0));
                Ok(PathElement::Key(keys))
            }
            "v" => Ok(PathElement::Value(
                serde_json::from_str(rest).map_err(|_| bad())?,
            )),
            "i" => Ok(PathElement::Index(rest.parse().map_err(|_| bad())?)),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prints_and_round_trips_as_kube_does() {
        let p = vec![
            PathElement::Field("spec".into()),
            PathElement::Key(vec![
                ("port".into(), json!(80)),
                ("protocol".into(), json!("TCP")),
            ]),
            PathElement::Field("name".into()),
        ];
        assert_eq!(display(&p), ".spec[port=80,protocol=\"TCP\"].name");
        assert_eq!(p[1].to_key(), r#"k:{"port":80,"protocol":"TCP"}"#);
        assert_eq!(PathElement::from_key(&p[1].to_key()).unwrap(), p[1]);
        let v = PathElement::Value(json!("a"));
        assert_eq!(v.to_key(), r#"v:"a""#);
        assert_eq!(v.to_string(), r#"[="a"]"#);
        assert_eq!(PathElement::from_key("i:3").unwrap(), PathElement::Index(3));
        assert!(PathElement::from_key("x:1").is_err());
        assert!(PathElement::from_key("k:[1]").is_err());
    }

    #[test]
    fn fields_sort_before_keys_values_and_indexes() {
        let mut v = [
            PathElement::Index(0),
            PathElement::Value(json!(1)),
            PathElement::Key(vec![("a".into(), json!(1))]),
            PathElement::Field("z".into()),
        ];
        v.sort();
        assert!(matches!(v[0], PathElement::Field(_)));
        assert!(matches!(v[3], PathElement::Index(_)));
    }
}
