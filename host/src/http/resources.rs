//! `/api` and everything under `/apis`: group and version discovery, then the URL of
//! a resource parsed into a [`Target`] and dispatched to the REST verbs.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::negotiate::{self, Output};
use super::params::{
    delete_options, list_options, parse_bool, patch_options, patch_type, query_map, read_body,
    write_input,
};
use super::response::{add_warnings, json_response, with_etag};
use super::subresources;
use super::watch::watch;
use super::AppState;
use crate::api::table::{self, IncludeObject};
use crate::api::{ApiError, ApiResult, FieldError};
use crate::plugin::UserInfo;
use crate::registry::{PatchType, Target, WriteVerb};

pub(super) async fn legacy_api(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    // No legacy (core) group here; kubectl asks anyway.
    match negotiate::choose(&headers, false, true) {
        Ok(Output::Discovery) => {
            let docs = state.documents();
            json_response(StatusCode::OK, Output::Discovery, &docs.aggregated_legacy)
        }
        Ok(out) => json_response(
            StatusCode::OK,
            out,
            &json!({"kind": "APIVersions", "versions": [], "serverAddressByClientCIDRs": []}),
        ),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn apis_root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let docs = state.documents();
    match negotiate::choose(&headers, false, true) {
        Ok(Output::Discovery) => with_etag(
            &headers,
            &docs.aggregated_etag,
            Output::Discovery,
            &docs.aggregated,
        ),
        Ok(out) => json_response(StatusCode::OK, out, &docs.group_list),
        Err(e) => e.into_response(),
    }
}

/// Everything under `/apis/`: group and version discovery, then resources.
pub(super) async fn apis(
    State(state): State<Arc<AppState>>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    // Parsed once per request; a bad `watch` value is reported by serve_apis.
    let query = query_map(q.as_deref());
    let watching = req.method() == Method::GET
        && (rest.split('/').nth(2) == Some("watch")
            || parse_bool(query.get("watch")).ok().flatten() == Some(true));
    if watching {
        // A watch lasts as its timeoutSeconds or --min-request-timeout say.
        return serve_apis(&state, &rest, query, req)
            .await
            .unwrap_or_else(IntoResponse::into_response);
    }
    let mutating = req.method() != Method::GET;
    // kube-apiserver's create, update, patch and delete handlers stop at 34 s whatever
    // the flag says; a collection delete (an even number of path segments) does not.
    let one_object = rest.split('/').filter(|s| !s.is_empty()).count() % 2 == 1;
    let limit = match request_timeout(&state, &query) {
        Ok(limit) if mutating && (one_object || req.method() == Method::POST) => {
            limit.min(WRITE_TIMEOUT_UPPER_BOUND)
        }
        Ok(limit) => limit,
        Err(e) => return e.into_response(),
    };
    match tokio::time::timeout(limit, serve_apis(&state, &rest, query, req)).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => e.into_response(),
        // kube-apiserver's two wordings: its handlers' for writes, its filter's for reads.
        Err(_) if mutating => ApiError::timeout(
            "request did not complete within requested timeout - context deadline exceeded",
        )
        .into_response(),
        Err(_) => ApiError::timeout("request did not complete within the allotted timeout")
            .into_response(),
    }
}

/// The target a read answers from: for metadata only, the storage version (metadata
/// is the same in every version, so no conversion runs, and a quarantined plugin's
/// objects stay readable for the namespace controller and the garbage collector).
fn metadata_target(t: &Target, out: Output) -> Target {
    match out {
        Output::Metadata { .. } => t.in_version(&t.resource().storage_version),
        _ => t.clone(),
    }
}

/// kube-apiserver's `requestTimeoutUpperBound` for create, update, patch and delete.
const WRITE_TIMEOUT_UPPER_BOUND: Duration = Duration::from_secs(34);

