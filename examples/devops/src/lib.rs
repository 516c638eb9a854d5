//! A CI system's API, `devops.example.com/v1`, as three plugins (one per kind) that use
//! everything contract 0.2 adds:
//!
//! - `Pipeline` (`plugins/pipelines.rs`): `spec.parallelism` behind the `scale`
//!   subresource (`kubectl scale pipeline/build --replicas=3`), and a custom
//!   subresource `pipelineruns` that lists the pipeline's runs, paged
//!   (`kubectl get --raw .../pipelines/build/pipelineruns?limit=10`).
//! - `PipelineRun` (`plugins/pipelineruns.rs`): one run of a pipeline; defaulting
//!   labels it with its pipeline, and admission refuses a run whose pipeline does not
//!   exist (a read of the pipeline).
//! - `PipelineSummary` (`plugins/pipelinesummaries.rs`): computed, not stored: per
//!   pipeline, its runs by phase and its last run, from reads of both kinds.
//!
//! What the plugins share (names, and the pure functions they are built from, unit
//! tested natively) is here.

use wasm_apiserver_sdk::{json, ResourceRef, Value};

pub const GROUP: &str = "devops.example.com";
pub const VERSION: &str = "v1";
/// The label a run carries with its pipeline's name (set by defaulting).
pub const PIPELINE_LABEL: &str = "devops.example.com/pipeline";
pub const PHASES: [&str; 4] = ["Pending", "Running", "Succeeded", "Failed"];

pub fn pipelines() -> ResourceRef {
    ResourceRef::new(GROUP, VERSION, "pipelines")
}

pub fn pipelineruns() -> ResourceRef {
    ResourceRef::new(GROUP, VERSION, "pipelineruns")
}

/// The label selector of one pipeline's runs.
pub fn runs_of(pipeline: &str) -> String {
    format!("{PIPELINE_LABEL}={pipeline}")
}

/// A run's phase (`Pending` until its status says otherwise).
pub fn phase(run: &Value) -> &str {
    run["status"]["phase"].as_str().unwrap_or("Pending")
}

/// The summary of one pipeline from its runs (any order).
pub fn summary(pipeline: &Value, runs: &[&Value]) -> Value {
    let name = pipeline["metadata"]["name"].as_str().unwrap_or_default();
    let mut counts = json!({"total": runs.len()});
    for p in PHASES {
        counts[p.to_lowercase()] = json!(runs.iter().filter(|r| phase(r) == p).count());
    }
    // The last run: the newest creationTimestamp (RFC 3339 sorts as text), then name.
    let last = runs
        .iter()
        .max_by_key(|r| {
            (
                r["metadata"]["creationTimestamp"]
                    .as_str()
                    .unwrap_or_default(),
                r["metadata"]["name"].as_str().unwrap_or_default(),
            )
        })
        .and_then(|r| r["metadata"]["name"].as_str());
    let mut s = json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": "PipelineSummary",
        "metadata": {
            "name": name,
            "namespace": pipeline["metadata"]["namespace"],
            "creationTimestamp": pipeline["metadata"]["creationTimestamp"],
            "labels": pipeline["metadata"]["labels"].as_object().cloned().unwrap_or_default(),
        },
        "pipeline": name,
        "runs": counts,
    });
    if let Some(last) = last {
        s["lastRun"] = json!(last);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(name: &str, phase: Option<&str>, at: &str) -> Value {
        let mut r = json!({"metadata": {"name": name, "creationTimestamp": at}});
        if let Some(p) = phase {
            r["status"] = json!({"phase": p});
        }
        r
    }

    #[test]
    fn a_summary_counts_runs_by_phase_and_names_the_last() {
        let p = json!({"metadata": {"name": "build", "namespace": "ci", "creationTimestamp": "2026-01-01T00:00:00Z"}});
        let runs = [
            run("a", None, "2026-01-02T00:00:00Z"),
            run("b", Some("Succeeded"), "2026-01-04T00:00:00Z"),
            run("c", Some("Failed"), "2026-01-03T00:00:00Z"),
        ];
        let s = summary(&p, &runs.iter().collect::<Vec<_>>());
        assert_eq!(
            s["runs"],
            json!({"total": 3, "pending": 1, "running": 0, "succeeded": 1, "failed": 1})
        );
        assert_eq!(s["lastRun"], "b");
        assert_eq!(s["metadata"]["namespace"], "ci");
        let none = summary(&p, &[]);
        assert_eq!(none["runs"]["total"], 0);
        assert!(none.get("lastRun").is_none());
    }
}
