//! Hot reload (`--dev` or `--watch-plugins`): watch the plugin folder and apply each
//! change through [`PluginRegistry::reload_file`](crate::plugin::PluginRegistry::reload_file).
//!
//! - A file's events are debounced: it is loaded once it has been quiet for
//!   [`QUIET`], so that a plugin being written is not loaded half-way (and if a slow
//!   writer pauses longer, the half file fails to load, the working plugin stays, and the
//!   write's end triggers another reload).
//! - Compiling happens on a blocking thread, off the request path; the catalog swap is
//!   atomic. Requests that started on the old plugin finish on it.
//! - A plugin's settings file (`hello.settings.yaml`) reloads its plugin.
//! - The resource's watch cache is kept across a reload (its watchers keep streaming and
//!   later events are converted by the new plugin); a removed resource's cache stops.

use notify::{RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::plugin::Reload;
use crate::registry::Registry;

/// How long a file must be quiet before it is (re)loaded.
pub const QUIET: Duration = Duration::from_millis(50);

/// Watch `dir` until the returned watcher is dropped.
pub fn watch_plugins(dir: &Path, registry: Arc<Registry>) -> anyhow::Result<impl Drop> {
    use anyhow::Context as _;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<PathBuf>();
    // Events name files as the OS sees them (absolute); plugins were loaded as
    // `dir/<file>`: name them the same way, so that a change finds its plugin.
    let folder = dir.to_path_buf();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            Ok(event) => {
                for path in event.paths {
                    if let Some(name) = path.file_name().and_then(|n| n.to_str()) {
                        // A plugin's settings file reloads the plugin with them.
                        let name = match name.strip_suffix(".settings.yaml") {
                            Some(stem) => format!("{stem}.wasm"),
                            None => name.to_string(),
                        };
                        let _ = tx.send(folder.join(name));
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "plugin folder watch"),
        })
        .context("watching the plugin folder")?;
    watcher
        .watch(dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching the plugin folder {}", dir.display()))?;
    tracing::info!(dir = %dir.display(), "hot reload: watching the plugin folder");
    let task = tokio::spawn(async move {
        // Path → when it last changed.
        let mut pending: HashMap<PathBuf, Instant> = HashMap::new();
        loop {
            let next_due = pending.values().min().map(|t| *t + QUIET);
            let wait = async {
                match next_due {
                    Some(due) => tokio::time::sleep_until(due.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                path = rx.recv() => match path {
                    Some(p) => { pending.insert(p, Instant::now()); }
                    None => return,
                },
                _ = wait => {
                    let now = Instant::now();
                    let mut due: Vec<PathBuf> = pending
                        .iter()
                        .filter(|(_, t)| now.duration_since(**t) >= QUIET)
                        .map(|(p, _)| p.clone())
                        .collect();
                    // Removals first: a renamed plugin (`a.wasm` → `b.wasm`) leaves
                    // before it arrives, so its resource is not served twice.
                    due.sort_by_key(|p| p.exists());
                    for path in due {
                        pending.remove(&path);
                        apply(&registry, path).await;
                    }
                }
            }
        }
    });
    /// Dropping it stops the watcher and the task.
    struct Watching {
        _watcher: notify::RecommendedWatcher,
        task: tokio::task::JoinHandle<()>,
    }
    impl Drop for Watching {
        fn drop(&mut self) {
            self.task.abort();
        }
    }
    Ok(Watching {
        _watcher: watcher,
        task,
    })
}

/// Reload one file and bring the watch caches in line with the new catalog.
pub async fn apply(registry: &Arc<Registry>, path: PathBuf) {
    let started = Instant::now();
    let r = registry.clone();
    let file = path.clone();
    let budget = registry.upgrade_gate_budget();
    let outcome = match tokio::task::spawn_blocking(move || {
        let runtime = tokio::runtime::Handle::current();
        r.plugins.reload_file_gated(&file, |new| {
            let report = runtime.block_on(r.upgrade_gate(new, budget));
            let summary = report.summary(&new.name);
            match report.passed() {
                true => {
                    tracing::info!(ms = report.took.as_millis() as u64, "{summary}");
                    Ok(())
                }
                false => Err(summary),
            }
        })
    })
    .await
    {
        Ok(o) => o,
        Err(e) => {
            tracing::error!(file = %path.display(), error = %e, "hot reload: the reload panicked");
            return;
        }
    };
    let ms = started.elapsed().as_millis() as u64;
    match outcome {
        Reload::Added(p) | Reload::Replaced(p) => {
            if !p.resource.is_computed() {
                registry.watch.get(&p, &registry.storage);
            }
            registry.reconcile_build(&p, false).await;
            if let Some(u) = &registry.upstream {
                u.follow(&registry.plugins.snapshot());
            }
            tracing::info!(file = %path.display(), resource = %p.resource.qualified_plural(), cached = p.from_cache, ms, "hot reload: serving the new plugin");
        }
        Reload::Removed(p) => {
            registry.watch.retain(&registry.plugins.snapshot());
            tracing::info!(file = %path.display(), resource = %p.resource.qualified_plural(), "hot reload: plugin removed; its resource is no longer served (stored objects stay)");
        }
        Reload::Failed(e) => {
            tracing::error!(file = %e.file.display(), cause = %e.cause, "hot reload: cannot load the new version; the previous one keeps serving");
        }
        Reload::Unchanged | Reload::Ignored => {}
    }
}
