//! Request parameters: the query string and bodies decoded into the registry's
//! options, with kube-apiserver's validation and wording.

use axum::extract::Request;
use axum::http::HeaderMap;
use serde_json::Value;
use std::collections::HashMap;

use super::negotiate;
use crate::api::{ApiError, ApiResult};
use crate::registry::{
    manager_from_user_agent, DeleteOptions, DeleteOptionsWire, ListOptions, PatchType,
    WriteOptions, WriteVerb,
};

/// Bodies above this are refused with 413, as kube-apiserver's 3 MiB request limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub(super) fn query_map(q: Option<&str>) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(q.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// `strconv.ParseBool`, as Go decodes boolean query parameters.
pub(super) fn parse_bool(v: Option<&String>) -> ApiResult<Option<bool>> {
    match v.map(String::as_str) {
        None => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

pub(super) async fn read_body(req: Request) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(MAX_BODY_BYTES))
}

pub(super) fn write_options(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    verb: WriteVerb,
) -> ApiResult<WriteOptions> {
    let dry_run: Vec<String> = query.get("dryRun").into_iter().cloned().collect();
    let mut opts = WriteOptions::parse(
        verb,
        &dry_run,
        query.get("fieldManager").map(String::as_str),
        query.get("fieldValidation").map(String::as_str),
    )?;
    opts.user_agent_manager = manager_from_user_agent(
        headers
            .get(axum::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default(),
    );
    Ok(opts)
}

/// The options of a PATCH: those of every write, `force`, and what the patch type
/// requires of them.
pub(super) fn patch_options(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    kind: PatchType,
) -> ApiResult<WriteOptions> {
    let mut opts = write_options(headers, query, WriteVerb::Patch)?;
    let force = parse_bool(query.get("force"))?;
    opts.check_patch(kind, force.is_some())?;
    opts.force = force.unwrap_or(false);
    Ok(opts)
}

/// Decode a create or update body (JSON or YAML).
pub(super) fn write_input(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
    verb: WriteVerb,
) -> ApiResult<(Value, WriteOptions)> {
    let mut opts = write_options(headers, query, verb)?;
    let ct = negotiate::content_type(headers);
    let value = match ct.as_str() {
        "application/json" | "" => {
            let v: Value = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?;
            opts.duplicate_fields = crate::api::duplicates::find(body);
            v
        }
        "application/yaml" => serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?,
        other => {
            return Err(ApiError::unsupported_media_type(
                other,
                &["application/json", "application/yaml"],
            ))
        }
    };
    Ok((value, opts))
}

/// The patch content types, in kube-apiserver's order.
pub const PATCH_TYPES: &[&str] = &[
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
];

/// The patch type a PATCH's content type names; 415 for any other.
pub(super) fn patch_type(headers: &HeaderMap) -> ApiResult<PatchType> {
    let ct = negotiate::content_type(headers);
    match ct.as_str() {
        "application/merge-patch+json" => Ok(PatchType::Merge),
        "application/json-patch+json" => Ok(PatchType::Json),
        "application/strategic-merge-patch+json" => Ok(PatchType::Strategic),
        "application/apply-patch+yaml" => Ok(PatchType::Apply),
        _ => Err(ApiError::unsupported_media_type(&ct, PATCH_TYPES)),
    }
}

pub(super) fn list_options(
    query: &HashMap<String, String>,
    r: &crate::plugin::ResourceInfo,
) -> ApiResult<ListOptions> {
    ListOptions::from_query(query, r)
}

/// DeleteOptions from a body when there is one (the query is then ignored, as
/// kube-apiserver does), else from the query.
pub(super) fn delete_options(
    query: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<DeleteOptions> {
    let wire = if body.iter().any(|b| !b.is_ascii_whitespace()) {
        serde_json::from_slice::<DeleteOptionsWire>(body)
            .map_err(|e| ApiError::bad_request(format!("error decoding DeleteOptions: {e}")))?
    } else {
        DeleteOptionsWire {
            dry_run: query.get("dryRun").into_iter().cloned().collect(),
            propagation_policy: query.get("propagationPolicy").cloned(),
            orphan_dependents: parse_bool(query.get("orphanDependents"))?,
            grace_period_seconds: match query.get("gracePeriodSeconds") {
                Some(g) => Some(g.parse().map_err(|_| {
                    ApiError::bad_request(format!("gracePeriodSeconds: invalid value {g:?}"))
                })?),
                None => None,
            },
            preconditions: None,
        }
    };
    DeleteOptions::parse(wire)
}
