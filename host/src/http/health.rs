//! `/version` and the health checks: `/livez`, `/readyz`, `/healthz` and their
//! single checks.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

use super::negotiate::Output;
use super::response::json_response;
use super::AppState;

pub(super) async fn version() -> Response {
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

pub(super) async fn health() -> &'static str {
    "ok"
}

pub(super) async fn health_check(Path(check): Path<String>) -> Response {
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
    // Out of space is named, not failed: pulling the only replica of an embedded
    // store out of rotation would make the APIService unavailable, and with it the
    // reads and deletes that free space.
    let storage = state
        .registry
        .storage
        .check()
        .await
        .map(|_| match state.registry.storage.condition() {
            Some(c) => format!(" (warning: {c})"),
            None => String::new(),
        })
        .map_err(|e| e.to_string());
    let catalog = state.registry.plugins.snapshot();
    let mut notes = Vec::new();
    if !catalog.errors.is_empty() {
        let errs: Vec<String> = catalog.errors.iter().map(|e| e.to_string()).collect();
        notes.push(format!(
            "{} failed to load: {}",
            errs.len(),
            errs.join("; ")
        ));
    }
    // A quarantined plugin is a warning, not a failure: the other kinds serve, and
    // its own still serves reads in the storage version and deletes.
    let quarantined: Vec<String> = catalog
        .plugins
        .iter()
        .filter_map(|p| {
            let q = p.health.quarantined()?;
            let since = jiff::Timestamp::try_from(q.since)
                .map(|t| t.to_string())
                .unwrap_or_default();
            Some(format!(
                "{} ({}) since {since}: {}",
                p.name,
                p.resource.qualified_plural(),
                q.cause
            ))
        })
        .collect();
    if !quarantined.is_empty() {
        notes.push(format!(
            "warning: {} quarantined, serving only reads in the storage version and \
             deletes: {}",
            quarantined.len(),
            quarantined.join("; ")
        ));
    }
    for m in state.registry.migrations() {
        use std::sync::atomic::Ordering::Relaxed;
        let failed = m.failed.load(Relaxed);
        notes.push(format!(
            "{}migrating {} from {} to {}: {} objects rewritten{}",
            if failed > 0 { "warning: stalled " } else { "" },
            m.resource,
            m.from,
            m.to,
            m.rewritten.load(Relaxed),
            match failed {
                0 => String::new(),
                n => format!(", {n} the plugin could not convert (see the log)"),
            }
        ));
    }
    let plugins = Ok(match notes.is_empty() {
        true => String::new(),
        false => format!(" ({})", notes.join("; ")),
    });
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

pub(super) async fn ready(State(state): State<Arc<AppState>>, RawQuery(q): RawQuery) -> Response {
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

pub(super) async fn ready_check(
    State(state): State<Arc<AppState>>,
    Path(check): Path<String>,
) -> Response {
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
