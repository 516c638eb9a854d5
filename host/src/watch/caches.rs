//! Every resource's watch cache ([`WatchCaches`]): created on first use, kept across
//! a plugin reload of the same resource, stopped when its resource goes; and the
//! [`WatchSettings`] they share.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::Cacher;
use crate::plugin::Plugin;
use crate::storage::Storage;

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
        let mut caches = crate::sync::lock(&self.caches);
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
        let caches = crate::sync::lock(&self.caches);
        caches
            .get(&(r.group.clone(), r.plural.clone()))
            .filter(|c| Arc::ptr_eq(&c.plugin(), plugin))
            .cloned()
    }

    /// Stop the caches of resources `catalog` no longer serves (their watchers end).
    pub fn retain(&self, catalog: &crate::plugin::PluginCatalog) {
        let mut caches = crate::sync::lock(&self.caches);
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
