//! A kind `Bar` that claims hello.zeng.dev's plural `foos`, which the hello plugin serves.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("hello.zeng.dev", "Bar", "foos")
            .version(VersionBuilder::new("v1").storage())
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
