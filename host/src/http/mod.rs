//! HTTP: routes, content negotiation, discovery and OpenAPI, and the REST verbs on
//! plugin resources. Handlers know nothing of any kind: they parse the URL into a
//! [`Target`], call the [`Registry`], and render. Every error is an [`ApiError`],
//! rendered as a `metav1.Status` in one place (its `IntoResponse`).

pub mod discovery;
pub mod negotiate;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::api::selectors::{FieldSelector, LabelSelector};
use crate::api::table::{self, IncludeObject};
use crate::api::{ApiError, ApiResult, FieldError};
use crate::plugin::{PluginCatalog, UserInfo};
use crate::registry::{
    DeleteOptions, DeleteOptionsWire, ListOptions, PatchType, Registry, Target, WriteOptions,
    WriteVerb,
};
use crate::watch::{Encoding, WatchRequest, WatchStart};
use discovery::Documents;
use futures::StreamExt as _;
use negotiate::Output;

/// Bodies above this are refused with 413, as kube-apiserver's 3 MiB request limit.
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

/// Shared by every request.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Delegated authentication and authorization; `None` in `--dev` (every request
    /// acts as `system:admin`).
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// A watch without timeoutSeconds ends after this (`--min-request-timeout`).
    pub watch_timeout: Duration,
    /// Discovery and OpenAPI documents, rebuilt when the plugin catalog changes.
    docs: RwLock<(Arc<PluginCatalog>, Arc<Documents>)>,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        auth: Option<Arc<crate::auth::Auth>>,
        watch_timeout: Duration,
    ) -> Arc<Self> {
        let catalog = registry.plugins.snapshot();
        let docs = Arc::new(Documents::build(&catalog));
        Arc::new(AppState {
            registry,
            auth,
            watch_timeout,
            docs: RwLock::new((catalog, docs)),
        })
    }

    /// The documents for the current catalog (rebuilt once per catalog change).
    pub fn documents(&self) -> Arc<Documents> {
        let catalog = self.registry.plugins.snapshot();
        {
            let cur = self.docs.read().expect("docs lock");
            if Arc::ptr_eq(&cur.0, &catalog) {
                return cur.1.clone();
            }
        }
        let docs = Arc::new(Documents::build(&catalog));
        *self.docs.write().expect("docs lock") = (catalog, docs.clone());
        docs
    }
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/metrics", get(metrics))
        .route("/healthz", get(health))
        .route("/livez", get(health))
        .route("/readyz", get(ready))
        .route("/healthz/{check}", get(health_check))
        .route("/livez/{check}", get(health_check))
        .route("/readyz/{check}", get(ready_check))
        .route("/api", get(legacy_api))
        .route("/apis", get(apis_root))
        .route("/apis/", get(apis_root))
        .route("/openapi/v2", get(openapi_v2))
        .route("/openapi/v3", get(openapi_v3_index))
        .route("/openapi/v3/apis/{group}/{version}", get(openapi_v3_doc))
        .route("/apis/{*rest}", axum::routing::any(apis))
        .fallback(|| async { ApiError::path_not_found() })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            authenticate,
        ))
        .with_state(state)
}

/// Who is asking, and may they: the user goes into the request's extensions for the
/// handlers (and the plugins' hooks). In `--dev`, everyone is `system:admin`.
async fn authenticate(
    State(state): State<Arc<AppState>>,
    mut req: Request,
    next: axum::middleware::Next,
) -> Response {
    use crate::auth::{always_allowed, Attributes, PeerCerts};
    let Some(auth) = &state.auth else {
        req.extensions_mut().insert(dev_user());
        return next.run(req).await;
    };
    let path = req.uri().path().to_string();
    if always_allowed(&path) {
        return next.run(req).await;
    }
    let peer = req.extensions().get::<Arc<PeerCerts>>().cloned();
    let Some(user) = auth.authenticate(peer.as_deref(), req.headers()).await else {
        return ApiError::new(401, "Unauthorized", "Unauthorized").into_response();
    };
    let attrs = Attributes::of(req.method(), &path, req.uri().query());
    match auth.authorize(&user, &attrs).await {
        Ok(None) => {}
        Ok(Some(forbidden)) => return forbidden.into_response(),
        Err(e) => {
            tracing::error!(user = %user.name, error = %e.message, "authorization failed");
            return e.into_response();
        }
    }
    req.extensions_mut().insert(user);
    next.run(req).await
}

