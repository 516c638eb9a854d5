//! Misbehaving plugins for the host's tests. Each file in `examples/` is one real
//! component; `make plugins` builds them into `target/test-plugins/`. The host's tests
//! use every one of them (see `host/tests/plugin_runtime.rs`).

use wasm_apiserver_sdk::prelude::*;

/// A valid describe for test kinds in `test.wasm-apiserver.dev`.
pub fn describe(kind: &str, plural: &str) -> ResourceBuilder {
    ResourceBuilder::new("test.wasm-apiserver.dev", kind, plural)
}
