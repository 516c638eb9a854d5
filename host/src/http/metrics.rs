//! `/metrics`: Prometheus text.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;

use super::AppState;

/// Prometheus text: watchers and watch-cache counters per resource, and the time
/// spent in each plugin.
pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut out = String::new();
    let caches: &[Family<Arc<crate::watch::Cacher>>] = &[
        (
            "apiserver_registered_watchers",
            "gauge",
            "Watchers currently registered, per resource.",
            |c| c.watcher_count() as f64,
        ),
        (
            "wasm_apiserver_watch_cache_events_total",
            "counter",
            "Events the watch cache received from storage.",
            |c| c.stats.events.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_conversions_total",
            "counter",
            "convert hook calls made to serve watchers.",
            |c| c.stats.conversions.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_prints_total",
            "counter",
            "print hook calls made to serve Table watchers.",
            |c| c.stats.prints.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_watch_closed_slow_total",
            "counter",
            "Watchers closed because they fell behind.",
            |c| c.stats.closed_slow.load(Relaxed) as f64,
        ),
    ];
    write_families(&mut out, caches, &state.registry.watch.all(), |c| {
        let plugin = c.plugin();
        let r = &plugin.resource;
        format!("group=\"{}\",resource=\"{}\"", r.group, r.plural)
    });
    let catalog = state.registry.plugins.snapshot();
    let plugins: &[Family<Arc<crate::plugin::Plugin>>] = &[
        (
            "wasm_apiserver_plugin_instances_total",
            "counter",
            "Plugin instances created.",
            |p| p.stats.instances.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_instance_reuses_total",
            "counter",
            "Hook calls that ran on an instance an earlier call created.",
            |p| p.stats.reuses.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_instantiate_seconds_total",
            "counter",
            "Time spent creating plugin instances.",
            |p| p.stats.instantiate_nanos.load(Relaxed) as f64 / 1e9,
        ),
        (
            "wasm_apiserver_plugin_hook_calls_total",
            "counter",
            "Hook calls into plugins.",
            |p| p.health.calls() as f64,
        ),
        (
            "wasm_apiserver_plugin_hook_seconds_total",
            "counter",
            "Time spent in plugin hook calls.",
            |p| p.health.nanos() as f64 / 1e9,
        ),
        (
            "wasm_apiserver_plugin_reads_total",
            "counter",
            "Reads of other objects (reads.get and reads.list calls) by the plugin's hooks.",
            |p| p.stats.reads.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_read_objects_total",
            "counter",
            "Objects the plugin's reads returned.",
            |p| p.stats.read_objects.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_read_bytes_total",
            "counter",
            "Bytes of JSON the plugin's reads returned.",
            |p| p.stats.read_bytes.load(Relaxed) as f64,
        ),
    ];
    write_families(&mut out, plugins, &catalog.plugins, |p| {
        format!("plugin=\"{}\"", p.name)
    });
    let health: &[Family<Arc<crate::plugin::Plugin>>] = &[
        (
            "wasm_apiserver_plugin_quarantined",
            "gauge",
            "1 while the plugin's build is quarantined (its hooks are not called).",
            |p| p.is_quarantined() as u8 as f64,
        ),
        (
            "wasm_apiserver_plugin_busy_total",
            "counter",
            "Hook calls refused (429) because the plugin's maxConcurrentInstances were busy.",
            |p| p.slots.refused.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_plugin_log_lines_dropped_total",
            "counter",
            "Log lines the plugin wrote past its logLinesPerSecond.",
            |p| p.log_lines_dropped() as f64,
        ),
    ];
    write_families(&mut out, health, &catalog.plugins, |p| {
        format!("plugin=\"{}\"", p.name)
    });
    write_hook_metrics(&mut out, &catalog.plugins);
    let migrations: &[Family<Arc<crate::registry::MigrationProgress>>] = &[
        (
            "wasm_apiserver_storage_migration_rewritten_total",
            "counter",
            "Objects a running storage version migration rewrote in the new version.",
            |m| m.rewritten.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_storage_migration_failed_total",
            "counter",
            "Objects a storage version migration could not convert (it stops; see the log).",
            |m| m.failed.load(Relaxed) as f64,
        ),
        (
            "wasm_apiserver_storage_migration_skipped_total",
            "counter",
            "Objects a running storage version migration found already in the new version.",
            |m| m.skipped.load(Relaxed) as f64,
        ),
    ];
    write_families(&mut out, migrations, &state.registry.migrations(), |m| {
        format!(
            "resource=\"{}\",from=\"{}\",to=\"{}\"",
            m.resource, m.from, m.to
        )
    });
    let failing: &[Family<crate::plugin::LoadError>] = &[(
        "wasm_apiserver_plugin_load_error",
        "gauge",
        "1 for each plugin file that failed to load (the previous version, if any, still serves).",
        |_| 1.0,
    )];
    write_families(&mut out, failing, &catalog.errors, |e| {
        let file = e.file.file_name().unwrap_or_default().to_string_lossy();
        format!(
            "file=\"{}\"",
            file.replace('\\', "\\\\").replace('"', "\\\"")
        )
    });
    let reloads: &[Family<&crate::plugin::PluginRegistry>] = &[(
        "wasm_apiserver_plugin_reload_failures_total",
        "counter",
        "Plugin file changes that could not be loaded.",
        |r| r.reload_failures.load(Relaxed) as f64,
    )];
    write_families(&mut out, reloads, &[&*state.registry.plugins], |_| {
        String::new()
    });
    for (name, help, value) in state.registry.storage.gauges() {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    let mut resp = out.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    resp
}

