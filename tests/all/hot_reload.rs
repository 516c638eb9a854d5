//! Hot reload against the real binary in `--dev`: files added, changed and removed in
//! the plugin folder while the server serves; bad files never replace a working plugin;
//! a load of GET, LIST and CREATE sees no failure while hello is swapped 20 times.
//!
//! The two behaviours come from two builds of the hello example: the normal one, and
//! `hello-pinned.wasm` (feature `pinned-images`), whose validation also requires
//! `spec.image` to name a tag.

use crate::common::events::Events;
use crate::common::server::Server;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

const FOOS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
const PINNED_MSG: &str = "must name a tag (this build requires pinned images)";

fn normal() -> Vec<u8> {
    std::fs::read(crate::common::example("hello")).unwrap()
}

fn pinned() -> Vec<u8> {
    std::fs::read(crate::common::test_plugin("hello-pinned")).unwrap()
}

fn foo(name: &str, image: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
           "metadata": {"name": name}, "spec": {"image": image}})
}

async fn create(s: &Server, c: &Client, name: &str, image: &str) -> (StatusCode, Value) {
    let r = c
        .post(format!("{}{FOOS}", s.url))
        .json(&foo(name, image))
        .send()
        .await
        .unwrap();
    let code = r.status();
    (code, r.json().await.unwrap_or(Value::Null))
}

/// Whether hello currently requires pinned images: probe with a dry-run create.
async fn is_pinned(s: &Server, c: &Client) -> bool {
    let r = c
        .post(format!("{}{FOOS}?dryRun=All", s.url))
        .json(&foo("probe", "nginx"))
        .send()
        .await
        .unwrap();
    match r.status() {
        StatusCode::CREATED => false,
        StatusCode::UNPROCESSABLE_ENTITY => {
            let v: Value = r.json().await.unwrap();
            assert!(v["message"].as_str().unwrap().contains(PINNED_MSG), "{v}");
            true
        }
        other => panic!("unexpected {other}"),
    }
}

async fn wait_until_pinned(s: &Server, c: &Client, want: bool) -> Duration {
    let started = Instant::now();
    while is_pinned(s, c).await != want {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server did not switch to the {} build",
            if want { "pinned" } else { "normal" }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

async fn text(c: &Client, url: String) -> (StatusCode, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status(), r.text().await.unwrap())
}

fn hello_path(s: &Server) -> std::path::PathBuf {
    s.path().join("plugins/hello.wasm")
}

/// [`crate::common::wait_for`], 10 s at most.
async fn wait_for<F: std::future::Future<Output = bool>>(what: &str, f: impl FnMut() -> F) {
    crate::common::wait_for(what, Duration::from_secs(10), f).await
}

#[tokio::test(flavor = "multi_thread")]
async fn plugins_are_added_replaced_and_removed_while_serving() {
    let s = Server::start();
    let c = s.client();
    assert!(!is_pinned(&s, &c).await);
    let (etag0, _) = discovery_etag(&s, &c).await;

    // Changed: the next request runs the new build.
    std::fs::write(hello_path(&s), pinned()).unwrap();
    wait_until_pinned(&s, &c, true).await;
    let (code, st) = create(&s, &c, "untagged", "nginx").await;
    assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY, "{st}");
    assert_eq!(
        create(&s, &c, "tagged", "nginx:1.27").await.0,
        StatusCode::CREATED
    );

    // Removed: gone from discovery and OpenAPI; its objects stay in storage.
    let fischer = json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Fischer",
                         "metadata": {"name": "kept"}, "disallowedFlunders": []});
    let r = c
        .post(format!(
            "{}/apis/wardle.example.com/v1alpha1/fischers",
            s.url
        ))
        .json(&fischer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let fischers = s.path().join("plugins/wardle-fischer.wasm");
    let bytes = std::fs::read(&fischers).unwrap();
    std::fs::remove_file(&fischers).unwrap();
    wait_for("fischers leave discovery", || async {
        !s.ok(&["api-resources"]).contains("fischers")
    })
    .await;
    let (etag1, doc) = discovery_etag(&s, &c).await;
    assert_ne!(etag0, etag1, "a new discovery ETag");
    assert!(!doc.contains("Fischer"));
    let (code, _) = text(
        &c,
        format!("{}/apis/wardle.example.com/v1alpha1/fischers", s.url),
    )
    .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
    let (_, v2) = text(&c, format!("{}/openapi/v2", s.url)).await;
    let defs: Value = serde_json::from_str(&v2).unwrap();
    let names: Vec<&String> = defs["definitions"].as_object().unwrap().keys().collect();
    assert!(
        names.iter().any(|n| n.ends_with(".Flunder"))
            && !names.iter().any(|n| n.ends_with(".Fischer")),
        "{names:?}"
    );

    // Added (back): the resource returns with its stored object.
    std::fs::write(&fischers, bytes).unwrap();
    wait_for("fischers come back", || async {
        s.ok(&["api-resources"]).contains("fischers")
    })
    .await;
    assert_eq!(
        s.ok(&["get", "fischers", "-o", "name"]).trim(),
        "fischer.wardle.example.com/kept"
    );
    assert!(s.ok(&["explain", "fischer"]).contains("Fischer"));
    let (code, ready) = text(&c, format!("{}/readyz?verbose", s.url)).await;
    assert_eq!(code, StatusCode::OK, "{ready}");
}

