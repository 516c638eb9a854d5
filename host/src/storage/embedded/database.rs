//! The open database: the one write transaction, and reopening after an I/O error.
//!
//! redb refuses every call after an I/O error; the store then reopens the file (its
//! last commit is intact: a failed commit is never half-applied) and goes on, so a
//! full disk that is freed needs no restart.

use redb::{Database, Durability, ReadableTable};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::Open;

use super::space::WriteKind;
use super::{
    internal, open_db, size, Change, Inner, Versioned, COMPACTED, HISTORY, HISTORY_REVISIONS, META,
    OBJECTS, OBJECTS_BYTES, REVISION,
};
use crate::storage::{Event, Result, Revision, StorageError};

impl Inner {
    /// The open database; after a reopen that failed, tries again (at most once a
    /// second).
    pub(super) fn db(&self) -> Result<Arc<Open>> {
        if let Some(open) = crate::sync::read(&self.db).as_ref() {
            return Ok(open.clone());
        }
        self.reopen(None)
    }

    /// An operation on `open` failed with `e`: when the file failed under it, reopen
    /// the database (once, whoever sees it first) and say what happened. Every
    /// caller that met the failure gets the same answer.
    pub(super) fn failed(&self, open: &Arc<Open>, e: StorageError) -> StorageError {
        let Some(cause) = open.file.failure() else {
            return e;
        };
        let reopened = self.reopen(Some(open));
        if cause.no_space {
            return self.space.out_of_disk(&cause);
        }
        match reopened {
            Ok(_) => StorageError::Unavailable(format!(
                "the embedded store {} met an I/O error ({}) and was reopened; retry",
                self.path.display(),
                cause.message
            )),
            Err(e) => e,
        }
    }

