//! The embedded backend: a redb database on local disk.
//!
//! Tables: `objects` (key → revision + value), `history` (revision → the change it
//! made, with the previous value) and `meta` (the current revision, the oldest kept
//! history). History makes a list at an earlier revision possible (consistent
//! pagination) and will feed watch resume; it is trimmed to [`HISTORY_REVISIONS`].
//! Every write is one transaction committed with `Durability::Immediate` (fsync)
//! before it is acknowledged.
//!
//! Around the database: a check of the file before it is opened ([`check`]), the
//! quota and the full-disk condition ([`space`]), reopening after an I/O error
//! ([`database`]) and snapshots ([`snapshot`]). docs/embedded-store.md is the
//! operator's side of it.

pub mod check;
mod database;
pub mod file;
mod history;
mod list;
pub mod snapshot;
pub mod space;
mod watch;

use async_trait::async_trait;
use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use file::{FileState, LiveFile};
pub use history::Change;
use space::{Space, WriteKind};

use futures::stream::BoxStream;
use tokio::sync::broadcast;

use super::{
    Event, ListPage, ListRequest, Result, Revision, Storage, StorageError, Stored, WatchStream,
};

/// How many revisions of history are kept (for lists at an earlier revision and watch
/// resume). Older continue tokens get 410 Expired. Default 10,000 writes.
pub const HISTORY_REVISIONS: u64 = 10_000;

const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";
/// The stored objects' bytes (keys and values), for the quota.
const OBJECTS_BYTES: &str = "objects-bytes";

/// The store's file in its folder.
pub const FILE_NAME: &str = "objects.redb";

/// What an object counts against the quota.
fn size(key: &str, value: &[u8]) -> u64 {
    (key.len() + value.len()) as u64
}

/// How many committed writes a storage watch may fall behind the writers before it
/// ends with an error (its consumer then resumes from history).
const FEED_CAPACITY: usize = 4096;

pub struct EmbeddedStore {
    inner: Arc<Inner>,
}

/// The store: its file, the open database and what it knows about them.
struct Inner {
    path: PathBuf,
    /// The store's lock on its file, held across reopens.
    _lock: std::fs::File,
    /// `None` while the database is being reopened after an I/O error.
    db: RwLock<Option<Arc<Open>>>,
    /// Held while reopening, so that one thread does it; when it last tried.
    reopening: std::sync::Mutex<Option<std::time::Instant>>,
    /// I/O failures so far (a snapshot stops when this changes under it).
    failures: std::sync::atomic::AtomicU64,
    feed: Arc<Feed>,
    space: Space,
    snapshot_rate: u64,
}

/// Committed writes, in revision order, for storage watches. Writers hold `order`
/// from the start of their transaction until the write is published, so that the feed
/// never sees revision n+1 before n. `order` guards the last published revision.
struct Feed {
    order: std::sync::Mutex<Revision>,
    tx: broadcast::Sender<Arc<Event>>,
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(e.to_string())
}

/// A value with the revision of its last write.
type Versioned = (Revision, Vec<u8>);

/// An open database, and what its file saw (an I/O error makes it unusable).
pub(super) struct Open {
    db: Database,
    file: Arc<FileState>,
}

impl std::ops::Deref for Open {
    type Target = Database;
    fn deref(&self) -> &Database {
        &self.db
    }
}

/// Open the database in `path` through [`LiveFile`]; a damaged file that makes the
/// database library panic is an error naming the file.
fn open_db(path: &Path) -> anyhow::Result<Open> {
    let state = Arc::new(FileState::default());
    let file = LiveFile::open(path, state.clone())?;
    let db = check::quietly(|| redb::Builder::new().create_with_backend(file))
        .map_err(|panic| check::damaged(path, &panic))?
        .map_err(|e| match e {
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(what)) => {
                check::damaged(path, &what)
            }
            e => anyhow::Error::new(e)
                .context(format!("opening the embedded store {}", path.display())),
        })?;
    Ok(Open { db, file: state })
}

