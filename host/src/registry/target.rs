//! What a request addresses: a plugin's kind, in one of its versions, in a namespace,
//! on behalf of a user.

use std::sync::Arc;

use crate::plugin::{Operation, Plugin, RequestInfo, ResourceInfo, UserInfo};
use crate::storage::ResourceKeys;

/// A plugin's kind in one of its versions, in a namespace.
#[derive(Clone)]
pub struct Target {
    pub plugin: Arc<Plugin>,
    /// The version from the URL.
    pub version: String,
    /// The namespace from the URL (`None` for cluster-scoped kinds or all namespaces).
    pub namespace: Option<String>,
    pub user: UserInfo,
}

impl Target {
    pub fn resource(&self) -> &ResourceInfo {
        &self.plugin.resource
    }

    pub(super) fn api_version(&self) -> String {
        format!("{}/{}", self.resource().group, self.version)
    }

    /// Where the resource's objects are stored.
    pub fn keys(&self) -> ResourceKeys {
        let r = self.resource();
        ResourceKeys::new(&r.group, &r.plural, r.namespaced())
    }

    /// The storage key prefix for this target's objects (all namespaces when `None`).
    pub fn prefix(&self) -> String {
        self.keys().prefix(self.namespace.as_deref())
    }

    pub fn key(&self, name: &str) -> String {
        self.keys().object(self.namespace.as_deref(), name)
    }

    /// The same kind and user in another namespace (a collection delete's items).
    pub(super) fn in_namespace(&self, namespace: Option<String>) -> Target {
        Target {
            plugin: self.plugin.clone(),
            version: self.version.clone(),
            namespace,
            user: self.user.clone(),
        }
    }

    /// The same kind, namespace and user in another version.
    pub fn in_version(&self, version: &str) -> Target {
        Target {
            version: version.to_string(),
            ..self.clone()
        }
    }

    /// What a plugin hook is told about the request.
    pub(super) fn request(
        &self,
        operation: Operation,
        name: &str,
        subresource: Option<&str>,
        dry_run: bool,
    ) -> RequestInfo {
        RequestInfo {
            operation,
            user: self.user.clone(),
            namespace: self
                .namespace
                .clone()
                .filter(|_| self.resource().namespaced()),
            name: name.to_string(),
            subresource: subresource.map(str::to_string),
            dry_run,
        }
    }
}
