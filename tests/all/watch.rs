//! Watch over real HTTPS against the real binary: event order and types, selectors,
//! versions, resume, 410 Expired, bookmarks, initial events, Table watches, shared
//! conversion, and every bad input with the Status kube-apiserver gives.

use crate::common::events::{brief, Events};
use crate::common::server::Server;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

const V2: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
const V1: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";

fn foo(name: &str, image: &str, labels: Value) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
           "metadata": {"name": name, "labels": labels},
           "spec": {"image": image, "config": {"msg": "hi"}}})
}

async fn send(c: &Client, method: reqwest::Method, url: String, body: Option<&Value>) -> Value {
    let mut r = c
        .request(method, &url)
        .header("content-type", "application/merge-patch+json");
    if let Some(b) = body {
        r = r.body(b.to_string());
    }
    let resp = r.send().await.unwrap();
    let code = resp.status();
    let v: Value = resp.json().await.unwrap();
    assert!(code.is_success(), "{url}: {code} {v}");
    v
}

async fn get_json(c: &Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

async fn create(s: &Server, c: &Client, obj: &Value) -> u64 {
    let resp = c
        .post(format!("{}{V2}", s.url))
        .json(obj)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let v: Value = resp.json().await.unwrap();
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn patch(s: &Server, c: &Client, name: &str, patch: Value) -> u64 {
    let v = send(
        c,
        reqwest::Method::PATCH,
        format!("{}{V2}/{name}", s.url),
        Some(&patch),
    )
    .await;
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap()
}

async fn delete(s: &Server, c: &Client, name: &str) {
    send(
        c,
        reqwest::Method::DELETE,
        format!("{}{V2}/{name}", s.url),
        None,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn events_arrive_in_order_in_every_version_with_selector_semantics() {
    let s = Server::start();
    let c = s.client();
    let rv_a = create(&s, &c, &foo("a", "nginx:1", json!({"tier": "web"}))).await;

    // No resourceVersion: the current state as ADDED, then changes.
    let mut all = Events::open(&c, &format!("{}{V2}?watch=true", s.url)).await;
    assert_eq!(all.next_brief().await, ("ADDED".into(), "a".into(), rv_a));
    // The same watch in v1 (converted by the plugin) and with a label selector.
    let mut v1 = Events::open(&c, &format!("{}{V1}?watch=1&resourceVersion={rv_a}", s.url)).await;
    let mut web = Events::open(
        &c,
        &format!(
            "{}{V2}?watch=true&labelSelector=tier%3Dweb&resourceVersion={rv_a}",
            s.url
        ),
    )
    .await;

    let rv_b = create(&s, &c, &foo("b", "redis:7", json!({"tier": "db"}))).await;
    let rv_a2 = patch(&s, &c, "a", json!({"metadata": {"labels": {"tier": "db"}}})).await;
    let rv_b2 = patch(
        &s,
        &c,
        "b",
        json!({"metadata": {"labels": {"tier": "web"}}}),
    )
    .await;
    let rv_b3 = patch(&s, &c, "b", json!({"spec": {"config": {"msg": "changed"}}})).await;
    delete(&s, &c, "b").await;

    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(all.next_brief().await);
    }
    let rv_del = seen[4].2;
    assert_eq!(
        seen,
        vec![
            ("ADDED".into(), "b".into(), rv_b),
            ("MODIFIED".into(), "a".into(), rv_a2),
            ("MODIFIED".into(), "b".into(), rv_b2),
            ("MODIFIED".into(), "b".into(), rv_b3),
            ("DELETED".into(), "b".into(), rv_del),
        ]
    );
    assert!(rv_del > rv_b3, "a delete has its own revision");

    // v1 watchers get v1 objects: the image travels in the annotation.
    let e = v1.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["apiVersion"], "hello.zeng.dev/v1");
    assert_eq!(e["object"]["spec"]["msg"], "hi");
    assert!(
        e["object"]["metadata"]["annotations"]["hello.zeng.dev/v2-fields"]
            .as_str()
            .unwrap()
            .contains("redis:7")
    );
    for want in ["MODIFIED", "MODIFIED", "MODIFIED", "DELETED"] {
        assert_eq!(v1.next().await["type"], want);
    }

    // tier=web: a leaves (DELETED, its last matching state at the new revision),
    // b arrives (ADDED), changes (MODIFIED) and is deleted.
    let leave = web.next().await;
    assert_eq!(brief(&leave), ("DELETED".into(), "a".into(), rv_a2));
    assert_eq!(leave["object"]["metadata"]["labels"]["tier"], "web");
    assert_eq!(web.next_brief().await, ("ADDED".into(), "b".into(), rv_b2));
    assert_eq!(
        web.next_brief().await,
        ("MODIFIED".into(), "b".into(), rv_b3)
    );
    assert_eq!(
        web.next_brief().await,
        ("DELETED".into(), "b".into(), rv_del)
    );
    assert!(web.next_within(Duration::from_millis(300)).await.is_none());

    // One conversion per event for the v1 watcher, none for v2 (the storage version).
    let conversions = s
        .metric("wasm_apiserver_watch_conversions_total", "foos")
        .await;
    assert_eq!(
        conversions, 5,
        "one convert call per event, for the one version that needs it"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn resume_inside_the_window_and_410_outside_it() {
    let s = Server::start_with(&["--watch-cache-window", "3"]);
    let c = s.client();
    // Start the cache, then write more than the window holds.
    let mut w = Events::open(&c, &format!("{}{V2}?watch=true", s.url)).await;
    let mut rvs = Vec::new();
    for i in 0..6 {
        rvs.push(create(&s, &c, &foo(&format!("f{i}"), "busybox", json!({}))).await);
    }
    for rv in &rvs {
        assert_eq!(w.next_brief().await.2, *rv);
    }
    // Inside the window: exactly the events after the given revision.
    let mut resumed = Events::open(
        &c,
        &format!("{}{V2}?watch=true&resourceVersion={}", s.url, rvs[3]),
    )
    .await;
    assert_eq!(
        resumed.next_brief().await,
        ("ADDED".into(), "f4".into(), rvs[4])
    );
    assert_eq!(
        resumed.next_brief().await,
        ("ADDED".into(), "f5".into(), rvs[5])
    );
    assert!(resumed
        .next_within(Duration::from_millis(300))
        .await
        .is_none());
    // Outside: one ERROR event with kube-apiserver's 410 Expired Status, then the end.
    let mut old = Events::open(
        &c,
        &format!("{}{V2}?watch=true&resourceVersion={}", s.url, rvs[0]),
    )
    .await;
    let e = old.next().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["kind"], "Status");
    assert_eq!(e["object"]["code"], 410);
    assert_eq!(e["object"]["reason"], "Expired");
    assert!(e["object"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("too old resource version: {}", rvs[0])));
    assert!(
        old.next_within(Duration::from_secs(2)).await.is_none(),
        "the stream ends"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn initial_events_end_with_a_bookmark_and_bookmarks_keep_coming() {
    let s = Server::start_with(&["--watch-bookmark-seconds", "1"]);
    let c = s.client();
    let rv1 = create(&s, &c, &foo("x", "busybox", json!({}))).await;
    let rv2 = create(&s, &c, &foo("y", "busybox", json!({}))).await;
    let mut w = Events::open(&c, &format!("{}{V2}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&resourceVersion={rv1}", s.url)).await;
    assert_eq!(w.next_brief().await, ("ADDED".into(), "x".into(), rv1));
    assert_eq!(w.next_brief().await, ("ADDED".into(), "y".into(), rv2));
    let end = w.next().await;
    assert_eq!(end["type"], "BOOKMARK");
    assert_eq!(end["object"]["kind"], "Foo");
    assert_eq!(end["object"]["apiVersion"], "hello.zeng.dev/v2");
    assert_eq!(
        end["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert!(brief(&end).2 >= rv2);
    // Periodic bookmarks carry the cache's revision, which follows writes to other kinds.
    let fischer = json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Fischer", "metadata": {"name": "f"}});
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
    let other_rv: u64 = r.json::<Value>().await.unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let mut bookmark_rv = 0;
    for _ in 0..5 {
        let b = w
            .next_within(Duration::from_secs(3))
            .await
            .expect("a bookmark every second");
        assert_eq!(b["type"], "BOOKMARK");
        assert!(b["object"]["metadata"].get("annotations").is_none());
        bookmark_rv = brief(&b).2;
        if bookmark_rv >= other_rv {
            break;
        }
    }
    assert!(
        bookmark_rv >= other_rv,
        "bookmarks advance with the store's revision"
    );
    // No bookmarks unless asked for.
    let mut quiet = Events::open(
        &c,
        &format!("{}{V2}?watch=true&resourceVersion={rv2}", s.url),
    )
    .await;
    assert!(quiet
        .next_within(Duration::from_millis(2500))
        .await
        .is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn table_watches_legacy_paths_timeouts_and_cluster_scope() {
    let s = Server::start();
    let c = s.client();
    let rv = create(&s, &c, &foo("t", "nginx:1", json!({}))).await;
    let mut t = Events::open_as(
        &c,
        &format!("{}{V2}?watch=true", s.url),
        "application/json;as=Table;v=v1;g=meta.k8s.io",
    )
    .await;
    let e = t.next().await;
    assert_eq!(e["type"], "ADDED");
    assert_eq!(e["object"]["kind"], "Table");
    assert_eq!(e["object"]["columnDefinitions"][1]["name"], "Image");
    assert_eq!(e["object"]["rows"][0]["cells"][0], "t");
    assert_eq!(e["object"]["rows"][0]["cells"][1], "nginx:1");

    // The legacy /watch/ path on one name, ended by timeoutSeconds.
    let url = format!("{}/apis/hello.zeng.dev/v2/watch/namespaces/default/foos/t?resourceVersion={rv}&timeoutSeconds=1", s.url);
    let mut one = Events::open(&c, &url).await;
    create(&s, &c, &foo("other", "busybox", json!({}))).await;
    patch(&s, &c, "t", json!({"spec": {"image": "nginx:2"}})).await;
    let e = one.next().await;
    assert_eq!(brief(&e).1, "t", "only the named object");
    assert_eq!(e["object"]["spec"]["image"], "nginx:2");
    let started = std::time::Instant::now();
    assert!(one.next_within(Duration::from_secs(5)).await.is_none());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "timeoutSeconds ends the watch"
    );

    // Cluster-scoped kinds watch the same way.
    let fischers = format!("{}/apis/wardle.example.com/v1alpha1/fischers", s.url);
    let mut f = Events::open(&c, &format!("{fischers}?watch=true")).await;
    let r = c.post(&fischers).json(&json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Fischer", "metadata": {"name": "fi"}})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(f.next_brief().await.1, "fi");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_watch_requests_get_kube_apiservers_status() {
    let s = Server::start();
    let c = s.client();
    let rv = create(&s, &c, &foo("keep", "busybox", json!({}))).await;
    let status =
        |code: u16, reason: &str, message: &str| (code, reason.to_string(), message.to_string());
    let cases = [
        ("?watch=true&resourceVersion=abc", status(400, "BadRequest", "invalid resource version \"abc\": resource versions are unsigned integers")),
        ("?watch=true&sendInitialEvents=true", status(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")),
        ("?watch=true&resourceVersionMatch=NotOlderThan", status(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")),
        ("?sendInitialEvents=true", status(422, "Invalid", "ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")),
        ("?watch=maybe", status(400, "BadRequest", "strconv.ParseBool: parsing \"maybe\": invalid syntax")),
        ("?watch=true&timeoutSeconds=soon", status(400, "BadRequest", "timeoutSeconds: Invalid value: \"soon\": must be a non-negative integer")),
        ("?watch=true&labelSelector=a%20in", status(400, "BadRequest", "")),
    ];
    for (query, (code, reason, message)) in cases {
        let r = c.get(format!("{}{V2}{query}", s.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), code, "{query}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["kind"], "Status", "{query}");
        assert_eq!(v["reason"], reason, "{query}");
        assert!(
            v["message"].as_str().unwrap().starts_with(&message),
            "{query}: {v}"
        );
        if code == 422 {
            assert_eq!(v["details"]["kind"], "ListOptions");
            assert_eq!(v["details"]["group"], "meta.k8s.io");
            assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueForbidden");
        }
    }
    // An unknown resource or version is 404 whether watched or not.
    for path in [
        "/apis/hello.zeng.dev/v2/namespaces/default/bars?watch=true",
        "/apis/hello.zeng.dev/v9/foos?watch=true",
        "/apis/hello.zeng.dev/v2/watch/bars",
    ] {
        let r = c.get(format!("{}{path}", s.url)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.json::<Value>().await.unwrap()["reason"], "NotFound");
    }
    // A resourceVersion from the future: after waiting for it, an ERROR event with
    // the 504 Timeout Status kube-apiserver sends ("Too large resource version").
    let future = rv + 1000;
    let mut w = Events::open(
        &c,
        &format!("{}{V2}?watch=true&resourceVersion={future}", s.url),
    )
    .await;
    let e = w.next().await;
    assert_eq!(e["type"], "ERROR");
    assert_eq!(e["object"]["code"], 504);
    assert_eq!(e["object"]["reason"], "Timeout");
    assert_eq!(
        e["object"]["details"]["causes"][0]["reason"],
        "ResourceVersionTooLarge"
    );
    assert!(e["object"]["message"]
        .as_str()
        .unwrap()
        .starts_with(&format!("Too large resource version: {future}")));
    // YAML cannot be streamed: 406.
    let r = c
        .get(format!("{}{V2}?watch=true", s.url))
        .header("accept", "application/yaml")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::NOT_ACCEPTABLE);
    // Nothing changed: the one object is still there, untouched.
    let list = get_json(&c, &format!("{}{V2}", s.url)).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        list["items"][0]["metadata"]["resourceVersion"],
        rv.to_string()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn watchers_that_disconnect_are_gone_and_lists_at_rv_0_come_from_the_cache() {
    let s = Server::start();
    let c = s.client();
    create(&s, &c, &foo("d", "busybox", json!({}))).await;
    let mut watches = Vec::new();
    for _ in 0..20 {
        let mut w = Events::open(&c, &format!("{}{V2}?watch=true", s.url)).await;
        w.next().await;
        watches.push(w);
    }
    assert_eq!(s.metric("apiserver_registered_watchers", "foos").await, 20);
    drop(watches);
    let mut n = u64::MAX;
    for _ in 0..50 {
        n = s.metric("apiserver_registered_watchers", "foos").await;
        if n == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(n, 0, "no watcher outlives its client");
    // A list at resourceVersion=0 is answered from the cache, in any version.
    let list = get_json(&c, &format!("{}{V1}?resourceVersion=0", s.url)).await;
    assert_eq!(list["kind"], "FooList");
    assert_eq!(list["items"][0]["apiVersion"], "hello.zeng.dev/v1");
    assert_eq!(list["items"][0]["metadata"]["name"], "d");
}