/// Options of the embedded store.
#[derive(Clone, Debug)]
pub struct Options {
    /// Bytes the stored objects may take (keys and values).
    pub quota_bytes: u64,
    /// Check every page and value at start, not only the structure.
    pub verify_full: bool,
    /// Bytes a second a snapshot is written at (0: as fast as it goes).
    pub snapshot_rate: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            quota_bytes: space::DEFAULT_QUOTA_BYTES,
            verify_full: false,
            snapshot_rate: snapshot::DEFAULT_RATE,
        }
    }
}

impl EmbeddedStore {
    /// Open (or create) the database at `dir/objects.redb` with default options.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_with(dir, &Options::default())
    }

    /// Open (or create) the database at `dir/objects.redb`, after checking it: a
    /// damaged file is refused (and left as it is).
    pub fn open_with(dir: &Path, options: &Options) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
        let path = dir.join(FILE_NAME);
        if path.metadata().is_ok_and(|m| m.len() > 0) {
            let report = check::check(&path, options.verify_full)?;
            tracing::info!(file = %path.display(), objects = report.objects,
                revision = report.revision, full = options.verify_full,
                took = ?report.took, "embedded store checked");
        }
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        file::lock(&lock, &path, true)?;
        let db = open_db(&path)?;
        let objects_bytes = Self::init(&db).map_err(|e| anyhow::anyhow!("{e}"))?;
        let revision = Self::revision_in(&db).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        let space = Space::new(options.quota_bytes, dir, &path);
        space.objects_bytes.store(objects_bytes, Ordering::Relaxed);
        Ok(EmbeddedStore {
            inner: Arc::new(Inner {
                path,
                _lock: lock,
                db: RwLock::new(Some(Arc::new(db))),
                reopening: std::sync::Mutex::new(None),
                failures: Default::default(),
                feed: Arc::new(Feed {
                    order: std::sync::Mutex::new(revision),
                    tx,
                }),
                space,
                snapshot_rate: options.snapshot_rate,
            }),
        })
    }

    /// Create the tables of a new store; the stored objects' bytes (counted once for a
    /// store from an earlier version).
    fn init(db: &Database) -> Result<u64> {
        let tx = db.begin_write().map_err(internal)?;
        let bytes = {
            let objects = tx.open_table(OBJECTS).map_err(internal)?;
            tx.open_table(HISTORY).map_err(internal)?;
            let mut meta = tx.open_table(META).map_err(internal)?;
            if meta.get(REVISION).map_err(internal)?.is_none() {
                meta.insert(REVISION, 1).map_err(internal)?;
                meta.insert(COMPACTED, 1).map_err(internal)?;
            }
            let counted = meta
                .get(OBJECTS_BYTES)
                .map_err(internal)?
                .map(|v| v.value());
            match counted {
                Some(n) => n,
                None => {
                    let mut n = 0;
                    for entry in objects.iter().map_err(internal)? {
                        let (k, v) = entry.map_err(internal)?;
                        n += size(k.value(), v.value().1);
                    }
                    meta.insert(OBJECTS_BYTES, n).map_err(internal)?;
                    n
                }
            }
        };
        tx.commit().map_err(internal)?;
        Ok(bytes)
    }

    fn revision_in(db: &Database) -> Result<Revision> {
        history::revision(&db.begin_read().map_err(internal)?)
    }

    /// Run a blocking database operation off the async runtime's workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let open = inner.db()?;
            f(&open).map_err(|e| inner.failed(&open, e))
        })
        .await
        .map_err(internal)?
    }

    /// A point read (one B-tree lookup, almost always in redb's page cache) on the
    /// calling task: a hop to a blocking thread costs more than the read (GET at 32
    /// clients spent a third of the server's time switching threads; BENCHMARKS.md,
    /// session 17). An error, or a database being reopened, goes the blocking way.
    async fn point<T: Send + 'static>(
        &self,
        f: impl Fn(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let open = crate::sync::read(&self.inner.db).clone();
        if let Some(Ok(v)) = open.map(|open| f(&open)) {
            return Ok(v);
        }
        self.blocking(f).await
    }

    /// A write through [`Inner::write`], published to storage watches once committed.
    async fn publish<T: Send + 'static>(
        &self,
        key: &str,
        kind: WriteKind,
        f: impl Fn(Option<(Revision, Vec<u8>)>) -> Result<Option<Vec<u8>>> + Send + 'static,
        done: impl FnOnce(Revision, Option<(Revision, Vec<u8>)>) -> T + Send + 'static,
    ) -> Result<T> {
        let (inner, key) = (self.inner.clone(), key.to_string());
        tokio::task::spawn_blocking(move || {
            let mut published = crate::sync::lock(&inner.feed.order);
            let attempt = |published: &mut Revision| {
                let failures = inner.failures.load(Ordering::Relaxed);
                let result = inner.write(&key, kind, &f);
                if result.is_err() && inner.failures.load(Ordering::Relaxed) != failures {
                    // The database was reopened: publish what committed before the
                    // failure without being answered (an error after a durable commit).
                    inner.catch_up(published);
                }
                result
            };
            let result = match attempt(&mut published) {
                // A delete on a full disk: the reopened database has the pages the
                // last transactions freed; one more try.
                Err(StorageError::NoSpace(_)) if kind == WriteKind::Delete => {
                    attempt(&mut published)
                }
                r => r,
            };
            let (rev, prev, value) = result?;
            if rev > *published + 1 {
                inner.catch_up(&mut published);
                if rev > *published + 1 {
                    tracing::error!(
                        from = *published + 1,
                        to = rev - 1,
                        "writes committed without an answer could not be read back for watchers"
                    );
                }
            }
            *published = rev;
            // No receiver is not an error: nobody watches yet.
            let _ = inner.feed.tx.send(Arc::new(Event {
                key,
                revision: rev,
                value,
                prev: prev.clone(),
            }));
            Ok(done(rev, prev))
        })
        .await
        .map_err(internal)?
    }

    /// The store file's path.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// For a snapshot: whether the database it started on is still the one in use.
    fn alive(&self) -> Box<dyn Fn() -> bool + Send> {
        let (inner, start) = (
            self.inner.clone(),
            self.inner.failures.load(Ordering::Relaxed),
        );
        Box::new(move || inner.failures.load(Ordering::Relaxed) == start)
    }

    /// Write a snapshot into `dir`, keeping the newest `keep` there.
    pub async fn save_snapshot(
        &self,
        dir: PathBuf,
        keep: usize,
    ) -> anyhow::Result<(PathBuf, snapshot::Summary)> {
        let (inner, alive) = (self.inner.clone(), self.alive());
        let (tx, rx) = tokio::sync::oneshot::channel();
        // A thread of its own at a low CPU priority, as snapshots over the API.
        std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                snapshot::yield_to_requests();
                let result = inner
                    .db()
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .and_then(|db| snapshot::save_in(&db, &dir, keep, inner.snapshot_rate, alive));
                let _ = tx.send(result);
            })?;
        rx.await?
    }

    /// The changes after `from` (exclusive), oldest first, or `Expired`.
    pub async fn changes_since(&self, from: Revision) -> Result<Vec<(Revision, Change)>> {
        self.blocking(move |db| history::since(&db.begin_read().map_err(internal)?, from))
            .await
    }

    /// How many objects are stored (all kinds).
    pub async fn len(&self) -> Result<u64> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(internal)?;
            tx.open_table(OBJECTS)
                .map_err(internal)?
                .len()
                .map_err(internal)
        })
        .await
    }
}

