//! The embedded backend: a redb database on local disk.
//!
//! Tables: `objects` (key → revision + value), `history` (revision → the change it
//! made, with the previous value) and `meta` (the current revision, the oldest kept
//! history). History makes a list at an earlier revision possible (consistent
//! pagination) and will feed watch resume; it is trimmed to [`HISTORY_REVISIONS`].
//! Every write is one transaction committed with `Durability::Immediate` (fsync)
//! before it is acknowledged.

use async_trait::async_trait;
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use futures::StreamExt as _;
use tokio::sync::broadcast;

use super::{
    Event, ListPage, ListRequest, Result, Revision, Storage, StorageError, Stored, WatchItem,
    WatchStream,
};

/// How many revisions of history are kept (for lists at an earlier revision and watch
/// resume). Older continue tokens get 410 Expired. Default 10,000 writes.
pub const HISTORY_REVISIONS: u64 = 10_000;

const OBJECTS: TableDefinition<&str, (u64, &[u8])> = TableDefinition::new("objects");
const HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("history");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const COMPACTED: &str = "compacted";

/// One write, as kept in history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    /// The value before the write, with its revision; `None` for a create.
    pub prev: Option<(Revision, Vec<u8>)>,
    /// The value after the write; `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// How many committed writes a storage watch may fall behind the writers before it
/// ends with an error (its consumer then resumes from history).
const FEED_CAPACITY: usize = 4096;

pub struct EmbeddedStore {
    db: Arc<Database>,
    feed: Arc<Feed>,
}

/// Committed writes, in revision order, for storage watches. Writers hold `order`
/// from the start of their transaction until the write is published, so that the feed
/// never sees revision n+1 before n.
struct Feed {
    order: std::sync::Mutex<()>,
    tx: broadcast::Sender<Arc<Event>>,
}

fn internal(e: impl std::fmt::Display) -> StorageError {
    StorageError::Internal(e.to_string())
}

/// A value with the revision of its last write.
type Versioned = (Revision, Vec<u8>);

impl EmbeddedStore {
    /// Open (or create) the database at `dir/objects.redb`.
    pub fn open(dir: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data folder {}", dir.display()))?;
        let path = dir.join("objects.redb");
        let db = Database::create(&path)
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        let tx = db.begin_write()?;
        {
            tx.open_table(OBJECTS)?;
            tx.open_table(HISTORY)?;
            let mut meta = tx.open_table(META)?;
            if meta.get(REVISION)?.is_none() {
                meta.insert(REVISION, 1)?;
                meta.insert(COMPACTED, 1)?;
            }
        }
        tx.commit()?;
        let (tx, _) = broadcast::channel(FEED_CAPACITY);
        Ok(EmbeddedStore {
            db: Arc::new(db),
            feed: Arc::new(Feed {
                order: std::sync::Mutex::new(()),
                tx,
            }),
        })
    }

