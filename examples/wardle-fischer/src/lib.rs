//! `wardle.example.com` `Fischer`, as kubernetes/sample-apiserver defines it:
//! cluster-scoped, with a top-level `disallowedFlunders` list of Flunder names.

use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{
  "type": "object",
  "description": "Fischer lists Flunder names that may not be created.",
  "properties": {
    "disallowedFlunders": {
      "type": "array",
      "description": "Names of Flunders that are not allowed.",
      "items": {"type": "string"}
    }
  }
}"#;

/// At most this many names, so a Fischer stays small.
pub const MAX_DISALLOWED: usize = 100;

pub struct Fischer;

impl Plugin for Fischer {
    fn describe() -> Resource {
        ResourceBuilder::new("wardle.example.com", "Fischer", "fischers")
            .cluster_scoped()
            .version(
                VersionBuilder::new("v1alpha1")
                    .storage()
                    .schema(SCHEMA)
                    .column("Disallowed", "string", ".disallowedFlunders", 0),
            )
            .build()
    }

    fn validate_create(_req: &Request, obj: &Object) -> Validation {
        validate(obj)
    }

    fn validate_update(_req: &Request, new: &Object, _old: &Object) -> Validation {
        validate(new)
    }
}

wasm_apiserver_sdk::export_plugin!(Fischer);

pub fn validate(obj: &Value) -> Validation {
    let path = Path::new("disallowedFlunders");
    let names: Vec<&str> = obj["disallowedFlunders"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap_or_default()).collect())
        .unwrap_or_default();
    let mut errs = ErrorList::new();
    if names.len() > MAX_DISALLOWED {
        errs.push(path.too_many(names.len(), MAX_DISALLOWED));
    }
    for (i, name) in names.iter().enumerate() {
        if !is_dns_subdomain(name) {
            errs.push(path.index(i).invalid(name, "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"));
        } else if names[..i].contains(name) {
            errs.push(path.index(i).duplicate(name));
        }
    }
    errs.into_validation()
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.starts_with(|c: char| c.is_ascii_alphanumeric())
                && l.ends_with(|c: char| c.is_ascii_alphanumeric())
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_must_be_valid_and_unique() {
        let v = validate(&json!({"disallowedFlunders": ["ok", "Bad_Name", "ok"]}));
        let fields: Vec<_> = v.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["disallowedFlunders[1]", "disallowedFlunders[2]"]);
        assert!(matches!(v.errors[1].type_, FieldErrorType::Duplicate));
        assert!(validate(&json!({})).is_valid());
    }
}
