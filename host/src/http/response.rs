//! Rendering: a JSON (or YAML) body with its content type, ETags for the documents,
//! and `Warning` headers.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::negotiate::Output;

pub(super) fn json_response(code: StatusCode, output: Output, body: &Value) -> Response {
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

pub(super) fn with_etag(headers: &HeaderMap, etag: &str, output: Output, body: &Value) -> Response {
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

pub(super) fn add_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        let text = format!("299 - \"{}\"", w.replace('\\', "\\\\").replace('"', "\\\""));
        if let Ok(v) = HeaderValue::from_str(&text) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}
