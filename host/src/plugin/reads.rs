//! The `reads` import: how a hook reads other objects, and what bounds it.
//!
//! The runtime does not know where objects live: a [`ReadSource`] answers (the
//! registry's, over its watch caches). A hook that may read (`admit`,
//! `serve-subresource`, `compute`) runs with a [`ReadScope`] in its store; it checks
//! each read against the plugin's declared `reads` and counts reads, objects and bytes
//! against the call's budget ([`super::RuntimeLimits::read_calls`],
//! [`super::RuntimeLimits::read_objects`] and [`super::RuntimeLimits::read_bytes`]). A read past the budget ends the call: the
//! client receives a 500 naming the plugin.

use std::sync::Arc;

use super::state::CallState;
use super::world::v0_2::wasm_apiserver::plugin::reads;
use crate::api::resource::ResourceRef;

pub use reads::{ListOptions, ObjectList, ReadError};

/// Where reads are answered.
pub trait ReadSource: Send + Sync {
    /// One object as JSON text, in `r.version`.
    fn get(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<String, ReadError>;

    /// One page of objects, in `r.version`.
    fn list(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ObjectList, ReadError>;
}

/// A hook call's permission to read: where from, what, and how much is left.
pub(crate) struct ReadScope {
    pub(crate) source: Arc<dyn ReadSource>,
    pub(crate) declared: Vec<ResourceRef>,
    pub(crate) budget_calls: usize,
    pub(crate) budget_objects: usize,
    pub(crate) budget_bytes: usize,
    /// What the call has read so far.
    pub(crate) spent: ReadsSpent,
}

/// What one hook call read.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReadsSpent {
    pub(crate) calls: u64,
    pub(crate) objects: u64,
    pub(crate) bytes: u64,
}

/// A hook read more than its call may: the call ends with this error.
#[derive(Debug, thiserror::Error)]
#[error("read past its budget of {limit} {what} in one call")]
pub struct ReadBudgetExceeded {
    pub what: &'static str,
    pub limit: usize,
}

impl ReadScope {
    fn check(&self, r: &reads::ResourceRef) -> Result<ResourceRef, ReadError> {
        let r = ResourceRef {
            group: r.group.clone(),
            version: r.version.clone(),
            resource: r.resource.clone(),
        };
        if self.declared.contains(&r) {
            Ok(r)
        } else {
            Err(ReadError::Undeclared(format!(
                "the plugin did not declare {r} in describe's reads"
            )))
        }
    }

    /// Count what a read returned; past the budget the call ends.
    fn spend(&mut self, objects: usize, bytes: usize) -> wasmtime::Result<()> {
        self.spent.calls += 1;
        self.spent.objects += objects as u64;
        self.spent.bytes += bytes as u64;
        if self.spent.calls > self.budget_calls as u64 {
            return Err(ReadBudgetExceeded {
                what: "reads",
                limit: self.budget_calls,
            }
            .into());
        }
        if self.spent.objects > self.budget_objects as u64 {
            return Err(ReadBudgetExceeded {
                what: "objects",
                limit: self.budget_objects,
            }
            .into());
        }
        if self.spent.bytes > self.budget_bytes as u64 {
            return Err(ReadBudgetExceeded {
                what: "bytes",
                limit: self.budget_bytes,
            }
            .into());
        }
        Ok(())
    }
}

fn not_allowed() -> ReadError {
    ReadError::NotAllowed(
        "reads are available only in the admit, serve-subresource and compute hooks".into(),
    )
}

impl reads::Host for CallState {
    fn get(
        &mut self,
        resource: reads::ResourceRef,
        namespace: Option<String>,
        name: String,
    ) -> wasmtime::Result<Result<String, ReadError>> {
        let Some(scope) = self.reads.as_mut() else {
            return Ok(Err(not_allowed()));
        };
        let r = match scope.check(&resource) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let out = scope.source.get(&r, namespace.as_deref(), &name);
        match &out {
            Ok(obj) => scope.spend(1, obj.len())?,
            Err(_) => scope.spend(0, 0)?,
        }
        Ok(out)
    }

    fn list(
        &mut self,
        resource: reads::ResourceRef,
        namespace: Option<String>,
        options: ListOptions,
    ) -> wasmtime::Result<Result<ObjectList, ReadError>> {
        let Some(scope) = self.reads.as_mut() else {
            return Ok(Err(not_allowed()));
        };
        let r = match scope.check(&resource) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let out = scope.source.list(&r, namespace.as_deref(), &options);
        match &out {
            Ok(page) => scope.spend(page.items.len(), page.items.iter().map(String::len).sum())?,
            Err(_) => scope.spend(0, 0)?,
        }
        Ok(out)
    }
}
