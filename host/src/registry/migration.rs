//! What the server remembers of each kind's plugin build, and storage version
//! migration.
//!
//! A record per kind, in the store beside its objects
//! (`/.wasm-apiserver/builds/<group>/<plural>`, a key no object can have), says which
//! build last served it and which version its objects are stored in. It lets the
//! server, at start:
//! - run the upgrade gate when the plugin file changed while it was down (a build the
//!   gate refuses is quarantined: its kind serves reads in the storage version and
//!   deletes, and says why);
//! - migrate stored objects when a new build changes the storage version. The
//!   migration runs in the background, page by page, each object rewritten with its
//!   revision as precondition (a concurrent write wins, and is already in the new
//!   version); its progress is saved after each page, so that a restart resumes it.
//!   A last read-only sweep catches objects a racing write left behind (a request
//!   that started on the previous build). Reads convert objects not yet rewritten. When it completes, the kind's
//!   `storageVersionHash` in discovery changes, as kube-apiserver's does.
//!
//! A hot reload that changes the storage version starts the same migration.

use futures::StreamExt as _;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use super::store::{encode, Registry};
use crate::plugin::{GateMode, Plugin};
use crate::storage::{ListRequest, ResourceKeys, StorageError};

/// Objects read and rewritten per page.
const PAGE: usize = 500;

/// A conversion fit to store in place of `old`: in the version wanted, and the same
/// object (name, namespace, uid), or why not.
fn checked(
    old: &serde_json::Value,
    new: Option<serde_json::Value>,
    want: &str,
) -> Result<serde_json::Value, String> {
    let new = new.ok_or("could not be converted by the plugin (its convert failed)")?;
    if new["apiVersion"].as_str() != Some(want) {
        return Err(format!(
            "was converted to {:?}, not {want}",
            new["apiVersion"]
        ));
    }
    for field in ["name", "namespace", "uid"] {
        if new["metadata"][field] != old["metadata"][field] {
            return Err(format!("changed metadata.{field} when converted"));
        }
    }
    Ok(new)
}

/// The record of a kind's build.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BuildRecord {
    /// SHA-256 of the plugin file that last served the kind.
    digest: String,
    /// The version every stored object is in (the old one while migrating).
    storage_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migration: Option<Migration>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Migration {
    to: String,
    /// The last key rewritten (or skipped); the next page starts after it.
    #[serde(default)]
    after: Option<String>,
}

/// A running migration, for `/readyz`, `/metrics` and discovery.
#[derive(Debug)]
pub struct MigrationProgress {
    pub resource: String,
    pub from: String,
    pub to: String,
    pub rewritten: AtomicU64,
    pub skipped: AtomicU64,
    /// Objects the plugin could not convert (logged; the migration then stops, and is
    /// tried again at the next start or reload).
    pub failed: AtomicU64,
}

/// How a migration task ended.
enum Ended {
    Completed,
    /// Another build serves the kind now; its reconcile decides what to do.
    Superseded,
    /// Some objects could not be converted.
    Stalled,
}

fn record_key(plugin: &Plugin) -> String {
    let r = &plugin.resource;
    format!("/.wasm-apiserver/builds/{}/{}", r.group, r.plural)
}

impl Registry {
    async fn read_record(&self, key: &str) -> Result<Option<(BuildRecord, u64)>, StorageError> {
        let Some(s) = self.storage.get(key).await? else {
            return Ok(None);
        };
        let record = serde_json::from_slice(&s.value).map_err(|e| {
            StorageError::Internal(format!("the record at {key} is not valid: {e}"))
        })?;
        Ok(Some((record, s.revision)))
    }

    async fn write_record(&self, key: &str, record: &BuildRecord) -> Result<(), StorageError> {
        let bytes = serde_json::to_vec(record).expect("records serialize");
        match self.storage.get(key).await? {
            Some(s) => self.storage.update(key, bytes, s.revision).await.map(drop),
            None => self.storage.create(key, bytes).await.map(drop),
        }
    }

