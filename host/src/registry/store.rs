//! The [`Registry`]: plugins, storage and watch caches, and the steps every verb shares
//! (decoding what storage holds, converting between versions through the plugin or the
//! watch cache's remembered results).

use serde_json::Value;
use std::sync::Arc;

use super::meta;
use super::target::Target;
use crate::api::{ApiError, ApiResult, FieldError};
use crate::plugin::{PluginInstance, PluginRegistry, ReadSource, ResourceInfo};
use crate::storage::{Revision, Storage, Stored};
use crate::watch::{CachedObject, Cacher, WatchCaches, WatchSettings};

/// The registry: plugins and storage, shared by every request.
pub struct Registry {
    pub plugins: Arc<PluginRegistry>,
    pub storage: Arc<dyn Storage>,
    /// Watch caches, one per resource (all started with the server); reads in another
    /// version or as a Table reuse their remembered conversions and cells.
    pub watch: WatchCaches,
    /// What plugins' reads are answered from (these caches, or the upstream's).
    pub(super) reads: Arc<dyn ReadSource>,
    /// Informers on the cluster this server is aggregated into, for plugins' reads of
    /// kinds it serves (none without `--kubeconfig` or an in-cluster configuration).
    pub upstream: Option<Arc<super::Upstream>>,
    /// The kind NamespaceLifecycle reads namespaces of, from the upstream (none: the
    /// check is off).
    pub namespaces: Option<crate::api::resource::ResourceRef>,
    /// Storage version migrations running now, by resource.
    pub(super) migrations: std::sync::Mutex<
        std::collections::HashMap<String, Arc<super::migration::MigrationProgress>>,
    >,
    /// Bumped when a migration starts or ends (discovery's hashes change).
    pub(super) migration_generation: std::sync::atomic::AtomicU64,
    /// How long the upgrade gate may replay objects (`--upgrade-gate-budget`), in ms.
    upgrade_gate_budget_ms: std::sync::atomic::AtomicU64,
}

/// Per object read, the watch cache's copy of it at the same revision, if it has one.
type Held = Vec<Option<Arc<CachedObject>>>;

/// Run plugin hooks without stalling the async runtime's other tasks.
pub(super) fn hooks<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// An object as storage keeps it: JSON without `metadata.resourceVersion` (the
/// revision is the store's).
pub(super) fn encode(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    // A `Value` always serializes; an empty body would fail decoding loudly.
    serde_json::to_vec(&o).unwrap_or_default()
}

pub(super) fn set_rv(obj: &mut Value, rv: Revision) {
    meta::meta_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

/// A 422 Invalid naming `errors`, unless there are none.
pub(super) fn invalid_if(r: &ResourceInfo, name: &str, errors: Vec<FieldError>) -> ApiResult<()> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(r, name, &errors))
    }
}

