//! A loaded plugin: a compiled, pre-instantiated component, the engine it runs on and
//! the kind it serves. [`Plugin::load`] is in the catalog, [`Plugin::instance`] with
//! the instances, so this module depends on neither.

use std::path::PathBuf;
use std::sync::Arc;

use super::budget::{Budget, LogLimiter, Slots};
use super::engine::PluginEngine;
use super::health::Health;
use super::state::{InstancePool, PluginStats};
use super::world::WorldPre;
use crate::api::ResourceInfo;

/// A loaded plugin: a compiled, pre-instantiated component and the kind it serves.
pub struct Plugin {
    /// The file name, e.g. `hello.wasm`: how errors and logs name the plugin.
    pub name: Arc<str>,
    pub path: PathBuf,
    /// SHA-256 of the file, hex.
    pub digest: String,
    pub resource: ResourceInfo,
    /// Whether the compiled code came from the precompiled cache.
    pub from_cache: bool,
    pub(crate) pre: WorldPre,
    pub(crate) engine: PluginEngine,
    /// Time spent in this plugin, for `/metrics`.
    pub stats: PluginStats,
    pub(crate) pool: InstancePool,
    /// What its hooks may use (the flags, and its settings file).
    pub budget: Budget,
    /// The settings file's text when it has one: a reload that changes it reloads.
    pub settings: Option<String>,
    /// Per-hook counters and quarantine.
    pub health: Health,
    /// Hook calls running now, capped at `budget.max_concurrent`.
    pub slots: Slots,
    pub(crate) log: Arc<LogLimiter>,
}

impl Plugin {
    /// The WIT world the component was built for, e.g. `wasm-apiserver:plugin/plugin@0.2.0`.
    pub fn world(&self) -> &'static str {
        self.pre.world()
    }

    /// The limits its hooks run under.
    pub fn limits(&self) -> &super::RuntimeLimits {
        &self.engine.limits
    }

    /// Log lines dropped by its log budget.
    pub fn log_lines_dropped(&self) -> u64 {
        self.log.dropped.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("resource", &self.resource.qualified_plural())
            .finish()
    }
}
