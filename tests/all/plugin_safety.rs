//! Never the APIService that breaks a cluster: a plugin whose hooks trap, loop or run
//! out of memory is quarantined while its namespace is deleted and the other kinds keep
//! serving; the upgrade gate refuses a build that would corrupt or invalidate stored
//! objects; a plugin's settings file sets its budget.

use crate::common::server::{with_plugins, Server};
use crate::common::{example, rebuilt, send, test_plugin};
use futures::StreamExt as _;
use reqwest::{Client, Method};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const GROUP: &str = "/apis/test.wasm-apiserver.dev";

fn misbehaver(name: &str, mode: &str) -> String {
    json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
           "metadata": {"name": name}, "spec": {"mode": mode}})
    .to_string()
}

async fn create(
    c: &Client,
    s: &Server,
    ns: &str,
    name: &str,
    mode: &str,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let path = format!("{GROUP}/v1/namespaces/{ns}/misbehavers");
    send(
        c,
        &s.url,
        Method::POST,
        &path,
        "application/json",
        misbehaver(name, mode),
    )
    .await
}

async fn get(c: &Client, url: String, accept: &str) -> (u16, String) {
    let r = c.get(url).header("accept", accept).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// [`crate::common::wait_for`], 20 s at most.
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, f: impl FnMut() -> F) {
    crate::common::wait_for(what, Duration::from_secs(20), f).await
}