fn json_response(code: StatusCode, output: Output, body: &Value) -> Response {
    let text = match output {
        Output::Yaml => serde_yaml::to_string(body).unwrap_or_default(),
        _ => body.to_string(),
    };
    let mut r = (code, text).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(output.content_type()),
    );
    r
}

fn with_etag(headers: &HeaderMap, etag: &str, output: Output, body: &Value) -> Response {
    let quoted = format!("\"{etag}\"");
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(quoted.as_str())
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let mut r = json_response(StatusCode::OK, output, body);
    r.headers_mut()
        .insert(header::ETAG, HeaderValue::from_str(&quoted).expect("hex"));
    r
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        Output::Json,
        &json!({
            "major": "1", "minor": "32", "gitVersion": concat!("v", env!("CARGO_PKG_VERSION"), "-wasm-apiserver"),
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "", "goVersion": "",
            "compiler": "rustc", "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH),
        }),
    )
}

async fn health() -> &'static str {
    "ok"
}

async fn health_check(Path(check): Path<String>) -> Response {
    if check == "ping" {
        "ok".into_response()
    } else {
        (
            StatusCode::NOT_FOUND,
            format!("no such health check {check:?}"),
        )
            .into_response()
    }
}

/// Readiness checks: `ping`, `storage` (`etcd` on etcd), `plugins`, `watch-cache`. Load failures are listed on the
/// `plugins` line with `?verbose` but do not make the server unready: the other
/// plugins still serve.
async fn readiness(state: &AppState) -> Vec<(&'static str, Result<String, String>)> {
    let storage_check = state.registry.storage.check_name();
    let storage = state
        .registry
        .storage
        .check()
        .await
        .map(|_| String::new())
        .map_err(|e| e.to_string());
    let catalog = state.registry.plugins.snapshot();
    let plugins = if catalog.errors.is_empty() {
        Ok(String::new())
    } else {
        let errs: Vec<String> = catalog.errors.iter().map(|e| e.to_string()).collect();
        Ok(format!(
            " ({} failed to load: {})",
            errs.len(),
            errs.join("; ")
        ))
    };
    let loading: Vec<String> = state
        .registry
        .watch
        .all()
        .iter()
        .filter(|c| c.revision() == 0)
        .map(|c| c.plugin().resource.qualified_plural())
        .collect();
    let watch_cache = if loading.is_empty() {
        Ok(String::new())
    } else {
        Err(format!("not loaded yet: {}", loading.join(", ")))
    };
    vec![
        ("ping", Ok(String::new())),
        (storage_check, storage),
        ("plugins", plugins),
        ("watch-cache", watch_cache),
    ]
}

async fn ready(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
    let checks = readiness(&state).await;
    let ok = checks.iter().all(|(_, r)| r.is_ok());
    let verbose = q.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "verbose" || p.starts_with("verbose="))
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    if !verbose {
        return (
            code,
            if ok {
                "ok".to_string()
            } else {
                "readyz check failed".to_string()
            },
        )
            .into_response();
    }
    let mut out = String::new();
    for (name, r) in &checks {
        match r {
            Ok(note) => out.push_str(&format!("[+]{name} ok{note}\n")),
            Err(e) => out.push_str(&format!("[-]{name} failed: {e}\n")),
        }
    }
    out.push_str(if ok {
        "readyz check passed\n"
    } else {
        "readyz check failed\n"
    });
    (code, out).into_response()
}

