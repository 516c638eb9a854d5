//! A kind whose schema uses every list and map marker, for server-side apply and
//! strategic merge: `ports` is a list map keyed by `name`, `tags` a set,
//! `args` atomic (the CRD default), `selector` an atomic map, `env` a granular map.
//! `spec` is required. It has a status subresource and a scale subresource on
//! `.spec.replicas`.
use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{
  "type": "object",
  "required": ["spec"],
  "properties": {
    "spec": {"type": "object", "properties": {
      "replicas": {"type": "integer"},
      "color": {"type": "string"},
      "ports": {"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"],
        "items": {"type": "object", "properties": {
          "name": {"type": "string"}, "protocol": {"type": "string"}, "port": {"type": "integer"}}}},
      "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
      "args": {"type": "array", "items": {"type": "string"}},
      "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
        "additionalProperties": {"type": "string"}},
      "env": {"type": "object", "additionalProperties": {"type": "string"}}
    }},
    "status": {"type": "object", "properties": {
      "ready": {"type": "integer"}, "phase": {"type": "string"}}}
  }
}"#;

struct P;
impl Plugin for P {
    fn describe() -> Resource {
        ResourceBuilder::new("test.wasm-apiserver.dev", "Lister", "listers")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .schema(SCHEMA)
                    .status_subresource()
                    .scale(".spec.replicas", ".status.ready", None),
            )
            .build()
    }
}
wasm_apiserver_sdk::export_plugin!(P);
