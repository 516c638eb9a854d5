//! A stand-in for the parts of kube-apiserver an aggregated apiserver calls: TokenReview,
//! SubjectAccessReview and the `kube-system/extension-apiserver-authentication`
//! ConfigMap, over real TLS. Bodies are k8s-openapi types, so the wire format is
//! kube-apiserver's. (kube-apiserver itself cannot be installed here.)
//!
//! Tokens: `alice-token` is alice (group `viewers`); `slow-token` answers after 5 s;
//! anything else is not authenticated. Policy: group `devs` may do anything, group
//! `viewers` may get/list/watch resources, any authenticated user may get non-resource
//! paths but `/store/snapshot`; everything else is denied with the reason "no RBAC
//! policy matched".

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewStatus, UserInfo};
use k8s_openapi::api::authorization::v1::{SubjectAccessReview, SubjectAccessReviewStatus};
use k8s_openapi::api::core::v1::ConfigMap;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Default)]
pub struct Calls {
    pub token_reviews: AtomicUsize,
    pub access_reviews: AtomicUsize,
    /// The last SubjectAccessReview received.
    pub last_review: Mutex<Option<SubjectAccessReview>>,
}

pub struct StandIn {
    pub url: String,
    pub calls: Arc<Calls>,
    /// A kubeconfig for it (its CA, a service-account-like token).
    pub kubeconfig: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn token_review(
    State(calls): State<Arc<Calls>>,
    Json(mut review): Json<TokenReview>,
) -> Json<TokenReview> {
    calls.token_reviews.fetch_add(1, Ordering::SeqCst);
    let token = review.spec.token.clone().unwrap_or_default();
    if token == "slow-token" {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    review.status = Some(match token.as_str() {
        "alice-token" => TokenReviewStatus {
            authenticated: Some(true),
            user: Some(UserInfo {
                username: Some("alice".into()),
                uid: Some("alice-uid".into()),
                groups: Some(vec!["viewers".into(), "system:authenticated".into()]),
                extra: None,
            }),
            ..Default::default()
        },
        _ => TokenReviewStatus {
            authenticated: Some(false),
            error: Some("token not recognized".into()),
            ..Default::default()
        },
    });
    Json(review)
}

async fn access_review(
    State(calls): State<Arc<Calls>>,
    Json(mut review): Json<SubjectAccessReview>,
) -> Json<SubjectAccessReview> {
    calls.access_reviews.fetch_add(1, Ordering::SeqCst);
    let spec = &review.spec;
    let groups = spec.groups.clone().unwrap_or_default();
    let allowed = groups.iter().any(|g| g == "devs")
        || match (&spec.resource_attributes, &spec.non_resource_attributes) {
            (Some(r), _) => {
                groups.iter().any(|g| g == "viewers")
                    && matches!(r.verb.as_deref(), Some("get" | "list" | "watch"))
            }
            // Snapshots of the store need a rule of their own, as in a real cluster.
            (None, Some(n)) => {
                n.verb.as_deref() == Some("get") && n.path.as_deref() != Some("/store/snapshot")
            }
            _ => false,
        };
    review.status = Some(SubjectAccessReviewStatus {
        allowed,
        reason: Some(
            if allowed {
                "allowed by the stand-in's policy"
            } else {
                "no RBAC policy matched"
            }
            .into(),
        ),
        ..Default::default()
    });
    *calls.last_review.lock().unwrap() = Some(review.clone());
    Json(review)
}

/// Start it; `configmap` is what `extension-apiserver-authentication` holds.
pub async fn start(dir: &Path, configmap: BTreeMap<String, String>) -> StandIn {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_pem = ca.self_signed(&ca_key).unwrap().pem();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap(),
        )
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let calls = Arc::new(Calls::default());
    let cm = ConfigMap {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("extension-apiserver-authentication".into()),
            namespace: Some("kube-system".into()),
            ..Default::default()
        },
        data: Some(configmap),
        ..Default::default()
    };
    let app = Router::new()
        .route(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            post(token_review),
        )
        .route(
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            post(access_review),
        )
        .route(
            "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication",
            get(move || {
                let cm = cm.clone();
                async move { Json(cm) }
            }),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
            });
        }
    });
    let kubeconfig = dir.join("standin.kubeconfig");
    write_kubeconfig(
        &kubeconfig,
        &url,
        &ca_pem,
        "user:\n    token: wasm-apiserver-sa",
    );
    StandIn {
        url,
        calls,
        kubeconfig,
        task,
    }
}

/// A kubeconfig for `server` trusting `ca_pem`; `user` is the YAML under `users[0]`
/// (indented by four spaces, e.g. `user:\n    token: x`).
pub fn write_kubeconfig(path: &Path, server: &str, ca_pem: &str, user: &str) {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    std::fs::write(
        path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: default\ncurrent-context: c\nusers:\n- name: u\n  {user}\n"
        ),
    )
    .unwrap();
}
