//! The upgrade gate: before a new build of a plugin serves a kind that has stored
//! objects, those objects are replayed through it — converted to each served version
//! and back (the result must equal the original), validated as an update that
//! changes nothing (an object stored valid stays valid), and printed. Any failure
//! refuses the build with a report naming the objects and fields; the serving build
//! stays. A build whose `convert` silently drops a field would otherwise corrupt
//! every object it touches.
//!
//! The gate replays every object, or those it reaches within its time budget (the
//! report says how many of how many). `--upgrade-gate=skip` or `upgradeGate: Skip` in
//! the plugin's settings file let a deliberate break through.

use serde_json::Value;
use std::time::{Duration, Instant};

use super::store::Registry;
use crate::plugin::{Operation, Plugin, RequestInfo, UserInfo};
use crate::storage::{ListRequest, ResourceKeys};

/// How many failures a report lists before the gate stops looking.
const MAX_FAILURES: usize = 10;
/// Objects read per page; each page is replayed on every CPU at once, a share each
/// (one `convert` and one `print` call per version and share).
const BATCH: usize = 1024;

/// What the gate found.
#[derive(Debug, Default)]
pub struct GateReport {
    /// Objects replayed, and stored in all.
    pub checked: usize,
    pub total: usize,
    /// One line per failure: the object and what went wrong.
    pub failures: Vec<String>,
    pub took: Duration,
}

impl GateReport {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The report as one message: why the build was refused, or what was checked.
    pub fn summary(&self, plugin: &str) -> String {
        let sample = match self.checked == self.total {
            true => format!("all {} stored objects", self.total),
            false => format!(
                "{} of {} stored objects (the time budget's sample)",
                self.checked, self.total
            ),
        };
        if self.passed() {
            return format!("the upgrade gate replayed {sample} through {plugin}: no change");
        }
        format!(
            "the upgrade gate refused the new build of {plugin} ({} after replaying {sample}; \
             to replace it anyway, set upgradeGate: Skip in its settings file or \
             --upgrade-gate=skip): {}",
            match self.failures.len() {
                MAX_FAILURES.. => format!("{MAX_FAILURES} failures or more"),
                n => format!("{n} failure{}", if n == 1 { "" } else { "s" }),
            },
            self.failures.join("; ")
        )
    }
}

impl Registry {
    /// Replay the stored objects of `new`'s kind through `new`, for up to `budget`.
    /// Errors reading storage are failures too: a gate that cannot look refuses.
    pub async fn upgrade_gate(&self, new: &Plugin, budget: Duration) -> GateReport {
        let started = Instant::now();
        let r = &new.resource;
        let keys = ResourceKeys::new(&r.group, &r.plural, r.namespaced());
        let mut report = GateReport::default();
        let mut start = None;
        let mut revision = None;
        let mut out_of_time = false;
        loop {
            let page = match self
                .storage
                .list(ListRequest {
                    prefix: keys.root().to_string(),
                    start: start.clone(),
                    limit: Some(BATCH),
                    revision,
                })
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    report
                        .failures
                        .push(format!("cannot list the stored objects: {e}"));
                    break;
                }
            };
            revision = Some(page.revision);
            let mut objs = Vec::with_capacity(page.items.len());
            for s in &page.items {
                report.total += 1;
                match crate::api::resource::decode_stored(r, &s.value) {
                    Ok(o) => objs.push(o),
                    Err(why) => report.failures.push(format!(
                        "the object stored at {} {why}",
                        self.storage.location(&s.key)
                    )),
                }
            }
            if !out_of_time {
                let failures = tokio::task::block_in_place(|| replay_in_parallel(new, &objs));
                report.checked += objs.len();
                report.failures.extend(failures);
                out_of_time = started.elapsed() > budget;
            }
            if report.failures.len() >= MAX_FAILURES {
                report.failures.truncate(MAX_FAILURES);
                break;
            }
            match (page.more, page.items.last()) {
                (true, Some(last)) => start = Some(format!("{}\u{0}", last.key)),
                _ => break,
            }
        }
        report.took = started.elapsed();
        report
    }
}

/// The object's name for a report: `namespace/name`, or `name`.
fn object_name(obj: &Value) -> String {
    let m = &obj["metadata"];
    let name = m["name"].as_str().unwrap_or("?");
    match m["namespace"].as_str() {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_string(),
    }
}

/// [`replay`] with the objects shared out over the CPUs.
fn replay_in_parallel(new: &Plugin, objs: &[Value]) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = objs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let shares: Vec<_> = objs
            .chunks(share)
            .map(|chunk| scope.spawn(|| replay(new, chunk)))
            .collect();
        shares
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec!["the replay panicked".to_string()])
            })
            .collect()
    })
}