    /// Bring the store in line with the build that now serves `plugin`'s kind: at
    /// start (`at_start`), the upgrade gate for a file changed while the server was
    /// down; then a migration when the storage version changed. Failures to read or
    /// write the record are logged; the kind keeps serving.
    pub async fn reconcile_build(self: &Arc<Self>, plugin: &Arc<Plugin>, at_start: bool) {
        if plugin.resource.is_computed() {
            return;
        }
        if let Err(e) = self.try_reconcile(plugin, at_start).await {
            tracing::error!(plugin = %plugin.name, error = %e, "cannot read or write the build record");
        }
    }

    async fn try_reconcile(
        self: &Arc<Self>,
        plugin: &Arc<Plugin>,
        at_start: bool,
    ) -> Result<(), StorageError> {
        let key = record_key(plugin);
        let storage_version = plugin.resource.storage_version.clone();
        let Some((mut record, _)) = self.read_record(&key).await? else {
            // First served here: whatever is stored is read through conversion.
            return self
                .write_record(
                    &key,
                    &BuildRecord {
                        digest: plugin.digest.clone(),
                        storage_version,
                        migration: None,
                    },
                )
                .await;
        };
        if at_start
            && record.digest != plugin.digest
            && plugin.budget.upgrade_gate == GateMode::Enforce
        {
            let report = self.upgrade_gate(plugin, self.upgrade_gate_budget()).await;
            let summary = report.summary(&plugin.name);
            if !report.passed() {
                // The build that passed is gone (the file changed while the server was
                // down): serve what needs no hook, and say why.
                plugin.health.quarantine(format!("at start, {summary}"));
                return Ok(());
            }
            tracing::info!(ms = report.took.as_millis() as u64, "at start, {summary}");
        }
        record.digest = plugin.digest.clone();
        // A migration cut short by another build leaves objects in two versions, even
        // when this build stores the version the record names: migrate then too.
        let unfinished = record.migration.take();
        if record.storage_version != storage_version || unfinished.is_some() {
            let resume = unfinished.filter(|m| m.to == storage_version);
            record.migration = Some(Migration {
                to: storage_version.clone(),
                after: resume.and_then(|m| m.after),
            });
            self.write_record(&key, &record).await?;
            self.spawn_migration(plugin.clone(), record);
            return Ok(());
        }
        record.migration = None;
        self.write_record(&key, &record).await
    }

    fn spawn_migration(self: &Arc<Self>, plugin: Arc<Plugin>, record: BuildRecord) {
        let resource = plugin.resource.qualified_plural();
        let Some(m) = record.migration.clone() else {
            return;
        };
        let progress = Arc::new(MigrationProgress {
            resource: resource.clone(),
            from: record.storage_version.clone(),
            to: m.to.clone(),
            rewritten: AtomicU64::new(0),
            skipped: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        });
        crate::sync::lock(&self.migrations).insert(resource.clone(), progress.clone());
        self.migration_generation.fetch_add(1, Relaxed);
        tracing::info!(%resource, from = %progress.from, to = %progress.to, resumed_after = ?m.after, "storage version migration started");
        let me = self.clone();
        let mut record = record;
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let mut backoff = std::time::Duration::from_secs(1);
            let ended = loop {
                if !me.serves(&plugin) {
                    break Ended::Superseded;
                }
                if plugin.is_quarantined() {
                    // Nothing converts until a new build arrives (which supersedes this).
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
                match me.migrate(&plugin, &mut record, &progress).await {
                    Ok(ended) => break ended,
                    Err(e) => {
                        tracing::warn!(%resource, error = %e, retry_in = ?backoff, "storage version migration: storage failed; retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(std::time::Duration::from_secs(30));
                    }
                }
            };
            let rewritten = progress.rewritten.load(Relaxed);
            match ended {
                Ended::Completed => {
                    tracing::info!(%resource, to = %progress.to, rewritten, ms = started.elapsed().as_millis() as u64, "storage version migration completed")
                }
                Ended::Superseded => {
                    tracing::info!(%resource, rewritten, "storage version migration handed over to a newer build")
                }
                Ended::Stalled => {
                    tracing::error!(%resource, failed = progress.failed.load(Relaxed), "storage version migration stopped: objects the plugin could not convert stay in the old version (reads still convert them); it is tried again at the next start or reload");
                    // Stays listed (readyz, metrics) as stalled.
                    return;
                }
            }
            let mut running = crate::sync::lock(&me.migrations);
            if running
                .get(&resource)
                .is_some_and(|p| Arc::ptr_eq(p, &progress))
            {
                running.remove(&resource);
                drop(running);
                me.migration_generation.fetch_add(1, Relaxed);
            }
        });
    }

