//! A cluster-scoped `Namespace` kind in a test group, with `status.phase` writable on
//! create: the upstream cluster's namespaces for NamespaceLifecycle tests (the
//! upstream there is a second instance of this server, which serves no core group).
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("test.wasm-apiserver.dev", "Namespace", "namespaces")
            .cluster_scoped()
            .version(VersionBuilder::new("v1").storage())
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
