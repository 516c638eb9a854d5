//! What a plugin's reads are answered from: the watch caches of the kinds this server
//! serves, else the informers on the upstream cluster ([`super::Upstream`]). Each read waits (once per kind and hook call is not tracked: each read)
//! until the kind's cache has caught up with storage's current revision, so a hook
//! never sees a state older than its own request; then it reads the cache, converted
//! to the version asked for through the watch cache's remembered conversions.
//!
//! Hooks run on a blocking section of a runtime worker (see `store::hooks`): a read
//! blocks that thread on the cache, bounded by the plugin's call deadline.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use super::continue_token;
use super::options::ListOptions;
use super::store::Registry;
use crate::api::resource::ResourceRef;
use crate::api::{selectors, ApiError};
use crate::plugin::{ObjectList, Plugin, ReadError, ReadListOptions, ReadSource};
use crate::storage::ResourceKeys;
use crate::watch::{Cacher, Encoding};

/// A kind this server serves: its plugin, its watch cache and its keys.
type Local = (Arc<Plugin>, Arc<Cacher>, ResourceKeys);

/// The registry as a [`ReadSource`]; weak, so that it does not keep itself alive.
pub(super) struct LocalReads {
    pub(super) registry: Weak<Registry>,
}

fn unavailable(why: impl std::fmt::Display) -> ReadError {
    ReadError::Unavailable(why.to_string())
}

/// Run `fut` to completion from a hook (inside the runtime's blocking section), at most
/// `deadline`.
fn block<T>(
    deadline: std::time::Duration,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, ReadError> {
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| unavailable("reads need the server's runtime"))?;
    tokio::task::block_in_place(|| handle.block_on(tokio::time::timeout(deadline, fut)))
        .map_err(|_| unavailable("the read did not finish within the hook's deadline"))
}

impl LocalReads {
    fn registry(&self) -> Result<Arc<Registry>, ReadError> {
        self.registry
            .upgrade()
            .ok_or_else(|| unavailable("the server is shutting down"))
    }

    /// The plugin serving `r`, its cache (caught up with storage) and its keys; `None`
    /// when no plugin of this server serves it (the upstream cluster may).
    fn source(&self, r: &ResourceRef, namespace: Option<&str>) -> Result<Option<Local>, ReadError> {
        let registry = self.registry()?;
        let catalog = registry.plugins.snapshot();
        let Some(plugin) = catalog.find(&r.group, &r.resource).cloned() else {
            return Ok(None);
        };
        let info = &plugin.resource;
        if info.served_version(&r.version).is_none() {
            return Err(ReadError::Invalid(format!(
                "{} does not serve version {:?}",
                info.qualified_plural(),
                r.version
            )));
        }
        if info.is_computed() {
            return Err(ReadError::Invalid(format!(
                "{} is computed, not stored: it cannot be read",
                info.qualified_plural()
            )));
        }
        if !info.namespaced() && namespace.is_some() {
            return Err(ReadError::Invalid(format!(
                "{} is cluster-scoped: read it without a namespace",
                info.qualified_plural()
            )));
        }
        let cacher = registry.watch.get(&plugin, &registry.storage);
        let deadline = plugin.limits().call_deadline;
        block(deadline, cacher.wait_fresh())?
            .map_err(|e| unavailable(ApiError::from(e).message))?;
        let keys = ResourceKeys::new(&info.group, &info.plural, info.namespaced());
        Ok(Some((plugin, cacher, keys)))
    }

    /// The upstream cluster's informers, for a kind no plugin here serves.
    fn upstream(&self, r: &ResourceRef) -> Result<Arc<super::Upstream>, ReadError> {
        self.registry()?.upstream.clone().ok_or_else(|| {
            unavailable(format!(
                "no plugin of this server serves {r}, and no upstream cluster is configured (--kubeconfig)"
            ))
        })
    }
}

/// The objects as JSON text in `version`.
fn encode(
    cacher: &Cacher,
    objs: &[&Arc<crate::watch::CachedObject>],
    version: &str,
) -> Result<Vec<String>, ReadError> {
    let bytes = cacher
        .encode(objs, &Encoding::Json(version.into()))
        .map_err(|e| unavailable(ApiError::from(e).message))?;
    Ok(bytes
        .iter()
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .collect())
}

impl ReadSource for LocalReads {
    fn get(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<String, ReadError> {
        let Some((plugin, cacher, keys)) = self.source(r, namespace)? else {
            return self.upstream(r)?.get(r, namespace, name);
        };
        let obj = cacher
            .current(&keys.object(namespace, name))
            .ok_or_else(|| {
                ReadError::NotFound(format!(
                    "{} {name:?} not found",
                    plugin.resource.qualified_plural()
                ))
            })?;
        Ok(encode(&cacher, &[&obj], &r.version)?.remove(0))
    }

    fn list(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        opts: &ReadListOptions,
    ) -> Result<ObjectList, ReadError> {
        let Some((plugin, cacher, keys)) = self.source(r, namespace)? else {
            return self.upstream(r)?.list(r, namespace, opts);
        };
        let query: HashMap<String, String> = [
            ("labelSelector", &opts.label_selector),
            ("fieldSelector", &opts.field_selector),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect();
        let parsed = ListOptions::from_query(&query, &plugin.resource)
            .map_err(|e| ReadError::Invalid(e.message))?;
        let prefix = keys.prefix(namespace);
        let start = match opts.continue_.as_str() {
            "" => None,
            token => {
                let (_, rest) =
                    continue_token::decode(token).map_err(|e| ReadError::Invalid(e.message))?;
                Some(format!("{prefix}{rest}"))
            }
        };
        // Without selectors no object is looked into (each would be a cache miss).
        let all = parsed.labels.is_empty() && parsed.fields.is_empty();
        let (items, next, revision) =
            cacher.page(&prefix, start.as_deref(), opts.limit as usize, |o| {
                all || selectors::matches(&parsed.labels, &parsed.fields, &o.value)
            });
        let refs: Vec<&Arc<crate::watch::CachedObject>> = items.iter().collect();
        Ok(ObjectList {
            items: encode(&cacher, &refs, &r.version)?,
            continue_: next
                .map(|k| continue_token::encode(revision, k.strip_prefix(&prefix).unwrap_or(&k)))
                .unwrap_or_default(),
            resource_version: revision.to_string(),
        })
    }
}
