//! describe() with no storage version.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        test_plugins::describe("NoStorage", "nostorages")
            .version(VersionBuilder::new("v1"))
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