#[async_trait]
impl Storage for EmbeddedStore {
    async fn get(&self, key: &str) -> Result<Option<Stored>> {
        let key = key.to_string();
        self.point(move |db| {
            let tx = db.begin_read().map_err(internal)?;
            let objects = tx.open_table(OBJECTS).map_err(internal)?;
            Ok(objects.get(key.as_str()).map_err(internal)?.map(|v| {
                let (revision, value) = v.value();
                Stored {
                    key: key.clone(),
                    value: value.to_vec(),
                    revision,
                }
            }))
        })
        .await
    }

    async fn create(&self, key: &str, value: Vec<u8>) -> Result<Revision> {
        let k = key.to_string();
        self.publish(
            key,
            WriteKind::Grow,
            move |prev| match prev {
                Some(_) => Err(StorageError::AlreadyExists { key: k.clone() }),
                None => Ok(Some(value.clone())),
            },
            |rev, _| rev,
        )
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let k = key.to_string();
        self.publish(
            key,
            WriteKind::Grow,
            move |prev| match prev {
                None => Err(StorageError::NotFound { key: k.clone() }),
                Some((current, _)) if current != expected => Err(StorageError::Conflict {
                    key: k.clone(),
                    expected,
                    current,
                }),
                Some(_) => Ok(Some(value.clone())),
            },
            |rev, _| rev,
        )
        .await
    }