async fn ready_check(State(state): State<Arc<AppState>>, Path(check): Path<String>) -> Response {
    match readiness(&state)
        .await
        .into_iter()
        .find(|(n, _)| *n == check)
    {
        Some((_, Ok(_))) => "ok".into_response(),
        Some((_, Err(e))) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("[-]{check} failed: {e}"),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            format!("no such readiness check {check:?}"),
        )
            .into_response(),
    }
}

async fn legacy_api(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
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

async fn apis_root(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
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

async fn openapi_v2(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let docs = state.documents();
    with_etag(
        &headers,
        &docs.openapi_v2_etag,
        Output::Json,
        &docs.openapi_v2,
    )
}

async fn openapi_v3_index(State(state): State<Arc<AppState>>) -> Response {
    let docs = state.documents();
    let paths: serde_json::Map<String, Value> = docs
        .openapi_v3
        .iter()
        .map(|(gv, _, hash)| {
            (
                format!("apis/{gv}"),
                json!({"serverRelativeURL": format!("/openapi/v3/apis/{gv}?hash={hash}")}),
            )
        })
        .collect();
    json_response(StatusCode::OK, Output::Json, &json!({"paths": paths}))
}

async fn openapi_v3_doc(
    State(state): State<Arc<AppState>>,
    Path((group, version)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Response {
    let docs = state.documents();
    let gv = format!("{group}/{version}");
    let Some((_, doc, hash)) = docs.openapi_v3.iter().find(|(g, _, _)| *g == gv) else {
        return ApiError::path_not_found().into_response();
    };
    let asked = query_map(q.as_deref()).remove("hash");
    let mut r = match asked {
        // An old hash: send the client to the current document, as kube-apiserver does.
        Some(h) if h != *hash => {
            let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                HeaderValue::from_str(&format!("/openapi/v3/apis/{gv}?hash={hash}"))
                    .expect("ascii"),
            );
            return r;
        }
        Some(_) => {
            let mut r = with_etag(&headers, hash, Output::Json, doc);
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, immutable"),
            );
            r
        }
        None => with_etag(&headers, hash, Output::Json, doc),
    };
    r.headers_mut().insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 31 Dec 2099 23:59:59 GMT"),
    );
    r
}

fn query_map(q: Option<&str>) -> HashMap<String, String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(q.unwrap_or_default())
        .unwrap_or_default()
        .into_iter()
        .collect()
}

