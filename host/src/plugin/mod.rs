//! The plugin runtime: loads resource plugins (WebAssembly components), sandboxes them
//! and calls their hooks.
//!
//! Embedding reads top to bottom, as wasmtime's does: [`PluginEngine`] (Config → Engine →
//! Linker, plus the epoch ticker and the precompiled cache) → [`Plugin::load`]
//! (Component → InstancePre → describe → [`ResourceInfo`]) → [`Plugin::instance`]
//! (one request's hooks; each call checks out an idle instance from the plugin's pool,
//! or a fresh Store and instance) → [`PluginInstance`]'s typed hooks.
//!
//! Isolation: an instance serves one hook call at a time and at most
//! [`RuntimeLimits::instance_reuse`] calls, and is dropped after any failure that
//! may have broken it (the policy is on [`PluginInstance`]). Fresh instances come from
//! the pooling allocator with copy-on-write memory images (see BENCHMARKS.md). Plugins
//! see WASI only as far as a component built by Rust's `wasm32-wasip2`, componentize-py
//! or componentize-js needs to instantiate: no preopened directories, no environment,
//! no arguments, no sockets; each line a plugin writes to stdout or stderr goes to the
//! server log with the plugin's name.

mod budget;
mod catalog;
mod describe;
mod engine;
mod health;
mod instance;
mod loaded;
mod output;
mod reads;
mod state;
mod world;

pub use crate::api::resource::{
    is_dns_label, is_dns_subdomain, PrinterColumn, ResourceInfo, Scope, VersionInfo,
};
pub use crate::api::Cell;
pub use budget::{Budget, GateMode, PluginSettings};
pub use catalog::{LoadError, PluginCatalog, PluginRegistry, Reload};
pub use engine::{Compiler, PluginEngine, RuntimeLimits};
pub use health::{HookStats, Quarantine, QuarantinePolicy, HOOKS, LATENCY_BUCKETS};
pub use instance::{
    Admission, AdmissionRequest, ComputeRequest, Denial, FieldError, FieldErrorType, Operation,
    PluginInstance, RequestInfo, SubresourceRequest, UserInfo, Validation,
};
pub use loaded::Plugin;
pub use reads::{
    ListOptions as ReadListOptions, ObjectList, ReadBudgetExceeded, ReadError, ReadSource,
};
pub use state::PluginStats;
pub use world::WORLDS;

/// The current world's types, as the rest of the host uses them.
pub use world::v0_2::wasm_apiserver::plugin::types as wit;

/// A hook call that failed. Every variant names the plugin file and the hook, so that the
/// 500 a client receives says which plugin misbehaved and how.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The guest trapped (panic, unreachable, out-of-bounds access, ...).
    #[error("plugin {plugin}: {hook} trapped: {message}")]
    Trap {
        plugin: String,
        hook: &'static str,
        message: String,
    },
    /// The hook ran past [`RuntimeLimits::call_deadline`].
    #[error("plugin {plugin}: {hook} did not return within its deadline of {deadline_ms} ms")]
    Deadline {
        plugin: String,
        hook: &'static str,
        deadline_ms: u64,
    },
    /// The guest tried to grow its memory past [`RuntimeLimits::memory_bytes`].
    #[error("plugin {plugin}: {hook} exceeded its memory limit of {limit_mib} MiB")]
    OutOfMemory {
        plugin: String,
        hook: &'static str,
        limit_mib: usize,
    },
    /// The hook returned an error on purpose (`Err` from the guest).
    #[error("plugin {plugin}: {hook} failed: {message}")]
    Hook {
        plugin: String,
        hook: &'static str,
        message: String,
    },
    /// The hook returned something that breaks the contract (not JSON, wrong length...).
    #[error("plugin {plugin}: {hook} returned a malformed result: {message}")]
    Malformed {
        plugin: String,
        hook: &'static str,
        message: String,
    },
    /// The hook read more objects or bytes than one call may.
    #[error("plugin {plugin}: {hook} {cause}")]
    ReadBudget {
        plugin: String,
        hook: &'static str,
        cause: ReadBudgetExceeded,
    },
    /// No instance could be created (e.g. the pool is exhausted).
    #[error("plugin {plugin}: cannot instantiate: {message}")]
    Instantiate { plugin: String, message: String },
    /// The build is quarantined: its hooks are not called.
    #[error("plugin {plugin} is quarantined: {cause}")]
    Quarantined { plugin: String, cause: String },
    /// Its `maxConcurrentInstances` calls were running and none ended in time.
    #[error("plugin {plugin}: all {limit} of its concurrent hook calls (maxConcurrentInstances) are busy, and none ended within {wait_ms} ms")]
    Busy {
        plugin: String,
        limit: usize,
        wait_ms: u64,
    },
}

pub type Result<T, E = PluginError> = std::result::Result<T, E>;

impl From<FieldError> for crate::api::FieldError {
    fn from(e: crate::plugin::FieldError) -> Self {
        crate::api::FieldError {
            type_: field_error_type(e.type_),
            field: e.field,
            bad_value: e.bad_value,
            detail: e.detail,
            supported_values: e.supported_values,
        }
    }
}

/// A WIT field error type in the host's terms.
fn field_error_type(t: FieldErrorType) -> crate::api::FieldErrorType {
    use crate::api::FieldErrorType as T;
    match t {
        FieldErrorType::Required => T::Required,
        FieldErrorType::Invalid => T::Invalid,
        FieldErrorType::Forbidden => T::Forbidden,
        FieldErrorType::Duplicate => T::Duplicate,
        FieldErrorType::NotSupported => T::NotSupported,
        FieldErrorType::TooLong => T::TooLong,
        FieldErrorType::TooMany => T::TooMany,
        FieldErrorType::NotFound => T::NotFound,
    }
}
