//! The options of each verb, validated as k8s.io/apimachinery's `ValidateCreateOptions`,
//! `ValidatePatchOptions`, `ValidateDeleteOptions` and `ValidateListOptions` do (a 422
//! naming `CreateOptions.meta.k8s.io` and the field), and what the verbs answer. The
//! HTTP layer only decodes query and body into these.

use serde_json::{json, Value};

use crate::api::selectors::{FieldSelector, LabelSelector};
use crate::api::{ApiError, ApiResult, FieldError, FieldErrorType};
use crate::storage::Revision;

/// `fieldManager` is at most this many bytes (`ValidateFieldManager`).
pub const MAX_FIELD_MANAGER_BYTES: usize = 128;

/// A 422 on one of the `meta.k8s.io` options kinds.
fn invalid_options(kind: &str, errors: &[FieldError]) -> ApiError {
    ApiError::invalid_kind("meta.k8s.io", kind, "", errors)
}

fn not_supported(field: &str, value: &Value, supported: &[&str]) -> FieldError {
    let mut e = FieldError::new(FieldErrorType::NotSupported, field, Some(value), "");
    e.supported_values = supported.iter().map(|s| s.to_string()).collect();
    e
}

/// `dryRun`: every value must be `All` (`ValidateDryRun`); empty means a real write.
fn dry_run(values: &[String], errors: &mut Vec<FieldError>) -> bool {
    if values.iter().any(|v| v != "All") {
        errors.push(not_supported("dryRun", &json!(values), &["All"]));
    }
    !values.is_empty()
}

/// `ValidateFieldManager`: at most 128 bytes, printable characters only.
fn field_manager(manager: &str, errors: &mut Vec<FieldError>) {
    if manager.len() > MAX_FIELD_MANAGER_BYTES {
        errors.push(FieldError::new(
            FieldErrorType::TooLong,
            "fieldManager",
            None,
            format!("may not be more than {MAX_FIELD_MANAGER_BYTES} bytes"),
        ));
    }
    for (i, c) in manager.char_indices() {
        if c.is_control() || (c.is_whitespace() && c != ' ') {
            errors.push(FieldError::invalid(
                "fieldManager",
                &json!(manager),
                format!("invalid character U+{:04X} (at position {i})", c as u32),
            ));
        }
    }
}

/// `fieldValidation`: what to do with unknown or duplicate fields. kube-apiserver's
/// default is Warn for every client (kubectl asks for Strict itself).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Strict,
    #[default]
    Warn,
    Ignore,
}

impl FieldValidation {
    fn parse(s: Option<&str>, errors: &mut Vec<FieldError>) -> Self {
        match s {
            None | Some("") | Some("Warn") => FieldValidation::Warn,
            Some("Strict") => FieldValidation::Strict,
            Some("Ignore") => FieldValidation::Ignore,
            Some(other) => {
                errors.push(not_supported(
                    "fieldValidation",
                    &json!(other),
                    &["", "Ignore", "Strict", "Warn"],
                ));
                FieldValidation::Warn
            }
        }
    }
}

/// Which write the options belong to: it names the options kind in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum WriteVerb {
    #[default]
    Create,
    Update,
    Patch,
}

impl WriteVerb {
    fn options_kind(self) -> &'static str {
        match self {
            WriteVerb::Create => "CreateOptions",
            WriteVerb::Update => "UpdateOptions",
            WriteVerb::Patch => "PatchOptions",
        }
    }
}

/// Create, update and patch options.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub verb: WriteVerb,
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Who makes the change (`fieldManager`), as the client gave it.
    pub field_manager: Option<String>,
    /// The manager when the client gave none: its User-Agent's product
    /// (`prefixFromUserAgent`).
    pub user_agent_manager: String,
    /// `force` (apply only): take the fields of other managers.
    pub force: bool,
    /// The body is an apply configuration: a part of an object, so the schema's
    /// `required` is checked on the merged object instead.
    pub partial: bool,
    /// Field paths the decoder saw twice (only JSON bodies can say).
    pub duplicate_fields: Vec<String>,
}

