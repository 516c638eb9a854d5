//! `dryRun=All` in one place, as k8s.io/apiserver's `DryRunnableStorage`: the verbs run
//! their whole pipeline and write through [`Writes`]; on a dry run it answers as
//! storage would (a create of a taken name is still 409, a stale revision still a
//! conflict) but stores nothing, so no watch event is sent and no resourceVersion moves.

use crate::storage::{Revision, Storage, StorageError};

/// The writes of one request, stored or (on a dry run) only checked.
pub(super) struct Writes<'a> {
    pub storage: &'a dyn Storage,
    pub dry_run: bool,
}

impl Writes<'_> {
    /// Store a new object; its revision, or `None` on a dry run (the answer then
    /// carries no resourceVersion, as kube-apiserver's).
    pub async fn create(
        &self,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Option<Revision>, StorageError> {
        if !self.dry_run {
            return self.storage.create(key, value).await.map(Some);
        }
        match self.storage.get(key).await? {
            Some(_) => Err(StorageError::AlreadyExists { key: key.into() }),
            None => Ok(None),
        }
    }

    /// Replace the object stored at `expected`; the revision the object now has (on a
    /// dry run, the one it keeps).
    pub async fn update(
        &self,
        key: &str,
        value: Vec<u8>,
        expected: Revision,
    ) -> Result<Revision, StorageError> {
        if !self.dry_run {
            return self.storage.update(key, value, expected).await;
        }
        self.expect_at(key, expected).await.map(|()| expected)
    }

    /// Remove the object stored at `expected`; the revision of the removal (on a dry
    /// run, the object's own).
    pub async fn delete(&self, key: &str, expected: Revision) -> Result<Revision, StorageError> {
        if !self.dry_run {
            return self
                .storage
                .delete(key, Some(expected))
                .await
                .map(|s| s.revision);
        }
        self.expect_at(key, expected).await.map(|()| expected)
    }

    /// The precondition a real write would check.
    async fn expect_at(&self, key: &str, expected: Revision) -> Result<(), StorageError> {
        match self.storage.get(key).await? {
            None => Err(StorageError::NotFound { key: key.into() }),
            Some(s) if s.revision != expected => Err(StorageError::Conflict {
                key: key.into(),
                expected,
                current: s.revision,
            }),
            Some(_) => Ok(()),
        }
    }
}
