//! The first step of every write: what a client sent must be an object of the URL's
//! kind and version, in the URL's namespace, and fit the version's schema
//! (`fieldValidation` decides what unknown and duplicate fields cost).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize as _;
use serde_json::Value;

use super::meta;
use super::options::{FieldValidation, WriteOptions, WriteVerb};
use super::store::Registry;
use super::target::Target;
use crate::api::schema;
use crate::api::{ApiError, ApiResult, FieldError, FieldErrorType};

impl Registry {
    /// Check what a client sent against the URL and the version's schema.
    pub(super) fn admit_body(
        &self,
        t: &Target,
        mut body: Value,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> ApiResult<Value> {
        let r = t.resource();
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        let kind = body["kind"].as_str().unwrap_or_default();
        let api_version = body["apiVersion"].as_str().unwrap_or_default();
        if kind.is_empty() {
            return Err(ApiError::bad_request(
                "Object 'Kind' is missing in the request body",
            ));
        }
        if kind != r.kind {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {kind:?} in the body",
                r.kind
            )));
        }
        if api_version != t.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                t.api_version()
            )));
        }
        let version = r.version(&t.version).ok_or_else(ApiError::path_not_found)?;
        // ObjectMeta is typed whatever the plugin's schema says: kube-apiserver decodes
        // it into its Go struct, so a label that is a list is a 400, never a plugin's 500.
        if let Some(m) = body.get("metadata").filter(|m| !m.is_null()) {
            if let Err(e) = ObjectMeta::deserialize(m) {
                return Err(ApiError::bad_request(format!(
                    "{} in version {:?} cannot be handled as a {}: metadata: {e}",
                    r.kind, t.version, r.kind
                )));
            }
        }
        dedup_owner_references(&mut body, warnings);
        let check = schema::check(&version.schema, &body);
        let mut strict: Vec<String> = Vec::new();
        for path in &opts.duplicate_fields {
            strict.push(format!("duplicate field {path:?}"));
        }
        for path in &check.unknown {
            strict.push(format!("unknown field {path:?}"));
        }
        match opts.field_validation {
            // A patch is answered about the patched object, as kube-apiserver does.
            FieldValidation::Strict if !strict.is_empty() && opts.verb == WriteVerb::Patch => {
                return Err(ApiError::invalid_kind(
                    "",
                    "",
                    "",
                    &[FieldError::invalid(
                        "patch",
                        &Value::String(body.to_string()),
                        format!("strict decoding error: {}", strict.join(", ")),
                    )],
                ));
            }
            FieldValidation::Strict if !strict.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                    r.kind,
                    t.version,
                    r.kind,
                    strict.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(strict),
            _ => {}
        }
        schema::prune(&mut body, &check.unknown);
        let mut errors = check.errors;
        if opts.partial {
            errors.retain(|e| e.type_ != FieldErrorType::Required);
        } else if let Err(e) =
            structured_merge::typed::validate_except(&body, &version.merge_type, &["metadata"])
        {
            // List map items need their keys, once each; set items once each: what
            // apply and strategic merge identify items by. (ObjectMeta's lists are
            // validated with kube's own wording later.)
            errors.push(FieldError::new(
                FieldErrorType::Invalid,
                e.path.trim_start_matches('.'),
                None,
                e.message,
            ));
        }
        if !errors.is_empty() {
            return Err(ApiError::invalid(r, meta::name(&body), &errors));
        }
        // Namespace: from the URL; a different one in the body is an error.
        let m = meta::meta_mut(&mut body);
        if r.namespaced() {
            let url_ns = t.namespace.clone().unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    m.insert("namespace".into(), Value::String(url_ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        Ok(body)
    }
}

/// Owner references that repeat an earlier one exactly are dropped, with
/// kube-apiserver's warning naming each dropped entry's UID, as its handlers do before
/// validation (`dedupOwnerReferences`); two different owners with one UID both stay.
fn dedup_owner_references(body: &mut Value, warnings: &mut Vec<String>) {
    // `get_mut`, not indexing: indexing would insert `ownerReferences: null`.
    let Some(refs) = body
        .get_mut("metadata")
        .and_then(|m| m.get_mut("ownerReferences"))
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    let mut kept: Vec<Value> = Vec::new();
    let mut duplicates: Vec<String> = Vec::new();
    for r in refs.drain(..) {
        if kept.contains(&r) {
            duplicates.push(r["uid"].as_str().unwrap_or_default().to_string());
        } else {
            kept.push(r);
        }
    }
    *refs = kept;
    if !duplicates.is_empty() {
        warnings.push(format!(
            ".metadata.ownerReferences contains duplicate entries; API server dedups owner references in 1.20+, and may reject such requests as early as 1.24; please fix your requests; duplicate UID(s) observed: {}",
            duplicates.join(", ")
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn exact_repeats_of_owner_references_are_dropped_with_kubes_warning() {
        let owner = |name: &str, uid: &str| json!({"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid});
        let mut body = json!({"metadata": {"ownerReferences": [owner("a", "1"), owner("b", "2"), owner("a", "1"), owner("other", "1"), owner("a", "1")]}});
        let mut warnings = Vec::new();
        dedup_owner_references(&mut body, &mut warnings);
        assert_eq!(
            body["metadata"]["ownerReferences"],
            json!([owner("a", "1"), owner("b", "2"), owner("other", "1")]),
            "only exact repeats go; another owner with the same UID stays"
        );
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].ends_with("duplicate UID(s) observed: 1, 1"),
            "{}",
            warnings[0]
        );
    }
}
