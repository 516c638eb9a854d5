//! What can go wrong in the watch cache, in its own terms. The HTTP layer turns each
//! into kube-apiserver's `Status` (`From<WatchError> for ApiError`, in
//! `http/errors.rs`); a watch that has started streaming sends it as an ERROR event.

use crate::plugin::{PluginError, ResourceInfo};
use crate::storage::{Revision, StorageError};

/// A watch-cache failure.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// A watch resumes from a resourceVersion older than the cache's window of recent
    /// events: the changes in between are gone, the client must relist (410 Expired).
    #[error("too old resource version: {requested} ({oldest})")]
    Expired {
        requested: Revision,
        /// Every event after this revision is in the window.
        oldest: Revision,
    },
    /// The cache did not reach a resourceVersion (one asked for, or storage's current
    /// one for a consistent read) within `fresh_wait` (504, ResourceVersionTooLarge).
    #[error("Too large resource version: {requested}, current: {current}")]
    TooLarge {
        requested: Revision,
        /// The revision the cache had reached.
        current: Revision,
    },
    /// The cache has not loaded its first list yet (503). `resource` is the resource's
    /// qualified plural, e.g. `widgets.example.com`.
    #[error("the watch cache for {resource} is not ready yet")]
    NotReady { resource: String },
    /// Storage could not say its current revision (what a consistent read from the
    /// cache waits for). `resource` is the cache's: the Status is the one any storage
    /// error of that resource gets.
    #[error("{error}")]
    Storage {
        resource: Box<ResourceInfo>,
        error: StorageError,
    },
    /// A plugin hook (`convert` or `print`) failed while encoding objects.
    #[error(transparent)]
    Plugin(#[from] PluginError),
}

pub type Result<T, E = WatchError> = std::result::Result<T, E>;
