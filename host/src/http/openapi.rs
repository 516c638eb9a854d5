//! OpenAPI v2 and v3: the documents built by [`super::discovery`], served with ETags
//! and, for v3, by hash.

use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::sync::Arc;

use super::negotiate::Output;
use super::params::query_map;
use super::response::{json_response, with_etag};
use super::AppState;
use crate::api::ApiError;

pub(super) async fn openapi_v2(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let docs = state.documents();
    with_etag(
        &headers,
        &docs.openapi_v2_etag,
        Output::Json,
        &docs.openapi_v2,
    )
}

pub(super) async fn openapi_v3_index(State(state): State<Arc<AppState>>) -> Response {
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

pub(super) async fn openapi_v3_doc(
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
