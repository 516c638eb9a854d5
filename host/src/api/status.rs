//! `metav1.Status` errors: the one place where every failure becomes a response, with
//! kube-apiserver's code, reason, details and wording.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::fields::{aggregate, FieldError};
use super::resource::ResourceInfo;

/// An API error: rendered as a `Status` object.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.reason, self.message)
    }
}

impl std::error::Error for ApiError {}

fn resource_details(r: &ResourceInfo, name: &str) -> Value {
    json!({"name": name, "group": r.group, "kind": r.plural})
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            reason,
            message: message.into(),
            details: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub fn not_found(r: &ResourceInfo, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", r.qualified_plural()),
        )
        .with_details(resource_details(r, name))
    }

    /// 404 for a path that names no resource: kube-apiserver's bare wording.
    pub fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn already_exists(r: &ResourceInfo, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", r.qualified_plural()),
        )
        .with_details(resource_details(r, name))
    }

    pub fn conflict(r: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                r.qualified_plural()
            ),
        )
        .with_details(resource_details(r, name))
    }

    /// 409 as kube-apiserver's delete preconditions word it: on `Kind.group`, not the
    /// resource (`BeforeDelete` names the kind).
    pub fn conflict_on_kind(r: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {}.{} {name:?}: {why}",
                r.kind, r.group
            ),
        )
        .with_details(json!({"name": name, "group": r.group, "kind": r.kind}))
    }

    pub fn modified(r: &ResourceInfo, name: &str) -> Self {
        Self::conflict(
            r,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    pub fn invalid(r: &ResourceInfo, name: &str, errors: &[FieldError]) -> Self {
        Self::invalid_kind(&r.group, &r.kind, name, errors)
    }

    /// 422 Invalid for any group and kind (`ListOptions.meta.k8s.io` for bad options).
    pub fn invalid_kind(group: &str, kind: &str, name: &str, errors: &[FieldError]) -> Self {
        Self::new(
            422,
            "Invalid",
            // `GroupKind.String()`: the kind alone when the group is empty.
            format!(
                "{}{} {name:?} is invalid: {}",
                kind,
                if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                },
                aggregate(errors)
            ),
        )
        .with_details({
            // StatusDetails leaves empty fields out.
            let causes: Vec<Value> = errors.iter().map(FieldError::cause).collect();
            let mut d = json!({ "causes": causes });
            for (k, v) in [("name", name), ("group", group), ("kind", kind)] {
                if !v.is_empty() {
                    d[k] = json!(v);
                }
            }
            d
        })
    }

    /// 403 Forbidden for an object of `r`, as an admission plugin's
    /// `errors.NewForbidden(resource, name, err)`.
    pub fn forbidden(r: &ResourceInfo, name: &str, why: &str) -> Self {
        Self::new(
            403,
            "Forbidden",
            format!("{} {name:?} is forbidden: {why}", r.qualified_plural()),
        )
        .with_details(resource_details(r, name))
    }

    /// A plugin's refusal (`denial`): 403 as [`Self::forbidden`]; 400, 404, 409, 422
    /// and 429 with their reason and the plugin's message; any other code is a 500.
    pub fn denied(r: &ResourceInfo, name: &str, code: u16, message: &str) -> Self {
        let reason = match code {
            0 | 403 => return Self::forbidden(r, name, message),
            400 => "BadRequest",
            404 => "NotFound",
            409 => "Conflict",
            422 => "Invalid",
            429 => "TooManyRequests",
            _ => return Self::internal(message.to_string()),
        };
        Self::new(code, reason, message).with_details(resource_details(r, name))
    }

    pub fn method_not_allowed(verb: &str, what: &str) -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            format!("{verb} is not supported on resources of kind {what:?}"),
        )
        .with_details(json!({}))
    }

    /// 405 for a verb a resource does not offer at all (a computed kind's writes), in
    /// kube-apiserver's words for a route it does not register.
    pub fn method_not_allowed_here() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
        .with_details(json!({}))
    }

    pub fn not_acceptable(accept: &str) -> Self {
        Self::new(
            406,
            "NotAcceptable",
            format!("the server was unable to respond with a content type that the client supports ({accept})"),
        )
    }

    pub fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": content_type}]}))
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 504 Timeout: the request took longer than it was allowed.
    pub fn timeout(why: &str) -> Self {
        Self::new(504, "Timeout", format!("Timeout: {why}")).with_details(json!({}))
    }

    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        let message = message.into();
        Self::new(
            500,
            "InternalError",
            format!("Internal error occurred: {message}"),
        )
        .with_details(json!({"causes": [{"message": message}]}))
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, "ServiceUnavailable", message)
    }

    /// The `Status` object.
    pub fn to_status(&self) -> Value {
        let mut s = json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason, "code": self.code,
        });
        if let Some(d) = &self.details {
            s["details"] = d.clone();
        }
        s
    }

    /// 504 for a resourceVersion newer than the server has reached (in time):
    /// kube-apiserver's `ResourceVersionTooLarge`, which clients retry.
    pub fn too_large_resource_version(requested: u64, current: u64) -> Self {
        Self::new(
            504,
            "Timeout",
            format!("Too large resource version: {requested}, current: {current}"),
        )
        .with_details(json!({"causes": [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}], "retryAfterSeconds": 1}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.to_status().to_string();
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (code, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        // As kube-apiserver's ErrorNegotiated: a Status that suggests a delay says so
        // in Retry-After too.
        if let Some(secs) = self
            .details
            .as_ref()
            .and_then(|d| d["retryAfterSeconds"].as_u64())
            .filter(|s| *s > 0)
        {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
