//! Loading plugins from files and the catalog of loaded resources that the HTTP layer
//! reads.

use anyhow::{bail, Context as _};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use super::budget::{Budget, GateMode, LogLimiter, PluginSettings, Slots};
use super::engine::PluginEngine;
use super::health::Health;
use super::loaded::Plugin;
use super::state::{InstancePool, PluginStats};
use super::world::{WorldPre, WORLDS};
use super::Result;
use crate::api::ResourceInfo;

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

    /// Load a plugin from its bytes; `name` labels it in errors and logs. Its budget is
    /// the engine's limits with the settings file beside `path` (if any) applied.
    pub fn from_bytes(
        engine: &PluginEngine,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> anyhow::Result<Plugin> {
        check_component_header(bytes)?;
        let settings = PluginSettings::read(path)?;
        let budget = match &settings {
            Some((s, _)) => Budget::resolve(&engine.limits.budget(), s, engine.limits.memory_bytes)
                .with_context(|| format!("{}", PluginSettings::path_for(path).display()))?,
            None => engine.limits.budget(),
        };
        let digest = hex::encode(Sha256::digest(bytes));
        let (component, from_cache) = engine
            .compile(bytes, &digest)
            .context("cannot compile the component")?;
        let pre = WorldPre::new(&engine.linker, &component).with_context(|| {
            format!(
                "the component implements none of the worlds {}",
                WORLDS.join(", ")
            )
        })?;
        let mut plugin = Plugin {
            name: name.into(),
            path: path.to_path_buf(),
            digest,
            resource: placeholder_resource(),
            from_cache,
            pre,
            engine: engine.clone(),
            stats: PluginStats::default(),
            pool: InstancePool::default(),
            health: Health::new(budget.quarantine),
            log: Arc::new(LogLimiter::new(budget.log_lines_per_second)),
            budget,
            settings: settings.map(|(_, text)| text),
            slots: Slots::default(),
        };
        let described = plugin.instance()?.describe()?;
        plugin.resource = ResourceInfo::from_wit(described).map_err(anyhow::Error::msg)?;
        Ok(plugin)
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
        reads: Vec::new(),
        computed: None,
        default_propagation: None,
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

/// What a reload of one plugin file did.
#[derive(Debug)]
pub enum Reload {
    /// A new file: its resource is served now.
    Added(Arc<Plugin>),
    /// A changed file: the new plugin serves its resource from now on.
    Replaced(Arc<Plugin>),
    /// The file is gone: its resource is no longer served (stored objects stay).
    Removed(Arc<Plugin>),
    /// Same bytes as the plugin already loaded (a touch, or a write that changed nothing).
    Unchanged,
    /// The file cannot be loaded; the plugin that served before (if any) still does.
    Failed(LoadError),
    /// Not a plugin file, and nothing was loaded from it.
    Ignored,
}

/// The plugins the server currently serves. Readers take a cheap snapshot.
pub struct PluginRegistry {
    engine: PluginEngine,
    current: RwLock<Arc<PluginCatalog>>,
    /// One reload at a time: each reads the catalog, then swaps in a new one.
    reloading: std::sync::Mutex<()>,
    /// Reloads that failed, for `/metrics`.
    pub reload_failures: std::sync::atomic::AtomicU64,
}

impl PluginRegistry {
    pub fn new(engine: PluginEngine) -> Self {
        PluginRegistry {
            engine,
            current: RwLock::new(Arc::default()),
            reloading: std::sync::Mutex::new(()),
            reload_failures: Default::default(),
        }
    }

    pub fn engine(&self) -> &PluginEngine {
        &self.engine
    }

    /// The current catalog.
    pub fn snapshot(&self) -> Arc<PluginCatalog> {
        crate::sync::read(&self.current).clone()
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
        *crate::sync::write(&self.current) = catalog.clone();
        Ok(catalog)
    }

    /// Apply a change of one file in the plugin folder: load it again, or remove its
    /// plugin when the file is gone. The catalog is swapped atomically; requests that
    /// hold the old one finish on the old plugin. A file that fails to load, or whose
    /// plugin would change the resource it serves in a way stored objects cannot follow
    /// (group, kind, plural or scope), leaves the working plugin in
    /// place and is listed in [`PluginCatalog::errors`].
    pub fn reload_file(&self, path: &Path) -> Reload {
        self.reload_file_gated(path, |_| Ok(()))
    }

    /// [`Self::reload_file`], where a new build that would replace a serving one must
    /// first pass `gate` (the upgrade gate), unless its budget skips the gate.
    pub fn reload_file_gated(
        &self,
        path: &Path,
        gate: impl FnOnce(&Plugin) -> Result<(), String>,
    ) -> Reload {
        let _one = crate::sync::lock(&self.reloading);
        let cur = self.snapshot();
        let old = cur.plugins.iter().find(|p| p.path == path).cloned();
        let mut next = PluginCatalog {
            plugins: cur.plugins.clone(),
            errors: cur
                .errors
                .iter()
                .filter(|e| e.file != path)
                .cloned()
                .collect(),
        };
        let is_wasm = path.extension().is_some_and(|e| e == "wasm");
        let bytes = match std::fs::read(path) {
            Ok(b) if is_wasm => b,
            _ => {
                // Gone (or renamed away from `.wasm`): stop serving it.
                if old.is_none() && next.errors.len() == cur.errors.len() {
                    return Reload::Ignored;
                }
                next.plugins.retain(|p| p.path != path);
                self.swap(next);
                return match old {
                    Some(p) => Reload::Removed(p),
                    None => Reload::Ignored,
                };
            }
        };
        let digest = hex::encode(Sha256::digest(&bytes));
        let settings = std::fs::read_to_string(PluginSettings::path_for(path)).ok();
        if old
            .as_ref()
            .is_some_and(|p| p.digest == digest && p.settings == settings)
        {
            if next.errors.len() != cur.errors.len() {
                self.swap(next);
            }
            return Reload::Unchanged;
        }
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        let loaded = Plugin::from_bytes(&self.engine, &name, path, &bytes)
            .map_err(|e| format!("{e:#}"))
            .and_then(|p| match &old {
                Some(o) => compatible(&o.resource, &p.resource).map(|()| p),
                None => Ok(p),
            })
            .and_then(
                |p| match old.is_some() && p.budget.upgrade_gate == GateMode::Enforce {
                    true => gate(&p).map(|()| p),
                    false => Ok(p),
                },
            )
            .and_then(|p| {
                next.plugins.retain(|q| q.path != path);
                next.insert(p).map_err(|e| e.cause)
            });
        if let Err(cause) = loaded {
            self.reload_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let err = LoadError {
                file: path.to_path_buf(),
                cause,
            };
            // The plugins as they were; the file's earlier error replaced by this one.
            let mut keep = next;
            keep.plugins = cur.plugins.clone();
            keep.errors.push(err.clone());
            self.swap(keep);
            return Reload::Failed(err);
        }
        next.plugins.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(q) = old.as_ref().and_then(|o| o.health.quarantined()) {
            tracing::info!(
                plugin = %name,
                since = ?q.since,
                "quarantine ended: a new build replaces the quarantined one"
            );
        }
        let new = next
            .plugins
            .iter()
            .find(|p| p.path == path)
            .cloned()
            .expect("inserted above");
        self.swap(next);
        match old {
            Some(_) => Reload::Replaced(new),
            None => Reload::Added(new),
        }
    }

    fn swap(&self, catalog: PluginCatalog) {
        *crate::sync::write(&self.current) = Arc::new(catalog);
    }
}

/// Whether a reloaded plugin can take over from `old`: objects stored by the old one
/// must stay where they are and readable as they are.
fn compatible(old: &ResourceInfo, new: &ResourceInfo) -> Result<(), String> {
    let was = format!("{} (kind {})", old.qualified_plural(), old.kind);
    let now = format!("{} (kind {})", new.qualified_plural(), new.kind);
    if was != now {
        return Err(format!(
            "the new version serves {now} instead of {was}; to change the kind, remove the \
             file and add the plugin under another name"
        ));
    }
    if old.scope != new.scope {
        return Err(format!(
            "the new version changes the scope of {was} from {:?} to {:?}; stored objects \
             would not be found",
            old.scope, new.scope
        ));
    }
    // A new storage version is fine: stored objects are read through conversion and
    // migrated in the background (registry::migration).
    Ok(())
}
