//! Watch: one cache per resource, as k8s.io/apiserver's cacher does it, written
//! against the storage trait so that every backend gets it.
//!
//! A [`Cacher`] keeps the resource's current objects (in the storage version) and a
//! bounded window of recent events, fed by one storage watch. Watchers register with
//! the cacher; each event is fanned out to them as an `Arc` — never copied. An object is
//! converted to a version and serialized once per (version, encoding), the first time a
//! watcher needs it, and every other watcher of that version reuses the bytes. The
//! dispatcher encodes each event for every encoding that has watchers before fanning
//! it out, so the plugin sees one `convert` call per event per version watched.
//! Conversions and Table cells stay with the cached object: reads (GET and LIST, Table
//! or not) of an object the cache holds at the revision storage returned reuse them, so
//! a plugin runs once per object revision and version, not once per read. Hooks are
//! pure (the WIT contract), and a plugin swap (hot reload) forgets them all.
//!
//! A watcher has a bounded queue; one that falls behind is closed (its client relists),
//! never buffered without bound. A resume from a revision older than the window gets
//! an ERROR event carrying 410 Expired, as kube-apiserver sends it.

mod stream;

pub use stream::{WatchRequest, WatchStart};

use bytes::Bytes;
use futures::StreamExt as _;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::api::table::{self, IncludeObject};
use crate::api::{ApiError, ApiResult};
use crate::plugin::{Cell, Plugin};
use crate::storage::{ListRequest, Revision, Storage, StorageError, WatchItem};

/// Limits and timings of the watch machinery; each is a server flag.
#[derive(Clone, Debug)]
pub struct WatchSettings {
    /// Events kept per resource for watchers that resume from a resourceVersion.
    /// Default 1,000 (kube-apiserver's default window is 100 events, grown on demand).
    pub window: usize,
    /// Events queued for one watcher before it is closed as too slow. Default 1,000.
    pub watcher_queue: usize,
    /// How often watchers that allow bookmarks get one. Default 60 s, as kube-apiserver.
    pub bookmark_interval: Duration,
    /// How long a watch or list waits for the cache to reach a requested (or the
    /// storage's current) resourceVersion. Default 3 s, as kube-apiserver.
    pub fresh_wait: Duration,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            window: 1000,
            watcher_queue: 1000,
            bookmark_interval: Duration::from_secs(60),
            fresh_wait: Duration::from_secs(3),
        }
    }
}

/// What a watcher's events are serialized as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The object as JSON in this version.
    Json(Arc<str>),
    /// A one-row `meta.k8s.io/v1` Table in this version.
    Table(Arc<str>, IncludeObject),
}

impl Encoding {
    pub fn version(&self) -> &Arc<str> {
        match self {
            Encoding::Json(v) | Encoding::Table(v, _) => v,
        }
    }
}

/// One object as the cache holds it: the storage version with its resourceVersion set,
/// and the conversions and serializations made of it so far.
pub struct CachedObject {
    pub key: String,
    pub revision: Revision,
    pub value: Value,
    forms: Mutex<Forms>,
}

#[derive(Default)]
struct Forms {
    converted: Vec<(Arc<str>, Arc<Value>)>,
    /// Table cells per version, from the plugin's `print`.
    printed: Vec<(Arc<str>, Arc<Vec<Cell>>)>,
    encoded: Vec<(Encoding, Bytes)>,
}

impl CachedObject {
    fn new(key: String, revision: Revision, mut value: Value) -> Arc<Self> {
        if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
        Arc::new(CachedObject {
            key,
            revision,
            value,
            forms: Mutex::default(),
        })
    }

    fn forms(&self) -> std::sync::MutexGuard<'_, Forms> {
        self.forms.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn encoded(&self, enc: &Encoding) -> Option<Bytes> {
        self.forms()
            .encoded
            .iter()
            .find(|(e, _)| e == enc)
            .map(|(_, b)| b.clone())
    }

