//! Server-side apply for JSON objects described by an OpenAPI schema, in the way
//! sigs.k8s.io/structured-merge-diff and k8s.io/apimachinery's field manager do it:
//!
//! - [`schema`]: the shape merging needs (list and map semantics), read from the
//!   OpenAPI v3 markers CRDs use;
//! - [`path`] and [`set`]: field paths and sets of them, and their `FieldsV1` wire form;
//! - [`typed`]: what a value owns (its field set), how two values differ, how a
//!   configuration merges into a live object, and how fields are removed;
//! - [`managed`]: `metadata.managedFields`, decoded and encoded as kube-apiserver does;
//! - [`updater`]: updates and applies with ownership, conflicts and removal of fields
//!   a manager stopped applying, across versions through a [`updater::Versions`];
//! - [`field_manager`]: kube-apiserver's field manager around the updater (manager
//!   identifiers, times, stripped metadata, before-first-apply, the manager cap,
//!   kubectl's move from client-side apply);
//! - [`strategic`]: strategic merge patch (`application/strategic-merge-patch+json`)
//!   driven by the same schema.
//!
//! It knows nothing of HTTP or storage: the host calls it with objects and versions.

pub mod field_manager;
pub mod managed;
pub mod path;
pub mod schema;
pub mod set;
pub mod strategic;
pub mod typed;
pub mod updater;

pub use schema::{ListKind, Type};