    /// Whether `plugin` is the build serving its kind now.
    fn serves(&self, plugin: &Arc<Plugin>) -> bool {
        let r = &plugin.resource;
        self.plugins
            .snapshot()
            .find(&r.group, &r.plural)
            .is_some_and(|p| Arc::ptr_eq(p, plugin))
    }

    /// Rewrite every object not yet in the new storage version, from where the record
    /// says, saving progress after each page (only while this build serves the kind).
    async fn migrate(
        &self,
        plugin: &Arc<Plugin>,
        record: &mut BuildRecord,
        progress: &MigrationProgress,
    ) -> Result<Ended, StorageError> {
        let r = &plugin.resource;
        let keys = ResourceKeys::new(&r.group, &r.plural, r.namespaced());
        let key = record_key(plugin);
        let want = format!("{}/{}", r.group, r.storage_version);
        loop {
            if !self.serves(plugin) {
                return Ok(Ended::Superseded);
            }
            let after = record.migration.as_ref().and_then(|m| m.after.clone());
            let page = self
                .storage
                .list(ListRequest {
                    prefix: keys.root().to_string(),
                    start: after.map(|a| format!("{a}\u{0}")),
                    limit: Some(PAGE),
                    revision: None,
                })
                .await?;
            self.migrate_page(plugin, &page.items, &want, progress, true)
                .await?;
            let Some(last) = page.items.last().filter(|_| page.more) else {
                break;
            };
            if let Some(m) = record.migration.as_mut() {
                m.after = Some(last.key.clone());
            }
            if !self.serves(plugin) {
                return Ok(Ended::Superseded);
            }
            self.write_record(&key, record).await?;
        }
        // A sweep: a write that raced with the pass above (a request that started on
        // the previous build, or a superseded migration's last page) may have left an
        // object behind in another version. The sweep only reads, unless it finds one.
        let mut start = None;
        loop {
            if !self.serves(plugin) {
                return Ok(Ended::Superseded);
            }
            let page = self
                .storage
                .list(ListRequest {
                    prefix: keys.root().to_string(),
                    start: start.take(),
                    limit: Some(PAGE),
                    revision: None,
                })
                .await?;
            self.migrate_page(plugin, &page.items, &want, progress, false)
                .await?;
            match page.items.last().filter(|_| page.more) {
                Some(last) => start = Some(format!("{}\u{0}", last.key)),
                None => break,
            }
        }
        if progress.failed.load(Relaxed) > 0 {
            // Not done: the next start or reload scans again from the first key.
            if let Some(m) = record.migration.as_mut() {
                m.after = None;
            }
            self.write_record(&key, record).await?;
            return Ok(Ended::Stalled);
        }
        record.storage_version = r.storage_version.clone();
        record.migration = None;
        self.write_record(&key, record).await?;
        Ok(Ended::Completed)
    }