    /// What `form` remembers for `version`, if anything.
    fn remembered<T>(
        &self,
        form: fn(&mut Forms) -> &mut Vec<(Arc<str>, Arc<T>)>,
        version: &str,
    ) -> Option<Arc<T>> {
        form(&mut self.forms())
            .iter()
            .find(|(v, _)| &**v == version)
            .map(|(_, x)| x.clone())
    }
}

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of the resource, shared by every watcher.
pub struct CachedEvent {
    pub revision: Revision,
    pub kind: EventType,
    /// The new state; for a delete, the last state stamped with the delete's revision.
    pub object: Arc<CachedObject>,
    /// The state before a modification (as it was stored).
    pub prev: Option<Arc<CachedObject>>,
}

/// What the dispatcher hands a watcher.
pub(crate) enum Item {
    Event(Arc<CachedEvent>),
    Bookmark(Revision),
}

struct Slot {
    tx: mpsc::Sender<Item>,
    encoding: Encoding,
    bookmarks: bool,
}

#[derive(Default)]
struct State {
    ready: bool,
    /// Objects by key.
    store: BTreeMap<String, Arc<CachedObject>>,
    /// Recent events, oldest first.
    window: VecDeque<Arc<CachedEvent>>,
    /// Every event after this revision is in `window`.
    window_start: Revision,
    /// The revision the cache has caught up with.
    revision: Revision,
    watchers: HashMap<u64, Slot>,
    /// How many watchers use each encoding: what the dispatcher pre-encodes.
    encodings: HashMap<Encoding, usize>,
    next_id: u64,
}

/// Counters, for `/metrics` and the benchmark.
#[derive(Default)]
pub struct CacherStats {
    /// `convert` hook calls made for watchers (one call converts a batch).
    pub conversions: AtomicU64,
    /// `print` hook calls made for Table watchers.
    pub prints: AtomicU64,
    /// Events the storage watch delivered.
    pub events: AtomicU64,
    /// Watchers closed because they fell behind.
    pub closed_slow: AtomicU64,
}

