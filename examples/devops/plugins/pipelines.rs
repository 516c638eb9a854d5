//! `Pipeline`: steps to run, how many runs at once (`spec.parallelism`, behind the
//! `scale` subresource), and its runs through the `pipelineruns` subresource.

use devops::{pipelineruns, runs_of, GROUP};
use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{
  "type": "object",
  "description": "Pipeline is a sequence of steps that runs produce.",
  "properties": {
    "spec": {
      "type": "object",
      "properties": {
        "parallelism": {"type": "integer", "format": "int32", "minimum": 0, "description": "How many runs may run at once (the scale subresource's replicas)."},
        "steps": {"type": "array", "items": {"type": "object", "properties": {
          "name": {"type": "string"}, "image": {"type": "string"}}}}
      }
    },
    "status": {
      "type": "object",
      "properties": {
        "running": {"type": "integer", "format": "int32", "description": "Runs running now."},
        "selector": {"type": "string", "description": "The label selector of the pipeline's runs."}
      }
    }
  }
}"#;

struct Pipelines;

impl Plugin for Pipelines {
    fn describe() -> Resource {
        ResourceBuilder::new(GROUP, "Pipeline", "pipelines")
            .short_name("pl")
            .category("devops")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .schema(SCHEMA)
                    .status_subresource()
                    .scale(
                        ".spec.parallelism",
                        ".status.running",
                        Some(".status.selector"),
                    )
                    .subresource("pipelineruns", &[SubresourceVerb::Get], "PipelineRunList")
                    .column("Parallelism", "integer", ".spec.parallelism", 0)
                    .column("Running", "integer", ".status.running", 0),
            )
            .reads(GROUP, "v1", "pipelineruns")
            .build()
    }

    /// `parallelism` defaults to 1.
    fn default(mut obj: Object) -> Result<Object, String> {
        if obj["spec"]["parallelism"].is_null() {
            obj.value_mut()["spec"]["parallelism"] = json!(1);
        }
        Ok(obj)
    }

    /// The selector of a pipeline's runs is part of its status (for Scale).
    fn prepare_for_create(_req: &Request, mut obj: Object) -> Result<Object, String> {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        obj.value_mut()["status"] = json!({"running": 0, "selector": runs_of(&name)});
        Ok(obj)
    }

    /// GET `pipelines/NAME/pipelineruns`: the runs labelled with the pipeline, paged
    /// by the request's `limit` and `continue`, as a PipelineRunList.
    fn serve_subresource(req: &SubresourceRequest, _parent: &Object) -> Result<Object, Denial> {
        let arg = |k: &str| {
            req.query
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let limit = match arg("limit").as_str() {
            "" => 0,
            l => l.parse().map_err(|_| {
                Denial::with_code(
                    400,
                    format!("limit: Invalid value: {l:?}: must be a non-negative integer"),
                )
            })?,
        };
        let opts = ListOptions {
            label_selector: runs_of(&req.name),
            limit,
            continue_: arg("continue"),
            ..ListOptions::default()
        };
        let page = reads::list(&pipelineruns(), req.namespace.as_deref(), &opts)
            .map_err(|e| Denial::with_code(503, format!("cannot read the runs: {e}")))?;
        let mut meta = json!({"resourceVersion": page.resource_version});
        if !page.continue_.is_empty() {
            meta["continue"] = json!(page.continue_);
        }
        Ok(Object::from_value(json!({
            "apiVersion": format!("{GROUP}/v1"),
            "kind": "PipelineRunList",
            "metadata": meta,
            "items": page.items.into_iter().map(Object::into_value).collect::<Vec<_>>(),
        })))
    }
}

wasm_apiserver_sdk::export_plugin!(Pipelines);