/// Everything under `/apis/`: group and version discovery, then resources.
async fn apis(
    State(state): State<Arc<AppState>>,
    Path(rest): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Response {
    match serve_apis(&state, &rest, q.as_deref(), req).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
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
    q: Option<&str>,
    req: Request,
) -> ApiResult<Response> {
    let segs: Vec<&str> = rest
        .trim_end_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let method = req.method().clone();
    let headers = req.headers().clone();
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
    match path.subresource {
        None => {}
        Some("status") if version.status_subresource => {}
        Some(_) => return Err(ApiError::path_not_found()),
    }
    let target = Target {
        plugin: plugin.clone(),
        version: version.name.clone(),
        namespace: path.namespace.map(str::to_string),
        user: req
            .extensions()
            .get::<UserInfo>()
            .cloned()
            .ok_or_else(|| ApiError::new(401, "Unauthorized", "Unauthorized"))?,
    };
    let query = query_map(q);
    let mut warnings: Vec<String> = version.deprecation_warning.iter().cloned().collect();
    let registry = &state.registry;

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
            let out = negotiate::choose(&headers, true, false)?;
            let opts = list_options(&query, r)?;
            let list = registry.list(&target, &opts).await?;
            let mut list_meta = json!({"resourceVersion": list.resource_version.to_string()});
            if let Some(c) = &list.continue_token {
                list_meta["continue"] = json!(c);
            }
            if out == Output::Table {
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
                json_response(
                    StatusCode::OK,
                    out,
                    &json!({
                        "apiVersion": format!("{}/{}", r.group, version.name), "kind": r.list_kind,
                        "metadata": list_meta, "items": list.items,
                    }),
                )
            }
        }
        (None, Method::POST) => {
            let out = negotiate::choose(&headers, false, false)?;
            let (body, opts) = write_input(&headers, &query, req, WriteVerb::Create).await?;
            let outcome = registry.create(&target, body, &opts).await?;
            warnings.extend(outcome.warnings);
            json_response(StatusCode::CREATED, out, &outcome.object)
        }
        (None, Method::DELETE) => {
            let out = negotiate::choose(&headers, false, false)?;
            let opts = list_options(&query, r)?;
            let body = read_body(req).await?;
            let del = delete_options(&query, &body)?;
            let list = registry.delete_collection(&target, &opts, &del).await?;
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
            let out = negotiate::choose(&headers, true, false)?;
            let rv = query.get("resourceVersion").map(String::as_str);
            let obj = registry.get(&target, name, rv).await?;
            if out == Output::Table {
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
            let (body, opts) = write_input(&headers, &query, req, WriteVerb::Update).await?;
            let outcome = registry
                .update(&target, name, body, path.subresource, &opts)
                .await?;
            warnings.extend(outcome.warnings);
            json_response(StatusCode::OK, out, &outcome.object)
        }
        (Some(name), Method::PATCH) => {
            let out = negotiate::choose(&headers, false, false)?;
            let ct = negotiate::content_type(&headers);
            let kind = match ct.as_str() {
                "application/merge-patch+json" => PatchType::Merge,
                "application/json-patch+json" => PatchType::Json,
                _ => {
                    return Err(ApiError::unsupported_media_type(
                        &ct,
                        &[
                            "application/json-patch+json",
                            "application/merge-patch+json",
                        ],
                    ))
                }
            };
            let opts = write_options(&query, WriteVerb::Patch)?;
            let body = read_body(req).await?;
            let outcome = registry
                .patch(&target, name, kind, &body, path.subresource, &opts)
                .await?;
            warnings.extend(outcome.warnings);
            json_response(StatusCode::OK, out, &outcome.object)
        }
        (Some(name), Method::DELETE) if path.subresource.is_none() => {
            let out = negotiate::choose(&headers, false, false)?;
            let body = read_body(req).await?;
            let del = delete_options(&query, &body)?;
            let deleted = registry.delete(&target, name, &del).await?;
            // 202 only for the deprecated orphanDependents=false, as kube-apiserver.
            let code = if !deleted.removed && del.explicit_no_orphan {
                StatusCode::ACCEPTED
            } else {
                StatusCode::OK
            };
            json_response(code, out, &deleted.object)
        }
        (_, m) => return Err(ApiError::method_not_allowed(m.as_str(), &r.kind)),
    };
    Ok(add_warnings(response, &warnings))
}

