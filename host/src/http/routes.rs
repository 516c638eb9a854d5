//! The router: every path the server answers, and the authentication and
//! authorization middleware in front of them.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use std::sync::Arc;

use super::health::{health, health_check, ready, ready_check, version};
use super::metrics::metrics;
use super::openapi::{openapi_v2, openapi_v3_doc, openapi_v3_index};
use super::resources::{apis, apis_root, legacy_api};
use super::AppState;
use crate::api::ApiError;
use crate::plugin::UserInfo;

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
        .route(crate::server::store_cli::SNAPSHOT_PATH, get(store_snapshot))
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
        // Outermost: a bug that panics in a handler answers this request with a 500
        // Status and leaves the server serving, rather than resetting the stream.
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panicked))
        .with_state(state)
}

/// A consistent snapshot of the store, streamed (`wasm-apiserver store snapshot save`).
async fn store_snapshot(State(state): State<Arc<AppState>>) -> Response {
    match state.registry.storage.snapshot().await {
        Ok(stream) => {
            let mut resp = Response::new(axum::body::Body::from_stream(stream));
            resp.headers_mut().insert(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/octet-stream"),
            );
            resp
        }
        Err(e) => ApiError::from_storage_plain(e).into_response(),
    }
}

fn panicked(cause: Box<dyn std::any::Any + Send>) -> Response {
    let what = cause
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| cause.downcast_ref::<&str>().copied())
        .unwrap_or("a panic");
    tracing::error!(panic = what, "a request handler panicked");
    ApiError::internal(format!("the server could not handle the request: {what}")).into_response()
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

/// In `--dev`, every request acts as a cluster admin.
fn dev_user() -> UserInfo {
    UserInfo {
        name: "system:admin".into(),
        uid: String::new(),
        groups: vec!["system:masters".into(), "system:authenticated".into()],
        extra: Vec::new(),
    }
}