/// The aggregated discovery document and its ETag.
async fn discovery_etag(s: &Server, c: &Client) -> (String, String) {
    let r = c
        .get(format!("{}/apis", s.url))
        .header(
            "accept",
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
        )
        .send()
        .await
        .unwrap();
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    (etag, r.text().await.unwrap())
}

/// The load error of hello.wasm on /readyz?verbose and /metrics, if any. The two are
/// read one after the other, so a reload may land in between: read again until they
/// agree.
async fn hello_error(s: &Server, c: &Client) -> Option<String> {
    let mut last = String::new();
    for _ in 0..20 {
        let (code, ready) = text(c, format!("{}/readyz?verbose", s.url)).await;
        assert_eq!(
            code,
            StatusCode::OK,
            "a failed reload does not make the server unready"
        );
        let metrics = text(c, format!("{}/metrics", s.url)).await.1;
        let gauge = metrics.contains("wasm_apiserver_plugin_load_error{file=\"hello.wasm\"} 1");
        let line = ready
            .lines()
            .find(|l| l.contains("hello.wasm"))
            .map(str::to_string);
        if gauge == line.is_some() {
            return line;
        }
        last = format!("{ready}\n{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz and /metrics disagree about hello.wasm: {last}");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_files_never_replace_a_working_plugin() {
    let s = Server::start();
    let c = s.client();
    let hello = hello_path(&s);
    // Pinned, so that the pinned build passes the upgrade gate.
    assert_eq!(
        create(&s, &c, "kept", "nginx:1.27").await.0,
        StatusCode::CREATED
    );

    // A half-written file (the writer pauses longer than the debounce): refused; the
    // working build serves; the rest of the write brings the new build.
    let full = pinned();
    let mut f = std::fs::File::create(&hello).unwrap();
    std::io::Write::write_all(&mut f, &full[..full.len() / 2]).unwrap();
    f.sync_all().unwrap();
    wait_for("the half file is reported", || async {
        hello_error(&s, &c).await.is_some()
    })
    .await;
    assert!(!is_pinned(&s, &c).await, "the working build still serves");
    assert!(hello_error(&s, &c).await.unwrap().contains("hello.wasm"));
    std::io::Write::write_all(&mut f, &full[full.len() / 2..]).unwrap();
    drop(f);
    wait_until_pinned(&s, &c, true).await;
    wait_for("the error clears", || async {
        hello_error(&s, &c).await.is_none()
    })
    .await;

    // Garbage.
    std::fs::write(&hello, b"garbage, not wasm").unwrap();
    wait_for("garbage is reported", || async {
        hello_error(&s, &c).await.is_some()
    })
    .await;
    let err = hello_error(&s, &c).await.unwrap();
    assert!(err.contains("not a WebAssembly file"), "{err}");
    assert!(is_pinned(&s, &c).await, "the working build still serves");

    // A plugin of another kind under hello's name.
    std::fs::write(
        &hello,
        std::fs::read(crate::common::example("wardle-fischer")).unwrap(),
    )
    .unwrap();
    wait_for("the kind change is reported", || async {
        hello_error(&s, &c)
            .await
            .is_some_and(|e| e.contains("instead of"))
    })
    .await;
    let err = hello_error(&s, &c).await.unwrap();
    assert!(
        err.contains("serves fischers.wardle.example.com (kind Fischer) instead of foos.hello.zeng.dev (kind Foo)"),
        "{err}"
    );
    assert!(is_pinned(&s, &c).await);
    let (code, got) = text(&c, format!("{}{FOOS}/kept", s.url)).await;
    assert_eq!(code, StatusCode::OK, "{got}");

    // Many rapid changes: the last one wins.
    for i in 0..30 {
        std::fs::write(&hello, if i % 2 == 0 { pinned() } else { normal() }).unwrap();
    }
    wait_until_pinned(&s, &c, false).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!is_pinned(&s, &c).await, "settled on the last write");
    assert!(hello_error(&s, &c).await.is_none());

    // Removed while requests are in flight: they finish (200), later ones get 404.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut loops = Vec::new();
    for _ in 0..16 {
        let (c, url, stop) = (c.clone(), format!("{}{FOOS}/kept", s.url), stop.clone());
        loops.push(tokio::spawn(async move {
            let mut codes = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                codes.push(c.get(&url).send().await.unwrap().status());
            }
            codes
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::remove_file(&hello).unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen_404 = false;
    for l in loops {
        let codes = l.await.unwrap();
        assert_eq!(codes.first(), Some(&StatusCode::OK));
        for c in &codes {
            assert!(*c == StatusCode::OK || *c == StatusCode::NOT_FOUND, "{c}");
        }
        seen_404 |= codes.last() == Some(&StatusCode::NOT_FOUND);
    }
    assert!(seen_404, "the resource is gone after the removal");
    // And comes back, with its object.
    std::fs::write(&hello, normal()).unwrap();
    wait_for("hello comes back", || async {
        c.get(format!("{}{FOOS}/kept", s.url))
            .send()
            .await
            .unwrap()
            .status()
            == StatusCode::OK
    })
    .await;
}

/// The proof: 32 clients run GET, LIST and CREATE while hello.wasm is replaced 20
/// times by builds with different validation. No request fails, each behaves as one of
/// the two builds, and a watch opened before keeps streaming every create.
#[tokio::test(flavor = "multi_thread")]
async fn no_request_fails_while_the_plugin_is_swapped_20_times() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    // The swaps go to a stricter build while unpinned objects are stored, which the
    // upgrade gate refuses (plugin_safety tests that): skipped here, on purpose.
    let s = Arc::new(Server::start_with(&["--upgrade-gate", "skip"]));
    let c = s.client();
    assert_eq!(create(&s, &c, "seed", "nginx").await.0, StatusCode::CREATED);
    let mut watch = Events::open(&c, &format!("{}{FOOS}?watch=true", s.url)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let n = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for w in 0..32 {
        let (s, c, stop, n) = (s.clone(), c.clone(), stop.clone(), n.clone());
        clients.push(tokio::spawn(async move {
            // (created, rejected by the pinned build, reads)
            let mut tally = (0, 0, 0);
            while !stop.load(Ordering::Relaxed) {
                let i = n.fetch_add(1, Ordering::Relaxed);
                match w % 3 {
                    0 => {
                        let image = if i % 2 == 0 { "nginx" } else { "nginx:1.27" };
                        let (code, body) = create(&s, &c, &format!("l{i}"), image).await;
                        match code {
                            StatusCode::CREATED => tally.0 += 1,
                            StatusCode::UNPROCESSABLE_ENTITY if image == "nginx" => {
                                assert!(
                                    body["message"].as_str().unwrap().contains(PINNED_MSG),
                                    "{body}"
                                );
                                tally.1 += 1;
                            }
                            other => panic!("create {image}: {other} {body}"),
                        }
                    }
                    1 => {
                        let (code, body) = text(&c, format!("{}{FOOS}/seed", s.url)).await;
                        assert_eq!(code, StatusCode::OK, "{body}");
                        tally.2 += 1;
                    }
                    _ => {
                        let (code, body) = text(&c, format!("{}{FOOS}?limit=50", s.url)).await;
                        assert_eq!(code, StatusCode::OK, "{body}");
                        tally.2 += 1;
                    }
                }
            }
            tally
        }));
    }
    let hello = hello_path(&s);
    for i in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        std::fs::write(&hello, if i % 2 == 0 { pinned() } else { normal() }).unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut created, mut rejected, mut reads) = (0, 0, 0);
    for t in clients {
        let (a, b, r) = t.await.unwrap();
        created += a;
        rejected += b;
        reads += r;
    }
    assert!(rejected > 0, "the pinned build served some creates");
    assert!(reads > 0 && created > 0);
    // Every successful create reached the watch opened before the first swap.
    let mut added = 0;
    while added < created {
        let e = watch
            .next_within(Duration::from_secs(10))
            .await
            .expect("the watch kept streaming through the swaps");
        if e["type"] == "ADDED" {
            added += 1;
        }
    }
    assert!(
        !is_pinned(&s, &c).await,
        "the last write was the normal build"
    );
    assert!(hello_error(&s, &c).await.is_none());
}

/// Winch (`--plugin-compiler winch`, what `make dev` uses) compiles plugins that serve,
/// convert and reload like Cranelift's.
#[tokio::test(flavor = "multi_thread")]
async fn winch_compiled_plugins_serve_convert_and_reload() {
    // The stored Foo has hello's default image, which the pinned build would refuse:
    // the upgrade gate is skipped to test the reload itself.
    let s = Server::start_with(&["--plugin-compiler", "winch", "--upgrade-gate", "skip"]);
    let c = s.client();
    let v1 = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                    "metadata": {"name": "w"}, "spec": {"msg": "hi"}});
    let r = c
        .post(format!(
            "{}/apis/hello.zeng.dev/v1/namespaces/default/foos",
            s.url
        ))
        .json(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let (code, v2) = text(&c, format!("{}{FOOS}/w", s.url)).await;
    assert_eq!(code, StatusCode::OK);
    let v2: Value = serde_json::from_str(&v2).unwrap();
    assert_eq!(
        v2["spec"]["config"]["msg"], "hi",
        "converted by the Winch-compiled plugin"
    );
    std::fs::write(hello_path(&s), pinned()).unwrap();
    wait_until_pinned(&s, &c, true).await;
}