/// The proof of quarantine, for a plugin that traps, one that loops past its deadline
/// and one that runs out of memory: 32 clients send it writes that fail while the
/// namespace controller (kube-rs's metadata client, as kube's controller uses
/// client-go's) deletes a namespace holding 100 of its objects to completion, and
/// another kind's GETs keep succeeding. After the threshold the plugin answers writes
/// and other versions with 503 and Retry-After, `/readyz` stays ready with a warning,
/// `/metrics` counts it; a new build ends it.
#[tokio::test(flavor = "multi_thread")]
async fn a_failing_plugin_is_quarantined_while_its_namespace_is_deleted() {
    use kube::api::{Api, DeleteParams, DynamicObject, ListParams};
    use kube::core::{ApiResource, GroupVersionKind};
    let dir = with_plugins(&[
        (example("hello"), "hello"),
        (test_plugin("misbehave"), "misbehave"),
    ]);
    let settings = dir.path().join("plugins/misbehave.settings.yaml");
    // Loops and memory hogs fail fast; five failures within a minute quarantine it.
    std::fs::write(
        &settings,
        // Room for the 32 storm clients and the namespace controller at once.
        "hookDeadline: 200ms\nmemoryLimitMiB: 16\nquarantineThreshold: 5\nmaxConcurrentInstances: 64\n",
    )
    .unwrap();
    let s = Arc::new(Server::start_in(dir));
    let c = s.client();
    let foo = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "steady"}, "spec": {}});
    let (code, v, _) = send(
        &c,
        &s.url,
        Method::POST,
        "/apis/hello.zeng.dev/v2/namespaces/default/foos",
        "application/json",
        foo.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v, _) = create(&c, &s, "default", "kept", "").await;
    assert_eq!(code, 201, "{v}");
    let kube = s.kube_client().await;
    let gvk = GroupVersionKind::gvk("test.wasm-apiserver.dev", "v1", "Misbehaver");
    let resource = ApiResource::from_gvk_with_plural(&gvk, "misbehavers");

    for (round, mode) in ["trap", "loop", "oom"].into_iter().enumerate() {
        let ns = format!("doomed-{mode}");
        let seeds = futures::stream::iter(0..100)
            .map(|i| {
                let (c, s, ns) = (c.clone(), s.clone(), ns.clone());
                async move { create(&c, &s, &ns, &format!("m{i}"), "").await.0 }
            })
            .buffer_unordered(8)
            .collect::<Vec<_>>()
            .await;
        assert!(seeds.iter().all(|c| *c == 201), "{mode}: {seeds:?}");

        let stop = Arc::new(AtomicBool::new(false));
        let quarantined_at = Arc::new(AtomicUsize::new(0));
        let mut storm = Vec::new();
        for w in 0..32 {
            let (c, s, stop, q) = (c.clone(), s.clone(), stop.clone(), quarantined_at.clone());
            storm.push(tokio::spawn(async move {
                let (mut failed, mut refused) = (0, 0);
                let mut i = 0;
                while !stop.load(Relaxed) {
                    i += 1;
                    let (code, v, headers) = create(&c, &s, "default", &format!("x{w}-{i}"), mode).await;
                    match code {
                        500 => {
                            assert_eq!(v["reason"], "InternalError", "{v}");
                            failed += 1;
                        }
                        503 => {
                            assert_eq!(v["reason"], "ServiceUnavailable", "{v}");
                            let m = v["message"].as_str().unwrap();
                            assert!(m.starts_with("plugin misbehave.wasm is quarantined: 5 hook failures within 60s, the last: plugin misbehave.wasm: "), "{m}");
                            assert!(m.ends_with("reads in the storage version and deletes still work; load a fixed build to end the quarantine"), "{m}");
                            assert_eq!(headers["retry-after"], "1");
                            assert_eq!(v["details"]["retryAfterSeconds"], 1);
                            q.fetch_add(1, Relaxed);
                            refused += 1;
                        }
                        other => panic!("{mode}: a failing create answered {other}: {v}"),
                    }
                }
                (failed, refused)
            }));
        }
        // Another kind serves throughout.
        let steady = {
            let (c, url, stop) = (
                c.clone(),
                format!(
                    "{}/apis/hello.zeng.dev/v2/namespaces/default/foos/steady",
                    s.url
                ),
                stop.clone(),
            );
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Relaxed) {
                    let (code, body) = get(&c, url.clone(), "application/json").await;
                    assert_eq!(code, 200, "another kind's GET during the storm: {body}");
                    n += 1;
                }
                n
            })
        };
        // Once the plugin is quarantined (the storm goes on), the namespace controller
        // empties the namespace, through the storage version in one round and through
        // the other version (where nothing can be converted) in the others.
        wait_for("quarantine", || async { quarantined_at.load(Relaxed) > 0 }).await;
        let resource = match round {
            1 => resource.clone(),
            _ => ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk("test.wasm-apiserver.dev", "v2", "Misbehaver"),
                "misbehavers",
            ),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(kube.clone(), &ns, &resource);
        let deleting = Instant::now();
        loop {
            api.delete_collection(&DeleteParams::default(), &ListParams::default())
                .await
                .unwrap_or_else(|e| panic!("{mode}: deletecollection: {e}"));
            let left = api.list_metadata(&ListParams::default()).await.unwrap();
            if left.items.is_empty() {
                break;
            }
            assert!(
                deleting.elapsed() < Duration::from_secs(60),
                "{mode}: the namespace did not empty"
            );
        }
        stop.store(true, Relaxed);
        let (mut failed, mut refused) = (0, 0);
        for t in storm {
            let (f, r) = t.await.unwrap();
            failed += f;
            refused += r;
        }
        let reads = steady.await.unwrap();
        assert!(
            failed >= 5 && refused > 0 && reads > 0,
            "{mode}: {failed} {refused} {reads}"
        );

        // Quarantined: the storage version and metadata still read, as a Table too
        // (its columns empty); another version and writes do not.
        let v1 = format!("{}{GROUP}/v1/namespaces/default/misbehavers", s.url);
        let (code, body) = get(&c, format!("{v1}/kept"), "application/json").await;
        assert_eq!(code, 200, "{body}");
        let (code, body) = get(
            &c,
            v1.clone(),
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )
        .await;
        assert_eq!(code, 200, "{body}");
        let table: Value = serde_json::from_str(&body).unwrap();
        let kept = table["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["cells"][0] == "kept")
            .expect("a row for kept");
        assert_eq!(
            kept["cells"][1],
            Value::Null,
            "no print: the column is empty"
        );
        let kept_v2 = format!("{}{GROUP}/v2/namespaces/default/misbehavers/kept", s.url);
        let (code, body) = get(&c, kept_v2.clone(), "application/json").await;
        assert_eq!(code, 503, "{body}");
        let (code, body) = get(
            &c,
            kept_v2,
            "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1",
        )
        .await;
        assert_eq!(code, 200, "metadata needs no conversion: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["kind"],
            "PartialObjectMetadata"
        );
        let (code, ready) = get(&c, format!("{}/readyz?verbose", s.url), "text/plain").await;
        assert_eq!(
            code, 200,
            "quarantine is a warning, not unreadiness: {ready}"
        );
        assert!(ready.contains("warning: 1 quarantined, serving only reads in the storage version and deletes: misbehave.wasm (misbehavers.test.wasm-apiserver.dev) since "), "{ready}");
        assert_eq!(
            s.sample("wasm_apiserver_plugin_quarantined{plugin=\"misbehave.wasm\"}")
                .await,
            Some(1.0)
        );
        let cause = match mode {
            "trap" => "trap",
            "loop" => "timeout",
            _ => "out_of_memory",
        };
        let counted = s
            .sample(&format!("wasm_apiserver_plugin_hook_failures_total{{plugin=\"misbehave.wasm\",hook=\"default\",cause=\"{cause}\"}}"))
            .await
            .unwrap();
        assert!(counted >= 5.0, "{mode}: {counted}");

        // A new build ends the quarantine.
        std::fs::write(
            s.path().join("plugins/misbehave.wasm"),
            rebuilt(&test_plugin("misbehave"), &format!("fix-{round}")),
        )
        .unwrap();
        wait_for("the new build serves", || async {
            create(&c, &s, "default", &format!("after-{mode}"), "")
                .await
                .0
                == 201
        })
        .await;
        assert_eq!(
            s.sample("wasm_apiserver_plugin_quarantined{plugin=\"misbehave.wasm\"}")
                .await,
            Some(0.0)
        );
        let (code, body) = get(
            &c,
            format!("{}{GROUP}/v2/namespaces/default/misbehavers/kept", s.url),
            "application/json",
        )
        .await;
        assert_eq!(code, 200, "{body}");
    }
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert_eq!(log.matches("plugin quarantined").count(), 3, "{log}");
    assert_eq!(log.matches("quarantine ended").count(), 3);
}

