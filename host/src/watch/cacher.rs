//! The [`Cacher`], as k8s.io/apiserver's `cacher.go`: one per resource, started and
//! stopped with the plugin that serves it. Its dispatcher lists the resource, follows
//! the storage watch from the list's revision, applies each event to the watch cache
//! (encoding it for every encoding someone watches) and fans it out to the watchers,
//! closing those that fall behind.

use futures::StreamExt as _;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

use super::cached_object::Forms;
use super::watch_cache::{Item, State};
use super::{CachedEvent, CachedObject, Encoding, EventType, WatchSettings};
use crate::plugin::Plugin;
use crate::storage::{ListRequest, Revision, Storage, StorageError, WatchItem};

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
    pub(super) storage: Arc<dyn Storage>,
    /// `/<group>/<plural>/`
    prefix: String,
    pub(super) settings: WatchSettings,
    state: Mutex<State>,
    /// The cache's revision, for waiting until it is fresh (0 until the first list).
    pub(super) revision: tokio::sync::watch::Sender<Revision>,
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
        let prefix = crate::storage::ResourceKeys::new(&r.group, &r.plural, r.namespaced())
            .root()
            .to_string();
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
        *crate::sync::lock(&cacher.task) = Some(task);
        cacher
    }

    /// Stop feeding the cache and close every watcher (their clients relist).
    pub fn stop(&self) {
        if let Some(t) = crate::sync::lock(&self.task).take() {
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
    pub(super) fn set_plugin(&self, plugin: Arc<Plugin>) {
        *crate::sync::write(&self.plugin) = plugin;
        let st = self.lock();
        for o in st.store.values().chain(st.window.iter().map(|e| &e.object)) {
            *o.forms() = Forms::default();
        }
    }

    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        crate::sync::lock(&self.state)
    }

    /// Watchers currently registered.
    pub fn watcher_count(&self) -> usize {
        self.lock().watchers.len()
    }

    /// Follow the revision the cache has caught up with (it moves with every event).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Revision> {
        self.revision.subscribe()
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
        let plugin = self.plugin();
        match crate::api::decode_stored(&plugin.resource, bytes) {
            // Stored before a storage version migration finished: converted once here.
            // A quarantined build converts nothing: kept as stored (its metadata, all
            // that deletes and metadata reads need, is the same in every version).
            Ok(v) if !plugin.in_another_version(&v) || plugin.is_quarantined() => Some(v),
            Ok(v) => match tokio::task::block_in_place(|| plugin.in_storage_version(v)) {
                Ok(v) => Some(v),
                Err(e) => {
                    let at = self.storage.location(key);
                    tracing::error!("watch cache: the object stored at {at} is in another version and could not be converted: {e}; left out");
                    None
                }
            },
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
                // Logged as the Status a watcher gets; the conversion logs a plugin's failure.
                let err = crate::api::ApiError::from(err);
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
}
