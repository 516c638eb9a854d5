//! Storage: one small, backend-neutral trait with resourceVersion semantics, and its
//! backends. The embedded backend ([`embedded::EmbeddedStore`]) is the default; the
//! etcd backend ([`etcd::EtcdStore`]) is for production and for several replicas.
//!
//! Keys are `/<group>/<plural>/<namespace>/<name>` (no namespace segment for
//! cluster-scoped kinds); values are objects in their storage version, as JSON, without
//! `metadata.resourceVersion` (the revision is the store's, added on the way out).
//! A revision is a single counter for the whole store, bumped by every write; an object's
//! resourceVersion is the revision of its last write.

pub mod embedded;
pub mod etcd;
mod key;

pub use key::ResourceKeys;

use async_trait::async_trait;
use futures::stream::BoxStream;

pub type Revision = u64;

/// One stored object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    pub key: String,
    pub value: Vec<u8>,
    /// The revision of the object's last write (its resourceVersion).
    pub revision: Revision,
}

/// A page request. Keys are listed in byte order.
#[derive(Clone, Debug, Default)]
pub struct ListRequest {
    /// Only keys starting with this.
    pub prefix: String,
    /// Start at this key (inclusive); `None` starts at the prefix.
    pub start: Option<String>,
    /// At most this many items; `None` for all.
    pub limit: Option<usize>,
    /// Read as of this revision (for consistent pagination); `None` for the latest.
    pub revision: Option<Revision>,
}

/// A page of a list.
#[derive(Clone, Debug, Default)]
pub struct ListPage {
    pub items: Vec<Stored>,
    /// The revision the page was read at: the list's resourceVersion.
    pub revision: Revision,
    /// Whether keys remain after the last item.
    pub more: bool,
}

/// One write under a watched prefix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub key: String,
    /// The revision of the write.
    pub revision: Revision,
    /// The value after the write; `None` for a delete.
    pub value: Option<Vec<u8>>,
    /// The value before the write, with its revision; `None` for a create.
    pub prev: Option<(Revision, Vec<u8>)>,
}

/// What a storage watch yields, in revision order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WatchItem {
    Event(Event),
    /// The store has reached this revision: no event under the prefix is missing up
    /// to it (a write elsewhere, or a progress notification). Feeds bookmarks.
    Progress(Revision),
}

/// A storage watch: ends with an error (then resume from the last revision seen), or
/// when the receiver is dropped.
pub type WatchStream = BoxStream<'static, Result<WatchItem>>;

/// What went wrong, in terms the REST layer maps to Status codes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("key {key} not found")]
    NotFound { key: String },
    #[error("key {key} already exists")]
    AlreadyExists { key: String },
    /// A precondition on the revision failed: the object changed since it was read.
    #[error("key {key} is at revision {current}, not {expected}")]
    Conflict {
        key: String,
        expected: Revision,
        current: Revision,
    },
    /// The revision asked for has been compacted away.
    #[error("revision {requested} has been compacted (oldest available: {oldest})")]
    Expired {
        requested: Revision,
        /// The oldest revision kept; 0 when the backend does not say.
        oldest: Revision,
    },
    /// The revision asked for is newer than the store's.
    #[error("revision {requested} is newer than the current revision {current}")]
    TooLarge {
        requested: Revision,
        current: Revision,
    },
    #[error("storage is unavailable: {0}")]
    Unavailable(String),
    /// The store is out of space (its quota, or the disk): writes that add bytes are
    /// refused; reads and deletes are served.
    #[error("{0}")]
    NoSpace(String),
    #[error("storage error: {0}")]
    Internal(String),
    /// The backend does not do this.
    #[error("{0}")]
    Unsupported(String),
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// The storage contract every backend implements; the conformance suite in
/// `tests/storage_conformance.rs` checks it.
#[async_trait]
pub trait Storage: Send + Sync + 'static {
    /// The object at `key`, or `None`.
    async fn get(&self, key: &str) -> Result<Option<Stored>>;

    /// Store a new object; `AlreadyExists` when the key is taken. Returns its revision.
    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision>;

    /// Replace the object at `key` if it is still at revision `expected`: `NotFound` when
    /// gone, `Conflict` when changed. Returns the new revision.
    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision>;

    /// Remove the object at `key`, if `expected` is `None` or still its revision.
    /// Returns the removed object, with the revision of the delete.
    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Stored>;

    /// A page of objects under a prefix, optionally as of an earlier revision.
    async fn list(&self, req: ListRequest) -> Result<ListPage>;

    /// Every write under `prefix` after revision `from` (exclusive), in revision order,
    /// then new writes as they commit. `Expired` when `from` has been compacted.
    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream>;

    /// The store's current revision.
    async fn current_revision(&self) -> Result<Revision>;

    /// Whether the backend is healthy, for `/readyz`.
    async fn check(&self) -> Result<()> {
        self.current_revision().await.map(|_| ())
    }

    /// The name of [`Self::check`] on `/readyz`.
    fn check_name(&self) -> &'static str {
        "storage"
    }

    /// Where `key` lives, for error messages (an operator finds it there).
    fn location(&self, key: &str) -> String {
        format!("key {key}")
    }

    /// What limits the store now (out of space), for `/readyz`; `None` when nothing.
    fn condition(&self) -> Option<String> {
        None
    }

    /// The backend's gauges for `/metrics`: name, help, value.
    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        Vec::new()
    }

    /// A consistent snapshot of every object, as a stream of bytes in the format of
    /// [`embedded::snapshot`], taken without stopping writers.
    async fn snapshot(&self) -> Result<BoxStream<'static, Result<bytes::Bytes>>> {
        Err(StorageError::Unsupported(
            "this server keeps its objects in etcd: take snapshots with `etcdctl snapshot save`"
                .into(),
        ))
    }
}
