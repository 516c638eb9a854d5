//! `PipelineRun`: one run of a pipeline. Defaulting labels it with its pipeline (what
//! the pipeline's `pipelineruns` subresource selects); admission refuses a run of a
//! pipeline that does not exist.

use devops::{pipelines, GROUP, PHASES, PIPELINE_LABEL};
use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{
  "type": "object",
  "description": "PipelineRun is one run of a Pipeline.",
  "properties": {
    "spec": {
      "type": "object",
      "required": ["pipeline"],
      "properties": {"pipeline": {"type": "string", "description": "The name of the Pipeline, in the same namespace."}}
    },
    "status": {
      "type": "object",
      "properties": {"phase": {"type": "string", "enum": ["Pending", "Running", "Succeeded", "Failed"]}}
    }
  }
}"#;

struct PipelineRuns;

impl Plugin for PipelineRuns {
    fn describe() -> Resource {
        ResourceBuilder::new(GROUP, "PipelineRun", "pipelineruns")
            .short_name("pr")
            .category("devops")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .schema(SCHEMA)
                    .status_subresource()
                    .column("Pipeline", "string", ".spec.pipeline", 0)
                    .column("Phase", "string", ".status.phase", 0),
            )
            .selectable_field(".spec.pipeline")
            .reads(GROUP, "v1", "pipelines")
            .build()
    }

    /// The run carries its pipeline's name as a label.
    fn default(mut obj: Object) -> Result<Object, String> {
        if let Some(p) = obj["spec"]["pipeline"].as_str().map(str::to_string) {
            let meta = &mut obj.value_mut()["metadata"];
            if !meta["labels"].is_object() {
                meta["labels"] = json!({});
            }
            meta["labels"][PIPELINE_LABEL] = json!(p);
        }
        Ok(obj)
    }

    fn validate_create(_req: &Request, obj: &Object) -> Validation {
        let mut errs = ErrorList::new();
        if obj["spec"]["pipeline"].as_str().is_none_or(str::is_empty) {
            errs.push(Path::new("spec").child("pipeline").required(""));
        }
        check_phase(obj, &mut errs);
        errs.into_validation()
    }

    fn validate_update(_req: &Request, new: &Object, old: &Object) -> Validation {
        let mut errs = ErrorList::new();
        if new["spec"]["pipeline"] != old["spec"]["pipeline"] {
            errs.push(
                Path::new("spec")
                    .child("pipeline")
                    .invalid(&new["spec"]["pipeline"], "field is immutable"),
            );
        }
        check_phase(new, &mut errs);
        errs.into_validation()
    }

    /// A run of a pipeline that does not exist is refused, on create.
    fn admit(
        req: &Request,
        obj: Option<&Object>,
        _old: Option<&Object>,
    ) -> Result<Vec<String>, Denial> {
        let (Operation::Create, Some(run)) = (req.operation, obj) else {
            return Ok(Vec::new());
        };
        let pipeline = run["spec"]["pipeline"].as_str().unwrap_or_default();
        match reads::get(&pipelines(), req.namespace.as_deref(), pipeline) {
            Ok(_) => Ok(Vec::new()),
            Err(ReadError::NotFound(_)) => Err(Denial::forbidden(format!(
                "pipeline {pipeline:?} does not exist in namespace {:?}",
                req.namespace.as_deref().unwrap_or_default()
            ))),
            Err(e) => Err(Denial::with_code(
                503,
                format!("cannot check the pipeline: {e}"),
            )),
        }
    }
}

fn check_phase(obj: &Object, errs: &mut ErrorList) {
    if let Some(p) = obj["status"]["phase"].as_str() {
        if !PHASES.contains(&p) {
            errs.push(Path::new("status").child("phase").not_supported(p, &PHASES));
        }
    }
}

wasm_apiserver_sdk::export_plugin!(PipelineRuns);