/// The watch cache of one resource.
pub struct Cacher {
    /// Swapped in place when the plugin is reloaded: watchers keep streaming.
    plugin: std::sync::RwLock<Arc<Plugin>>,
    storage: Arc<dyn Storage>,
    /// `/<group>/<plural>/`
    prefix: String,
    settings: WatchSettings,
    state: Mutex<State>,
    /// The cache's revision, for waiting until it is fresh (0 until the first list).
    revision: tokio::sync::watch::Sender<Revision>,
    pub stats: CacherStats,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Cacher {
    /// Create the cache and start feeding it from storage.
    pub fn start(
        plugin: Arc<Plugin>,
        storage: Arc<dyn Storage>,
        settings: WatchSettings,
    ) -> Arc<Self> {
        let r = &plugin.resource;
        let prefix = format!("/{}/{}/", r.group, r.plural);
        let cacher = Arc::new(Cacher {
            plugin: std::sync::RwLock::new(plugin),
            storage,
            prefix,
            settings,
            state: Mutex::default(),
            revision: tokio::sync::watch::channel(0).0,
            stats: CacherStats::default(),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(cacher.clone().run());
        *cacher.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(task);
        cacher
    }

    /// Stop feeding the cache and close every watcher (their clients relist).
    pub fn stop(&self) {
        if let Some(t) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            t.abort();
        }
        let mut st = self.lock();
        st.watchers.clear();
        st.encodings.clear();
    }

    /// The plugin serving this resource now.
    pub fn plugin(&self) -> Arc<Plugin> {
        self.plugin
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Serve with a reloaded plugin of the same resource: later conversions and prints
    /// are the new plugin's, so what the old one produced is dropped.
    fn set_plugin(&self, plugin: Arc<Plugin>) {
        *self.plugin.write().unwrap_or_else(|p| p.into_inner()) = plugin;
        let st = self.lock();
        for o in st.store.values().chain(st.window.iter().map(|e| &e.object)) {
            *o.forms() = Forms::default();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Watchers currently registered.
    pub fn watcher_count(&self) -> usize {
        self.lock().watchers.len()
    }

    /// The revision the cache has caught up with.
    pub fn revision(&self) -> Revision {
        *self.revision.borrow()
    }

    /// The dispatcher: list, watch from the list's revision, apply and fan out events;
    /// resume after a storage error, relist when the revision was compacted.
    async fn run(self: Arc<Self>) {
        let mut from: Option<Revision> = None;
        let mut ticker = tokio::time::interval(self.settings.bookmark_interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let start = match from {
                Some(rev) => rev,
                None => match self.relist().await {
                    Ok(rev) => rev,
                    Err(e) => {
                        tracing::warn!(prefix = %self.prefix, error = %e, "watch cache: list failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                },
            };
            from = Some(start);
            let mut events = match self.storage.watch(&self.prefix, start).await {
                Ok(s) => s,
                Err(StorageError::Expired { .. }) => {
                    from = None;
                    continue;
                }
                Err(e) => {
                    tracing::warn!(prefix = %self.prefix, error = %e, "watch cache: storage watch failed; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                tokio::select! {
                    item = events.next() => match item {
                        Some(Ok(WatchItem::Event(e))) => self.apply(e),
                        Some(Ok(WatchItem::Progress(rev))) => self.progress(rev),
                        Some(Err(StorageError::Expired { .. })) => { from = None; break; }
                        Some(Err(e)) => {
                            tracing::warn!(prefix = %self.prefix, error = %e, "watch cache: storage watch ended; resuming");
                            break;
                        }
                        None => break,
                    },
                    _ = ticker.tick() => self.bookmarks(),
                }
            }
            if from.is_some() {
                from = Some(self.lock().revision);
            }
        }
    }

    /// Load every object and start over: watchers registered before cannot be
    /// continued without a gap, so they are closed.
    async fn relist(&self) -> Result<Revision, StorageError> {
        let page = self
            .storage
            .list(ListRequest {
                prefix: self.prefix.clone(),
                ..Default::default()
            })
            .await?;
        let mut store = BTreeMap::new();
        for s in page.items {
            if let Some(v) = self.decode(&s.key, &s.value) {
                store.insert(s.key.clone(), CachedObject::new(s.key, s.revision, v));
            }
        }
        let mut st = self.lock();
        st.store = store;
        st.window.clear();
        st.window_start = page.revision;
        st.revision = page.revision;
        st.watchers.clear();
        st.encodings.clear();
        st.ready = true;
        drop(st);
        self.revision.send_replace(page.revision);
        Ok(page.revision)
    }

    /// The stored object, or `None` (logged) when the bytes are not an object of this
    /// resource: reads of it from storage fail with a 500; the cache leaves it out.
    fn decode(&self, key: &str, bytes: &[u8]) -> Option<Value> {
        match crate::registry::meta::decode_stored(&self.plugin().resource, bytes) {
            Ok(v) => Some(v),
            Err(why) => {
                let at = self.storage.location(key);
                tracing::error!("watch cache: the object stored at {at} {why}; left out");
                None
            }
        }
    }

    fn progress(&self, rev: Revision) {
        let mut st = self.lock();
        if rev > st.revision {
            st.revision = rev;
            drop(st);
            self.revision.send_replace(rev);
        }
    }

    fn apply(&self, e: crate::storage::Event) {
        self.stats.events.fetch_add(1, Ordering::Relaxed);
        let rev = e.revision;
        let known = self.lock().store.get(&e.key).cloned();
        let prev = e.prev.as_ref().and_then(|(prev_rev, bytes)| match &known {
            Some(k) if k.revision == *prev_rev => Some(k.clone()),
            _ => self
                .decode(&e.key, bytes)
                .map(|v| CachedObject::new(e.key.clone(), *prev_rev, v)),
        });
        let event = match (&e.value, prev) {
            (Some(bytes), prev) => {
                let Some(v) = self.decode(&e.key, bytes) else {
                    // Not readable any more: not served stale from the cache either.
                    self.lock().store.remove(&e.key);
                    return self.progress(rev);
                };
                CachedEvent {
                    revision: rev,
                    kind: if prev.is_some() {
                        EventType::Modified
                    } else {
                        EventType::Added
                    },
                    object: CachedObject::new(e.key.clone(), rev, v),
                    prev,
                }
            }
            (None, Some(prev)) => CachedEvent {
                revision: rev,
                kind: EventType::Deleted,
                object: CachedObject::new(e.key.clone(), rev, prev.value.clone()),
                prev: Some(prev),
            },
            (None, None) => return self.progress(rev),
        };
        let event = Arc::new(event);
        // Encode once for every encoding someone watches, before fanning out.
        let wanted: Vec<Encoding> = self.lock().encodings.keys().cloned().collect();
        for enc in &wanted {
            if let Err(err) = self.encode(&[&event.object], enc) {
                tracing::warn!(key = %e.key, error = %err.message, "watch cache: encoding an event failed");
            }
        }

        let mut st = self.lock();
        match event.kind {
            EventType::Deleted => {
                st.store.remove(&e.key);
            }
            _ => {
                st.store.insert(e.key.clone(), event.object.clone());
            }
        }
        st.window.push_back(event.clone());
        while st.window.len() > self.settings.window {
            let old = st.window.pop_front().expect("not empty");
            st.window_start = old.revision;
        }
        st.revision = st.revision.max(rev);
        let mut slow = Vec::new();
        for (id, slot) in &st.watchers {
            match slot.tx.try_send(Item::Event(event.clone())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => slow.push(*id),
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        for id in slow {
            tracing::info!(prefix = %self.prefix, "watch cache: closing a watcher that fell behind");
            self.stats.closed_slow.fetch_add(1, Ordering::Relaxed);
            Self::remove(&mut st, id);
        }
        drop(st);
        self.revision.send_replace(rev);
    }

    fn bookmarks(&self) {
        let st = self.lock();
        if !st.ready {
            return;
        }
        for slot in st.watchers.values().filter(|s| s.bookmarks) {
            // A full queue skips this bookmark; the next event will tell the watcher.
            let _ = slot.tx.try_send(Item::Bookmark(st.revision));
        }
    }

    fn remove(st: &mut State, id: u64) {
        if let Some(slot) = st.watchers.remove(&id) {
            if let Some(n) = st.encodings.get_mut(&slot.encoding) {
                *n -= 1;
                if *n == 0 {
                    st.encodings.remove(&slot.encoding);
                }
            }
        }
    }

    pub(crate) fn unregister(&self, id: u64) {
        Self::remove(&mut self.lock(), id);
    }

    /// Wait until the cache has reached `rev`, at most `fresh_wait`.
    async fn wait_for(&self, rev: Revision) -> ApiResult<()> {
        let mut rx = self.revision.subscribe();
        let reached = tokio::time::timeout(
            self.settings.fresh_wait,
            rx.wait_for(|r| *r >= rev && *r > 0),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        match reached {
            true => Ok(()),
            _ => {
                let current = self.revision();
                Err(ApiError::from_storage(
                    StorageError::TooLarge {
                        requested: rev,
                        current,
                    },
                    &self.plugin().resource,
                    "",
                ))
            }
        }
    }

    /// Wait until the cache has caught up with storage's current revision: what a
    /// consistent read from the cache needs.
    async fn wait_fresh(&self) -> ApiResult<Revision> {
        let current = self
            .storage
            .current_revision()
            .await
            .map_err(|e| ApiError::from_storage(e, &self.plugin().resource, ""))?;
        self.wait_for(current).await?;
        Ok(current)
    }

    /// Wait until the first list is loaded.
    async fn wait_ready(&self) -> ApiResult<()> {
        self.wait_for(1).await.map_err(|_| {
            ApiError::unavailable(format!(
                "the watch cache for {} is not ready yet",
                self.plugin().resource.qualified_plural()
            ))
        })
    }

    /// The object at `key` as the cache holds it, once the cache has reached `min`.
    pub async fn get(&self, key: &str, min: Revision) -> ApiResult<Option<Arc<CachedObject>>> {
        self.wait_ready().await?;
        if min > 0 {
            self.wait_for(min).await?;
        }
        Ok(self.lock().store.get(key).cloned())
    }

    /// The objects under `prefix` as the cache holds them (a list at
    /// `resourceVersion=0`), and the cache's revision.
    pub async fn list(&self, prefix: &str) -> ApiResult<(Vec<Arc<CachedObject>>, Revision)> {
        self.wait_ready().await?;
        let st = self.lock();
        let items = st
            .store
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .collect();
        Ok((items, st.revision))
    }

    /// Serialize objects in an encoding, converting (one batched `convert`) and
    /// printing (one batched `print`) what is not cached yet.
    pub fn encode(&self, objs: &[&Arc<CachedObject>], enc: &Encoding) -> ApiResult<Vec<Bytes>> {
        let missing: Vec<&Arc<CachedObject>> = objs
            .iter()
            .copied()
            .filter(|o| o.encoded(enc).is_none())
            .collect();
        if !missing.is_empty() {
            let plugin = self.plugin();
            let storage = **enc.version() == *plugin.resource.storage_version;
            let bytes: Vec<Bytes> = match enc {
                Encoding::Json(_) if storage => missing
                    .iter()
                    .map(|o| Bytes::from(serde_json::to_vec(&o.value).expect("JSON serializes")))
                    .collect(),
                Encoding::Json(version) => self
                    .in_version(&missing, version)?
                    .iter()
                    .map(|v| Bytes::from(serde_json::to_vec(&**v).expect("JSON serializes")))
                    .collect(),
                Encoding::Table(version, include) => {
                    let versions = self.in_version(&missing, version)?;
                    let rows = self.rows(&missing, version)?;
                    let info = plugin
                        .resource
                        .version(version)
                        .expect("watch requests name a served version");
                    versions
                        .iter()
                        .zip(rows)
                        .map(|(obj, cells)| {
                            let row = table::row(info, obj, &cells, *include);
                            let meta =
                                json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                            let t = table::table(info, vec![row], meta);
                            Bytes::from(serde_json::to_vec(&t).expect("JSON serializes"))
                        })
                        .collect()
                }
            };
            for (o, b) in missing.iter().zip(bytes) {
                o.forms().encoded.push((enc.clone(), b));
            }
        }
        Ok(objs
            .iter()
            .map(|o| o.encoded(enc).expect("encoded above"))
            .collect())
    }

    /// Table cells for the objects in `version`, printing those not printed yet in one
    /// call; remembered with the object, as conversions are.
    pub fn rows(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
    ) -> ApiResult<Vec<Arc<Vec<Cell>>>> {
        self.remember(
            objs,
            version,
            |f| &mut f.printed,
            |plugin, missing| {
                let plain: Vec<Value> = self
                    .in_version(missing, version)?
                    .iter()
                    .map(|v| (**v).clone())
                    .collect();
                self.stats.prints.fetch_add(1, Ordering::Relaxed);
                Ok(tokio::task::block_in_place(|| {
                    plugin.instance().and_then(|mut i| i.print(&plain))
                })?)
            },
        )
    }

    /// A per-object result in `version` for each object: the one remembered in `form`,
    /// or computed for all missing ones in one `compute` call and remembered, unless a
    /// reload swapped the plugin meanwhile (a swap forgets what the old build produced).
    fn remember<T>(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
        form: fn(&mut Forms) -> &mut Vec<(Arc<str>, Arc<T>)>,
        compute: impl FnOnce(&Arc<Plugin>, &[&Arc<CachedObject>]) -> ApiResult<Vec<T>>,
    ) -> ApiResult<Vec<Arc<T>>> {
        let mut out: Vec<Option<Arc<T>>> =
            objs.iter().map(|o| o.remembered(form, version)).collect();
        let todo: Vec<usize> = (0..objs.len()).filter(|&i| out[i].is_none()).collect();
        if !todo.is_empty() {
            let plugin = self.plugin();
            let missing: Vec<&Arc<CachedObject>> = todo.iter().map(|&i| objs[i]).collect();
            let computed = compute(&plugin, &missing)?;
            let current = Arc::ptr_eq(&self.plugin(), &plugin);
            for (&i, x) in todo.iter().zip(computed) {
                let x = Arc::new(x);
                if current {
                    form(&mut objs[i].forms()).push((version.clone(), x.clone()));
                }
                out[i] = Some(x);
            }
        }
        Ok(out
            .into_iter()
            .map(|x| x.expect("every object filled"))
            .collect())
    }

    /// The object the cache holds at `key` now, without waiting for the cache to be
    /// ready or current (`None` then).
    pub fn current(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.lock().store.get(key).cloned()
    }

    /// The objects in `version`, converting those not converted yet in one call. Each
    /// conversion is remembered with the object: hooks are pure and an object at a
    /// revision never changes, so a later watcher or read gets it without the plugin.
    pub fn in_version(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
    ) -> ApiResult<Vec<Arc<Value>>> {
        let plugin = self.plugin();
        if **version == plugin.resource.storage_version {
            return Ok(objs.iter().map(|o| Arc::new(o.value.clone())).collect());
        }
        self.remember(
            objs,
            version,
            |f| &mut f.converted,
            |plugin, missing| {
                self.stats.conversions.fetch_add(1, Ordering::Relaxed);
                let input: Vec<Value> = missing.iter().map(|o| o.value.clone()).collect();
                Ok(tokio::task::block_in_place(|| {
                    plugin
                        .instance()
                        .and_then(|mut i| i.convert(&input, version))
                })?)
            },
        )
    }
}

/// Every resource's cache, created on first use.
#[derive(Default)]
pub struct WatchCaches {
    settings: WatchSettings,
    caches: Mutex<HashMap<(String, String), Arc<Cacher>>>,
}

impl WatchCaches {
    pub fn new(settings: WatchSettings) -> Self {
        WatchCaches {
            settings,
            caches: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &WatchSettings {
        &self.settings
    }

    /// The cache for a plugin's resource; a plugin that was replaced (reloaded) gets a
    /// new cache, and the old one's watchers are closed.
    pub fn get(&self, plugin: &Arc<Plugin>, storage: &Arc<dyn Storage>) -> Arc<Cacher> {
        let r = &plugin.resource;
        let key = (r.group.clone(), r.plural.clone());
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = caches.get(&key) {
            let current = c.plugin();
            if Arc::ptr_eq(&current, plugin) {
                return c.clone();
            }
            // A reload of the same resource (the catalog refuses scope or storage
            // version changes): keep the cache and its watchers.
            if current.resource.scope == r.scope
                && current.resource.storage_version == r.storage_version
            {
                c.set_plugin(plugin.clone());
                return c.clone();
            }
            c.stop();
        }
        let c = Cacher::start(plugin.clone(), storage.clone(), self.settings.clone());
        caches.insert(key, c.clone());
        c
    }

    /// The cache of a plugin's resource if it runs on exactly this plugin build: reads
    /// use it to reuse remembered conversions, and must neither start a cache nor swap
    /// one back to a build a reload replaced while they were in flight.
    pub fn serving(&self, plugin: &Arc<Plugin>) -> Option<Arc<Cacher>> {
        let r = &plugin.resource;
        let caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches
            .get(&(r.group.clone(), r.plural.clone()))
            .filter(|c| Arc::ptr_eq(&c.plugin(), plugin))
            .cloned()
    }

    /// Stop the caches of resources `catalog` no longer serves (their watchers end).
    pub fn retain(&self, catalog: &crate::plugin::PluginCatalog) {
        let mut caches = self.caches.lock().unwrap_or_else(|p| p.into_inner());
        caches.retain(|(group, plural), c| {
            let keep = catalog.find(group, plural).is_some();
            if !keep {
                c.stop();
            }
            keep
        });
    }

    /// Every cache, for `/metrics`.
    pub fn all(&self) -> Vec<Arc<Cacher>> {
        self.caches
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }
}
