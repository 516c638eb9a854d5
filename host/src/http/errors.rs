//! Errors of the layers below HTTP, as the API's [`ApiError`]: what `?` in a handler
//! (or in the registry) turns them into. Each gets kube-apiserver's code, reason and
//! message.

use crate::api::ApiError;
use crate::watch::WatchError;

impl From<WatchError> for ApiError {
    fn from(e: WatchError) -> Self {
        match e {
            WatchError::Expired { .. } => ApiError::expired(e.to_string()),
            WatchError::TooLarge { requested, current } => {
                ApiError::too_large_resource_version(requested, current)
            }
            WatchError::NotReady { .. } => ApiError::unavailable(e.to_string()),
            WatchError::Storage { resource, error } => ApiError::from_storage(error, &resource, ""),
            WatchError::Plugin(e) => ApiError::from(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::{PluginError, ResourceInfo, Scope};
    use crate::storage::StorageError;

    fn widgets() -> ResourceInfo {
        ResourceInfo {
            group: "example.com".into(),
            kind: "Widget".into(),
            list_kind: "WidgetList".into(),
            plural: "widgets".into(),
            singular: "widget".into(),
            short_names: Vec::new(),
            categories: Vec::new(),
            scope: Scope::Namespaced,
            versions: Vec::new(),
            storage_version: "v1".into(),
            preferred_version: "v1".into(),
            selectable_fields: Vec::new(),
            reads: Vec::new(),
            computed: None,
            default_propagation: None,
        }
    }

    fn hook_failed() -> PluginError {
        PluginError::Hook {
            plugin: "widgets.wasm".into(),
            hook: "convert",
            message: "no".into(),
        }
    }

    /// Each watch error becomes the Status the watch cache built itself when it
    /// answered in `ApiError`s.
    #[test]
    fn watch_errors_are_the_status_kube_apiserver_sends() {
        let r = widgets();
        let cases = [
            (
                WatchError::Expired {
                    requested: 5,
                    oldest: 9,
                },
                ApiError::expired(format!("too old resource version: {} ({})", 5, 9)),
            ),
            (
                WatchError::TooLarge {
                    requested: 12,
                    current: 10,
                },
                ApiError::from_storage(
                    StorageError::TooLarge {
                        requested: 12,
                        current: 10,
                    },
                    &r,
                    "",
                ),
            ),
            (
                WatchError::NotReady {
                    resource: r.qualified_plural(),
                },
                ApiError::unavailable(format!(
                    "the watch cache for {} is not ready yet",
                    r.qualified_plural()
                )),
            ),
            (
                WatchError::Storage {
                    resource: Box::new(r.clone()),
                    error: StorageError::Unavailable("etcd is down".into()),
                },
                ApiError::from_storage(StorageError::Unavailable("etcd is down".into()), &r, ""),
            ),
            (
                WatchError::Storage {
                    resource: Box::new(r.clone()),
                    error: StorageError::NotFound { key: "k".into() },
                },
                ApiError::from_storage(StorageError::NotFound { key: "k".into() }, &r, ""),
            ),
            (
                WatchError::Plugin(hook_failed()),
                ApiError::from(hook_failed()),
            ),
        ];
        for (watch, api) in cases {
            let what = format!("{watch:?}");
            assert_eq!(ApiError::from(watch), api, "{what}");
        }
    }
}