/// Replay one batch through `new`; what failed, one line each.
fn replay(new: &Plugin, objs: &[Value]) -> Vec<String> {
    let mut failures = Vec::new();
    if objs.is_empty() {
        return failures;
    }
    let r = &new.resource;
    let mut inst = match new.instance() {
        Ok(i) => i,
        Err(e) => return vec![e.to_string()],
    };
    // Each object goes back to the version it is stored in.
    let versions: Vec<String> = objs
        .iter()
        .map(|o| {
            let v = o["apiVersion"].as_str().unwrap_or_default();
            v.rsplit_once('/').map_or(v, |(_, v)| v).to_string()
        })
        .collect();
    for version in r.served_versions() {
        let converted = match inst.convert(objs, &version.name) {
            Ok(c) => c,
            Err(e) => {
                failures.push(format!("convert to {}: {e}", version.name));
                continue;
            }
        };
        if let Err(e) = inst.print(&converted) {
            failures.push(format!("print in {}: {e}", version.name));
        }
        // Back, one call per version the objects are stored in (usually one).
        let mut stored_in: Vec<&String> = versions.iter().collect();
        stored_in.sort();
        stored_in.dedup();
        for back_to in stored_in {
            let which: Vec<usize> = (0..objs.len())
                .filter(|&i| &versions[i] == back_to)
                .collect();
            let batch: Vec<Value> = which.iter().map(|&i| converted[i].clone()).collect();
            let back = match inst.convert(&batch, back_to) {
                Ok(b) => b,
                Err(e) => {
                    failures.push(format!(
                        "convert from {} back to {back_to}: {e}",
                        version.name
                    ));
                    continue;
                }
            };
            for (&i, back) in which.iter().zip(&back) {
                let mut changed = Vec::new();
                diff_paths(&objs[i], back, String::new(), &mut changed);
                if !changed.is_empty() {
                    changed.truncate(5);
                    failures.push(format!(
                        "{}: converted to {} and back it differs at {}",
                        object_name(&objs[i]),
                        version.name,
                        changed.join(", ")
                    ));
                }
            }
        }
    }
    // An object stored valid stays valid: validate-update of it over itself, in the
    // storage version.
    let in_storage = match inst.convert(objs, &r.storage_version) {
        Ok(c) => c,
        Err(e) => {
            failures.push(format!("convert to {}: {e}", r.storage_version));
            return failures;
        }
    };
    for obj in &in_storage {
        let req = RequestInfo {
            operation: Operation::Update,
            user: UserInfo {
                name: "system:wasm-apiserver:upgrade-gate".into(),
                uid: String::new(),
                groups: vec!["system:masters".into()],
                extra: Vec::new(),
            },
            namespace: obj["metadata"]["namespace"].as_str().map(str::to_string),
            name: obj["metadata"]["name"].as_str().unwrap_or_default().into(),
            subresource: None,
            dry_run: true,
        };
        match inst.validate_update(&req, obj, obj) {
            Ok(v) if v.errors.is_empty() => {}
            Ok(v) => {
                let errs: Vec<String> = v
                    .errors
                    .iter()
                    .map(|e| format!("{}: {}", e.field, e.detail))
                    .collect();
                failures.push(format!(
                    "{}: validate-update of the unchanged object: {}",
                    object_name(obj),
                    errs.join(", ")
                ));
            }
            Err(e) => failures.push(format!("{}: {e}", object_name(obj))),
        }
        if failures.len() >= MAX_FAILURES {
            break;
        }
    }
    failures
}

/// The field paths (`spec.ports[0].name`) where `a` and `b` differ.
pub fn diff_paths(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    let join = |k: &str| match at.is_empty() {
        true => k.to_string(),
        false => format!("{at}.{k}"),
    };
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    Some(w) => diff_paths(v, w, join(k), out),
                    None => out.push(format!("{} (dropped)", join(k))),
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{} (added)", join(k)));
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                diff_paths(v, w, format!("{at}[{i}]"), out);
            }
        }
        _ if a != b => out.push(match at.is_empty() {
            true => "the object".into(),
            false => at,
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_each_changed_dropped_and_added_field() {
        let a = json!({"spec": {"image": "x", "config": {"msg": "hi"}, "ports": [1, 2]}});
        let b = json!({"spec": {"image": "y", "ports": [1, 3], "extra": true}});
        let mut out = Vec::new();
        diff_paths(&a, &b, String::new(), &mut out);
        assert_eq!(
            out,
            [
                "spec.image",
                "spec.config (dropped)",
                "spec.ports[1]",
                "spec.extra (added)"
            ]
        );
        let mut none = Vec::new();
        diff_paths(&a, &a.clone(), String::new(), &mut none);
        assert!(none.is_empty());
    }
}
