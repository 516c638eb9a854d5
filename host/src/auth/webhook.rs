//! TokenReview and SubjectAccessReview against the cluster (kube-apiserver), with the
//! answers cached for a short TTL and every call bounded by a timeout: a slow or down
//! kube-apiserver fails the request closed, it never hangs it.

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::Attributes;
use crate::plugin::UserInfo;

/// Answers kept for `ttl`, keyed by `K`; at most `MAX` entries (expired ones are
/// dropped first, then everything, rather than growing without bound). Lookups hash the
/// key with a per-process random seed and compare it in full: a hit costs no
/// allocation, and no crafted key can collide into another user's answer.
pub struct Cache<K, V> {
    ttl: Duration,
    seed: std::hash::RandomState,
    map: RwLock<HashMap<u64, (Instant, K, V)>>,
}

const MAX: usize = 10_000;

impl<K: std::hash::Hash + Eq, V: Clone> Cache<K, V> {
    pub fn new(ttl: Duration) -> Self {
        Cache {
            ttl,
            seed: std::hash::RandomState::new(),
            map: RwLock::new(HashMap::new()),
        }
    }

    fn get<Q: std::hash::Hash + ?Sized>(&self, key: &Q, eq: impl Fn(&K) -> bool) -> Option<V> {
        use std::hash::BuildHasher as _;
        let h = self.seed.hash_one(key);
        let map = crate::sync::read(&self.map);
        map.get(&h)
            .filter(|(at, k, _)| at.elapsed() < self.ttl && eq(k))
            .map(|(_, _, v)| v.clone())
    }

    fn put<Q: std::hash::Hash + ?Sized>(&self, hashed: &Q, key: K, value: V) {
        use std::hash::BuildHasher as _;
        if self.ttl.is_zero() {
            return;
        }
        let h = self.seed.hash_one(hashed);
        let mut map = crate::sync::write(&self.map);
        if map.len() >= MAX {
            map.retain(|_, (at, _, _)| at.elapsed() < self.ttl);
            if map.len() >= MAX {
                map.clear();
            }
        }
        map.insert(h, (Instant::now(), key, value));
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
    /// Keyed by the token's SHA-256: tokens are not kept.
    pub cache: Cache<[u8; 32], Option<UserInfo>>,
}

impl TokenReviewer {
    /// The token's user, `None` when the cluster says it is not authenticated.
    pub async fn review(&self, token: &str) -> Result<Option<UserInfo>, String> {
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        if let Some(v) = self.cache.get(&key, |k| *k == key) {
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
        self.cache.put(&key, key, user.clone());
        Ok(user)
    }
}

/// A SubjectAccessReview's answer.
#[derive(Clone, Debug)]
pub struct Decision {
    pub allowed: bool,
    pub reason: String,
}

/// Who asks to do what: a review's cache key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ReviewKey {
    user: String,
    uid: String,
    groups: Vec<String>,
    extra: Vec<(String, Vec<String>)>,
    attrs: Attributes,
}

/// The parts of a key, borrowed, hashed exactly as [`ReviewKey`] hashes them.
#[derive(Hash)]
struct ReviewRef<'a> {
    user: &'a String,
    uid: &'a String,
    groups: &'a Vec<String>,
    extra: &'a Vec<(String, Vec<String>)>,
    attrs: &'a Attributes,
}

impl ReviewRef<'_> {
    fn matches(&self, k: &ReviewKey) -> bool {
        *self.user == k.user
            && *self.uid == k.uid
            && *self.groups == k.groups
            && *self.extra == k.extra
            && *self.attrs == k.attrs
    }
}

/// `POST /apis/authorization.k8s.io/v1/subjectaccessreviews`.
pub struct Authorizer {
    pub client: kube::Client,
    pub timeout: Duration,
    pub allowed: Cache<ReviewKey, Decision>,
    pub denied: Cache<ReviewKey, Decision>,
}

impl Authorizer {
    pub async fn review(&self, user: &UserInfo, attrs: &Attributes) -> Result<Decision, String> {
        let r = ReviewRef {
            user: &user.name,
            uid: &user.uid,
            groups: &user.groups,
            extra: &user.extra,
            attrs,
        };
        if let Some(d) = self
            .allowed
            .get(&r, |k| r.matches(k))
            .or_else(|| self.denied.get(&r, |k| r.matches(k)))
        {
            return Ok(d);
        }
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
        let key = ReviewKey {
            user: user.name.clone(),
            uid: user.uid.clone(),
            groups: user.groups.clone(),
            extra: user.extra.clone(),
            attrs: attrs.clone(),
        };
        match decision.allowed {
            true => self.allowed.put(&r, key, decision.clone()),
            false => self.denied.put(&r, key, decision.clone()),
        }
        Ok(decision)
    }
}