impl Registry {
    pub fn new(
        plugins: Arc<PluginRegistry>,
        storage: Arc<dyn Storage>,
        watch: WatchSettings,
        upstream: Option<Arc<super::Upstream>>,
        namespaces: Option<crate::api::resource::ResourceRef>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Registry {
            plugins,
            storage,
            namespaces,
            upstream,
            upgrade_gate_budget_ms: 10_000.into(),
            migrations: Default::default(),
            migration_generation: Default::default(),
            watch: WatchCaches::new(watch),
            reads: Arc::new(super::reads::LocalReads {
                registry: me.clone(),
            }),
        })
    }

    /// Bumped each time a storage version migration starts or ends.
    pub fn migration_generation(&self) -> u64 {
        self.migration_generation
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long the upgrade gate may replay objects.
    pub fn upgrade_gate_budget(&self) -> std::time::Duration {
        use std::sync::atomic::Ordering::Relaxed;
        std::time::Duration::from_millis(self.upgrade_gate_budget_ms.load(Relaxed))
    }

    pub fn set_upgrade_gate_budget(&self, budget: std::time::Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        self.upgrade_gate_budget_ms
            .store(budget.as_millis() as u64, Relaxed);
    }

    /// The watch cache of a target's resource.
    pub fn cacher(&self, t: &Target) -> Arc<Cacher> {
        self.watch.get(&t.plugin, &self.storage)
    }

    /// A stored object in the storage version, with its resourceVersion. Bytes that
    /// are not a JSON object of this resource's kind (written by someone else) are a
    /// 500 naming where they are; one stored in another version (before a storage
    /// version migration finished) is converted.
    pub(super) fn decode_stored(&self, t: &Target, s: &Stored) -> ApiResult<Value> {
        let obj = meta::decode_stored(t.resource(), &s.value).map_err(|why| {
            ApiError::internal(format!(
                "the object stored at {} {why}",
                self.storage.location(&s.key)
            ))
        })?;
        // Quarantined, it stays as stored: deletes and metadata reads need only its
        // metadata, which is the same in every version.
        let mut obj = match t.plugin.in_another_version(&obj) && !t.plugin.is_quarantined() {
            true => hooks(|| t.plugin.in_storage_version(obj))?,
            false => obj,
        };
        set_rv(&mut obj, s.revision);
        Ok(obj)
    }

    /// The object at `name` as storage holds it now; 404 when there is none.
    pub(super) async fn read_current(&self, t: &Target, name: &str) -> ApiResult<Stored> {
        let r = t.resource();
        self.storage
            .get(&t.key(name))
            .await
            .map_err(|e| ApiError::from_storage(e, r, name))?
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    /// Convert storage-version objects to the request's version in one batch.
    pub(super) fn to_request_version(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        objs: Vec<Value>,
    ) -> ApiResult<Vec<Value>> {
        if t.version == t.resource().storage_version || objs.is_empty() {
            return Ok(objs);
        }
        Ok(hooks(|| inst.convert(&objs, &t.version))?)
    }

    /// One object in the storage version (it arrives in the request's).
    pub(super) fn to_storage_version(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        obj: Value,
    ) -> ApiResult<Value> {
        let storage = &t.resource().storage_version;
        if t.version == *storage {
            return Ok(obj);
        }
        let out = hooks(|| inst.convert(std::slice::from_ref(&obj), storage))?;
        out.into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("convert returned no object"))
    }

    /// For each object read from storage (in any version), the watch cache's copy when
    /// the cache runs on this plugin build and holds the object at the same revision.
    fn held(&self, t: &Target, objs: &[Value]) -> Option<(Arc<Cacher>, Held)> {
        let cacher = self.watch.serving(&t.plugin)?;
        let keys = t.keys();
        let held = objs
            .iter()
            .map(|o| {
                let (key, rv) = (keys.of(o)?, meta::revision_of(o)?);
                cacher.current(&key).filter(|c| c.revision == rv)
            })
            .collect();
        Some((cacher, held))
    }

    /// [`Self::to_request_version`] for reads, which have no instance yet. An object the
    /// watch cache holds at the same revision converts through the cache, which
    /// remembers conversions: repeated reads of an unchanged object run no hook (this
    /// is what keeps reads in another version cheap for big Python and JavaScript
    /// guests). The others convert in one call on one instance.
    pub(super) fn in_request_version(&self, t: &Target, objs: Vec<Value>) -> ApiResult<Vec<Value>> {
        if t.version == t.resource().storage_version || objs.is_empty() {
            return Ok(objs);
        }
        self.through_cache(
            t,
            &objs,
            |cacher, hits, version| cacher.in_version(hits, version),
            |objs| Ok(hooks(|| t.plugin.instance()?.convert(objs, &t.version))?),
        )
    }

    /// A per-object read hook for `objs` (read from storage, in the request's version):
    /// through the watch cache (`cached`, which remembers results) for the objects it
    /// holds at the same revision, through the plugin (`direct`) for the others; one
    /// call each, results in `objs`' order.
    pub(super) fn through_cache<T: Clone>(
        &self,
        t: &Target,
        objs: &[Value],
        cached: impl FnOnce(&Cacher, &[&Arc<CachedObject>], &Arc<str>) -> ApiResult<Vec<Arc<T>>>,
        direct: impl FnOnce(&[Value]) -> ApiResult<Vec<T>>,
    ) -> ApiResult<Vec<T>> {
        let Some((cacher, held)) = self.held(t, objs) else {
            return direct(objs);
        };
        let version: Arc<str> = t.version.as_str().into();
        let hits: Vec<&Arc<CachedObject>> = held.iter().flatten().collect();
        let remembered = cached(&cacher, &hits, &version)?;
        let misses: Vec<Value> = objs
            .iter()
            .zip(&held)
            .filter(|(_, h)| h.is_none())
            .map(|(o, _)| o.clone())
            .collect();
        let fresh = if misses.is_empty() {
            Vec::new()
        } else {
            direct(&misses)?
        };
        if remembered.len() != hits.len() || fresh.len() != misses.len() {
            return Err(ApiError::internal(
                "a read hook returned a different number of results than objects",
            ));
        }
        let (mut remembered, mut fresh) = (remembered.into_iter(), fresh.into_iter());
        Ok(held
            .iter()
            .filter_map(|h| match h {
                Some(_) => remembered.next().map(|r| r.as_ref().clone()),
                None => fresh.next(),
            })
            .collect())
    }
}
