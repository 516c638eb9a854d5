//! Every read-modify-write of one object (update, patch, delete) goes through
//! [`Registry::guaranteed_update`], as every one in k8s.io/apiserver goes through
//! `GuaranteedUpdate`: read the current object, decide what to do with it (a plain
//! function of that object: plugin hooks, no I/O), then write with the revision read as
//! the precondition. When another writer won the race, read and decide again.

use serde_json::Value;

use super::dry_run::Writes;
use super::store::{encode, set_rv, Registry};
use super::target::Target;
use crate::api::{ApiError, ApiResult};
use crate::storage::{Revision, StorageError};

/// How often a decision is retried after losing a race to another writer.
const MAX_ATTEMPTS: usize = 16;

/// What a decision does with the object it was shown (all in the storage version).
pub(super) enum Action {
    /// Nothing changes: answer with this object; no write, the resourceVersion stays.
    Unchanged(Value),
    /// Store this object in place of the current one.
    Update(Value),
    /// Remove the object; answer with this, its last state.
    Delete(Value),
}

/// Whether a lost race is retried with a fresh read.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum OnConflict {
    /// Read again and decide again (the client gave no resourceVersion).
    Retry,
    /// Answer 409 Conflict (the client's precondition no longer holds).
    Fail,
}

impl Registry {
    /// Read `name`, let `decide` choose an [`Action`] from the current object (decoded,
    /// with its resourceVersion) and its revision, and carry it out through `writes`.
    /// Returns the object as answered, in the storage version, with its new revision.
    pub(super) async fn guaranteed_update(
        &self,
        t: &Target,
        name: &str,
        writes: &Writes<'_>,
        on_conflict: OnConflict,
        mut decide: impl FnMut(Value, Revision) -> ApiResult<Action>,
    ) -> ApiResult<Value> {
        let r = t.resource();
        let key = t.key(name);
        for _ in 0..MAX_ATTEMPTS {
            let current = self.read_current(t, name).await?;
            let obj = self.decode_stored(t, &current)?;
            let done = match decide(obj, current.revision)? {
                Action::Unchanged(obj) => Ok(obj),
                Action::Update(mut obj) => writes
                    .update(&key, encode(&obj), current.revision)
                    .await
                    .map(|rev| {
                        set_rv(&mut obj, rev);
                        obj
                    }),
                Action::Delete(mut obj) => writes.delete(&key, current.revision).await.map(|rev| {
                    set_rv(&mut obj, rev);
                    obj
                }),
            };
            match done {
                Ok(obj) => return Ok(obj),
                Err(StorageError::Conflict { .. }) if on_conflict == OnConflict::Retry => {}
                Err(e) => return Err(ApiError::from_storage(e, r, name)),
            }
        }
        Err(ApiError::modified(r, name))
    }
}