/// How long a request may take: `--request-timeout`, or the request's `timeout`
/// parameter when it is shorter and positive (as kube-apiserver; others are ignored).
fn request_timeout(state: &AppState, query: &HashMap<String, String>) -> ApiResult<Duration> {
    let Some(t) = query.get("timeout").filter(|t| !t.is_empty()) else {
        return Ok(state.request_timeout);
    };
    let secs = crate::api::duration::parse_go_duration(t).map_err(|e| {
        ApiError::bad_request(format!(
            "invalid timeout specified in the request URL - {e}"
        ))
    })?;
    Ok(match Duration::try_from_secs_f64(secs) {
        Ok(d) if !d.is_zero() && d < state.request_timeout => d,
        _ => state.request_timeout,
    })
}

/// The parsed resource part of a URL.
struct ResourcePath<'a> {
    group: &'a str,
    version: &'a str,
    namespace: Option<&'a str>,
    plural: &'a str,
    name: Option<&'a str>,
    subresource: Option<&'a str>,
}

fn parse_path<'a>(segs: &[&'a str]) -> Option<ResourcePath<'a>> {
    let (group, version, rest) = match segs {
        [g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, rest) = match rest {
        ["namespaces", ns, rest @ ..] if !rest.is_empty() => (Some(*ns), rest),
        rest => (None, rest),
    };
    let (plural, name, subresource) = match rest {
        [p] => (*p, None, None),
        [p, n] => (*p, Some(*n), None),
        [p, n, s] => (*p, Some(*n), Some(*s)),
        _ => return None,
    };
    Some(ResourcePath {
        group,
        version,
        namespace,
        plural,
        name,
        subresource,
    })
}

