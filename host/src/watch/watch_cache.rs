//! The watch cache proper, as k8s.io/apiserver's `watch_cache.go`: the resource's
//! current objects and the window of recent events (`State`), the watchers
//! registered to receive them (`Slot`), and the lookups that wait until the cache
//! is ready or has reached a resourceVersion.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use tokio::sync::mpsc;

use super::{CachedObject, Cacher, Encoding, Result, WatchError};
use crate::storage::Revision;

/// The type of a watch event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change of the resource, shared by every watcher.
pub struct CachedEvent {
    pub revision: Revision,
    pub kind: EventType,
    /// The new state; for a delete, the last state stamped with the delete's revision.
    pub object: Arc<CachedObject>,
    /// The state before a modification (as it was stored).
    pub prev: Option<Arc<CachedObject>>,
}

/// What the dispatcher hands a watcher.
pub(crate) enum Item {
    Event(Arc<CachedEvent>),
    Bookmark(Revision),
}

pub(super) struct Slot {
    pub(super) tx: mpsc::Sender<Item>,
    pub(super) encoding: Encoding,
    pub(super) bookmarks: bool,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) ready: bool,
    /// Objects by key.
    pub(super) store: BTreeMap<String, Arc<CachedObject>>,
    /// Recent events, oldest first.
    pub(super) window: VecDeque<Arc<CachedEvent>>,
    /// Every event after this revision is in `window`.
    pub(super) window_start: Revision,
    /// The revision the cache has caught up with.
    pub(super) revision: Revision,
    pub(super) watchers: HashMap<u64, Slot>,
    /// How many watchers use each encoding: what the dispatcher pre-encodes.
    pub(super) encodings: HashMap<Encoding, usize>,
    pub(super) next_id: u64,
}

impl Cacher {
    /// Wait until the cache has reached `rev`, at most `fresh_wait`.
    pub(super) async fn wait_for(&self, rev: Revision) -> Result<()> {
        let mut rx = self.revision.subscribe();
        let reached = tokio::time::timeout(
            self.settings.fresh_wait,
            rx.wait_for(|r| *r >= rev && *r > 0),
        )
        .await
        .is_ok_and(|r| r.is_ok());
        match reached {
            true => Ok(()),
            _ => {
                let current = self.revision();
                Err(WatchError::TooLarge {
                    requested: rev,
                    current,
                })
            }
        }
    }

    /// Wait until the cache has caught up with storage's current revision: what a
    /// consistent read from the cache needs.
    pub async fn wait_fresh(&self) -> Result<Revision> {
        let current = self
            .storage
            .current_revision()
            .await
            .map_err(|e| WatchError::Storage {
                resource: Box::new(self.plugin().resource.clone()),
                error: e,
            })?;
        self.wait_for(current).await?;
        Ok(current)
    }

    /// Wait until the first list is loaded.
    pub(super) async fn wait_ready(&self) -> Result<()> {
        self.wait_for(1).await.map_err(|_| WatchError::NotReady {
            resource: self.plugin().resource.qualified_plural(),
        })
    }

    /// The object at `key` as the cache holds it, once the cache has reached `min`.
    pub async fn get(&self, key: &str, min: Revision) -> Result<Option<Arc<CachedObject>>> {
        self.wait_ready().await?;
        if min > 0 {
            self.wait_for(min).await?;
        }
        Ok(self.lock().store.get(key).cloned())
    }

    /// The objects under `prefix` as the cache holds them (a list at
    /// `resourceVersion=0`), and the cache's revision.
    pub async fn list(&self, prefix: &str) -> Result<(Vec<Arc<CachedObject>>, Revision)> {
        self.wait_ready().await?;
        let st = self.lock();
        let items = st
            .store
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(_, o)| o.clone())
            .collect();
        Ok((items, st.revision))
    }

    /// At most `limit` (0: all) objects under `prefix` that `keep` selects, from key
    /// `start` on (inclusive), as the cache holds them now; with the key to continue
    /// from when more may follow, and the cache's revision.
    pub fn page(
        &self,
        prefix: &str,
        start: Option<&str>,
        limit: usize,
        keep: impl Fn(&CachedObject) -> bool,
    ) -> (Vec<Arc<CachedObject>>, Option<String>, Revision) {
        let st = self.lock();
        let from = start.map_or_else(|| prefix.to_string(), str::to_string);
        let mut items = Vec::new();
        let mut next = None;
        for (key, obj) in st
            .store
            .range(from..)
            .take_while(|(k, _)| k.starts_with(prefix))
        {
            if !keep(obj) {
                continue;
            }
            if limit > 0 && items.len() == limit {
                next = Some(key.clone());
                break;
            }
            items.push(obj.clone());
        }
        (items, next, st.revision)
    }

    /// The object the cache holds at `key` now, without waiting for the cache to be
    /// ready or current (`None` then).
    pub fn current(&self, key: &str) -> Option<Arc<CachedObject>> {
        self.lock().store.get(key).cloned()
    }
}