/// `strconv.ParseBool`, as Go decodes boolean query parameters.
fn parse_bool(v: Option<&String>) -> ApiResult<Option<bool>> {
    match v.map(String::as_str) {
        None => Ok(None),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
        Some("" | "0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
        Some(other) => Err(ApiError::bad_request(format!(
            "strconv.ParseBool: parsing {other:?}: invalid syntax"
        ))),
    }
}

/// A watch on a collection (or, by the legacy path, on one name): validate the
/// options as kube-apiserver's `ValidateListOptions` does, then stream from the cache.
async fn watch(
    state: &AppState,
    t: &Target,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    name: Option<&str>,
) -> ApiResult<Response> {
    let r = t.resource();
    let out = negotiate::choose(headers, true, false)?;
    let encoding = match out {
        Output::Json => Encoding::Json(t.version.as_str().into()),
        Output::Table => Encoding::Table(
            t.version.as_str().into(),
            IncludeObject::parse(query.get("includeObject").map(String::as_str))
                .map_err(ApiError::bad_request)?,
        ),
        _ => {
            return Err(ApiError::not_acceptable(
                headers
                    .get(header::ACCEPT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default(),
            ))
        }
    };
    let mut opts = list_options(query, r)?;
    if let Some(name) = name {
        opts.fields.require("metadata.name", name);
    }
    let send_initial_events = parse_bool(query.get("sendInitialEvents"))?;
    let bookmarks = parse_bool(query.get("allowWatchBookmarks"))?.unwrap_or(false);
    let matching = opts.resource_version_match.clone().unwrap_or_default();
    let mut errs = Vec::new();
    if send_initial_events.is_some() && matching != "NotOlderThan" {
        errs.push(FieldError::forbidden(
            "resourceVersionMatch",
            "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
        ));
    }
    if !matching.is_empty() {
        if send_initial_events.is_none() {
            errs.push(FieldError::forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            ));
        }
        if matching != "NotOlderThan" {
            let mut e = FieldError::new(
                crate::api::FieldErrorType::NotSupported,
                "resourceVersionMatch",
                Some(&json!(matching)),
                "",
            );
            e.supported_values = vec!["NotOlderThan".into()];
            errs.push(e);
        }
    }
    if !errs.is_empty() {
        return Err(ApiError::invalid_kind(
            "meta.k8s.io",
            "ListOptions",
            "",
            &errs,
        ));
    }
    let start = match opts.resource_version.as_deref() {
        None | Some("") => WatchStart::Latest,
        Some("0") => WatchStart::Any,
        Some(rv) => WatchStart::After(
            crate::registry::meta::parse_resource_version(rv).map_err(ApiError::bad_request)?,
        ),
    };
    let timeout = match query.get("timeoutSeconds").filter(|s| !s.is_empty()) {
        Some(s) => Duration::from_secs(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "timeoutSeconds: Invalid value: {s:?}: must be a non-negative integer"
            ))
        })?),
        None => state.watch_timeout,
    };
    let req = WatchRequest {
        prefix: t.prefix(),
        labels: opts.labels,
        fields: opts.fields,
        encoding,
        start,
        send_initial_events,
        bookmarks,
        timeout,
    };
    let events = state.registry.cacher(t).watch(req).await?;
    let body = axum::body::Body::from_stream(events.map(Ok::<_, std::convert::Infallible>));
    let mut resp = (StatusCode::OK, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(out.content_type()),
    );
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(resp)
}

