//! A schema whose list and map markers the host cannot merge by: a list map without
//! keys, an unknown list type, a set of objects, an unknown map type. The plugin must
//! fail to load, naming the first of them (the crate's unit tests cover each).
use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{"type": "object", "properties": {"spec": {"type": "object", "properties": {
  "ports": {"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object"}},
  "tags": {"type": "array", "x-kubernetes-list-type": "bag", "items": {"type": "string"}},
  "owners": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "object"}},
  "labels": {"type": "object", "x-kubernetes-map-type": "lumpy"}
}}}}"#;

struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("test.wasm-apiserver.dev", "Marked", "markeds")
            .version(VersionBuilder::new("v1").storage().schema(SCHEMA))
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
