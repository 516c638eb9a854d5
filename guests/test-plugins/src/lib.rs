//! Misbehaving plugins for the host's tests. Each file in `examples/` is one real
//! component; `make plugins` builds them into `target/test-plugins/`. The host's tests
//! use every one of them (see `host/tests/plugin_runtime.rs`).

use wasm_apiserver_sdk::prelude::*;

/// A valid describe for test kinds in `test.wasm-apiserver.dev`.
pub fn describe(kind: &str, plural: &str) -> ResourceBuilder {
    ResourceBuilder::new("test.wasm-apiserver.dev", kind, plural)
}

/// Widgets, a kind in two versions for the storage version migration's tests:
/// `v1` says `spec.size`, `v2` says `spec.dimensions.size`; the two builds
/// (`widgets_v1`, `widgets_v2`) differ only in which one is stored.
pub mod widgets {
    use wasm_apiserver_sdk::prelude::*;

    pub fn describe(storage: &str) -> Resource {
        let version = |name: &str| match name == storage {
            true => VersionBuilder::new(name).storage(),
            false => VersionBuilder::new(name),
        };
        super::describe("Widget", "widgets")
            .version(version("v1").column("Size", "integer", ".spec.size", 0))
            .version(version("v2").column("Size", "integer", ".spec.dimensions.size", 0))
            .build()
    }

    /// v1 ↔ v2, losslessly (every other field is carried over as it is).
    pub fn convert(mut obj: Object, to: &str) -> Result<Object, String> {
        let v = obj.value_mut();
        match to {
            "v2" => {
                if let Some(size) = v["spec"].as_object_mut().and_then(|s| s.remove("size")) {
                    v["spec"]["dimensions"] = serde_json::json!({"size": size});
                }
            }
            "v1" => {
                let spec = v["spec"].as_object_mut();
                if let Some(size) = spec
                    .and_then(|s| s.remove("dimensions"))
                    .and_then(|mut d| d.as_object_mut()?.remove("size"))
                {
                    v["spec"]["size"] = size;
                }
            }
            other => return Err(format!("no version {other}")),
        }
        v["apiVersion"] = format!("test.wasm-apiserver.dev/{to}").into();
        Ok(obj)
    }
}