impl WriteOptions {
    /// Validate the options of a create, update or patch, as kube-apiserver does
    /// before it decodes the body.
    pub fn parse(
        verb: WriteVerb,
        dry_run_values: &[String],
        manager: Option<&str>,
        field_validation: Option<&str>,
    ) -> ApiResult<WriteOptions> {
        let mut errors = Vec::new();
        if let Some(m) = manager {
            field_manager(m, &mut errors);
        }
        let dry_run = dry_run(dry_run_values, &mut errors);
        let field_validation = FieldValidation::parse(field_validation, &mut errors);
        if !errors.is_empty() {
            return Err(invalid_options(verb.options_kind(), &errors));
        }
        Ok(WriteOptions {
            verb,
            dry_run,
            field_validation,
            field_manager: manager.map(str::to_string),
            user_agent_manager: String::new(),
            force: false,
            partial: false,
            duplicate_fields: Vec::new(),
        })
    }

    /// The manager a write is recorded under: `fieldManager`, else from the
    /// User-Agent (`managerOrUserAgent`).
    pub fn manager(&self) -> &str {
        match self.field_manager.as_deref() {
            Some(m) if !m.is_empty() => m,
            _ => &self.user_agent_manager,
        }
    }

    /// What `ValidatePatchOptions` adds for the patch type: an apply needs a
    /// `fieldManager`; only an apply may `force`.
    pub fn check_patch(&self, kind: PatchType, force_given: bool) -> ApiResult<()> {
        let mut errors = Vec::new();
        if kind == PatchType::Apply {
            if self.field_manager.as_deref().is_none_or(str::is_empty) {
                errors.push(FieldError::new(
                    FieldErrorType::Required,
                    "fieldManager",
                    None,
                    "is required for apply patch",
                ));
            }
        } else if force_given {
            errors.push(FieldError::forbidden(
                "force",
                "may not be specified for non-apply patch",
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid_options(WriteVerb::Patch.options_kind(), &errors))
        }
    }
}

/// The manager a User-Agent names: up to its first `/`, printable characters only, at
/// most 128 bytes (`prefixFromUserAgent`).
pub fn manager_from_user_agent(ua: &str) -> String {
    let mut out = String::new();
    for c in ua.split('/').next().unwrap_or_default().chars() {
        if c.is_control() {
            continue;
        }
        if out.len() >= MAX_FIELD_MANAGER_BYTES {
            break;
        }
        out.push(c);
    }
    out
}

/// The result of a write: the object in the request's version, and warnings.
#[derive(Debug)]
pub struct Outcome {
    pub object: Value,
    pub warnings: Vec<String>,
}

pub use crate::api::resource::Propagation;

/// DeleteOptions as a client sends them, in the query or as a body (the body wins,
/// as in kube-apiserver): the wire form, before validation.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteOptionsWire {
    #[serde(default)]
    pub dry_run: Vec<String>,
    pub propagation_policy: Option<String>,
    pub orphan_dependents: Option<bool>,
    pub grace_period_seconds: Option<i64>,
    pub preconditions: Option<PreconditionsWire>,
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreconditionsWire {
    pub uid: Option<String>,
    pub resource_version: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
    /// `propagationPolicy`, or `orphanDependents` (deprecated) as the policy it means.
    pub propagation: Option<Propagation>,
    /// `orphanDependents: false` given explicitly: a delete that keeps the object
    /// answers 202 Accepted (kube-apiserver keeps that for old clients).
    pub explicit_no_orphan: bool,
}

impl DeleteOptions {
    /// Validate, as `ValidateDeleteOptions` does.
    pub fn parse(wire: DeleteOptionsWire) -> ApiResult<DeleteOptions> {
        let mut errors = Vec::new();
        if let (Some(policy), Some(_)) = (&wire.propagation_policy, wire.orphan_dependents) {
            errors.push(FieldError::invalid(
                "propagationPolicy",
                &json!(policy),
                "orphanDependents and deletionPropagation cannot be both set",
            ));
        }
        let policy = match wire.propagation_policy.as_deref() {
            None => None,
            Some("Orphan") => Some(Propagation::Orphan),
            Some("Foreground") => Some(Propagation::Foreground),
            Some("Background") => Some(Propagation::Background),
            Some(other) => {
                errors.push(not_supported(
                    "propagationPolicy",
                    &json!(other),
                    &["Foreground", "Background", "Orphan", "nil"],
                ));
                None
            }
        };
        let dry_run = dry_run(&wire.dry_run, &mut errors);
        if !errors.is_empty() {
            return Err(invalid_options("DeleteOptions", &errors));
        }
        let propagation = policy.or(match wire.orphan_dependents {
            Some(true) => Some(Propagation::Orphan),
            Some(false) => Some(Propagation::Background),
            None => None,
        });
        let pre = wire.preconditions.unwrap_or_default();
        Ok(DeleteOptions {
            dry_run,
            precondition_uid: pre.uid,
            precondition_rv: pre.resource_version,
            propagation,
            explicit_no_orphan: wire.orphan_dependents == Some(false),
        })
    }
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    /// From a LIST's query (`labelSelector`, `fieldSelector`, `limit`, `continue`,
    /// `resourceVersion`, `resourceVersionMatch`), for resource `r`.
    pub fn from_query(
        query: &std::collections::HashMap<String, String>,
        r: &crate::api::ResourceInfo,
    ) -> ApiResult<ListOptions> {
        let mut selectable = vec![
            "metadata.name".to_string(),
            "metadata.namespace".to_string(),
        ];
        selectable.extend(
            r.selectable_fields
                .iter()
                .map(|f| f.trim_start_matches('.').to_string()),
        );
        Ok(ListOptions {
            labels: LabelSelector::parse(
                query
                    .get("labelSelector")
                    .map(String::as_str)
                    .unwrap_or_default(),
            )
            .map_err(ApiError::bad_request)?,
            fields: FieldSelector::parse(
                query
                    .get("fieldSelector")
                    .map(String::as_str)
                    .unwrap_or_default(),
                &selectable,
            )
            .map_err(ApiError::bad_request)?,
            limit: match query.get("limit").filter(|l| !l.is_empty()) {
                Some(l) => Some(l.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "limit: Invalid value: {l:?}: must be a non-negative integer"
                    ))
                })?),
                None => None,
            },
            continue_token: query.get("continue").cloned(),
            resource_version: query.get("resourceVersion").cloned(),
            resource_version_match: query.get("resourceVersionMatch").cloned(),
        })
    }

    /// `ValidateListOptions` for a list (watches have their own rules): the
    /// combinations of `resourceVersion`, `resourceVersionMatch` and `continue`.
    pub fn validate(&self) -> ApiResult<()> {
        fn set(o: &Option<String>) -> Option<&str> {
            o.as_deref().filter(|s| !s.is_empty())
        }
        let (rv, rv_match, cont) = (
            set(&self.resource_version),
            set(&self.resource_version_match),
            set(&self.continue_token),
        );
        let mut errors = Vec::new();
        if let Some(m) = rv_match {
            if rv.is_none() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden unless resourceVersion is provided",
                ));
            }
            if cont.is_some() {
                errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden when continue is provided",
                ));
            }
            match m {
                "Exact" if rv == Some("0") => errors.push(FieldError::forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
                )),
                "Exact" | "NotOlderThan" => {}
                other => errors.push(not_supported(
                    "resourceVersionMatch",
                    &json!(other),
                    &["Exact", "NotOlderThan", ""],
                )),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(invalid_options("ListOptions", &errors))
        }
    }
}

