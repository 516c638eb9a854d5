//! [`AppState`]: what every handler shares — the registry, authentication, the watch
//! timeout, and the discovery and OpenAPI documents of the current plugin catalog.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use super::discovery::Documents;
use crate::plugin::PluginCatalog;
use crate::registry::Registry;

/// Shared by every request.
pub struct AppState {
    pub registry: Arc<Registry>,
    /// Delegated authentication and authorization; `None` in `--dev` (every request
    /// acts as `system:admin`).
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// A watch without timeoutSeconds ends after between this and twice this
    /// (`--min-request-timeout`).
    pub watch_timeout: Duration,
    /// Other requests are answered 504 after this (`--request-timeout`).
    pub request_timeout: Duration,
    /// Discovery and OpenAPI documents, rebuilt when the plugin catalog changes or a
    /// storage version migration starts or ends (the generation).
    docs: RwLock<(Arc<PluginCatalog>, u64, Arc<Documents>)>,
}

impl AppState {
    pub fn new(
        registry: Arc<Registry>,
        auth: Option<Arc<crate::auth::Auth>>,
        watch_timeout: Duration,
        request_timeout: Duration,
    ) -> Arc<Self> {
        let catalog = registry.plugins.snapshot();
        let generation = registry.migration_generation();
        let docs = Arc::new(build(&registry, &catalog));
        Arc::new(AppState {
            registry,
            auth,
            watch_timeout,
            request_timeout,
            docs: RwLock::new((catalog, generation, docs)),
        })
    }

    /// The documents for the current catalog (rebuilt once per catalog change).
    pub fn documents(&self) -> Arc<Documents> {
        let catalog = self.registry.plugins.snapshot();
        let generation = self.registry.migration_generation();
        {
            let cur = crate::sync::read(&self.docs);
            if Arc::ptr_eq(&cur.0, &catalog) && cur.1 == generation {
                return cur.2.clone();
            }
        }
        let docs = Arc::new(build(&self.registry, &catalog));
        *crate::sync::write(&self.docs) = (catalog, generation, docs.clone());
        docs
    }
}

fn build(registry: &Registry, catalog: &PluginCatalog) -> Documents {
    Documents::build(catalog, |r| {
        catalog.find(&r.group, &r.plural).map_or_else(
            || r.storage_version.clone(),
            |p| registry.hashed_storage_version(p),
        )
    })
}
