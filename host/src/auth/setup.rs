//! Building [`Auth`] from the command line, and from the cluster's
//! `kube-system/extension-apiserver-authentication` ConfigMap when no CA file is given
//! (as k8s.io/apiserver's delegating authentication does).

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::webhook::{Authorizer, Cache, TokenReviewer};
use super::{ca_verifier, Auth, RequestHeader};

/// k8s.io/apiserver's delegating authentication and authorization options.
#[derive(Clone, Debug)]
pub struct AuthOptions {
    pub client_ca_file: Option<PathBuf>,
    pub requestheader_client_ca_file: Option<PathBuf>,
    pub requestheader_allowed_names: Vec<String>,
    pub requestheader_username_headers: Vec<String>,
    pub requestheader_group_headers: Vec<String>,
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// Where TokenReviews go; `None`: in-cluster config when running in a pod.
    pub authentication_kubeconfig: Option<PathBuf>,
    /// Where SubjectAccessReviews go; `None`: in-cluster config when in a pod.
    pub authorization_kubeconfig: Option<PathBuf>,
    pub token_cache_ttl: Duration,
    pub authorized_ttl: Duration,
    pub unauthorized_ttl: Duration,
    /// Deadline of one review.
    pub timeout: Duration,
}

/// A client for the cluster: from a kubeconfig, or in-cluster when running in a pod.
pub(crate) async fn cluster_client(
    kubeconfig: Option<&Path>,
    flag: &str,
) -> anyhow::Result<Option<kube::Client>> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("{flag} {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .with_context(|| format!("{flag} {}", path.display()))?
        }
        None if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() => {
            kube::Config::incluster().context("the in-cluster configuration")?
        }
        None => return Ok(None),
    };
    Ok(Some(
        kube::Client::try_from(config).with_context(|| format!("a client from {flag}"))?,
    ))
}

fn read(path: &Option<PathBuf>, flag: &str) -> anyhow::Result<Option<Vec<u8>>> {
    path.as_ref()
        .map(|p| std::fs::read(p).with_context(|| format!("reading {flag} {}", p.display())))
        .transpose()
}

/// The authentication and authorization the options describe.
pub async fn setup(o: &AuthOptions) -> anyhow::Result<Auth> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let authn = cluster_client(
        o.authentication_kubeconfig.as_deref(),
        "--authentication-kubeconfig",
    )
    .await?;
    let authz = cluster_client(
        o.authorization_kubeconfig.as_deref(),
        "--authorization-kubeconfig",
    )
    .await?;
    let mut client_ca = read(&o.client_ca_file, "--client-ca-file")?;
    let mut rh_ca = read(
        &o.requestheader_client_ca_file,
        "--requestheader-client-ca-file",
    )?;
    let mut o = o.clone();
    if client_ca.is_none() && rh_ca.is_none() {
        if let Some(client) = &authn {
            let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
                kube::Api::namespaced(client.clone(), "kube-system");
            match tokio::time::timeout(o.timeout, api.get("extension-apiserver-authentication")).await {
                Ok(Ok(cm)) => {
                    let data = cm.data.unwrap_or_default();
                    let list = |k: &str| -> Option<Vec<String>> {
                        data.get(k).and_then(|v| serde_json::from_str(v).ok())
                    };
                    client_ca = data.get("client-ca-file").map(|s| s.clone().into_bytes());
                    rh_ca = data
                        .get("requestheader-client-ca-file")
                        .map(|s| s.clone().into_bytes());
                    if let Some(v) = list("requestheader-allowed-names") {
                        o.requestheader_allowed_names = v;
                    }
                    if let Some(v) = list("requestheader-username-headers") {
                        o.requestheader_username_headers = v;
                    }
                    if let Some(v) = list("requestheader-group-headers") {
                        o.requestheader_group_headers = v;
                    }
                    if let Some(v) = list("requestheader-extra-headers-prefix") {
                        o.requestheader_extra_headers_prefix = v;
                    }
                    tracing::info!("authentication: CAs and request headers from kube-system/extension-apiserver-authentication");
                }
                Ok(Err(e)) => tracing::warn!(error = %e, "authentication: cannot read kube-system/extension-apiserver-authentication; client certificates and front-proxy headers are off"),
                Err(_) => tracing::warn!("authentication: kube-system/extension-apiserver-authentication did not arrive in time; client certificates and front-proxy headers are off"),
            }
        }
    }
    let requestheader = rh_ca
        .map(|pem| -> anyhow::Result<RequestHeader> {
            Ok(RequestHeader {
                verifier: ca_verifier(&pem, "the request-header CA", provider.clone())?,
                allowed_names: o.requestheader_allowed_names.clone(),
                username_headers: o.requestheader_username_headers.clone(),
                group_headers: o.requestheader_group_headers.clone(),
                extra_prefixes: o
                    .requestheader_extra_headers_prefix
                    .iter()
                    .map(|p| p.to_ascii_lowercase())
                    .collect(),
            })
        })
        .transpose()?;
    let client_ca = client_ca
        .map(|pem| ca_verifier(&pem, "the client CA", provider.clone()))
        .transpose()?;
    if authn.is_none() && requestheader.is_none() && client_ca.is_none() {
        tracing::warn!("authentication: no request-header CA, client CA or cluster to review tokens: every request but /healthz, /livez and /readyz is 401 (use --dev for development)");
    }
    if authz.is_none() {
        tracing::warn!("authorization: no cluster to ask (--authorization-kubeconfig): only system:masters is allowed");
    }
    Ok(Auth {
        requestheader,
        client_ca,
        token_review: authn.map(|client| TokenReviewer {
            client,
            timeout: o.timeout,
            cache: Cache::new(o.token_cache_ttl),
        }),
        authorizer: authz.map(|client| Authorizer {
            client,
            timeout: o.timeout,
            allowed: Cache::new(o.authorized_ttl),
            denied: Cache::new(o.unauthorized_ttl),
        }),
    })
}
