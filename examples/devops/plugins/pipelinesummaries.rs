//! `PipelineSummary`: computed, never stored. One per pipeline: its runs by phase and
//! its last run, made from reads of pipelines and runs at each GET or LIST.

use devops::{pipelineruns, pipelines, runs_of, summary, GROUP, PIPELINE_LABEL};
use wasm_apiserver_sdk::prelude::*;

const SCHEMA: &str = r#"{
  "type": "object",
  "description": "PipelineSummary sums up a Pipeline's runs (computed, read-only).",
  "properties": {
    "pipeline": {"type": "string"},
    "lastRun": {"type": "string"},
    "runs": {"type": "object", "properties": {
      "total": {"type": "integer"}, "pending": {"type": "integer"}, "running": {"type": "integer"},
      "succeeded": {"type": "integer"}, "failed": {"type": "integer"}}}
  }
}"#;

struct Summaries;

impl Plugin for Summaries {
    fn describe() -> Resource {
        ResourceBuilder::new(GROUP, "PipelineSummary", "pipelinesummaries")
            .short_name("ps")
            .category("devops")
            .version(
                VersionBuilder::new("v1")
                    .storage()
                    .schema(SCHEMA)
                    .column("Total", "integer", ".runs.total", 0)
                    .column("Running", "integer", ".runs.running", 0)
                    .column("Succeeded", "integer", ".runs.succeeded", 0)
                    .column("Failed", "integer", ".runs.failed", 0)
                    .column("Last Run", "string", ".lastRun", 0),
            )
            .computed(&[(GROUP, "v1", "pipelines"), (GROUP, "v1", "pipelineruns")])
            .build()
    }

    fn compute(req: &ComputeRequest) -> Result<Vec<Object>, Denial> {
        let unavailable = |e: ReadError| Denial::with_code(503, format!("cannot read: {e}"));
        let ns = req.namespace.as_deref();
        if let Some(name) = &req.name {
            let pipeline = match reads::get(&pipelines(), ns, name) {
                Ok(p) => p,
                Err(ReadError::NotFound(_)) => return Ok(Vec::new()),
                Err(e) => return Err(unavailable(e)),
            };
            let runs = reads::list_all(&pipelineruns(), ns, &runs_of(name)).map_err(unavailable)?;
            let runs: Vec<&Value> = runs.iter().map(Object::value).collect();
            return Ok(vec![Object::from_value(summary(&pipeline, &runs))]);
        }
        let all = reads::list_all(&pipelines(), ns, "").map_err(unavailable)?;
        let runs = reads::list_all(&pipelineruns(), ns, "").map_err(unavailable)?;
        Ok(all
            .iter()
            .map(|p| {
                let (name, pns) = (&p["metadata"]["name"], &p["metadata"]["namespace"]);
                let mine: Vec<&Value> = runs
                    .iter()
                    .map(Object::value)
                    .filter(|r| {
                        r["metadata"]["namespace"] == *pns
                            && r["metadata"]["labels"][PIPELINE_LABEL] == *name
                    })
                    .collect();
                Object::from_value(summary(p, &mine))
            })
            .collect())
    }
}

wasm_apiserver_sdk::export_plugin!(Summaries);
