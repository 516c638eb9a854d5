//! A kind whose deletes orphan dependents unless the request says otherwise
//! (`default-propagation: orphan`, as kube's ReplicationControllers in `extensions`).
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("test.wasm-apiserver.dev", "Keeper", "keepers")
            .version(VersionBuilder::new("v1").storage())
            .default_propagation(Propagation::Orphan)
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
