//! Delegated authentication and authorization, as k8s.io/apiserver's delegating
//! options do them for an aggregated apiserver.
//!
//! Authentication is a chain; the first that identifies the request wins:
//! 1. front-proxy request headers (`X-Remote-User`, ...), trusted only on a connection
//!    whose client certificate chains to the request-header CA and, when
//!    `--requestheader-allowed-names` is set, carries one of those common names;
//! 2. a client certificate chaining to `--client-ca-file` (user = CN, groups = O);
//! 3. a bearer token, through a TokenReview against the cluster.
//!
//! Authorization asks the cluster with a SubjectAccessReview (resource attributes, or
//! the path for non-resource requests). `system:masters` needs no review; `/healthz`,
//! `/livez` and `/readyz` need neither identity nor review. Reviews are cached
//! ([`webhook::Cache`]). No identity is 401; a denial is 403, worded as kube-apiserver
//! words it.
//!
//! TLS accepts any client certificate whose handshake signature is valid
//! ([`tls_verifier`]); which CA it chains to is decided per connection, once, here.

pub mod attributes;
pub mod setup;
pub mod webhook;

use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::api::ApiError;
use crate::plugin::UserInfo;
pub use attributes::Attributes;

/// The peer's certificate chain on one TLS connection, and what it proves (computed on
/// the connection's first request).
pub struct PeerCerts {
    pub chain: Vec<CertificateDer<'static>>,
    verdict: OnceLock<CertVerdict>,
}

