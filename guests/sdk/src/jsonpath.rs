//! The simple JSONPaths of printer columns and selectable fields: `.spec.msg`,
//! `.spec.items[0].name`, `.metadata.labels.app`. Enough for columns; not a full
//! JSONPath engine.

use crate::Cell;
use serde_json::Value;

/// The value at `path`, if any.
pub fn get<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = obj;
    for seg in path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
    {
        let (name, index) = match seg.split_once('[') {
            Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()),
            None => (seg, None),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        if let Some(i) = index {
            cur = cur.get(i)?;
        }
    }
    Some(cur)
}

/// The table cell for the value at `path`, shaped by the column's OpenAPI type.
pub fn cell(obj: &Value, path: &str, type_: &str) -> Cell {
    match get(obj, path) {
        None | Some(Value::Null) => Cell::None,
        Some(Value::Bool(b)) => Cell::Boolean(*b),
        Some(Value::Number(n)) if type_ == "integer" => n
            .as_i64()
            .map(Cell::Integer)
            .unwrap_or(Cell::Number(n.as_f64().unwrap_or_default())),
        Some(Value::Number(n)) if type_ == "number" => Cell::Number(n.as_f64().unwrap_or_default()),
        Some(Value::String(s)) => Cell::Text(s.clone()),
        Some(other) => Cell::Text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_reach_nested_fields_and_list_items() {
        let o = json!({"spec": {"msg": "hi", "items": [{"n": 1}, {"n": 2}]}});
        assert_eq!(get(&o, ".spec.msg"), Some(&json!("hi")));
        assert_eq!(get(&o, ".spec.items[1].n"), Some(&json!(2)));
        assert_eq!(get(&o, ".spec.missing"), None);
        assert!(matches!(
            cell(&o, ".spec.items[0].n", "integer"),
            Cell::Integer(1)
        ));
        assert!(matches!(cell(&o, ".spec.none", "string"), Cell::None));
    }
}
