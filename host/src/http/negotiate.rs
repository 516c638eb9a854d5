//! Content negotiation: what the client accepts, what it sent.

use axum::http::HeaderMap;

use crate::api::{ApiError, ApiResult};

/// What a response body is rendered as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Json,
    Yaml,
    /// `application/json;as=Table;g=meta.k8s.io;v=v1` (or v1beta1).
    Table,
    /// `application/json;as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2`.
    Discovery,
    /// `application/json;as=PartialObjectMetadata[List];g=meta.k8s.io;v=v1` (or
    /// v1beta1): what client-go's metadata client (the namespace controller's, the
    /// garbage collector's) asks for. `list` says which of the two.
    Metadata {
        list: bool,
        api_version: &'static str,
    },
}

impl Output {
    pub fn content_type(self) -> &'static str {
        match self {
            Output::Json | Output::Table | Output::Metadata { .. } => "application/json",
            Output::Yaml => "application/yaml",
            Output::Discovery => {
                "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
            }
        }
    }
}

struct MediaRange<'a> {
    essence: String,
    params: Vec<(&'a str, &'a str)>,
}

fn parse_accept(accept: &str) -> Vec<MediaRange<'_>> {
    accept
        .split(',')
        .map(|part| {
            let mut it = part.split(';');
            let essence = it.next().unwrap_or_default().trim().to_ascii_lowercase();
            let params = it
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            MediaRange { essence, params }
        })
        .collect()
}

/// Pick the first acceptable representation, in the client's order. `table` and
/// `discovery` say whether this endpoint can produce those.
pub fn choose(headers: &HeaderMap, table: bool, discovery: bool) -> ApiResult<Output> {
    choose_among(headers, table, discovery, None)
}

/// [`choose`] for reads of objects: JSON, YAML, Table, and metadata only (a
/// `PartialObjectMetadataList` for a `list`, a `PartialObjectMetadata` for one
/// object or a watch's events).
pub fn choose_read(headers: &HeaderMap, list: bool) -> ApiResult<Output> {
    choose_among(headers, true, false, Some(list))
}

fn choose_among(
    headers: &HeaderMap,
    table: bool,
    discovery: bool,
    metadata: Option<bool>,
) -> ApiResult<Output> {
    let accept = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim();
    if accept.is_empty() {
        return Ok(Output::Json);
    }
    for m in parse_accept(accept) {
        let param = |k: &str| m.params.iter().find(|(pk, _)| *pk == k).map(|(_, v)| *v);
        let json_like = matches!(
            m.essence.as_str(),
            "application/json" | "application/*" | "*/*"
        );
        match param("as") {
            Some("Table")
                if json_like
                    && table
                    && param("g") == Some("meta.k8s.io")
                    && matches!(param("v"), Some("v1") | Some("v1beta1")) =>
            {
                return Ok(Output::Table);
            }
            Some("APIGroupDiscoveryList")
                if json_like
                    && discovery
                    && param("g") == Some("apidiscovery.k8s.io")
                    && param("v") == Some("v2") =>
            {
                return Ok(Output::Discovery);
            }
            Some(kind @ ("PartialObjectMetadata" | "PartialObjectMetadataList"))
                if json_like && param("g") == Some("meta.k8s.io") =>
            {
                let list = kind == "PartialObjectMetadataList";
                let api_version = match param("v") {
                    Some("v1") => "meta.k8s.io/v1",
                    Some("v1beta1") => "meta.k8s.io/v1beta1",
                    _ => continue,
                };
                match metadata {
                    Some(wanted) if wanted == list => {
                        return Ok(Output::Metadata { list, api_version })
                    }
                    // As kube-apiserver: the media type is accepted, then found not to
                    // fit what the endpoint returns.
                    Some(_) => {
                        return Err(ApiError::new(
                            406,
                            "NotAcceptable",
                            match list {
                                true => "you requested PartialObjectMetadataList, but the requested object is not a list",
                                false => "you requested PartialObjectMetadata, but the requested object is a list",
                            },
                        ))
                    }
                    None => {}
                }
            }
            Some(_) => {}
            None if json_like => return Ok(Output::Json),
            None if m.essence == "application/yaml" => return Ok(Output::Yaml),
            None => {}
        }
    }
    Err(ApiError::not_acceptable(accept))
}

/// The media type of a request body, without parameters.
pub fn content_type(headers: &HeaderMap) -> String {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(axum::http::header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn kubectl_accept_headers() {
        let table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(choose(&accept(table), true, false).unwrap(), Output::Table);
        assert_eq!(choose(&accept(table), false, false).unwrap(), Output::Json);
        let disc = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            choose(&accept(disc), false, true).unwrap(),
            Output::Discovery
        );
        assert_eq!(
            choose(&accept("application/yaml"), true, false).unwrap(),
            Output::Yaml
        );
        // client-go's metadata client: protobuf first, then JSON.
        let meta_list = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json";
        assert_eq!(
            choose_read(&accept(meta_list), true).unwrap(),
            Output::Metadata {
                list: true,
                api_version: "meta.k8s.io/v1"
            }
        );
        // A list's media type for one object: 406, as kube-apiserver answers.
        let e = choose_read(&accept(meta_list), false).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            (
                406,
                "you requested PartialObjectMetadataList, but the requested object is not a list"
            )
        );
        assert_eq!(
            choose(&accept(meta_list), true, false).unwrap(),
            Output::Json
        );
        assert_eq!(
            choose_read(
                &accept("application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"),
                true
            )
            .unwrap_err()
            .code,
            406
        );
        assert_eq!(
            choose(
                &accept("application/vnd.kubernetes.protobuf").clone(),
                true,
                true
            )
            .unwrap_err()
            .code,
            406
        );
    }
}