/// Prometheus text: watchers and watch-cache counters per resource, and the time
/// spent in each plugin.
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    let caches: &[Family<Arc<crate::watch::Cacher>>] = &[
        (
            "apiserver_registered_watchers",
            "gauge",
            "Watchers currently registered, per resource.",
            |c| c.watcher_count() as f64,
        ),
        (
            "wasm_apiserver_watch_cache_events_total",
            "counter",
            "Events the watch cache received from storage.",
            |c| c.stats.events.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_conversions_total",
            "counter",
            "convert hook calls made to serve watchers.",
            |c| c.stats.conversions.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_prints_total",
            "counter",
            "print hook calls made to serve Table watchers.",
            |c| c.stats.prints.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_closed_slow_total",
            "counter",
            "Watchers closed because they fell behind.",
            |c| c.stats.closed_slow.load(Relaxed) as f64,
        ),
    ];
    write_families(&mut out, caches, &state.registry.watch.all(), |c| {
        let plugin = c.plugin();
        let r = &plugin.resource;
        format!("group=\"{}\",resource=\"{}\"", r.group, r.plural)
    });
    let catalog = state.registry.plugins.snapshot();
    let plugins: &[Family<Arc<crate::plugin::Plugin>>] = &[
        (
            "wasm_apiserver_plugin_instances_total",
            "counter",
            "Plugin instances created.",
            |p| p.stats.instances.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_instance_reuses_total",
            "counter",
            "Hook calls that ran on an instance an earlier call created.",
            |p| p.stats.reuses.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_instantiate_seconds_total",
            "counter",
            "Time spent creating plugin instances.",
            |p| p.stats.instantiate_nanos.load(Relaxed) as f64 / 1e9,
        ),
        (
            "wasm_apiserver_plugin_hook_calls_total",
            "counter",
            "Hook calls into plugins.",
            |p| p.stats.calls.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_hook_seconds_total",
            "counter",
            "Time spent in plugin hook calls.",
            |p| p.stats.call_nanos.load(Relaxed) as f64 / 1e9,
        ),
    ];
    write_families(&mut out, plugins, &catalog.plugins, |p| {
        format!("plugin=\"{}\"", p.name)
    });
    let failing: &[Family<crate::plugin::LoadError>] = &[(
        "wasm_apiserver_plugin_load_error",
        "gauge",
        "1 for each plugin file that failed to load (the previous version, if any, still serves).",
        |_| 1.0,
    )];
    write_families(&mut out, failing, &catalog.errors, |e| {
        let file = e.file.file_name().unwrap_or_default().to_string_lossy();
        format!(
            "file=\"{}\"",
            file.replace('\\', "\\\\").replace('"', "\\\"")
        )
    });
    let reloads: &[Family<&crate::plugin::PluginRegistry>] = &[(
        "wasm_apiserver_plugin_reload_failures_total",
        "counter",
        "Plugin file changes that could not be loaded.",
        |r| r.reload_failures.load(Relaxed) as f64,
    )];
    write_families(&mut out, reloads, &[&*state.registry.plugins], |_| {
        String::new()
    });
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

/// A metric family: name, type, help, and how to read one item's value.
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> f64);

/// Prometheus text for metric families, one sample per item.
fn write_families<T>(
    out: &mut String,
    families: &[Family<T>],
    items: &[T],
    labels: impl Fn(&T) -> String,
) {
    use std::fmt::Write as _;
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for item in items {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(item), value(item));
        }
    }
}

fn add_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// In `--dev`, every request acts as a cluster admin.
fn dev_user() -> UserInfo {
    UserInfo {
        name: "system:admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        extra: Vec::new(),
    }
}

async fn read_body(req: Request) -> ApiResult<bytes::Bytes> {
    axum::body::to_bytes(req.into_body(), MAX_BODY_BYTES)
        .await
        .map_err(|_| ApiError::too_large(MAX_BODY_BYTES))
}

fn write_options(query: &HashMap<String, String>, verb: WriteVerb) -> ApiResult<WriteOptions> {
    let dry_run: Vec<String> = query.get("dryRun").into_iter().cloned().collect();
    WriteOptions::parse(
        verb,
        &dry_run,
        query.get("fieldManager").map(String::as_str),
        query.get("fieldValidation").map(String::as_str),
    )
}

/// Decode a create or update body (JSON or YAML).
async fn write_input(
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    req: Request,
    verb: WriteVerb,
) -> ApiResult<(Value, WriteOptions)> {
    let mut opts = write_options(query, verb)?;
    let ct = negotiate::content_type(headers);
    let body = read_body(req).await?;
    let value = match ct.as_str() {
        "application/json" | "" => {
            let v: Value = serde_json::from_slice(&body)
                .map_err(|e| ApiError::bad_request(format!("error decoding JSON: {e}")))?;
            opts.duplicate_fields = crate::api::duplicates::find(&body);
            v
        }
        "application/yaml" => serde_yaml::from_slice(&body)
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

fn list_options(
    query: &HashMap<String, String>,
    r: &crate::plugin::ResourceInfo,
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

/// DeleteOptions from a body when there is one (the query is then ignored, as
/// kube-apiserver does), else from the query.
fn delete_options(query: &HashMap<String, String>, body: &[u8]) -> ApiResult<DeleteOptions> {
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
