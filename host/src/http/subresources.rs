//! `/scale` (an `autoscaling/v1` Scale: get, update, patch) and the custom
//! subresources plugins declare (get, create, update, answered by the plugin).

use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::Response;
use std::collections::HashMap;

use super::negotiate;
use super::params::{patch_options, patch_type, write_input};
use super::response::{add_warnings, json_response};
use crate::api::resource::{SubresourceInfo, SubresourceVerb};
use crate::api::{ApiError, ApiResult};
use crate::registry::{Registry, ScaleChange, SubresourceCall, Target, WriteVerb};

/// GET, PUT or PATCH `/scale`.
pub(super) async fn scale(
    registry: &Registry,
    t: &Target,
    name: &str,
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let outcome = match *method {
        Method::GET => {
            let out = negotiate::choose(headers, false, false)?;
            let scale = registry.get_scale(t, name).await?;
            return Ok(json_response(StatusCode::OK, out, &scale));
        }
        Method::PUT => {
            let (scale, opts) = write_input(headers, query, body, WriteVerb::Update)?;
            registry
                .update_scale(t, name, ScaleChange::Replace(scale), &opts)
                .await?
        }
        Method::PATCH => {
            let kind = patch_type(headers)?;
            let opts = patch_options(headers, query, kind)?;
            registry
                .update_scale(t, name, ScaleChange::Patch(kind, body), &opts)
                .await?
        }
        ref m => return Err(ApiError::method_not_allowed(m.as_str(), "Scale")),
    };
    let out = negotiate::choose(headers, false, false)?;
    Ok(add_warnings(
        json_response(StatusCode::OK, out, &outcome.object),
        &outcome.warnings,
    ))
}

/// A custom subresource: GET, POST (create) or PUT (update), answered by the plugin.
#[allow(
    clippy::too_many_arguments,
    reason = "the parts of one request, each used once"
)]
pub(super) async fn custom(
    registry: &Registry,
    t: &Target,
    name: &str,
    sub: &SubresourceInfo,
    method: &Method,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: &[u8],
) -> ApiResult<Response> {
    let verb = match *method {
        Method::GET => SubresourceVerb::Get,
        Method::POST => SubresourceVerb::Create,
        Method::PUT => SubresourceVerb::Update,
        ref m => {
            return Err(ApiError::method_not_allowed(
                m.as_str(),
                &format!("{}/{}", t.resource().kind, sub.name),
            ))
        }
    };
    let out = negotiate::choose(headers, false, false)?;
    let body = match verb {
        SubresourceVerb::Get => None,
        _ => {
            let (value, _) = write_input(headers, query, body, WriteVerb::Create)?;
            Some(value.to_string())
        }
    };
    let dry_run = query.get("dryRun").is_some_and(|v| v == "All");
    let mut ordered: Vec<(String, String)> =
        query.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    ordered.sort();
    let call = SubresourceCall {
        verb,
        query: ordered,
        body,
        dry_run,
    };
    let (code, obj) = registry.serve_subresource(t, name, sub, call).await?;
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    Ok(json_response(code, out, &obj))
}
