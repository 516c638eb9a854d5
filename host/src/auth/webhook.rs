//! TokenReview and SubjectAccessReview against the cluster (kube-apiserver), with the
//! answers cached for a short TTL and every call bounded by a timeout: a slow or down
//! kube-apiserver fails the request closed, it never hangs it.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Attributes;
use crate::plugin::UserInfo;

/// Answers kept for `ttl`; at most `MAX` entries (expired ones are dropped first, then
/// everything, rather than growing without bound).
pub struct Cache<V> {
    ttl: Duration,
    map: Mutex<HashMap<String, (Instant, V)>>,
}

const MAX: usize = 10_000;

impl<V: Clone> Cache<V> {
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            map: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, key: &str) -> Option<V> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(key)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, v)| v.clone())
    }

    fn put(&self, key: String, value: V) {
        if self.ttl.is_zero() {
            return;
        }
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX {
            map.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if map.len() >= MAX {
                map.clear();
            }
        }
        map.insert(key, (Instant::now(), value));
    }
}

async fn bounded<T>(
    timeout: Duration,
    what: &str,
    f: impl std::future::Future<Output = Result<T, kube::Error>>,
) -> Result<T, String> {
    match tokio::time::timeout(timeout, f).await {
        Ok(r) => r.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: no answer within {timeout:?}")),
    }
}

/// Bearer tokens, through `POST /apis/authentication.k8s.io/v1/tokenreviews`.
pub struct TokenReviewer {
    pub client: kube::Client,
    pub timeout: Duration,
    pub cache: Cache<Option<UserInfo>>,
}

impl TokenReviewer {
    /// The token's user, `None` when the cluster says it is not authenticated.
    pub async fn review(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let key = hex::encode(Sha256::digest(token.as_bytes()));
        if let Some(v) = self.cache.get(&key) {
            return Ok(v);
        }
        let review = TokenReview {
            spec: TokenReviewSpec {
                token: Some(token.to_string()),
                audiences: None,
            },
            ..Default::default()
        };
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let answer = bounded(
            self.timeout,
            "TokenReview",
            api.create(&Default::default(), &review),
        )
        .await?;
        let status = answer.status.unwrap_or_default();
        let user = match (status.authenticated, status.user) {
            (Some(true), Some(u)) => Some(UserInfo {
                name: u.username.unwrap_or_default(),
                uid: u.uid.unwrap_or_default(),
                groups: u.groups.unwrap_or_default(),
                extra: u.extra.unwrap_or_default().into_iter().collect(),
            }),
            _ => None,
        };
        self.cache.put(key, user.clone());
        Ok(user)
    }
}

/// A SubjectAccessReview's answer.
#[derive(Clone, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`.
pub struct Authorizer {
    pub client: kube::Client,
    pub timeout: Duration,
    pub allowed: Cache<Decision>,
    pub denied: Cache<Decision>,
}

impl Authorizer {
    pub async fn review(&self, user: &UserInfo, attrs: &Attributes) -> Result<Decision, String> {
        let mut spec = SubjectAccessReviewSpec {
            user: Some(user.name.clone()),
            uid: Some(user.uid.clone()).filter(|u| !u.is_empty()),
            groups: Some(user.groups.clone()),
            extra: Some(user.extra.iter().cloned().collect())
                .filter(|e: &std::collections::BTreeMap<_, _>| !e.is_empty()),
            ..Default::default()
        };
        match attrs {
            Attributes::Resource {
                verb,
                group,
                version,
                resource,
                subresource,
                namespace,
                name,
            } => {
                let opt = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
                spec.resource_attributes = Some(ResourceAttributes {
                    verb: opt(verb),
                    group: Some(group.clone()),
                    version: opt(version),
                    resource: opt(resource),
                    subresource: opt(subresource),
                    namespace: opt(namespace),
                    name: opt(name),
                    ..Default::default()
                });
            }
            Attributes::NonResource { verb, path } => {
                spec.non_resource_attributes = Some(NonResourceAttributes {
                    verb: Some(verb.clone()),
                    path: Some(path.clone()),
                });
            }
        }
        let key = serde_json::to_string(&spec).unwrap_or_default();
        if let Some(d) = self.allowed.get(&key).or_else(|| self.denied.get(&key)) {
            return Ok(d);
        }
        let review = SubjectAccessReview {
            spec,
            ..Default::default()
        };
        let api: kube::Api<SubjectAccessReview> = kube::Api::all(self.client.clone());
        let answer = bounded(
            self.timeout,
            "SubjectAccessReview",
            api.create(&Default::default(), &review),
        )
        .await?;
        let status = answer.status.unwrap_or_default();
        let decision = Decision {
            allowed: status.allowed && !status.denied.unwrap_or(false),
            reason: status.reason.unwrap_or_default(),
        };
        match decision.allowed {
            true => self.allowed.put(key, decision.clone()),
            false => self.denied.put(key, decision.clone()),
        }
        Ok(decision)
    }
}
