//! The continue token of a paged LIST, in k8s.io/apiserver's format: base64url of
//! `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after the prefix>"}`, so that a token
//! from either server is understood by the other.

use base64::Engine as _;

use crate::api::{ApiError, ApiResult};
use crate::storage::Revision;

#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

/// A token that resumes a list read at `rv` from key `start` (relative to the prefix).
pub(super) fn encode(rv: Revision, start: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: rv as i64,
        start: start.into(),
    };
    let json = serde_json::to_vec(&t).unwrap_or_default();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
}

/// The revision and relative start key of a client's token; a 400 for anything else.
pub(super) fn decode(token: &str) -> ApiResult<(Revision, String)> {
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(invalid(format!(
            "server does not recognize this encoded version {:?}",
            t.v
        )));
    }
    if t.rv <= 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    if t.start.is_empty() || t.start.split('/').any(|s| s == ".." || s == ".") {
        return Err(invalid("encoded start key empty or not relative".into()));
    }
    Ok((t.rv as Revision, t.start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_tampering() {
        let t = encode(42, "default/b\u{0}");
        assert_eq!(decode(&t).unwrap(), (42, "default/b\u{0}".to_string()));
        for bad in [
            "garbage!!",
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJhIn0",
            &t[..t.len() - 3],
        ] {
            let e = decode(bad).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
            assert!(
                e.message
                    .starts_with("invalid continue token: continue key is not valid"),
                "{}",
                e.message
            );
        }
    }
}
