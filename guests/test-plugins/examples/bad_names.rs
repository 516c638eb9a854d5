//! describe() with names Kubernetes would reject.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("Bad_Group", "lowercase-kind", "Plural")
            .version(VersionBuilder::new("V1").storage())
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