pub struct ListResult {
    /// In the request's version.
    pub items: Vec<Value>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
    /// `application/strategic-merge-patch+json`, by the version's list and map markers.
    Strategic,
    /// `application/apply-patch+yaml`: server-side apply.
    Apply,
}

/// At most this many operations in a JSON patch (kube-apiserver's
/// `maxJSONPatchOperations`); more is 413.
pub const MAX_JSON_PATCH_OPERATIONS: usize = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn write_options_are_validated_as_kube_apiserver_does() {
        let long = "m".repeat(129);
        let e = WriteOptions::parse(WriteVerb::Create, &[], Some(&long), None).unwrap_err();
        assert_eq!((e.code, e.reason), (422, "Invalid"));
        assert_eq!(
            e.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"
        );
        let e = WriteOptions::parse(WriteVerb::Patch, &[], Some("ab\ncd"), None).unwrap_err();
        assert!(
            e.message.ends_with("fieldManager: Invalid value: \"ab\\ncd\": invalid character U+000A (at position 2)"),
            "{}",
            e.message
        );
        let e = WriteOptions::parse(WriteVerb::Update, &strings(&["Foo"]), None, None).unwrap_err();
        assert_eq!(
            e.message,
            "UpdateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Foo\"]: supported values: \"All\""
        );
        let e = WriteOptions::parse(WriteVerb::Create, &[], None, Some("foo")).unwrap_err();
        assert_eq!(
            e.message,
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"foo\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""
        );
        let ok = WriteOptions::parse(
            WriteVerb::Create,
            &strings(&["All"]),
            Some(&"m".repeat(128)),
            None,
        )
        .unwrap();
        assert!(ok.dry_run);
        assert_eq!(ok.field_validation, FieldValidation::Warn, "kube's default");
    }

    #[test]
    fn delete_options_are_validated_as_kube_apiserver_does() {
        let wire = |policy: Option<&str>, orphan: Option<bool>| DeleteOptionsWire {
            propagation_policy: policy.map(str::to_string),
            orphan_dependents: orphan,
            ..Default::default()
        };
        let e = DeleteOptions::parse(wire(Some("Bad"), None)).unwrap_err();
        assert_eq!(
            e.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Bad\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""
        );
        let e = DeleteOptions::parse(wire(Some("Orphan"), Some(true))).unwrap_err();
        assert_eq!(
            e.message,
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"
        );
        let d = DeleteOptions::parse(wire(None, Some(true))).unwrap();
        assert_eq!(d.propagation, Some(Propagation::Orphan));
        let d = DeleteOptions::parse(wire(None, Some(false))).unwrap();
        assert_eq!(d.propagation, Some(Propagation::Background));
        assert!(d.explicit_no_orphan);
        let d = DeleteOptions::parse(wire(Some("Foreground"), None)).unwrap();
        assert_eq!(d.propagation, Some(Propagation::Foreground));
    }

    #[test]
    fn list_options_name_the_real_reason() {
        let opts = |rv: Option<&str>, m: Option<&str>, c: Option<&str>| ListOptions {
            resource_version: rv.map(str::to_string),
            resource_version_match: m.map(str::to_string),
            continue_token: c.map(str::to_string),
            ..Default::default()
        };
        let e = opts(Some("0"), Some("Exact"), None).validate().unwrap_err();
        assert_eq!(
            e.message,
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""
        );
        let e = opts(None, Some("Exact"), None).validate().unwrap_err();
        assert!(e
            .message
            .ends_with("resourceVersionMatch is forbidden unless resourceVersion is provided"));
        let e = opts(Some("5"), Some("Newest"), None)
            .validate()
            .unwrap_err();
        assert!(e.message.ends_with("Unsupported value: \"Newest\": supported values: \"Exact\", \"NotOlderThan\", \"\""), "{}", e.message);
        opts(Some("5"), Some("Exact"), None).validate().unwrap();
        opts(Some("0"), Some("NotOlderThan"), None)
            .validate()
            .unwrap();
        opts(None, None, Some("tok")).validate().unwrap();
    }
}
