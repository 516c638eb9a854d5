//! `-- safety`: the figures of "never the APIService that breaks a cluster".
//!
//! - The upgrade gate on 10,000 stored hello Foos, and a storage version migration of
//!   10,000 widgets (v1 to v2), on the embedded store, through the registry directly.
//! - Quarantine: how long after its threshold a failing plugin is quarantined, and
//!   another kind's GET throughput at 32 clients while 32 other clients storm the
//!   failing plugin, with and without quarantine, against the same GETs without a storm.

use futures::StreamExt as _;
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_apiserver::plugin::{PluginEngine, PluginRegistry, Reload, RuntimeLimits};
use wasm_apiserver::registry::Registry;
use wasm_apiserver::storage::{embedded::EmbeddedStore, Storage};

const OBJECTS: usize = 10_000;

pub async fn safety() {
    println!("\n### Plugin safety (`-- safety`)\n");
    gate_and_migration().await;
    quarantine().await;
}

/// Store `n` objects made by `body(i)` under `prefix`, 32 at a time.
async fn seed(
    storage: &Arc<dyn Storage>,
    prefix: &str,
    n: usize,
    body: impl Fn(usize) -> serde_json::Value,
) {
    let writes: Vec<_> = (0..n)
        .map(|i| {
            let (storage, key, bytes) = (
                storage.clone(),
                format!("{prefix}w{i}"),
                serde_json::to_vec(&body(i)).unwrap(),
            );
            async move { storage.create(&key, bytes).await.unwrap() }
        })
        .collect();
    futures::stream::iter(writes)
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
}

async fn gate_and_migration() {
    let dir = tempfile::tempdir().unwrap();
    let plugins_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins_dir).unwrap();
    std::fs::copy(
        super::common::example("hello"),
        plugins_dir.join("hello.wasm"),
    )
    .unwrap();
    let widgets = plugins_dir.join("widgets.wasm");
    std::fs::copy(super::common::test_plugin("widgets_v1"), &widgets).unwrap();
    let plugins = Arc::new(PluginRegistry::new(
        PluginEngine::new(RuntimeLimits::default(), None).unwrap(),
    ));
    let catalog = plugins.load_dir(&plugins_dir).unwrap();
    let storage: Arc<dyn Storage> =
        Arc::new(EmbeddedStore::open(&dir.path().join("store")).unwrap());
    let registry = Registry::new(
        plugins.clone(),
        storage.clone(),
        Default::default(),
        None,
        None,
    );
    let started = Instant::now();
    seed(&storage, "/hello.zeng.dev/foos/default/", OBJECTS, |i| {
        json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
               "metadata": {"name": format!("w{i}"), "namespace": "default", "uid": format!("u{i}"),
                            "creationTimestamp": "2026-12-07T00:00:00Z", "generation": 1},
               "spec": {"image": "nginx:1.27", "config": {"msg": "hello", "msg1": "world"}}})
    })
    .await;
    seed(&storage, "/test.wasm-apiserver.dev/widgets/default/", OBJECTS, |i| {
        json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Widget",
               "metadata": {"name": format!("w{i}"), "namespace": "default", "uid": format!("u{i}")},
               "spec": {"size": i}})
    })
    .await;
    println!(
        "(seeded 2 x {OBJECTS} objects in {:.1} s)\n",
        started.elapsed().as_secs_f64()
    );

    let hello = catalog.find("hello.zeng.dev", "foos").unwrap().clone();
    let mut runs = Vec::new();
    for _ in 0..5 {
        let report = registry.upgrade_gate(&hello, Duration::from_secs(60)).await;
        assert!(
            report.passed() && report.checked == OBJECTS,
            "{}",
            report.summary("hello.wasm")
        );
        runs.push(report.took);
    }
    let (p50, _) = super::median(runs.clone());
    println!("| measure | figure | goal |\n|---|---|---|");
    println!(
        "| upgrade gate, {OBJECTS} stored hello Foos (convert to v1 and v2 and back, validate-update, print), median of 5 | {:.2} s (runs {}) | <= 2 s |",
        p50.as_secs_f64(),
        runs.iter().map(|d| format!("{:.2}", d.as_secs_f64())).collect::<Vec<_>>().join(", ")
    );

    // The v1 build is recorded, then the v2 build replaces it: the migration runs.
    let v1 = catalog
        .find("test.wasm-apiserver.dev", "widgets")
        .unwrap()
        .clone();
    registry.reconcile_build(&v1, true).await;
    std::fs::copy(super::common::test_plugin("widgets_v2"), &widgets).unwrap();
    let Reload::Replaced(v2) = plugins.reload_file(&widgets) else {
        panic!("widgets v2 did not load")
    };
    let started = Instant::now();
    registry.reconcile_build(&v2, false).await;
    let progress = registry.migrations();
    assert_eq!(progress.len(), 1, "a migration runs");
    while !registry.migrations().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    let rewritten = progress[0]
        .rewritten
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(rewritten as usize, OBJECTS);
    println!(
        "| storage version migration of {OBJECTS} widgets, v1 to v2, embedded store (fsync per write) | {:.2} s ({:.0} objects/s) | <= 10 s |",
        took.as_secs_f64(),
        OBJECTS as f64 / took.as_secs_f64()
    );
}

