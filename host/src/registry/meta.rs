//! Generic ObjectMeta handling: system fields on create and update, and validation of
//! name, labels, annotations and finalizers, as `ValidateObjectMeta` does.

use serde_json::{json, Value};

use crate::api::resource::is_dns_subdomain;
use crate::api::selectors::{is_label_key, is_label_value};
use crate::api::{ApiError, ApiResult, FieldError};

const DNS_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const QUALIFIED_NAME_MSG: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";
const DNS_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
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
    if let Some(g) = meta["generateName"].as_str().filter(|g| !g.is_empty()) {
        // As `NameIsDNSSubdomain(prefix=true)`: a trailing '-' is allowed in a prefix
        // (Go masks the last two characters, a quirk kept for identical answers).
        let masked = match g.len() {
            // A non-ASCII prefix can never be valid (and must not be cut mid-character).
            _ if !g.is_ascii() => g.to_string(),
            n if n > 1 && g.ends_with('-') => format!("{}a", &g[..n - 2]),
            _ => g.to_string(),
        };
        if !is_dns_subdomain(&masked) {
            errs.push(FieldError::invalid(
                "metadata.generateName",
                &json!(g),
                DNS_SUBDOMAIN_MSG,
            ));
        }
    }
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
    match meta["namespace"].as_str().unwrap_or_default() {
        "" if namespaced => errs.push(FieldError::required("metadata.namespace", "")),
        ns if namespaced && !is_rfc1123_label(ns) => {
            let why = if ns.len() > 63 {
                "must be no more than 63 characters"
            } else if is_dns_subdomain(ns) {
                "must not contain dots"
            } else {
                DNS_LABEL_MSG
            };
            errs.push(FieldError::invalid("metadata.namespace", &json!(ns), why));
        }
        _ => {}
    }
    if meta["generation"].as_i64().is_some_and(|g| g < 0) {
        errs.push(FieldError::invalid(
            "metadata.generation",
            &meta["generation"],
            "must be greater than or equal to 0",
        ));
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
    errs.extend(validate_owner_references(&meta["ownerReferences"]));
    let finalizers: Vec<&Value> = meta["finalizers"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    for f in &finalizers {
        if !f.as_str().is_some_and(is_label_key) {
            errs.push(FieldError::invalid(
                "metadata.finalizers",
                f,
                QUALIFIED_NAME_MSG,
            ));
        }
    }
    let has = |name: &str| finalizers.iter().any(|f| f.as_str() == Some(name));
    if has("orphan") && has("foregroundDeletion") {
        errs.push(FieldError::invalid(
            "metadata.finalizers",
            &meta["finalizers"],
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}

/// An RFC 1123 label (`IsDNS1123Label`): what a namespace name must be.
pub fn is_rfc1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// `ValidateOwnerReferences`: every reference names its owner completely (apiVersion,
/// kind, name, uid), and at most one is the controller.
fn validate_owner_references(refs: &Value) -> Vec<FieldError> {
    let mut errs = Vec::new();
    let mut controller: Option<String> = None;
    for (i, r) in refs.as_array().into_iter().flatten().enumerate() {
        let path = format!("metadata.ownerReferences[{i}]");
        let field = |f: &str| r[f].as_str().unwrap_or_default();
        let api_version = field("apiVersion");
        if api_version.is_empty() {
            errs.push(FieldError::required(
                format!("{path}.apiVersion"),
                "must not be empty",
            ));
        } else {
            let parts: Vec<&str> = api_version.split('/').collect();
            if parts.len() > 2 || parts.last().is_some_and(|v| v.is_empty()) {
                errs.push(FieldError::invalid(
                    format!("{path}.apiVersion"),
                    &json!(api_version),
                    "must be <group>/<version> or <version>",
                ));
            }
        }
        for f in ["kind", "name", "uid"] {
            if field(f).is_empty() {
                errs.push(FieldError::required(
                    format!("{path}.{f}"),
                    "must not be empty",
                ));
            }
        }
        if api_version == "v1" && field("kind") == "Event" {
            errs.push(FieldError::invalid(
                path,
                r,
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r["controller"].as_bool() == Some(true) {
            let this = format!("{}/{}", field("kind"), field("name"));
            match &controller {
                None => controller = Some(this),
                Some(first) => errs.push(FieldError::invalid(
                    "metadata.ownerReferences",
                    refs,
                    format!("Only one reference can have Controller set to true. Found \"true\" in references for {first} and {this}"),
                )),
            }
        }
    }
    errs
}

pub use crate::api::resource::decode_stored;

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

/// Put back `managed` (a write's managedFields, as the field manager made them) after a
/// plugin hook: the host owns them.
pub(super) fn set_managed_fields(obj: &mut Value, managed: Option<Value>) {
    let m = meta_mut(obj);
    match managed {
        Some(v) => m.insert("managedFields".into(), v),
        None => m.remove("managedFields"),
    };
}

/// The name a write's body gives must be the URL's; an empty one becomes it.
pub(super) fn name_from_url(body: &mut Value, name: &str) -> ApiResult<()> {
    match self::name(body) {
        "" => {
            meta_mut(body).insert("name".into(), Value::String(name.into()));
            Ok(())
        }
        n if n != name => Err(name_mismatch(n, name)),
        _ => Ok(()),
    }
}

/// kube-apiserver's 400 for a body naming another object than the URL.
pub(super) fn name_mismatch(in_body: &str, name: &str) -> ApiError {
    ApiError::bad_request(format!(
        "the name of the object ({in_body}) does not match the name on the URL ({name})"
    ))
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
                "metadata.finalizers"
            ]
        );
    }

    #[test]
    fn namespaces_must_be_rfc1123_labels() {
        let with_ns = |ns: &str| json!({"metadata": {"name": "a", "namespace": ns}});
        let errs = validate(&with_ns("BAD_NS"), true);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message(),
            format!("metadata.namespace: Invalid value: \"BAD_NS\": {DNS_LABEL_MSG}")
        );
        assert_eq!(
            validate(&with_ns("a.b"), true)[0].detail,
            "must not contain dots"
        );
        assert_eq!(
            validate(&with_ns(&"a".repeat(64)), true)[0].detail,
            "must be no more than 63 characters"
        );
        assert!(validate(&with_ns("team-1"), true).is_empty());
        assert!(
            validate(&with_ns("1team"), true).is_empty(),
            "RFC 1123 allows a leading digit"
        );
    }

    #[test]
    fn owner_references_name_their_owner_completely() {
        let refs = json!([
            {"apiVersion": "v1", "kind": "Pod", "name": "p"},
            {"apiVersion": "a/b/c", "kind": "", "name": "q", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "d", "uid": "2", "controller": true},
        ]);
        let msgs: Vec<String> = validate_owner_references(&refs)
            .iter()
            .map(FieldError::message)
            .collect();
        assert_eq!(
            msgs[0],
            "metadata.ownerReferences[0].uid: Required value: must not be empty"
        );
        assert_eq!(msgs[1], "metadata.ownerReferences[1].apiVersion: Invalid value: \"a/b/c\": must be <group>/<version> or <version>");
        assert_eq!(
            msgs[2],
            "metadata.ownerReferences[1].kind: Required value: must not be empty"
        );
        assert!(msgs[3].ends_with("Only one reference can have Controller set to true. Found \"true\" in references for /q and Deployment/d"), "{}", msgs[3]);
        assert_eq!(msgs.len(), 4);
    }

    #[test]
    fn the_garbage_collectors_finalizers_exclude_each_other() {
        let obj = json!({"metadata": {"name": "a", "namespace": "n", "finalizers": ["orphan", "foregroundDeletion"]}});
        let errs = validate(&obj, true);
        assert_eq!(errs.len(), 1);
        assert_eq!(
            errs[0].message(),
            "metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"
        );
    }

    #[test]
    fn generated_names_use_the_prefix() {
        let n = generate_name("foo-");
        assert!(n.starts_with("foo-") && n.len() == 9);
    }
}
