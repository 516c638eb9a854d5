//! The watch verb: its options validated as kube-apiserver does, then a stream of
//! events from the resource's watch cache (or, for a computed kind, from computing
//! again when what it derives from changes).

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use serde_json::json;
use std::collections::HashMap;
use std::time::Duration;

use super::negotiate::{self, Output};
use super::params::{list_options, parse_bool};
use super::AppState;
use crate::api::table::IncludeObject;
use crate::api::{ApiError, ApiResult, FieldError};
use crate::registry::Target;
use crate::watch::{Encoding, WatchRequest, WatchStart};

/// A watch on a collection (or, by the legacy path, on one name): validate the
/// options as kube-apiserver's `ValidateListOptions` does, then stream from the cache.
pub(super) async fn watch(
    state: &AppState,
    t: &Target,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    name: Option<&str>,
) -> ApiResult<Response> {
    let r = t.resource();
    if r.computed.as_ref().is_some_and(Vec::is_empty) {
        // Computed from nothing it could follow: no changes to send.
        return Err(ApiError::method_not_allowed("watch", &r.kind));
    }
    let out = negotiate::choose_read(headers, false)?;
    let encoding = match out {
        Output::Json => Encoding::Json(t.version.as_str().into()),
        // Metadata is the same in every version: the storage version's, unconverted.
        Output::Metadata { api_version, .. } => {
            Encoding::Metadata(r.storage_version.as_str().into(), api_version)
        }
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
    // 0, like unset, means the server's default (kube-apiserver reads it so).
    let timeout = match query
        .get("timeoutSeconds")
        .filter(|s| !s.is_empty() && *s != "0")
    {
        Some(s) => Duration::from_secs(s.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "timeoutSeconds: Invalid value: {s:?}: must be a non-negative integer"
            ))
        })?),
        None => spread(state.watch_timeout),
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
    let events = match r.is_computed() {
        true => state.registry.clone().computed_watch(t.clone(), req),
        false => state.registry.cacher(t).watch(req).await?,
    };
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

/// A watch's default lifetime: uniform in [min, 2·min), as kube-apiserver draws it, so
/// that clients reconnecting after it spread over replicas instead of moving together.
fn spread(min: Duration) -> Duration {
    let fraction = (uuid::Uuid::new_v4().as_u128() >> 75) as f64 / (1u64 << 53) as f64;
    min.mul_f64(1.0 + fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_watch_lifetimes_spread_between_min_and_twice_min() {
        let min = Duration::from_secs(1800);
        let drawn: Vec<Duration> = (0..200).map(|_| spread(min)).collect();
        assert!(drawn.iter().all(|d| *d >= min && *d < min * 2));
        let (lo, hi) = (drawn.iter().min().unwrap(), drawn.iter().max().unwrap());
        assert!(
            *hi - *lo > Duration::from_secs(600),
            "not spread: {lo:?}..{hi:?}"
        );
    }
}
