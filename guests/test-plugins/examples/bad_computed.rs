//! A computed kind that derives from a kind it does not declare in `reads`, and has a
//! status subresource (a computed kind has nothing to write status to).
use wasm_apiserver_sdk::prelude::*;
struct P;
impl Plugin for P {
    fn describe() -> Resource {
        let mut r = ResourceBuilder::new("test.wasm-apiserver.dev", "Summary", "summaries")
            .version(VersionBuilder::new("v1").storage().status_subresource())
            .computed(&[("test.wasm-apiserver.dev", "v1", "pipelines")])
            .build();
        r.reads.clear();
        r
    }
}
wasm_apiserver_sdk::export_plugin!(P);