/// Per plugin and hook: failures by cause and a latency histogram.
fn write_hook_metrics(out: &mut String, plugins: &[Arc<crate::plugin::Plugin>]) {
    use crate::plugin::{HOOKS, LATENCY_BUCKETS};
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    let name = "wasm_apiserver_plugin_hook_failures_total";
    let _ = writeln!(out, "# HELP {name} Hook calls that failed, by cause (error: the hook's own error or a malformed result).\n# TYPE {name} counter");
    for p in plugins {
        for (hook, s) in HOOKS.iter().zip(&p.health.hooks) {
            for (cause, n) in [
                ("error", &s.errors),
                ("trap", &s.traps),
                ("timeout", &s.timeouts),
                ("out_of_memory", &s.out_of_memory),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{plugin=\"{}\",hook=\"{hook}\",cause=\"{cause}\"}} {}",
                    p.name,
                    n.load(Relaxed)
                );
            }
        }
    }
    let name = "wasm_apiserver_plugin_hook_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time one hook call took.\n# TYPE {name} histogram"
    );
    for p in plugins {
        for (hook, s) in HOOKS.iter().zip(&p.health.hooks) {
            let labels = format!("plugin=\"{}\",hook=\"{hook}\"", p.name);
            let mut sum = 0;
            for (i, b) in s.buckets.iter().enumerate() {
                sum += b.load(Relaxed);
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {sum}");
            }
            let secs = s.nanos.load(Relaxed) as f64 / 1e9;
            let _ = writeln!(out, "{name}_sum{{{labels}}} {secs}");
            let _ = writeln!(out, "{name}_count{{{labels}}} {}", s.calls.load(Relaxed));
        }
    }
}

/// A metric family: name, type, help, and how to read one item's value.
type Family<T> = (&'static str, &'static str, &'static str, fn(&T) -> f64);

/// Prometheus text for metric families, one sample per item.
fn write_families<T>(
    out: &mut String,
    families: &[Family<T>],
    items: &[T],
    labels: impl Fn(&T) -> String,
) {
    use std::fmt::Write as _;
    for (name, kind, help, value) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for item in items {
            let _ = writeln!(out, "{name}{{{}}} {}", labels(item), value(item));
        }
    }
}
