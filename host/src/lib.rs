//! wasm-apiserver: a Kubernetes aggregated apiserver whose resources are WebAssembly
//! components.
//!
//! The layers, outermost first (each module uses only those below it):
//!
//! ```text
//! server   flags, TLS, start-up, hot reload, shutdown
//! http     routes, content negotiation, the REST verbs, discovery and OpenAPI;
//!          maps every lower error to a Status      (auth sits in front of it)
//! registry the generic request lifecycle, written once for all kinds
//! watch    the watch cache, one per resource, over the storage trait
//! plugin   the Wasm runtime the registry and the watch cache call into
//! storage  one trait and its backends (embedded, etcd); its keys
//! api      the kind-independent vocabulary: Status errors, field errors,
//!          selectors, schema checks, Table
//! sync     the one way a lock is taken
//! ```

pub mod api;
pub mod auth;
pub mod http;
pub mod plugin;
pub mod registry;
pub mod server;
pub mod storage;
pub mod sync;
pub mod watch;
