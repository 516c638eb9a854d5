//! wasm-apiserver: a Kubernetes aggregated apiserver whose resources are WebAssembly
//! components.
//!
//! The layers, outermost first: `server` (flags, TLS, start-up) → `http` (routes,
//! content negotiation, Status errors) → `registry` (the generic request lifecycle,
//! calling plugin hooks) → `storage` (one trait; the embedded backend). `watch` is the watch cache,
//! between the registry and storage. `plugin` is the
//! Wasm runtime the registry calls into. `auth` is delegated authentication and
//! authorization, in front of `http`.

pub mod api;
pub mod auth;
pub mod http;
pub mod plugin;
pub mod registry;
pub mod server;
pub mod storage;
pub mod sync;
pub mod watch;
