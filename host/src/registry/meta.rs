//! Generic ObjectMeta handling: system fields on create and update, and validation of
//! name, labels, annotations and finalizers, as `ValidateObjectMeta` does.

use serde_json::{json, Value};

use crate::api::selectors::{is_label_key, is_label_value};
use crate::api::FieldError;
use crate::plugin::{is_dns_subdomain, ResourceInfo};

const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
/// `TotalAnnotationSizeLimitB`.
const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;

/// Characters kube-apiserver draws `generateName` suffixes from.
const GENERATE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// `generateName` + 5 random characters.
pub fn generate_name(prefix: &str) -> String {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let suffix: String = bytes[..5]
        .iter()
        .map(|b| GENERATE_ALPHABET[*b as usize % GENERATE_ALPHABET.len()] as char)
        .collect();
    format!("{prefix}{suffix}")
}

pub fn name(obj: &Value) -> &str {
    obj["metadata"]["name"].as_str().unwrap_or_default()
}

pub fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj["metadata"].is_object() {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

/// Everything but `metadata` and `status`: a change here bumps `generation`.
pub fn spec_changed(new: &Value, old: &Value) -> bool {
    let strip = |v: &Value| {
        let mut m = v.as_object().cloned().unwrap_or_default();
        m.remove("metadata");
        m.remove("status");
        m
    };
    strip(new) != strip(old)
}

/// Validate the client-settable parts of ObjectMeta.
pub fn validate(obj: &Value, namespaced: bool) -> Vec<FieldError> {
    let meta = &obj["metadata"];
    let mut errs = Vec::new();
    match meta["name"].as_str() {
        None | Some("") => errs.push(FieldError::required(
            "metadata.name",
            "name or generateName is required",
        )),
        Some(n) if !is_dns_subdomain(n) => errs.push(FieldError::invalid(
            "metadata.name",
            &json!(n),
            DNS_SUBDOMAIN_MSG,
        )),
        Some(_) => {}
    }
    if namespaced && meta["namespace"].as_str().unwrap_or_default().is_empty() {
        errs.push(FieldError::required("metadata.namespace", ""));
    }
    if let Some(labels) = meta["labels"].as_object() {
        for (k, v) in labels {
            if !is_label_key(k) {
                errs.push(FieldError::invalid(
                    "metadata.labels",
                    &json!(k),
                    QUALIFIED_NAME_MSG,
                ));
            }
            match v.as_str() {
                Some(s) if is_label_value(s) => {}
                _ => errs.push(FieldError::invalid(
                    "metadata.labels".to_string(),
                    v,
                    LABEL_VALUE_MSG,
                )),
            }
        }
    }
    if let Some(annotations) = meta["annotations"].as_object() {
        let mut total = 0;
        for (k, v) in annotations {
            if !is_label_key(k) {
                errs.push(FieldError::invalid(
                    "metadata.annotations",
                    &json!(k),
                    QUALIFIED_NAME_MSG,
                ));
            }
            total += k.len() + v.as_str().map(str::len).unwrap_or(0);
        }
        if total > MAX_ANNOTATIONS_BYTES {
            errs.push(FieldError::new(
                crate::api::FieldErrorType::TooLong,
                "metadata.annotations",
                None,
                format!("may not be more than {MAX_ANNOTATIONS_BYTES} bytes"),
            ));
        }
    }
    for (i, f) in meta["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        if !f.as_str().is_some_and(is_label_key) {
            errs.push(FieldError::invalid(
                format!("metadata.finalizers[{i}]"),
                f,
                QUALIFIED_NAME_MSG,
            ));
        }
    }
    errs
}

/// Decode stored bytes that must be a JSON object of resource `r` (someone else may
/// have written anything there); the error says what was found.
pub fn decode_stored(r: &ResourceInfo, bytes: &[u8]) -> Result<Value, String> {
    let obj: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("is not valid JSON: {e}"))?;
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if !obj.is_object() || kind != r.kind || group != r.group {
        return Err(format!(
            "is not a {}.{} (found apiVersion {api_version:?}, kind {kind:?})",
            r.kind, r.group
        ));
    }
    Ok(obj)
}

/// The revision an object read from storage carries in `metadata.resourceVersion`.
pub fn revision_of(obj: &Value) -> Option<u64> {
    obj["metadata"]["resourceVersion"].as_str()?.parse().ok()
}

/// Parse a resourceVersion given by a client.
pub fn parse_resource_version(rv: &str) -> Result<u64, String> {
    rv.parse::<u64>().map_err(|_| {
        format!("invalid resource version {rv:?}: resource versions are unsigned integers")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_validation_names_each_field() {
        let obj = json!({"metadata": {"name": "Bad_Name", "labels": {"ok": "x", "bad key": "y", "k": "bad value!"},
                                       "finalizers": ["example.com/f", "not valid"]}});
        let fields: Vec<String> = validate(&obj, true)
            .iter()
            .map(|e| e.field.clone())
            .collect();
        assert_eq!(
            fields,
            [
                "metadata.name",
                "metadata.namespace",
                "metadata.labels",
                "metadata.labels",
                "metadata.finalizers[1]"
            ]
        );
    }

    #[test]
    fn generated_names_use_the_prefix() {
        let n = generate_name("foo-");
        assert!(n.starts_with("foo-") && n.len() == 9);
    }
}