    async fn delete(&self, key: &str, expected: Option<Revision>) -> Result<Stored> {
        let k = key.to_string();
        let out = key.to_string();
        self.publish(
            key,
            WriteKind::Delete,
            move |prev| match prev {
                None => Err(StorageError::NotFound { key: k.clone() }),
                Some((current, _)) if expected.is_some_and(|e| e != current) => {
                    Err(StorageError::Conflict {
                        key: k.clone(),
                        expected: expected.unwrap_or_default(),
                        current,
                    })
                }
                Some(_) => Ok(None),
            },
            move |rev, prev| Stored {
                key: out,
                value: prev.expect("a delete has a previous value").1,
                revision: rev,
            },
        )
        .await
    }

    async fn list(&self, req: ListRequest) -> Result<ListPage> {
        self.blocking(move |db| Self::list_blocking(db, &req)).await
    }

    async fn watch(&self, prefix: &str, from: Revision) -> Result<WatchStream> {
        // Subscribe first, then read history: every write is in one or the other (or
        // both; duplicates are dropped by revision).
        let live = self.inner.feed.tx.subscribe();
        let history = self.changes_since(from).await?;
        Ok(watch::stream(live, history, prefix.to_string(), from))
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.point(Self::revision_in).await
    }

    fn check_name(&self) -> &'static str {
        "storage"
    }

    fn location(&self, key: &str) -> String {
        format!("key {key} in {}", self.inner.path.display())
    }

    fn condition(&self) -> Option<String> {
        self.inner.space.condition()
    }

    fn gauges(&self) -> Vec<(&'static str, &'static str, f64)> {
        let space = &self.inner.space;
        vec![
            (
                "wasm_apiserver_store_objects_bytes",
                "Bytes the stored objects take (keys and values), counted against the quota.",
                space.objects_bytes.load(Ordering::Relaxed) as f64,
            ),
            (
                "wasm_apiserver_store_quota_bytes",
                "The embedded store's quota (--store-quota-bytes).",
                space.quota as f64,
            ),
            (
                "wasm_apiserver_store_file_bytes",
                "The embedded store file's length on disk.",
                crate::sync::read(&self.inner.db)
                    .as_ref()
                    .map_or(0, |o| o.file.len.load(Ordering::Relaxed)) as f64,
            ),
            (
                "wasm_apiserver_store_out_of_space",
                "1 while writes are refused for lack of disk space or quota.",
                f64::from(u8::from(space.condition().is_some())),
            ),
        ]
    }

    async fn snapshot(&self) -> Result<BoxStream<'static, Result<bytes::Bytes>>> {
        let db = {
            let inner = self.inner.clone();
            tokio::task::spawn_blocking(move || inner.db())
                .await
                .map_err(internal)??
        };
        // Spool beside the store when the disk has room for two more copies of the
        // objects (and some): a snapshot must never be what fills it.
        let dir = self.inner.path.parent().map(Path::to_path_buf);
        let room = self.inner.space.objects_bytes.load(Ordering::Relaxed) * 2 + (64 << 20);
        let spool = dir.filter(|d| space::free_bytes(d).is_some_and(|free| free > room));
        Ok(snapshot::stream(
            db,
            self.inner.snapshot_rate,
            self.alive(),
            spool,
        ))
    }
}

#[cfg(test)]
mod tests;