async fn quarantine() {
    // One server: the examples and misbehave; hello's GET is the other kind.
    let dir = tempfile::tempdir().unwrap();
    let plugins = super::common::server::copy_examples(dir.path());
    std::fs::copy(
        super::common::test_plugin("misbehave"),
        plugins.join("misbehave.wasm"),
    )
    .unwrap();
    let (url, client) = super::serve_in_process(dir.path(), &plugins, true, &[]).await;
    let foo = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "steady"}, "spec": {}});
    let r = client
        .post(format!(
            "{url}/apis/hello.zeng.dev/v2/namespaces/default/foos"
        ))
        .json(&foo)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let get_url = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos/steady");
    let baseline = super::get_load(32, client.clone(), get_url.clone()).await;
    println!(
        "| GET one Foo, 32 clients, no storm (baseline) | {:.0}/s, p50 {:.2} ms | |",
        baseline.0,
        baseline.1.as_secs_f64() * 1e3
    );

    // (hook failure, quarantine on, storm clients honour Retry-After as client-go does)
    let cases = [
        ("trap", false, false),
        ("trap", true, true),
        ("trap", true, false),
        ("loop", false, false),
        ("loop", true, true),
    ];
    for (mode, quarantine, honour) in cases {
        let label = match mode {
            "trap" => "traps",
            _ => "loops to its 1 s deadline",
        };
        {
            // A fresh build each time (another digest): a new one starts healthy.
            let bytes = super::common::rebuilt(
                &super::common::test_plugin("misbehave"),
                &format!("{mode}-{quarantine}-{honour}"),
            );
            let settings = plugins.join("misbehave.settings.yaml");
            std::fs::write(
                &settings,
                format!("quarantineThreshold: {}\n", if quarantine { 5 } else { 0 }),
            )
            .unwrap();
            std::fs::write(plugins.join("misbehave.wasm"), bytes).unwrap();
            // The reload (a compile: the build is new) and the gate (nothing stored).
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let storm_started = Instant::now();
            let mut storm = Vec::new();
            for w in 0..32 {
                let (c, url, stop) = (client.clone(), url.clone(), stop.clone());
                storm.push(tokio::spawn(async move {
                    // (when each failure answered, when the first 503 did)
                    let (mut failures, mut first_503) = (Vec::new(), None);
                    let mut i = 0;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        i += 1;
                        let body = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
                                          "metadata": {"name": format!("s{w}-{i}")}, "spec": {"mode": mode}});
                        let r = c.post(format!("{url}/apis/test.wasm-apiserver.dev/v1/namespaces/default/misbehavers")).json(&body).send().await.unwrap();
                        match r.status().as_u16() {
                            500 => failures.push(Instant::now()),
                            503 => {
                                first_503.get_or_insert(Instant::now());
                                if honour {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                }
                            }
                            other => panic!("storm: {other}"),
                        }
                        let _ = r.bytes().await;
                    }
                    (failures, first_503)
                }));
            }
            // Measured once quarantine has started (or, without it, once the storm
            // runs at full tilt): what the other kinds get while the storm goes on.
            tokio::time::sleep(Duration::from_millis(if quarantine { 1500 } else { 1000 })).await;
            let during = super::get_load(32, client.clone(), get_url.clone()).await;
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (mut failures, mut first_503) = (Vec::new(), None::<Instant>);
            for t in storm {
                let (f, q) = t.await.unwrap();
                failures.extend(f);
                first_503 = match (first_503, q) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
            failures.sort();
            let detection = match (quarantine, first_503, failures.get(4)) {
                (true, Some(q), Some(fifth)) => format!(
                    "; first 503 {:.0} ms after the 5th failure answered ({:.0} ms into the storm)",
                    q.saturating_duration_since(*fifth).as_secs_f64() * 1e3,
                    (q - storm_started).as_secs_f64() * 1e3
                ),
                _ => String::new(),
            };
            println!(
                "| GET one Foo, 32 clients, while 32 clients send writes whose hook {label}, quarantine {}{} | {:.0}/s, p50 {:.2} ms: **{:.0}% of baseline** ({} failed writes{detection}) | >= 80% |",
                if quarantine { "on (threshold 5)" } else { "off" },
                match (quarantine, honour) {
                    (true, true) => ", the storm's clients waiting Retry-After as client-go does",
                    (true, false) => ", the storm's clients ignoring Retry-After",
                    _ => "",
                },
                during.0,
                during.1.as_secs_f64() * 1e3,
                during.0 / baseline.0 * 100.0,
                failures.len()
            );
        }
    }
}
