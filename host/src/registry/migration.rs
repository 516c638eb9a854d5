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
//!   Reads convert objects not yet rewritten. When it completes, the kind's
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
        if record.storage_version != storage_version {
            let resume = record.migration.take().filter(|m| m.to == storage_version);
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
        });
        crate::sync::lock(&self.migrations).insert(resource.clone(), progress.clone());
        self.migration_generation.fetch_add(1, Relaxed);
        tracing::info!(%resource, from = %progress.from, to = %progress.to, resumed_after = ?m.after, "storage version migration started");
        let me = self.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            loop {
                match me.migrate(&plugin, record.clone(), &progress).await {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(%resource, error = %e, "storage version migration: retrying in 1 s");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    }
                }
                // A newer build took over: its reconcile decides.
                if !me.serves(&plugin) {
                    return;
                }
            }
            crate::sync::lock(&me.migrations).remove(&resource);
            me.migration_generation.fetch_add(1, Relaxed);
            tracing::info!(
                %resource,
                to = %progress.to,
                rewritten = progress.rewritten.load(Relaxed),
                ms = started.elapsed().as_millis() as u64,
                "storage version migration completed"
            );
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
    /// says, saving progress after each page.
    async fn migrate(
        &self,
        plugin: &Arc<Plugin>,
        mut record: BuildRecord,
        progress: &MigrationProgress,
    ) -> Result<(), StorageError> {
        let r = &plugin.resource;
        let keys = ResourceKeys::new(&r.group, &r.plural, r.namespaced());
        let key = record_key(plugin);
        let want = format!("{}/{}", r.group, r.storage_version);
        loop {
            if !self.serves(plugin) {
                return Ok(());
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
            self.migrate_page(plugin, &page.items, &want, progress)
                .await?;
            match (page.more, page.items.last()) {
                (true, Some(last)) => {
                    if let Some(m) = record.migration.as_mut() {
                        m.after = Some(last.key.clone());
                    }
                    self.write_record(&key, &record).await?;
                }
                _ => break,
            }
        }
        record.storage_version = r.storage_version.clone();
        record.migration = None;
        self.write_record(&key, &record).await
    }

    /// Rewrite a page of objects: those not in the storage version converted in one
    /// call, then written with the revision they were read at (a few at a time); one
    /// that changed meanwhile is done again on its own.
    async fn migrate_page(
        &self,
        plugin: &Plugin,
        items: &[crate::storage::Stored],
        want: &str,
        progress: &MigrationProgress,
    ) -> Result<(), StorageError> {
        let mut todo = Vec::new();
        for s in items {
            match crate::api::decode_stored(&plugin.resource, &s.value) {
                Ok(o) if o["apiVersion"].as_str() != Some(want) => todo.push((s, o)),
                Ok(_) => {
                    progress.skipped.fetch_add(1, Relaxed);
                }
                // Reported (and left alone) by the one-object path.
                Err(_) => self.migrate_one(plugin, &s.key, want, progress).await?,
            }
        }
        if todo.is_empty() {
            return Ok(());
        }
        let objs: Vec<serde_json::Value> = todo.iter().map(|(_, o)| o.clone()).collect();
        let converted = tokio::task::block_in_place(|| {
            plugin
                .instance()
                .and_then(|mut i| i.convert(&objs, &plugin.resource.storage_version))
        })
        .map_err(|e| StorageError::Internal(e.to_string()))?;
        let writes: Vec<_> = todo
            .iter()
            .zip(converted)
            .map(|((s, _), obj)| Box::pin(self.write_converted(plugin, s, obj, want, progress)))
            .collect();
        let results: Vec<Result<(), StorageError>> = futures::stream::iter(writes)
            .buffer_unordered(8)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Write one converted object at the revision it was read at.
    async fn write_converted(
        &self,
        plugin: &Plugin,
        s: &crate::storage::Stored,
        obj: serde_json::Value,
        want: &str,
        progress: &MigrationProgress,
    ) -> Result<(), StorageError> {
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
            let obj = match crate::api::decode_stored(&plugin.resource, &s.value) {
                Ok(o) => o,
                Err(why) => {
                    tracing::error!(
                        "storage version migration: the object stored at {} {why}; left as it is",
                        self.storage.location(key)
                    );
                    progress.skipped.fetch_add(1, Relaxed);
                    return Ok(());
                }
            };
            if obj["apiVersion"].as_str() == Some(want) {
                progress.skipped.fetch_add(1, Relaxed);
                return Ok(());
            }
            let converted = tokio::task::block_in_place(|| plugin.in_storage_version(obj))
                .map_err(|e| StorageError::Internal(e.to_string()))?;
            match self
                .storage
                .update(key, encode(&converted), s.revision)
                .await
            {
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
