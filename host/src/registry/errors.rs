//! How the registry's lower layers' errors read as a `metav1.Status`: storage errors
//! (named after the object they concern) and plugin failures. Kept here so that the
//! `api` vocabulary knows nothing of storage or the plugin runtime.

use crate::api::{ApiError, ResourceInfo};
use crate::plugin::PluginError;
use crate::storage::StorageError;

impl ApiError {
    /// Map a storage error that concerns no object (a snapshot, a health check).
    pub fn from_storage_plain(e: StorageError) -> Self {
        match e {
            StorageError::Unavailable(m) => Self::unavailable(m),
            StorageError::NoSpace(m) => Self::new(500, "", m),
            StorageError::Unsupported(m) => Self::new(400, "BadRequest", m),
            e => Self::internal(e.to_string()),
        }
    }

    /// Map a storage error for an object of `r` named `name`.
    pub fn from_storage(e: StorageError, r: &ResourceInfo, name: &str) -> Self {
        match e {
            StorageError::NotFound { .. } => Self::not_found(r, name),
            StorageError::AlreadyExists { .. } => Self::already_exists(r, name),
            StorageError::Conflict { .. } => Self::modified(r, name),
            StorageError::Expired { requested, .. } => Self::expired(format!(
                "The resourceVersion for the provided list is too old: {requested}"
            )),
            StorageError::TooLarge { requested, current } => {
                Self::too_large_resource_version(requested, current)
            }
            StorageError::Unavailable(m) => Self::unavailable(m),
            StorageError::Internal(m) => Self::internal(m),
            // kube-apiserver passes etcd's NOSPACE error through as a 500 whose message
            // is the cause; the same here, for etcd's alarm and the embedded store.
            StorageError::NoSpace(m) => Self::new(500, "", m),
            StorageError::Unsupported(m) => Self::new(400, "BadRequest", m),
        }
    }
}

impl From<PluginError> for ApiError {
    fn from(e: PluginError) -> Self {
        match &e {
            // kube-apiserver's answer when a backend is out of service, with a delay
            // clients honour (Retry-After).
            PluginError::Quarantined { .. } => ApiError::unavailable(format!(
                "{e}; reads in the storage version and deletes still work; load a fixed \
                 build to end the quarantine"
            ))
            // One second: client-go retries a 5xx with Retry-After (up to 10 times), so
            // a long delay would stall every client of the kind instead of failing.
            .with_details(serde_json::json!({"retryAfterSeconds": 1})),
            PluginError::Busy { .. } => ApiError::new(429, "TooManyRequests", e.to_string())
                .with_details(serde_json::json!({"retryAfterSeconds": 1})),
            _ => {
                tracing::warn!(error = %e, "plugin failure");
                ApiError::internal(e.to_string())
            }
        }
    }
}