    /// Run a blocking database operation off the async runtime's workers.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db))
            .await
            .map_err(internal)?
    }

    /// A write through [`Self::write`], published to storage watches once committed.
    async fn publish<T: Send + 'static>(
        &self,
        key: &str,
        f: impl FnOnce(Option<(Revision, Vec<u8>)>) -> Result<Option<Vec<u8>>> + Send + 'static,
        done: impl FnOnce(Revision, Option<(Revision, Vec<u8>)>) -> T + Send + 'static,
    ) -> Result<T> {
        let (db, feed, key) = (self.db.clone(), self.feed.clone(), key.to_string());
        tokio::task::spawn_blocking(move || {
            let _order = crate::sync::lock(&feed.order);
            let mut value = None;
            let (rev, prev) = Self::write(&db, &key, |prev| {
                value = f(prev)?;
                Ok(value.clone())
            })?;
            // No receiver is not an error: nobody watches yet.
            let _ = feed.tx.send(Arc::new(Event {
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

    /// One write transaction: `f` sees the current object at `key` and decides the new
    /// value (`None` deletes). Bumps the revision, records history, fsyncs.
    fn write(
        db: &Database,
        key: &str,
        f: impl FnOnce(Option<Versioned>) -> Result<Option<Vec<u8>>>,
    ) -> Result<(Revision, Option<Versioned>)> {
        let mut tx = db.begin_write().map_err(internal)?;
        tx.set_durability(Durability::Immediate);
        let result = {
            let mut objects = tx.open_table(OBJECTS).map_err(internal)?;
            let mut meta = tx.open_table(META).map_err(internal)?;
            let mut history = tx.open_table(HISTORY).map_err(internal)?;
            let prev = objects
                .get(key)
                .map_err(internal)?
                .map(|v| (v.value().0, v.value().1.to_vec()));
            let value = f(prev.clone())?;
            let rev = meta
                .get(REVISION)
                .map_err(internal)?
                .map(|v| v.value())
                .unwrap_or(1)
                + 1;
            match &value {
                Some(v) => {
                    objects.insert(key, (rev, v.as_slice())).map_err(internal)?;
                }
                None => {
                    objects.remove(key).map_err(internal)?;
                }
            }
            let change = Change {
                key: key.to_string(),
                prev: prev.clone(),
                value,
            };
            let encoded = serde_json::to_vec(&change).map_err(internal)?;
            history.insert(rev, encoded.as_slice()).map_err(internal)?;
            meta.insert(REVISION, rev).map_err(internal)?;
            // Trim history in small steps so that no write pays for a large trim.
            let compacted = meta
                .get(COMPACTED)
                .map_err(internal)?
                .map(|v| v.value())
                .unwrap_or(1);
            let keep_from = rev.saturating_sub(HISTORY_REVISIONS);
            if keep_from > compacted {
                let upto = keep_from.min(compacted + 16);
                for r in compacted..upto {
                    history.remove(r).map_err(internal)?;
                }
                meta.insert(COMPACTED, upto).map_err(internal)?;
            }
            (rev, prev)
        };
        tx.commit().map_err(internal)?;
        Ok(result)
    }

    fn list_blocking(db: &Database, req: &ListRequest) -> Result<ListPage> {
        let tx = db.begin_read().map_err(internal)?;
        let objects = tx.open_table(OBJECTS).map_err(internal)?;
        let meta = tx.open_table(META).map_err(internal)?;
        let current = meta
            .get(REVISION)
            .map_err(internal)?
            .map(|v| v.value())
            .unwrap_or(1);
        let at = req.revision.unwrap_or(current);
        if at > current {
            return Err(StorageError::TooLarge {
                requested: at,
                current,
            });
        }
        let start = req.start.clone().unwrap_or_else(|| req.prefix.clone());
        let in_range = |k: &str| k.starts_with(&req.prefix) && k >= start.as_str();

        // Changes after `at` in the range: each key's state as of `at` is the `prev` of
        // its first change after `at`.
        let mut as_of: BTreeMap<String, Option<(Revision, Vec<u8>)>> = BTreeMap::new();
        if at < current {
            let compacted = meta
                .get(COMPACTED)
                .map_err(internal)?
                .map(|v| v.value())
                .unwrap_or(1);
            if at < compacted {
                return Err(StorageError::Expired {
                    requested: at,
                    oldest: compacted,
                });
            }
            let history = tx.open_table(HISTORY).map_err(internal)?;
            for entry in history.range(at + 1..).map_err(internal)? {
                let (_, v) = entry.map_err(internal)?;
                let change: Change = serde_json::from_slice(v.value()).map_err(internal)?;
                if in_range(&change.key) && !as_of.contains_key(&change.key) {
                    as_of.insert(change.key, change.prev);
                }
            }
        }

        let limit = req.limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut overlay = as_of.into_iter().peekable();
        let mut current_items = objects
            .range(start.as_str()..)
            .map_err(internal)?
            .peekable();
        let mut more = false;
        loop {
            // Merge the current keys with the overlay, in key order.
            let next_current = match current_items.peek() {
                Some(Ok((k, _))) if k.value().starts_with(&req.prefix) => {
                    Some(k.value().to_string())
                }
                Some(Err(_)) => {
                    let e = current_items.next().unwrap().err().unwrap();
                    return Err(internal(e));
                }
                _ => None,
            };
            let next_overlay = overlay.peek().map(|(k, _)| k.clone());
            let (key, state) = match (next_current, next_overlay) {
                (None, None) => break,
                (Some(c), Some(o)) if o <= c => {
                    if o == c {
                        current_items.next();
                    }
                    let (k, s) = overlay.next().unwrap();
                    (k, s)
                }
                (Some(c), _) => {
                    let (_, v) = current_items.next().unwrap().map_err(internal)?;
                    let (rev, value) = v.value();
                    (c, Some((rev, value.to_vec())))
                }
                (None, Some(_)) => overlay.next().unwrap(),
            };
            let Some((revision, value)) = state else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(Stored {
                key,
                value,
                revision,
            });
        }
        Ok(ListPage {
            items,
            revision: at,
            more,
        })
    }

    /// The changes after `from` (exclusive), oldest first, or `Expired`.
    pub async fn changes_since(&self, from: Revision) -> Result<Vec<(Revision, Change)>> {
        self.blocking(move |db| {
            let tx = db.begin_read().map_err(internal)?;
            let meta = tx.open_table(META).map_err(internal)?;
            let compacted = meta
                .get(COMPACTED)
                .map_err(internal)?
                .map(|v| v.value())
                .unwrap_or(1);
            if from < compacted {
                return Err(StorageError::Expired {
                    requested: from,
                    oldest: compacted,
                });
            }
            let history = tx.open_table(HISTORY).map_err(internal)?;
            let mut out = Vec::new();
            for entry in history.range(from + 1..).map_err(internal)? {
                let (k, v) = entry.map_err(internal)?;
                out.push((
                    k.value(),
                    serde_json::from_slice(v.value()).map_err(internal)?,
                ));
            }
            Ok(out)
        })
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
        self.blocking(move |db| {
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
            move |prev| match prev {
                Some(_) => Err(StorageError::AlreadyExists { key: k }),
                None => Ok(Some(value)),
            },
            |rev, _| rev,
        )
        .await
    }

    async fn update(&self, key: &str, value: Vec<u8>, expected: Revision) -> Result<Revision> {
        let k = key.to_string();
        self.publish(
            key,
            move |prev| match prev {
                None => Err(StorageError::NotFound { key: k }),
                Some((current, _)) if current != expected => Err(StorageError::Conflict {
                    key: k,
                    expected,
                    current,
                }),
                Some(_) => Ok(Some(value)),
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
            move |prev| match prev {
                None => Err(StorageError::NotFound { key: k }),
                Some((current, _)) if expected.is_some_and(|e| e != current) => {
                    Err(StorageError::Conflict {
                        key: k,
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
        let mut live = self.feed.tx.subscribe();
        let history = self.changes_since(from).await?;
        let prefix = prefix.to_string();
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<WatchItem>>(256);
        tokio::spawn(async move {
            let item = |rev: Revision, key: &str, make: &dyn Fn() -> Event| {
                if key.starts_with(&prefix) {
                    WatchItem::Event(make())
                } else {
                    WatchItem::Progress(rev)
                }
            };
            let mut last = from;
            for (rev, c) in history {
                last = rev;
                let out = item(rev, &c.key, &|| Event {
                    key: c.key.clone(),
                    revision: rev,
                    value: c.value.clone(),
                    prev: c.prev.clone(),
                });
                if tx.send(Ok(out)).await.is_err() {
                    return;
                }
            }
            loop {
                let next = tokio::select! {
                    next = live.recv() => next,
                    _ = tx.closed() => return,
                };
                let e = match next {
                    Ok(e) => e,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        let _ = tx
                            .send(Err(StorageError::Internal(format!(
                                "the watch fell {n} writes behind; resume from revision {last}"
                            ))))
                            .await;
                        return;
                    }
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if e.revision <= last {
                    continue;
                }
                last = e.revision;
                let out = item(e.revision, &e.key, &|| (*e).clone());
                if tx.send(Ok(out)).await.is_err() {
                    return;
                }
            }
        });
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .boxed())
    }

    async fn current_revision(&self) -> Result<Revision> {
        self.blocking(|db| {
            let tx = db.begin_read().map_err(internal)?;
            let meta = tx.open_table(META).map_err(internal)?;
            Ok(meta
                .get(REVISION)
                .map_err(internal)?
                .map(|v| v.value())
                .unwrap_or(1))
        })
        .await
    }
}