    /// Rewrite a page of objects: those not in the storage version converted in one
    /// call (one by one if the batch fails, so that one bad object does not hold up
    /// the rest), then written with the revision they were read at, a few at a time;
    /// one that changed meanwhile is done again on its own.
    async fn migrate_page(
        &self,
        plugin: &Plugin,
        items: &[crate::storage::Stored],
        want: &str,
        progress: &MigrationProgress,
        first_pass: bool,
    ) -> Result<(), StorageError> {
        let mut todo = Vec::new();
        for s in items {
            match crate::api::decode_stored(&plugin.resource, &s.value) {
                Ok(o) if o["apiVersion"].as_str() != Some(want) => todo.push((s, o)),
                Ok(_) => {
                    if first_pass {
                        progress.skipped.fetch_add(1, Relaxed);
                    }
                }
                Err(_) if !first_pass => {}
                Err(why) => {
                    tracing::error!(
                        "storage version migration: the object stored at {} {why}; left as it is",
                        self.storage.location(&s.key)
                    );
                    progress.skipped.fetch_add(1, Relaxed);
                }
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let objs: Vec<serde_json::Value> = todo.iter().map(|(_, o)| o.clone()).collect();
        let batch = tokio::task::block_in_place(|| {
            plugin
                .instance()
                .and_then(|mut i| i.convert(&objs, &plugin.resource.storage_version))
        });
        let converted: Vec<Option<serde_json::Value>> = match batch {
            Ok(c) => c.into_iter().map(Some).collect(),
            Err(_) => objs
                .iter()
                .map(|o| tokio::task::block_in_place(|| plugin.in_storage_version(o.clone())).ok())
                .collect(),
        };
        let writes: Vec<_> = todo
            .iter()
            .zip(converted)
            .map(|((s, old), new)| {
                Box::pin(self.write_converted(plugin, s, checked(old, new, want), want, progress))
            })
            .collect();
        let results: Vec<Result<(), StorageError>> = futures::stream::iter(writes)
            .buffer_unordered(8)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Write one converted object at the revision it was read at; `None` (it could
    /// not be converted) is counted and logged.
    async fn write_converted(
        &self,
        plugin: &Plugin,
        s: &crate::storage::Stored,
        obj: Result<serde_json::Value, String>,
        want: &str,
        progress: &MigrationProgress,
    ) -> Result<(), StorageError> {
        let obj = match obj {
            Ok(o) => o,
            Err(why) => {
                tracing::error!(
                    "storage version migration: the object at {} {why}",
                    self.storage.location(&s.key)
                );
                progress.failed.fetch_add(1, Relaxed);
                return Ok(());
            }
        };
        match self.storage.update(&s.key, encode(&obj), s.revision).await {
            Ok(_) => {
                progress.rewritten.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(StorageError::Conflict { .. }) | Err(StorageError::NotFound { .. }) => {
                self.migrate_one(plugin, &s.key, want, progress).await
            }
            Err(e) => Err(e),
        }
    }

    /// Rewrite one object in the storage version, unless it is already; a concurrent
    /// write (a conflict) is read again.
    async fn migrate_one(
        &self,
        plugin: &Plugin,
        key: &str,
        want: &str,
        progress: &MigrationProgress,
    ) -> Result<(), StorageError> {
        loop {
            let Some(s) = self.storage.get(key).await? else {
                return Ok(());
            };
            let Ok(obj) = crate::api::decode_stored(&plugin.resource, &s.value) else {
                progress.skipped.fetch_add(1, Relaxed);
                return Ok(());
            };
            if obj["apiVersion"].as_str() == Some(want) {
                progress.skipped.fetch_add(1, Relaxed);
                return Ok(());
            }
            let converted =
                tokio::task::block_in_place(|| plugin.in_storage_version(obj.clone())).ok();
            let obj = match checked(&obj, converted, want) {
                Ok(o) => o,
                Err(why) => {
                    tracing::error!(
                        "storage version migration: the object at {} {why}",
                        self.storage.location(key)
                    );
                    progress.failed.fetch_add(1, Relaxed);
                    return Ok(());
                }
            };
            match self.storage.update(key, encode(&obj), s.revision).await {
                Ok(_) => {
                    progress.rewritten.fetch_add(1, Relaxed);
                    return Ok(());
                }
                Err(StorageError::Conflict { .. }) => continue,
                Err(StorageError::NotFound { .. }) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// The migrations running now.
    pub fn migrations(&self) -> Vec<Arc<MigrationProgress>> {
        crate::sync::lock(&self.migrations)
            .values()
            .cloned()
            .collect()
    }

    /// The version discovery's `storageVersionHash` is computed from: the old one while
    /// a migration runs.
    pub fn hashed_storage_version(&self, plugin: &Plugin) -> String {
        crate::sync::lock(&self.migrations)
            .get(&plugin.resource.qualified_plural())
            .map_or_else(
                || plugin.resource.storage_version.clone(),
                |m| m.from.clone(),
            )
    }
}
