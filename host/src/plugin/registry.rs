//! Loading plugins from files and the catalog of loaded resources that the HTTP layer
//! reads.

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::bindings::PluginPre;
use super::describe::ResourceInfo;
use super::engine::PluginEngine;
use super::instance::{CallState, PluginInstance};
use super::Result;

/// The WIT world every plugin must implement; named in load errors.
pub const WORLD: &str = "wasm-apiserver:plugin/plugin@0.1.0";

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
    pub(crate) pre: PluginPre<CallState>,
    pub(crate) engine: PluginEngine,
    /// Time spent in this plugin, for `/metrics`.
    pub stats: PluginStats,
}

/// Counters of a plugin's cost: what a request pays for running Wasm.
#[derive(Default, Debug)]
pub struct PluginStats {
    pub instances: std::sync::atomic::AtomicU64,
    pub instantiate_nanos: std::sync::atomic::AtomicU64,
    pub calls: std::sync::atomic::AtomicU64,
    pub call_nanos: std::sync::atomic::AtomicU64,
}

impl PluginStats {
    pub(crate) fn record(
        counter: &std::sync::atomic::AtomicU64,
        nanos: &std::sync::atomic::AtomicU64,
        since: std::time::Instant,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        counter.fetch_add(1, Relaxed);
        nanos.fetch_add(since.elapsed().as_nanos() as u64, Relaxed);
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

/// A plugin file that could not be loaded, and why.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{}: {cause}", file.display())]
pub struct LoadError {
    pub file: PathBuf,
    pub cause: String,
}

impl Plugin {
    /// Load one plugin file.
    pub fn load(engine: &PluginEngine, path: &Path) -> Result<Plugin, LoadError> {
        let err = |e: anyhow::Error| LoadError {
            file: path.to_path_buf(),
            cause: format!("{e:#}"),
        };
        let bytes = std::fs::read(path)
            .context("cannot read the file")
            .map_err(err)?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Self::from_bytes(engine, &name, path, &bytes).map_err(err)
    }

    /// Load a plugin from its bytes; `name` labels it in errors and logs.
    pub fn from_bytes(
        engine: &PluginEngine,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> anyhow::Result<Plugin> {
        check_component_header(bytes)?;
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, from_cache) = engine
            .compile(bytes, &digest)
            .context("cannot compile the component")?;
        let pre = engine
            .linker
            .instantiate_pre(&component)
            .and_then(PluginPre::new)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("the component does not implement the world {WORLD}"))?;
        let mut plugin = Plugin {
            name: name.into(),
            path: path.to_path_buf(),
            digest,
            resource: placeholder_resource(),
            from_cache,
            pre,
            engine: engine.clone(),
            stats: PluginStats::default(),
        };
        let described = plugin.instance()?.describe()?;
        plugin.resource = ResourceInfo::from_wit(described).map_err(anyhow::Error::msg)?;
        Ok(plugin)
    }

    /// A fresh instance for one request's hooks.
    pub fn instance(&self) -> Result<PluginInstance<'_>> {
        PluginInstance::new(self)
    }
}

fn check_component_header(bytes: &[u8]) -> anyhow::Result<()> {
    match bytes.get(..8) {
        Some([0, b'a', b's', b'm', 1, 0, 0, 0]) => bail!(
            "this is a core WebAssembly module, not a component: build the plugin for \
             wasm32-wasip2 (or wrap the module with `wasm-tools component new`)"
        ),
        Some([0, b'a', b's', b'm', _, _, 1, 0]) => Ok(()),
        Some([0, b'a', b's', b'm', ..]) => bail!("unsupported WebAssembly binary version"),
        _ => bail!("not a WebAssembly file (it does not start with \\0asm)"),
    }
}

fn placeholder_resource() -> ResourceInfo {
    ResourceInfo {
        group: String::new(),
        kind: String::new(),
        list_kind: String::new(),
        plural: String::new(),
        singular: String::new(),
        short_names: Vec::new(),
        categories: Vec::new(),
        scope: super::Scope::Cluster,
        versions: Vec::new(),
        storage_version: String::new(),
        preferred_version: String::new(),
        selectable_fields: Vec::new(),
    }
}

/// An immutable view of the loaded plugins; requests hold one for their whole life, so a
/// reload never changes a plugin under a running request.
#[derive(Default, Debug)]
pub struct PluginCatalog {
    /// Sorted by file name.
    pub plugins: Vec<Arc<Plugin>>,
    /// Files that failed to load (the server keeps serving the others).
    pub errors: Vec<LoadError>,
}

impl PluginCatalog {
    /// Add a plugin unless another one already serves its kind or plural in its group.
    pub fn insert(&mut self, plugin: Plugin) -> Result<(), LoadError> {
        let r = &plugin.resource;
        if let Some(other) = self.plugins.iter().find(|p| {
            p.resource.group == r.group
                && (p.resource.kind == r.kind || p.resource.plural == r.plural)
        }) {
            return Err(LoadError {
                file: plugin.path.clone(),
                cause: format!(
                    "{} (kind {}) is already served by {}",
                    r.qualified_plural(),
                    r.kind,
                    other.name
                ),
            });
        }
        self.plugins.push(Arc::new(plugin));
        Ok(())
    }

    /// The plugin serving `plural` in `group`.
    pub fn find(&self, group: &str, plural: &str) -> Option<&Arc<Plugin>> {
        self.plugins
            .iter()
            .find(|p| p.resource.group == group && p.resource.plural == plural)
    }

    /// Groups in a stable order (by name), each with its plugins.
    pub fn groups(&self) -> Vec<(&str, Vec<&Arc<Plugin>>)> {
        let mut names: Vec<&str> = self
            .plugins
            .iter()
            .map(|p| p.resource.group.as_str())
            .collect();
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|g| {
                (
                    g,
                    self.plugins
                        .iter()
                        .filter(|p| p.resource.group == g)
                        .collect(),
                )
            })
            .collect()
    }
}

/// The plugins the server currently serves. Readers take a cheap snapshot.
pub struct PluginRegistry {
    engine: PluginEngine,
    current: RwLock<Arc<PluginCatalog>>,
}

impl PluginRegistry {
    pub fn new(engine: PluginEngine) -> Self {
        PluginRegistry {
            engine,
            current: RwLock::new(Arc::default()),
        }
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The current catalog.
    pub fn snapshot(&self) -> Arc<PluginCatalog> {
        self.current.read().expect("plugin catalog lock").clone()
    }

    /// Load every `*.wasm` in `dir` (in name order) and make that the catalog. Files
    /// that fail are logged and listed in [`PluginCatalog::errors`].
    pub fn load_dir(&self, dir: &Path) -> anyhow::Result<Arc<PluginCatalog>> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the plugin folder {}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect();
        files.sort();
        let mut catalog = PluginCatalog::default();
        for file in files {
            let started = std::time::Instant::now();
            match Plugin::load(&self.engine, &file).and_then(|p| {
                let info = (p.resource.qualified_plural(), p.from_cache);
                catalog.insert(p).map(|()| info)
            }) {
                Ok((resource, cached)) => tracing::info!(
                    file = %file.display(),
                    %resource,
                    cached,
                    ms = started.elapsed().as_millis() as u64,
                    "loaded plugin"
                ),
                Err(e) => {
                    tracing::error!(file = %e.file.display(), cause = %e.cause, "cannot load plugin");
                    catalog.errors.push(e);
                }
            }
        }
        let catalog = Arc::new(catalog);
        *self.current.write().expect("plugin catalog lock") = catalog.clone();
        Ok(catalog)
    }
}
