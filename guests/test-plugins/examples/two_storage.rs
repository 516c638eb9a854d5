//! describe() with two storage versions.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        test_plugins::describe("TwoStorage", "twostorages")
            .version(VersionBuilder::new("v1").storage())
            .version(VersionBuilder::new("v2").storage())
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