async fn serve_apis(
    state: &AppState,
    rest: &str,
    query: HashMap<String, String>,
    req: Request,
) -> ApiResult<Response> {
    let segs: Vec<&str> = rest
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let headers = req.headers().clone();
    let user = req.extensions().get::<UserInfo>().cloned();
    // The body is read before anything can fail: an answer sent while the client is
    // still sending makes HTTP/2 reset the stream, which some clients report instead
    // of the answer.
    let body = read_body(req).await?;
    if segs.len() <= 2 {
        if method != Method::GET {
            return Err(ApiError::method_not_allowed(method.as_str(), "discovery"));
        }
        let docs = state.documents();
        let out = negotiate::choose(&headers, false, false)?;
        let doc = match segs.as_slice() {
            [g] => docs.groups.get(*g),
            [g, v] => docs.resource_lists.get(&format!("{g}/{v}")),
            _ => Some(&docs.group_list),
        };
        return doc
            .map(|d| json_response(StatusCode::OK, out, d))
            .ok_or_else(ApiError::path_not_found);
    }
    // The legacy `/apis/{group}/{version}/watch/...` form of `?watch=true`.
    let mut segs = segs;
    let legacy_watch = segs.get(2) == Some(&"watch");
    if legacy_watch {
        segs.remove(2);
    }
    let path = parse_path(&segs).ok_or_else(ApiError::path_not_found)?;
    let catalog = state.registry.plugins.snapshot();
    let plugin = catalog
        .find(path.group, path.plural)
        .ok_or_else(ApiError::path_not_found)?
        .clone();
    let r = &plugin.resource;
    let version = r
        .served_version(path.version)
        .ok_or_else(ApiError::path_not_found)?
        .clone();
    if path.namespace.is_some() && !r.namespaced() {
        return Err(ApiError::path_not_found());
    }
    let target = Target {
        plugin: plugin.clone(),
        version: version.name.clone(),
        namespace: path.namespace.map(str::to_string),
        user: user.ok_or_else(|| ApiError::new(401, "Unauthorized", "Unauthorized"))?,
    };
    let mut warnings: Vec<String> = version.deprecation_warning.iter().cloned().collect();
    let registry = &state.registry;
    match (path.subresource, path.name) {
        (None, _) => {}
        (Some("status"), _) if version.status_subresource => {}
        (Some("scale"), Some(name)) if version.scale.is_some() => {
            let response =
                subresources::scale(registry, &target, name, &method, &headers, &query, &body)
                    .await?;
            return Ok(add_warnings(response, &warnings));
        }
        (Some(sub), Some(name)) => {
            let Some(info) = version.subresources.iter().find(|s| s.name == sub) else {
                return Err(ApiError::path_not_found());
            };
            let response = subresources::custom(
                registry, &target, name, info, &method, &headers, &query, &body,
            )
            .await?;
            return Ok(add_warnings(response, &warnings));
        }
        (Some(_), None) => return Err(ApiError::path_not_found()),
    }
    // A computed kind is read-only: get and list.
    if r.is_computed() && method != Method::GET {
        return Err(ApiError::method_not_allowed_here());
    }

    let watching = legacy_watch || parse_bool(query.get("watch"))?.unwrap_or(false);
    if watching && method == Method::GET && path.subresource.is_none() {
        return watch(state, &target, &headers, &query, path.name).await;
    }
    if legacy_watch {
        return Err(ApiError::method_not_allowed(method.as_str(), &r.kind));
    }

    let response = match (path.name, method.clone()) {
        (None, Method::GET) => {
            if query.contains_key("sendInitialEvents") {
                return Err(ApiError::invalid_kind(
                    "meta.k8s.io",
                    "ListOptions",
                    "",
                    &[FieldError::forbidden(
                        "sendInitialEvents",
                        "sendInitialEvents is forbidden for list",
                    )],
                ));
            }
            let out = negotiate::choose_read(&headers, true)?;
            let opts = list_options(&query, r)?;
            let list = match r.is_computed() {
                true => registry.computed_list(&target, &opts).await?,
                false => registry.list(&metadata_target(&target, out), &opts).await?,
            };
            let mut list_meta = json!({"resourceVersion": list.resource_version.to_string()});
            if let Some(c) = &list.continue_token {
                list_meta["continue"] = json!(c);
            }
            if let Output::Metadata { api_version, .. } = out {
                let items: Vec<_> = list
                    .items
                    .iter()
                    .map(|o| table::partial_object_metadata(o, api_version))
                    .collect();
                json_response(
                    StatusCode::OK,
                    out,
                    &list_body(
                        api_version.to_string(),
                        "PartialObjectMetadataList",
                        list_meta,
                        items,
                    ),
                )
            } else if out == Output::Table {
                let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))
                    .map_err(ApiError::bad_request)?;
                let cells = registry.print(&target, &list.items)?;
                let rows = list
                    .items
                    .iter()
                    .zip(&cells)
                    .map(|(o, c)| table::row(&version, o, c, include))
                    .collect();
                json_response(
                    StatusCode::OK,
                    out,
                    &table::table(&version, rows, list_meta),
                )
            } else {
                // Built by moving the items in: `json!` would copy each of them.
                json_response(
                    StatusCode::OK,
                    out,
                    &list_body(
                        format!("{}/{}", r.group, version.name),
                        &r.list_kind,
                        list_meta,
                        list.items,
                    ),
                )
            }
        }
        (None, Method::POST) => {
            let out = negotiate::choose(&headers, false, false)?;
            let (body, opts) = write_input(&headers, &query, &body, WriteVerb::Create)?;
            let outcome = registry.create(&target, body, &opts).await?;
            warnings.extend(outcome.warnings);
            json_response(StatusCode::CREATED, out, &outcome.object)
        }
        (None, Method::DELETE) => {
            let out = negotiate::choose(&headers, false, false)?;
            let opts = list_options(&query, r)?;
            let del = delete_options(&query, &body)?;
            let list = registry.delete_collection(&target, &opts, &del).await?;
            if target.plugin.is_quarantined() && target.version != r.storage_version {
                // Deleted without the plugin, so not converted: a Status says it.
                return Ok(json_response(
                    StatusCode::OK,
                    out,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                            "details": {"group": r.group, "kind": r.plural}}),
                ));
            }
            json_response(
                StatusCode::OK,
                out,
                &json!({
                    "apiVersion": format!("{}/{}", r.group, version.name), "kind": r.list_kind,
                    "metadata": {"resourceVersion": list.resource_version.to_string()}, "items": list.items,
                }),
            )
        }
        (Some(name), Method::GET) => {
            let out = negotiate::choose_read(&headers, false)?;
            let rv = query.get("resourceVersion").map(String::as_str);
            let obj = match r.is_computed() {
                true => registry.computed_get(&target, name).await?,
                false => {
                    registry
                        .get(&metadata_target(&target, out), name, rv)
                        .await?
                }
            };
            if let Output::Metadata { api_version, .. } = out {
                json_response(
                    StatusCode::OK,
                    out,
                    &table::partial_object_metadata(&obj, api_version),
                )
            } else if out == Output::Table {
                let include = IncludeObject::parse(query.get("includeObject").map(String::as_str))
                    .map_err(ApiError::bad_request)?;
                let cells = registry.print(&target, std::slice::from_ref(&obj))?;
                let row = table::row(&version, &obj, &cells[0], include);
                let meta = json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                json_response(
                    StatusCode::OK,
                    out,
                    &table::table(&version, vec![row], meta),
                )
            } else {
                json_response(StatusCode::OK, out, &obj)
            }
        }
        (Some(name), Method::PUT) => {
            let out = negotiate::choose(&headers, false, false)?;
            let (body, opts) = write_input(&headers, &query, &body, WriteVerb::Update)?;
            let outcome = registry
                .update(&target, name, body, path.subresource, &opts)
                .await?;
            warnings.extend(outcome.warnings);
            json_response(StatusCode::OK, out, &outcome.object)
        }
        (Some(name), Method::PATCH) => {
            // kube-apiserver checks the patch type before anything else.
            let kind = patch_type(&headers)?;
            let out = negotiate::choose(&headers, false, false)?;
            let opts = patch_options(&headers, &query, kind)?;
            let (outcome, created) = match kind {
                PatchType::Apply => {
                    registry
                        .apply(&target, name, &body, path.subresource, &opts)
                        .await?
                }
                _ => (
                    registry
                        .patch(&target, name, kind, &body, path.subresource, &opts)
                        .await?,
                    false,
                ),
            };
            warnings.extend(outcome.warnings);
            let code = if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            json_response(code, out, &outcome.object)
        }
        (Some(name), Method::DELETE) if path.subresource.is_none() => {
            let out = negotiate::choose(&headers, false, false)?;
            let del = delete_options(&query, &body)?;
            let deleted = registry.delete(&target, name, &del).await?;
            // 202 only for the deprecated orphanDependents=false, as kube-apiserver.
            let code = if !deleted.removed && del.explicit_no_orphan {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            warnings.extend(deleted.warnings);
            json_response(code, out, &deleted.object)
        }
        (_, m) => return Err(ApiError::method_not_allowed(m.as_str(), &r.kind)),
    };
    Ok(add_warnings(response, &warnings))
}

/// A list object (`apiVersion`, `kind`, `metadata`, `items`) that takes its items as
/// they are, without the copy `json!` makes of every value it is given.
fn list_body(
    api_version: String,
    kind: &str,
    metadata: serde_json::Value,
    items: Vec<serde_json::Value>,
) -> serde_json::Value {
    use serde_json::Value;
    let mut body = serde_json::Map::with_capacity(4);
    body.insert("apiVersion".into(), Value::String(api_version));
    body.insert("kind".into(), Value::String(kind.to_string()));
    body.insert("metadata".into(), metadata);
    body.insert("items".into(), Value::Array(items));
    Value::Object(body)
}
