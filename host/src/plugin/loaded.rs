//! A loaded plugin: a compiled, pre-instantiated component, the engine it runs on and
//! the kind it serves. [`Plugin::load`] is in the catalog, [`Plugin::instance`] with
//! the instances, so this module depends on neither.

use std::path::PathBuf;
use std::sync::Arc;

use super::engine::PluginEngine;
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
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("resource", &self.resource.qualified_plural())
            .finish()
    }
}
