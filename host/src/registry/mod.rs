//! The registry: the generic request lifecycle, written once for every kind. Plugins
//! only answer questions (default, convert, prepare, validate, print); this module
//! decides the order, talks to storage and keeps kube-apiserver's semantics.
//!
//! - [`target`]: what a request addresses (kind, version, namespace, user) and its keys.
//! - [`options`]: each verb's options and answers; [`continue_token`] for paged lists.
//! - [`store`]: the [`Registry`] and what every verb shares (decoding stored objects,
//!   conversions through the plugin or the watch cache).
//! - The verbs: [`create`], [`update`] (PUT and PATCH), [`apply`] (server-side apply),
//!   [`delete`], [`read`] (GET, LIST, Table cells). Writes start with [`admit`] (the
//!   body against the URL and schema); every create, update and patch records its
//!   manager's fields through [`field_manager`].
//! - Contract 0.2: [`admission`] (the plugin's `admit`, after validation),
//!   [`namespace_lifecycle`] (kube's admission plugin, on the upstream's namespaces),
//!   [`scale`] and [`subresource`] (the `scale` and custom subresources), [`computed`]
//!   (kinds without storage: get, list and watch), [`reads`] (what plugins' reads are
//!   answered from: the watch caches) and [`upstream`] (informers on the cluster this
//!   server is aggregated into).
//! - One owner per mechanism: every read-modify-write runs through
//!   [`guaranteed_update`] (retry on a lost race, as `GuaranteedUpdate`); every write
//!   goes through [`dry_run`]'s `Writes`, so `dryRun=All` is one wrapper, not a branch
//!   per verb; [`meta`] is the generic ObjectMeta handling.
//!
//! create: admit → `default` → storage version → system metadata →
//! `prepare-for-create` → `validate-create` → ObjectMeta validation → the plugin's
//! [`admission`] → store → back to the request's version. update and patch read the stored object and decide from it;
//! unconditional ones retry on conflict.

mod admission;
mod admit;
mod apply;
mod computed;
mod continue_token;
mod create;
mod delete;
mod dry_run;
mod errors;
mod field_manager;
mod guaranteed_update;
pub mod meta;
mod migration;
mod namespace_lifecycle;
mod options;
mod read;
mod reads;
mod scale;
mod store;
mod subresource;
mod target;
mod update;
mod upgrade_gate;
mod upstream;

pub use delete::Deleted;
pub use migration::MigrationProgress;
pub use options::{
    manager_from_user_agent, DeleteOptions, DeleteOptionsWire, FieldValidation, ListOptions,
    ListResult, Outcome, PatchType, Propagation, WriteOptions, WriteVerb, MAX_FIELD_MANAGER_BYTES,
    MAX_JSON_PATCH_OPERATIONS,
};
pub use scale::ScaleChange;
pub use store::Registry;
pub use subresource::SubresourceCall;
pub use target::Target;
pub use upgrade_gate::GateReport;
pub use upstream::{NamespaceState, Upstream};