/// The upgrade gate on hot reload: a build whose conversion drops a field is refused,
/// naming the object and the field, and so is one under which a stored object is no
/// longer valid; the serving build stays. A compatible build passes, and the settings
/// file's `upgradeGate: Skip` lets a deliberate break through.
#[tokio::test(flavor = "multi_thread")]
async fn the_upgrade_gate_refuses_builds_that_would_break_stored_objects() {
    let s = Server::start();
    let c = s.client();
    let foos = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
    for (name, spec) in [
        (
            "messages",
            json!({"image": "nginx:1.27", "config": {"msg": "a", "msg1": "b"}}),
        ),
        ("unpinned", json!({"image": "nginx"})),
    ] {
        let foo = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": name}, "spec": spec});
        let (code, v, _) = send(
            &c,
            &s.url,
            Method::POST,
            foos,
            "application/json",
            foo.to_string(),
        )
        .await;
        assert_eq!(code, 201, "{v}");
    }
    let hello = s.path().join("plugins/hello.wasm");
    let hello_error = || async {
        let (_, ready) = get(&c, format!("{}/readyz?verbose", s.url), "text/plain").await;
        ready
            .lines()
            .find(|l| l.starts_with("[+]plugins"))
            .filter(|l| l.contains("hello.wasm"))
            .map(str::to_string)
    };
    let msg1_in_v1 = || async {
        let (code, body) = get(
            &c,
            format!(
                "{}/apis/hello.zeng.dev/v1/namespaces/default/foos/messages",
                s.url
            ),
            "application/json",
        )
        .await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["spec"]["msg1"]
            .as_str()
            .map(str::to_string)
    };

    std::fs::write(&hello, std::fs::read(test_plugin("hello-lossy")).unwrap()).unwrap();
    wait_for("the lossy build is refused", || async {
        hello_error().await.is_some()
    })
    .await;
    let err = hello_error().await.unwrap();
    assert!(err.contains("the upgrade gate refused the new build of hello.wasm (1 failure after replaying all 2 stored objects; to replace it anyway, set upgradeGate: Skip in its settings file or --upgrade-gate=skip): default/messages: converted to v1 and back it differs at spec.config.msg1 (dropped)"), "{err}");
    assert_eq!(
        msg1_in_v1().await.as_deref(),
        Some("b"),
        "the serving build still converts losslessly"
    );
    assert_eq!(
        s.sample("wasm_apiserver_plugin_load_error{file=\"hello.wasm\"}")
            .await,
        Some(1.0)
    );

    std::fs::write(&hello, std::fs::read(test_plugin("hello-pinned")).unwrap()).unwrap();
    wait_for("the pinned build is refused", || async {
        hello_error()
            .await
            .is_some_and(|e| e.contains("validate-update"))
    })
    .await;
    let err = hello_error().await.unwrap();
    assert!(err.contains("default/unpinned: validate-update of the unchanged object: spec.image: must name a tag (this build requires pinned images)"), "{err}");

    // A compatible build (the same code, another digest) passes the gate.
    std::fs::write(&hello, rebuilt(&example("hello"), "compatible")).unwrap();
    wait_for("the compatible build serves", || async {
        hello_error().await.is_none()
    })
    .await;
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert!(
        log.contains(
            "the upgrade gate replayed all 2 stored objects through hello.wasm: no change"
        ),
        "{log}"
    );

    // A deliberate break, said so in the plugin's settings file.
    std::fs::write(
        s.path().join("plugins/hello.settings.yaml"),
        "upgradeGate: Skip\n",
    )
    .unwrap();
    std::fs::write(&hello, std::fs::read(test_plugin("hello-lossy")).unwrap()).unwrap();
    wait_for("the lossy build serves", || async {
        msg1_in_v1().await.is_none()
    })
    .await;
    assert!(hello_error().await.is_none());
}

