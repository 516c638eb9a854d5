//! The test suite of wasm-apiserver that runs from outside the host's modules: the real
//! server binary over real HTTPS with kubectl, kube-rs, a real etcd and real TLS, the
//! plugin runtime and storage backends through their public APIs, and one behaviour
//! table run against the Rust, Python and JavaScript hellos. One binary, a module per
//! area (as wasmtime's `tests/all`); what the modules share is in [`common`].
//!
//! Plugins are built from source by `make plugins` (`make test` does it first).

mod common;

mod admission;
mod apply;
mod auth;
mod devops;
mod embedded_store;
mod etcd;
mod fuzz;
mod hello_behaviour;
mod hostile_requests;
mod hot_reload;
mod kube_rs;
mod kubectl_e2e;
mod lang_plugins;
mod plugin_runtime;
mod plugin_safety;
mod rest_api;
mod schemathesis;
mod storage_conformance;
mod storage_migration;
mod store_snapshots;
mod upstream;
mod watch;
mod watch_cache;