impl PeerCerts {
    pub fn new(chain: Vec<CertificateDer<'static>>) -> Self {
        PeerCerts {
            chain,
            verdict: OnceLock::new(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct CertVerdict {
    /// The connection is the front proxy: its request headers name the user.
    front_proxy: bool,
    /// The user the certificate names, if it chains to the client CA.
    user: Option<UserInfo>,
}

/// Request-header (front-proxy) settings.
pub struct RequestHeader {
    pub verifier: Arc<dyn ClientCertVerifier>,
    /// Empty: any common name signed by the CA.
    pub allowed_names: Vec<String>,
    pub username_headers: Vec<String>,
    pub group_headers: Vec<String>,
    /// Lowercase, as header names arrive.
    pub extra_prefixes: Vec<String>,
}

/// Everything authentication and authorization need; `None` for a part that is off.
pub struct Auth {
    pub requestheader: Option<RequestHeader>,
    pub client_ca: Option<Arc<dyn ClientCertVerifier>>,
    pub token_review: Option<webhook::TokenReviewer>,
    pub authorizer: Option<webhook::Authorizer>,
}

/// Paths anyone may read: kube-apiserver's `--authorization-always-allow-paths`.
pub fn always_allowed(path: &str) -> bool {
    ["/healthz", "/livez", "/readyz"].iter().any(|p| {
        path.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    })
}

impl Auth {
    /// Who sent the request, or `None` (then 401). An error is a failure to decide
    /// (a TokenReview that failed): also 401, logged.
    pub async fn authenticate(
        &self,
        peer: Option<&PeerCerts>,
        headers: &axum::http::HeaderMap,
    ) -> Option<UserInfo> {
        let verdict = peer.map(|p| p.verdict.get_or_init(|| self.verify_peer(&p.chain)));
        if let (Some(v), Some(rh)) = (verdict, &self.requestheader) {
            if v.front_proxy {
                if let Some(user) = rh.user_from_headers(headers) {
                    return Some(user);
                }
            }
        }
        if let Some(user) = verdict.and_then(|v| v.user.clone()) {
            return Some(user);
        }
        let token = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())?;
        let reviewer = self.token_review.as_ref()?;
        match reviewer.review(token).await {
            Ok(user) => user,
            Err(e) => {
                tracing::warn!(error = %e, "authentication: the TokenReview failed; the request is unauthenticated");
                None
            }
        }
    }

    fn verify_peer(&self, chain: &[CertificateDer<'static>]) -> CertVerdict {
        let Some((leaf, intermediates)) = chain.split_first() else {
            return CertVerdict::default();
        };
        let now = UnixTime::now();
        let chains_to = |v: &Arc<dyn ClientCertVerifier>| {
            v.verify_client_cert(leaf, intermediates, now).is_ok()
        };
        let names = subject(leaf);
        let mut verdict = CertVerdict::default();
        if let Some(rh) = &self.requestheader {
            verdict.front_proxy = chains_to(&rh.verifier)
                && (rh.allowed_names.is_empty()
                    || names
                        .as_ref()
                        .is_some_and(|(cn, _)| rh.allowed_names.iter().any(|a| a == cn)));
        }
        if let Some(ca) = &self.client_ca {
            if chains_to(ca) {
                verdict.user = names.map(|(cn, orgs)| UserInfo {
                    name: cn,
                    uid: String::new(),
                    groups: orgs,
                    extra: Vec::new(),
                });
            }
        }
        verdict
    }

    /// Whether `user` may do what `attrs` describe: `Ok(None)` allowed, `Ok(Some(e))`
    /// the 403, `Err` when the review itself failed (500).
    pub async fn authorize(
        &self,
        user: &UserInfo,
        attrs: &Attributes,
    ) -> Result<Option<ApiError>, ApiError> {
        if user.groups.iter().any(|g| g == "system:masters") {
            return Ok(None);
        }
        let Some(authorizer) = &self.authorizer else {
            return Ok(Some(attrs.forbidden(user, "no authorizer is configured")));
        };
        match authorizer.review(user, attrs).await {
            Ok(d) if d.allowed => Ok(None),
            Ok(d) => Ok(Some(attrs.forbidden(user, &d.reason))),
            Err(e) => Err(ApiError::internal(format!(
                "the SubjectAccessReview failed: {e}"
            ))),
        }
    }
}

impl RequestHeader {
    fn user_from_headers(&self, headers: &axum::http::HeaderMap) -> Option<UserInfo> {
        let value = |name: &str| {
            headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .map(str::to_string)
                .collect::<Vec<_>>()
        };
        let name = self
            .username_headers
            .iter()
            .flat_map(|h| value(h))
            .find(|v| !v.is_empty())?;
        let groups = self.group_headers.iter().flat_map(|h| value(h)).collect();
        let mut extra: Vec<(String, Vec<String>)> = Vec::new();
        for (h, v) in headers {
            let Some(key) = self
                .extra_prefixes
                .iter()
                .find_map(|p| h.as_str().strip_prefix(p.as_str()).map(str::to_string))
            else {
                continue;
            };
            let key = percent_decode(&key);
            let v = v.to_str().unwrap_or_default().to_string();
            match extra.iter_mut().find(|(k, _)| *k == key) {
                Some((_, vs)) => vs.push(v),
                None => extra.push((key, vec![v])),
            }
        }
        Some(UserInfo {
            name,
            uid: String::new(),
            groups,
            extra,
        })
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The subject's common name and organizations.
fn subject(cert: &CertificateDer<'_>) -> Option<(String, Vec<String>)> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let subject = parsed.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())?
        .to_string();
    let orgs = subject
        .iter_organization()
        .filter_map(|a| a.as_str().ok().map(str::to_string))
        .collect();
    Some((cn, orgs))
}

/// A verifier that accepts any client certificate chain whose handshake signature is
/// valid, without requiring one: which CA (if any) vouches for it is decided per
/// connection by [`Auth`], because the request-header CA and the client CA grant
/// different things.
pub fn tls_verifier(provider: Arc<rustls::crypto::CryptoProvider>) -> Arc<dyn ClientCertVerifier> {
    Arc::new(AnyClientCert(provider))
}

#[derive(Debug)]
struct AnyClientCert(Arc<rustls::crypto::CryptoProvider>);

impl ClientCertVerifier for AnyClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        // No hints: clients send whatever certificate they have.
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        Ok(rustls::server::danger::ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A chain verifier for certificates signed by the CAs in a PEM file.
pub fn ca_verifier(
    pem: &[u8],
    what: &str,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> anyhow::Result<Arc<dyn ClientCertVerifier>> {
    use anyhow::Context as _;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut &pem[..]) {
        roots
            .add(cert.with_context(|| format!("{what}: not a PEM certificate"))?)
            .with_context(|| format!("{what}: not a usable CA certificate"))?;
    }
    anyhow::ensure!(!roots.is_empty(), "{what}: no certificate in it");
    rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .with_context(|| format!("{what}: cannot verify client certificates with it"))
}

/// The default timeout of a TokenReview or SubjectAccessReview.
pub const DEFAULT_WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);
