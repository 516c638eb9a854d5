//! `meta.k8s.io/v1` Table output, as kube-apiserver renders custom resources:
//! NAME first, the version's printer columns, AGE last.

use serde_json::{json, Value};

use super::resource::VersionInfo;

/// `includeObject`: what each row carries besides its cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum IncludeObject {
    None,
    Metadata,
    Object,
}

impl IncludeObject {
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s {
            None | Some("") | Some("Metadata") => Ok(IncludeObject::Metadata),
            Some("None") => Ok(IncludeObject::None),
            Some("Object") => Ok(IncludeObject::Object),
            Some(other) => Err(format!(
                "includeObject: Unsupported value: {other:?}: supported values: \"Metadata\", \"None\", \"Object\""
            )),
        }
    }
}

fn has_age_column(version: &VersionInfo) -> bool {
    version
        .printer_columns
        .iter()
        .any(|c| c.name.eq_ignore_ascii_case("age"))
}

/// The column definitions for a version.
pub fn columns(version: &VersionInfo) -> Vec<Value> {
    let mut cols = vec![json!({
        "name": "Name", "type": "string", "format": "name", "priority": 0,
        "description": "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    })];
    for c in &version.printer_columns {
        cols.push(json!({"name": c.name, "type": c.type_, "format": c.format,
                         "description": c.description, "priority": c.priority}));
    }
    if !has_age_column(version) {
        cols.push(json!({"name": "Age", "type": "date", "format": "", "priority": 0,
            "description": "CreationTimestamp is a timestamp representing the server time when this object was created. It is not guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
    }
    cols
}

/// One cell of a Table row, as a plugin printed it.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Text(String),
    Integer(i64),
    Number(f64),
    Boolean(bool),
    None,
}

fn cell_json(c: &Cell, type_: &str) -> Value {
    match c {
        Cell::None => Value::Null,
        Cell::Text(s) if type_ == "date" => Value::String(age_of(s)),
        Cell::Text(s) => Value::String(s.clone()),
        Cell::Integer(i) => json!(i),
        Cell::Number(n) => json!(n),
        Cell::Boolean(b) => json!(b),
    }
}

/// One row: name, plugin cells, age; `obj` is the object in the table's version.
pub fn row(version: &VersionInfo, obj: &Value, cells: &[Cell], include: IncludeObject) -> Value {
    let meta = &obj["metadata"];
    let mut out = vec![meta["name"].clone()];
    for (i, c) in version.printer_columns.iter().enumerate() {
        out.push(
            cells
                .get(i)
                .map(|cell| cell_json(cell, &c.type_))
                .unwrap_or(Value::Null),
        );
    }
    if !has_age_column(version) {
        out.push(Value::String(
            meta["creationTimestamp"]
                .as_str()
                .map(age_of)
                .unwrap_or_else(|| "<unknown>".into()),
        ));
    }
    // Maps built by hand: `json!` copies every value it is given, field by field.
    let mut r = serde_json::Map::with_capacity(2);
    r.insert("cells".into(), Value::Array(out));
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            r.insert(
                "object".into(),
                partial_object_metadata(obj, "meta.k8s.io/v1"),
            );
        }
        IncludeObject::Object => {
            r.insert("object".into(), obj.clone());
        }
    }
    Value::Object(r)
}

/// An object's metadata alone, as `meta.k8s.io`'s `PartialObjectMetadata` (the same
/// in every version of the kind: no conversion needed).
pub fn partial_object_metadata(obj: &Value, api_version: &str) -> Value {
    let mut m = serde_json::Map::with_capacity(3);
    m.insert("kind".into(), Value::String("PartialObjectMetadata".into()));
    m.insert("apiVersion".into(), Value::String(api_version.into()));
    m.insert("metadata".into(), obj["metadata"].clone());
    Value::Object(m)
}

/// A Table from its rows.
pub fn table(version: &VersionInfo, rows: Vec<Value>, list_meta: Value) -> Value {
    // Built by moving the rows in: `json!` would copy each of them.
    let mut table = serde_json::Map::with_capacity(5);
    table.insert("kind".into(), Value::String("Table".into()));
    table.insert("apiVersion".into(), Value::String("meta.k8s.io/v1".into()));
    table.insert("metadata".into(), list_meta);
    table.insert("columnDefinitions".into(), Value::Array(columns(version)));
    table.insert("rows".into(), Value::Array(rows));
    Value::Object(table)
}

fn age_of(timestamp: &str) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(t) => human_duration(jiff::Timestamp::now().as_second() - t.as_second()),
        Err(_) => "<invalid>".into(),
    }
}

/// apimachinery's `duration.HumanDuration`, on whole seconds.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".into();
    }
    let s = seconds.max(0);
    if s < 120 {
        return format!("{s}s");
    }
    let minutes = s / 60;
    if minutes < 10 {
        return if s % 60 == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{}s", s % 60)
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = s / 3600;
    if hours < 8 {
        return if minutes % 60 == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{}m", minutes % 60)
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return if hours % 24 == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{}h", hours / 24, hours % 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_kubectl() {
        assert_eq!(human_duration(5), "5s");
        assert_eq!(human_duration(150), "2m30s");
        assert_eq!(human_duration(600), "10m");
        assert_eq!(human_duration(3 * 3600 + 120), "3h2m");
        assert_eq!(human_duration(30 * 3600), "30h");
        assert_eq!(human_duration(3 * 86400 + 3600), "3d1h");
    }
}
