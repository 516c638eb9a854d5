//! A description whose subresources and reads break the rules: `status` declared as a
//! custom subresource, `runs` declared twice, a subresource without verbs, a scale path
//! that is not a JSONPath, and a computed kind deriving from a kind it does not read.
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        let get = [SubresourceVerb::Get];
        ResourceBuilder::new("test.wasm-apiserver.dev", "Pipeline", "pipelines")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .subresource("status", &get, "Pipeline")
                    .subresource("runs", &get, "RunList")
                    .subresource("runs", &get, "RunList")
                    .subresource("logs", &[], "Log")
                    .scale("spec.replicas", ".status.replicas", None),
            )
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