/// A plugin's settings file sets its memory cap, hook deadline, concurrency and
/// quarantine threshold; a settings file with an unknown field is refused naming the
/// file and the field, and the working build keeps serving.
#[tokio::test(flavor = "multi_thread")]
async fn a_plugins_settings_file_sets_its_budget() {
    let dir = with_plugins(&[(test_plugin("misbehave"), "misbehave")]);
    let settings = dir.path().join("plugins/misbehave.settings.yaml");
    std::fs::write(&settings, "memoryLimitMiB: 8\nhookDeadline: 150ms\nmaxConcurrentInstances: 1\nquarantineThreshold: 0\n").unwrap();
    let s = Arc::new(Server::start_in(dir));
    let c = s.client();
    let (code, v, _) = create(&c, &s, "default", "a", "oom").await;
    assert_eq!(code, 500);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("default exceeded its memory limit of 8 MiB"),
        "{v}"
    );
    let (code, v, _) = create(&c, &s, "default", "b", "loop").await;
    assert_eq!(code, 500);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("default did not return within its deadline of 150 ms"),
        "{v}"
    );

    // One call at a time: of six loops sent at once, those that find the one
    // instance busy past the deadline are turned away with 429.
    let calls = futures::future::join_all((0..6).map(|i| {
        let (c, s) = (c.clone(), s.clone());
        async move { create(&c, &s, "default", &format!("l{i}"), "loop").await }
    }))
    .await;
    let busy: Vec<&(u16, Value, reqwest::header::HeaderMap)> =
        calls.iter().filter(|(code, _, _)| *code == 429).collect();
    assert!(
        !busy.is_empty(),
        "{:?}",
        calls.iter().map(|c| c.0).collect::<Vec<_>>()
    );
    for (_, v, headers) in &busy {
        assert_eq!(v["reason"], "TooManyRequests");
        assert_eq!(v["message"], "plugin misbehave.wasm: all 1 of its concurrent hook calls (maxConcurrentInstances) are busy, and none ended within 150 ms");
        assert_eq!(headers["retry-after"], "1");
    }
    assert!(calls
        .iter()
        .all(|(code, _, _)| *code == 429 || *code == 500));
    assert!(
        s.sample("wasm_apiserver_plugin_busy_total{plugin=\"misbehave.wasm\"}")
            .await
            .unwrap()
            >= 1.0
    );
    // quarantineThreshold 0: many failures, no quarantine.
    assert_eq!(create(&c, &s, "default", "fine", "").await.0, 201);
    assert_eq!(
        s.sample("wasm_apiserver_plugin_quarantined{plugin=\"misbehave.wasm\"}")
            .await,
        Some(0.0)
    );

    // A mistake in the settings file: refused by name; the working build serves on.
    std::fs::write(&settings, "memoryLimit: 8\n").unwrap();
    let ready = || async {
        get(&c, format!("{}/readyz?verbose", s.url), "text/plain")
            .await
            .1
    };
    wait_for("the bad settings are reported", || async {
        ready().await.contains("unknown field")
    })
    .await;
    let r = ready().await;
    assert!(r.contains("misbehave.settings.yaml: unknown field `memoryLimit`, expected one of `memoryLimitMiB`"), "{r}");
    let (code, v, _) = create(&c, &s, "default", "b", "loop").await;
    assert_eq!(code, 500);
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .ends_with("within its deadline of 150 ms"),
        "the old budget still applies: {v}"
    );
}