    /// Open the database anew: in place of `failed` (unless another thread already
    /// did), or because the slot is empty. The failed database refuses every call
    /// (redb's rule after an I/O error) and writes nothing when dropped, so requests
    /// still holding it only fail; the store's lock on the file stays held
    /// throughout.
    fn reopen(&self, failed: Option<&Arc<Open>>) -> Result<Arc<Open>> {
        let started = Instant::now();
        let mut last_try = crate::sync::lock(&self.reopening);
        let current = crate::sync::read(&self.db).clone();
        match (failed, current) {
            (Some(f), Some(c)) if !Arc::ptr_eq(f, &c) => return Ok(c),
            (None, Some(c)) => return Ok(c),
            // Not more than one attempt a second after a reopen failed.
            (None, None) if last_try.is_some_and(|t| t.elapsed() < Duration::from_secs(1)) => {
                return Err(StorageError::Unavailable(format!(
                    "the embedded store {} could not be reopened after an I/O error; retry",
                    self.path.display()
                )));
            }
            _ => {}
        }
        if let Some(f) = failed {
            let cause = f.file.failure().map(|c| c.message).unwrap_or_default();
            tracing::warn!(file = %self.path.display(), error = %cause,
                "the embedded store met an I/O error; reopening it");
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        *last_try = Some(Instant::now());
        *crate::sync::write(&self.db) = None;
        match open_db(&self.path) {
            Ok(open) => {
                let open = Arc::new(open);
                *crate::sync::write(&self.db) = Some(open.clone());
                tracing::info!(file = %self.path.display(), took = ?started.elapsed(),
                    "the embedded store was reopened");
                Ok(open)
            }
            Err(e) => {
                tracing::error!(file = %self.path.display(), error = %format!("{e:#}"),
                    "reopening the embedded store failed; retrying on the next request");
                Err(StorageError::Unavailable(format!(
                    "the embedded store {} could not be reopened: {e:#}",
                    self.path.display()
                )))
            }
        }
    }

    /// Publish to storage watches the writes that committed after `published`
    /// without being answered (a commit whose error came after it was durable).
    pub(super) fn catch_up(&self, published: &mut Revision) {
        let Ok(db) = self.db() else { return };
        let changes = db
            .begin_read()
            .map_err(internal)
            .and_then(|tx| super::history::since(&tx, *published));
        for (revision, c) in changes.unwrap_or_default() {
            tracing::warn!(key = %c.key, revision,
                "a write that reported an error had committed; publishing it");
            *published = revision;
            let _ = self.feed.tx.send(Arc::new(Event {
                key: c.key,
                revision,
                value: c.value,
                prev: c.prev,
            }));
        }
    }

    /// One write transaction: `f` sees the current object at `key` and decides the new
    /// value (`None` deletes). Checks the quota, bumps the revision, records history,
    /// fsyncs. Returns the revision, the previous object and the new value.
    pub(super) fn write(
        &self,
        key: &str,
        kind: WriteKind,
        f: &dyn Fn(Option<Versioned>) -> Result<Option<Vec<u8>>>,
    ) -> Result<(Revision, Option<Versioned>, Option<Vec<u8>>)> {
        self.space.admit(kind)?;
        let open = self.db()?;
        let result = Self::transaction(&open, key, f, &self.space);
        let result = result.map_err(|e| self.failed(&open, e))?;
        self.space.committed(kind);
        Ok(result)
    }

    fn transaction(
        db: &Database,
        key: &str,
        f: &dyn Fn(Option<Versioned>) -> Result<Option<Vec<u8>>>,
        space: &super::Space,
    ) -> Result<(Revision, Option<Versioned>, Option<Vec<u8>>)> {
        let mut tx = db.begin_write().map_err(internal)?;
        tx.set_durability(Durability::Immediate);
        let (result, bytes) = {
            let mut objects = tx.open_table(OBJECTS).map_err(internal)?;
            let mut meta = tx.open_table(META).map_err(internal)?;
            let mut history = tx.open_table(HISTORY).map_err(internal)?;
            let prev = objects
                .get(key)
                .map_err(internal)?
                .map(|v| (v.value().0, v.value().1.to_vec()));
            let value = f(prev.clone())?;
            let read = |name| -> Result<Option<u64>> {
                Ok(meta.get(name).map_err(internal)?.map(|v| v.value()))
            };
            let rev = read(REVISION)?.unwrap_or(1) + 1;
            let before = read(OBJECTS_BYTES)?.unwrap_or(0);
            let old = prev.as_ref().map_or(0, |(_, v)| size(key, v));
            let new = value.as_ref().map_or(0, |v| size(key, v));
            let bytes = before - old.min(before) + new;
            // Only a write that adds bytes is held to the quota: shrinking, status
            // updates of the same size and deletes always go through.
            if new > old && bytes > space.quota {
                return Err(space.over_quota(bytes));
            }
            let compacted = read(COMPACTED)?.unwrap_or(1);
            match &value {
                Some(v) => {
                    objects.insert(key, (rev, v.as_slice())).map_err(internal)?;
                }
                None => {
                    objects.remove(key).map_err(internal)?;
                }
            }
            meta.insert(REVISION, rev).map_err(internal)?;
            meta.insert(OBJECTS_BYTES, bytes).map_err(internal)?;
            if space.disk_full() {
                // Out of disk: history goes (its pages free without new ones, and it
                // holds a copy of every recent value), so that deletes give space
                // back. Watchers resuming from before now get 410 and relist.
                drop(history);
                tx.delete_table(HISTORY).map_err(internal)?;
                tx.open_table(HISTORY).map_err(internal)?;
                meta.insert(COMPACTED, rev).map_err(internal)?;
            } else {
                let change = Change {
                    key: key.to_string(),
                    prev: prev.clone(),
                    value: value.clone(),
                };
                history
                    .insert(rev, change.encode().as_slice())
                    .map_err(internal)?;
                // Trim history in small steps so that no write pays for a large trim.
                let keep_from = rev.saturating_sub(HISTORY_REVISIONS);
                if keep_from > compacted {
                    let upto = keep_from.min(compacted + 16);
                    for r in compacted..upto {
                        history.remove(r).map_err(internal)?;
                    }
                    meta.insert(COMPACTED, upto).map_err(internal)?;
                }
            }
            ((rev, prev, value), bytes)
        };
        tx.commit().map_err(internal)?;
        space.objects_bytes.store(bytes, Ordering::Relaxed);
        Ok(result)
    }
}
