//! The server on a real etcd (Debian's `etcd-server`, started per test on loopback
//! ports): kube's key layout, reads from the cache, values someone else wrote, compacted
//! continue tokens, etcd going away under load, and two replicas on one etcd.

use crate::common::etcd::Etcd;
use crate::common::events::Events;
use crate::common::server::Server;
use reqwest::{Client, StatusCode};
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use wasm_apiserver::storage::etcd::{EtcdOptions, EtcdStore};
use wasm_apiserver::storage::Storage;

const FOOS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
const KEY: &str = "/hello.zeng.dev/foos/default";

fn on_etcd(etcd: &Etcd) -> Server {
    Server::start_with(&["--storage", "etcd", "--etcd-servers", &etcd.url()])
}

async fn store(etcd: &Etcd) -> EtcdStore {
    EtcdStore::connect(&EtcdOptions {
        servers: vec![etcd.url()],
        ..EtcdOptions::default()
    })
    .await
    .unwrap()
}

fn foo(name: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
           "metadata": {"name": name},
           "spec": {"image": "nginx", "config": {"msg": "hi"}}})
}

fn rv(v: &Value) -> u64 {
    v["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or_else(|| panic!("no resourceVersion in {v}"))
        .parse()
        .unwrap()
}

async fn call(
    c: &Client,
    method: reqwest::Method,
    url: String,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut r = c.request(method, &url);
    if let Some(b) = body {
        r = r.json(b);
    }
    let resp = r.send().await.unwrap();
    let code = resp.status();
    let text = resp.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| Value::String(text));
    (code, v)
}

async fn create(s: &Server, c: &Client, name: &str) -> (StatusCode, Value) {
    call(
        c,
        reqwest::Method::POST,
        format!("{}{FOOS}", s.url),
        Some(&foo(name)),
    )
    .await
}

async fn get(s: &Server, c: &Client, path: &str) -> (StatusCode, Value) {
    call(c, reqwest::Method::GET, format!("{}{path}", s.url), None).await
}

async fn wait_ready(s: &Server, c: &Client) {
    let started = Instant::now();
    loop {
        if let Ok(r) = c.get(format!("{}/readyz", s.url)).send().await {
            if r.status() == StatusCode::OK {
                return;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the server did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn objects_live_under_kubes_key_layout_and_reads_come_from_the_cache() {
    let etcd = tokio::task::block_in_place(Etcd::start);
    let s = on_etcd(&etcd);
    let c = s.client();
    wait_ready(&s, &c).await;
    let (code, body) = get(&s, &c, "/readyz?verbose").await;
    assert_eq!(code, StatusCode::OK);
    assert!(body.as_str().unwrap().contains("[+]etcd ok"), "{body}");

    let (code, created) = create(&s, &c, "a").await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let etcd_store = store(&etcd).await;
    let raw = etcd_store
        .get(&format!("{KEY}/a"))
        .await
        .unwrap()
        .expect("the object is in etcd");
    assert_eq!(
        raw.revision,
        rv(&created),
        "resourceVersion is mod_revision"
    );
    let stored: Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(
        stored["apiVersion"], "hello.zeng.dev/v2",
        "the storage version"
    );
    assert!(stored["metadata"].get("resourceVersion").is_none());

    // kubectl works unchanged on etcd.
    let got = s.ok(&[
        "get",
        "foos",
        "a",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    assert_eq!(got, rv(&created).to_string());

    // resourceVersion=0 and =N are answered by the watch cache; garbage is a 400.
    let (code, cached) = get(&s, &c, &format!("{FOOS}/a?resourceVersion=0")).await;
    assert_eq!((code, rv(&cached)), (StatusCode::OK, rv(&created)));
    let n = rv(&created);
    let (code, cached) = get(&s, &c, &format!("{FOOS}/a?resourceVersion={n}")).await;
    assert_eq!(
        (code, cached["spec"]["image"].clone()),
        (StatusCode::OK, json!("nginx"))
    );
    let (code, v1) = get(
        &s,
        &c,
        "/apis/hello.zeng.dev/v1/namespaces/default/foos/a?resourceVersion=0",
    )
    .await;
    assert_eq!(
        (code, v1["apiVersion"].clone()),
        (StatusCode::OK, json!("hello.zeng.dev/v1"))
    );
    let (code, missing) = get(&s, &c, &format!("{FOOS}/nope?resourceVersion=0")).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{missing}");
    let (code, bad) = get(&s, &c, &format!("{FOOS}/a?resourceVersion=abc")).await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("invalid resource version"),
        "{bad}"
    );
}

/// Bytes someone else wrote under our keys: each read of that object is a 500 naming
/// the etcd key; lists say the same; the watch cache and its watchers carry on; the
/// other objects are intact.
#[tokio::test(flavor = "multi_thread")]
async fn values_written_by_someone_else_fail_clearly_and_nothing_else_breaks() {
    let etcd = tokio::task::block_in_place(Etcd::start);
    let s = on_etcd(&etcd);
    let c = s.client();
    wait_ready(&s, &c).await;
    assert_eq!(create(&s, &c, "good").await.0, StatusCode::CREATED);
    let mut w = Events::open(&c, &format!("{}{FOOS}?watch=true&resourceVersion=0", s.url)).await;
    assert_eq!(w.next_brief().await.0, "ADDED");

    let raw = store(&etcd).await;
    raw.put_raw(&format!("{KEY}/garbage"), b"{not json".to_vec())
        .await
        .unwrap();
    raw.put_raw(
        &format!("{KEY}/pod"),
        br#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"pod"}}"#.to_vec(),
    )
    .await
    .unwrap();

    let (code, st) = get(&s, &c, &format!("{FOOS}/garbage")).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("etcd key /registry/hello.zeng.dev/foos/default/garbage")
            && msg.contains("not valid JSON"),
        "{msg}"
    );
    let (code, st) = get(&s, &c, &format!("{FOOS}/pod")).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    let msg = st["message"].as_str().unwrap();
    assert!(
        msg.contains("/registry/hello.zeng.dev/foos/default/pod")
            && msg.contains("not a Foo.hello.zeng.dev")
            && msg.contains("\"Pod\""),
        "{msg}"
    );
    // A list from etcd reports the first bad object; the cache leaves them out.
    let (code, st) = get(&s, &c, FOOS).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(st["message"]
        .as_str()
        .unwrap()
        .contains("/registry/hello.zeng.dev/foos/default/garbage"));
    let (code, list) = get(&s, &c, &format!("{FOOS}?resourceVersion=0")).await;
    assert_eq!(code, StatusCode::OK);
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["good"]);
    // The open watch skipped both and still delivers what comes next.
    assert_eq!(create(&s, &c, "after").await.0, StatusCode::CREATED);
    let (kind, name, _) = w.next_brief().await;
    assert_eq!((kind.as_str(), name.as_str()), ("ADDED", "after"));
    let (code, good) = get(&s, &c, &format!("{FOOS}/good")).await;
    assert_eq!(code, StatusCode::OK, "{good}");
}

/// A continue token whose revision etcd has compacted is 410 with kube's message; a
/// page that fails because etcd is down is a 503, and the same token works once etcd
/// is back, with the list still at its first page's revision.
#[tokio::test(flavor = "multi_thread")]
async fn continue_tokens_survive_an_outage_and_expire_with_compaction() {
    let mut etcd = tokio::task::block_in_place(Etcd::start);
    let s = on_etcd(&etcd);
    let c = s.client();
    wait_ready(&s, &c).await;
    for i in 0..5 {
        assert_eq!(
            create(&s, &c, &format!("f{i}")).await.0,
            StatusCode::CREATED
        );
    }
    let (_, page1) = get(&s, &c, &format!("{FOOS}?limit=2")).await;
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    let at = rv(&page1);
    assert_eq!(create(&s, &c, "late").await.0, StatusCode::CREATED);

    tokio::task::block_in_place(|| etcd.stop());
    let started = Instant::now();
    let (code, st) = get(&s, &c, &format!("{FOOS}?limit=2&continue={token}")).await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{st}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "fails fast: {:?}",
        started.elapsed()
    );
    assert_eq!(st["reason"], "ServiceUnavailable");
    assert!(st["message"].as_str().unwrap().contains("etcd"), "{st}");
    tokio::task::block_in_place(|| etcd.resume());

    let (code, page2) = get(&s, &c, &format!("{FOOS}?limit=2&continue={token}")).await;
    assert_eq!(code, StatusCode::OK, "{page2}");
    assert_eq!(rv(&page2), at, "the whole list is read at one revision");
    let token2 = page2["metadata"]["continue"].as_str().unwrap().to_string();
    let (_, page3) = get(&s, &c, &format!("{FOOS}?limit=2&continue={token2}")).await;
    let names: Vec<&str> = [&page1, &page2, &page3]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap())
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["f0", "f1", "f2", "f3", "f4"], "no late object");

    // Compact past the token's revision: 410 Expired.
    let raw = store(&etcd).await;
    let now = raw.current_revision().await.unwrap();
    raw.compact(now).await.unwrap();
    let (code, st) = get(&s, &c, &format!("{FOOS}?limit=2&continue={token}")).await;
    assert_eq!(code, StatusCode::GONE, "{st}");
    assert_eq!(st["reason"], "Expired");
    assert!(st["message"]
        .as_str()
        .unwrap()
        .starts_with("The provided continue parameter is too old"));
    // Nothing was lost.
    let (_, all) = get(&s, &c, FOOS).await;
    assert_eq!(all["items"].as_array().unwrap().len(), 6);
}

/// etcd killed under a steady stream of creates: requests fail fast with 503 and
/// /readyz says etcd is failing; when etcd returns, the server recovers by itself and
/// a watch opened before the outage has every stored object exactly once, in order.
#[tokio::test(flavor = "multi_thread")]
async fn an_etcd_outage_under_load_fails_fast_then_recovers_and_watches_resume() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let mut etcd = tokio::task::block_in_place(Etcd::start);
    let s = Arc::new(on_etcd(&etcd));
    let c = s.client();
    wait_ready(&s, &c).await;
    let mut w = Events::open(&c, &format!("{}{FOOS}?watch=true&resourceVersion=0", s.url)).await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (s, c, stop) = (s.clone(), c.clone(), stop.clone());
        tokio::spawn(async move {
            let mut codes = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                let (code, body) = create(&s, &c, &format!("w{i}")).await;
                codes.push((code, body));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            codes
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    tokio::task::block_in_place(|| etcd.stop());

    let started = Instant::now();
    let (code, st) = get(&s, &c, &format!("{FOOS}/w0")).await;
    let took = started.elapsed();
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{st}");
    assert!(took < Duration::from_secs(5), "fails fast: {took:?}");
    assert!(st["message"].as_str().unwrap().contains("etcd"), "{st}");
    let resp = c
        .get(format!("{}/readyz?verbose", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let text = resp.text().await.unwrap();
    assert!(text.contains("[-]etcd failed"), "{text}");
    tokio::time::sleep(Duration::from_secs(2)).await;

    tokio::task::block_in_place(|| etcd.resume());
    wait_ready(&s, &c).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::Relaxed);
    let codes = writer.await.unwrap();
    let failed: Vec<_> = codes
        .iter()
        .filter(|(c, _)| *c != StatusCode::CREATED)
        .collect();
    assert!(!failed.is_empty(), "some creates met the outage");
    for (code, body) in &failed {
        assert_eq!(*code, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    }
    assert_eq!(
        codes.last().unwrap().0,
        StatusCode::CREATED,
        "writes succeed again after the outage"
    );

    // What etcd holds (a create cut off by the kill may or may not have landed) is
    // exactly what the watch delivered: no gap, no repeat, in order.
    let (_, list) = get(&s, &c, FOOS).await;
    let mut want: Vec<(String, u64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["metadata"]["name"].as_str().unwrap().to_string(), rv(i)))
        .collect();
    want.sort_by_key(|(_, r)| *r);
    let mut seen = Vec::new();
    while seen.len() < want.len() {
        let e = w
            .next_within(Duration::from_secs(20))
            .await
            .expect("the watch opened before the outage is still open");
        assert_eq!(e["type"], "ADDED", "{e}");
        seen.push((
            e["object"]["metadata"]["name"]
                .as_str()
                .unwrap()
                .to_string(),
            rv(&e["object"]),
        ));
    }
    assert_eq!(seen, want);
    assert!(
        w.next_within(Duration::from_millis(500)).await.is_none(),
        "nothing more"
    );
}

/// Two servers on one etcd: a write through one reaches a watch on the other; a stale
/// update through the other is a 409; a list paged across both stays at one revision.
#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_etcd_agree() {
    let etcd = tokio::task::block_in_place(Etcd::start);
    let (a, b) = (on_etcd(&etcd), on_etcd(&etcd));
    let (ca, cb) = (a.client(), b.client());
    wait_ready(&a, &ca).await;
    wait_ready(&b, &cb).await;
    let mut wb = Events::open(
        &cb,
        &format!("{}{FOOS}?watch=true&resourceVersion=0", b.url),
    )
    .await;

    let (code, x) = create(&a, &ca, "x").await;
    assert_eq!(code, StatusCode::CREATED);
    let (kind, name, r) = wb.next_brief().await;
    assert_eq!((kind.as_str(), name.as_str(), r), ("ADDED", "x", rv(&x)));
    // Reading at the write's resourceVersion on the other replica sees it.
    let (code, got) = get(&b, &cb, &format!("{FOOS}/x?resourceVersion={}", rv(&x))).await;
    assert_eq!((code, rv(&got)), (StatusCode::OK, rv(&x)));

    let mut changed = x.clone();
    changed["spec"]["image"] = json!("busybox");
    let (code, updated) = call(
        &ca,
        reqwest::Method::PUT,
        format!("{}{FOOS}/x", a.url),
        Some(&changed),
    )
    .await;
    assert_eq!(code, StatusCode::OK, "{updated}");
    let mut stale = x.clone();
    stale["spec"]["image"] = json!("alpine");
    let (code, st) = call(
        &cb,
        reqwest::Method::PUT,
        format!("{}{FOOS}/x", b.url),
        Some(&stale),
    )
    .await;
    assert_eq!(code, StatusCode::CONFLICT, "{st}");
    assert_eq!(
        st["message"],
        "Operation cannot be fulfilled on foos.hello.zeng.dev \"x\": the object has been modified; please apply your changes to the latest version and try again"
    );
    let (kind, _, r) = wb.next_brief().await;
    assert_eq!((kind.as_str(), r), ("MODIFIED", rv(&updated)));
    let (_, now) = get(&b, &cb, &format!("{FOOS}/x")).await;
    assert_eq!(
        now["spec"]["image"], "busybox",
        "the stale update changed nothing"
    );

    for n in ["y", "z"] {
        assert_eq!(create(&b, &cb, n).await.0, StatusCode::CREATED);
    }
    let (_, page1) = get(&a, &ca, &format!("{FOOS}?limit=2")).await;
    let token = page1["metadata"]["continue"].as_str().unwrap();
    assert_eq!(create(&b, &cb, "late").await.0, StatusCode::CREATED);
    let (code, page2) = get(&b, &cb, &format!("{FOOS}?limit=2&continue={token}")).await;
    assert_eq!(code, StatusCode::OK, "{page2}");
    assert_eq!(rv(&page2), rv(&page1));
    let names: Vec<&str> = [&page1, &page2]
        .iter()
        .flat_map(|p| p["items"].as_array().unwrap())
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["x", "y", "z"]);
    assert!(page2["metadata"].get("continue").is_none_or(|c| c == ""));
    // kubectl through either replica sees the same objects.
    let via_a = a.ok(&["get", "foos", "-o", "name"]);
    assert_eq!(via_a, b.ok(&["get", "foos", "-o", "name"]));
    assert_eq!(via_a.lines().count(), 4);
}

/// etcd over TLS with client certificates: `--etcd-cafile/--etcd-certfile/--etcd-keyfile`
/// work; without a client certificate etcd refuses us and every request says so with a
/// 503; half a key pair or a missing file stops the server at start with the reason.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_over_tls_with_client_certificates() {
    let (etcd, tls) = tokio::task::block_in_place(Etcd::start_tls);
    let (ca, cert, key) = (
        tls.ca.to_str().unwrap(),
        tls.client_cert.to_str().unwrap(),
        tls.client_key.to_str().unwrap(),
    );
    let url = etcd.url();
    let s = Server::start_with(&[
        "--storage",
        "etcd",
        "--etcd-servers",
        &url,
        "--etcd-cafile",
        ca,
        "--etcd-certfile",
        cert,
        "--etcd-keyfile",
        key,
    ]);
    let c = s.client();
    wait_ready(&s, &c).await;
    assert_eq!(create(&s, &c, "secure").await.0, StatusCode::CREATED);
    assert_eq!(
        get(&s, &c, &format!("{FOOS}/secure")).await.0,
        StatusCode::OK
    );

    // No client certificate: etcd rejects the handshake.
    let anon = Server::start_with(&[
        "--storage",
        "etcd",
        "--etcd-servers",
        &url,
        "--etcd-cafile",
        ca,
    ]);
    let ac = anon.client();
    let (code, st) = create(&anon, &ac, "nope").await;
    assert_eq!(code, StatusCode::SERVICE_UNAVAILABLE, "{st}");
    assert!(
        st["message"].as_str().unwrap().contains(&url),
        "names etcd: {st}"
    );
    let ready = ac
        .get(format!("{}/readyz/etcd", anon.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        get(&s, &c, &format!("{FOOS}/nope")).await.0 == StatusCode::NOT_FOUND,
        "nothing written"
    );

    for (flags, why) in [
        (
            vec!["--etcd-certfile", cert],
            "--etcd-certfile and --etcd-keyfile go together",
        ),
        (
            vec!["--etcd-cafile", "/nonexistent/ca.crt"],
            "reading --etcd-cafile /nonexistent/ca.crt",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(crate::common::server::binary())
            .args([
                "--dev",
                "--secure-port",
                "0",
                "--storage",
                "etcd",
                "--etcd-servers",
                &url,
            ])
            .arg("--plugin-dir")
            .arg(crate::common::server::copy_examples(dir.path()))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(&flags)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(err.contains(why), "{flags:?}: {err}");
    }
}

/// kube-apiserver's request timeout: a request that outlives `--request-timeout`, or
/// the shorter `timeout` it asked for, is answered 504 while the store hangs; the
/// server serves again once the store answers.
#[tokio::test(flavor = "multi_thread")]
async fn requests_outliving_their_timeout_get_504_while_etcd_hangs() {
    let etcd = Etcd::start();
    let s = Server::start_with(&[
        "--storage",
        "etcd",
        "--etcd-servers",
        &etcd.url(),
        "--etcd-request-timeout",
        "20s",
        "--request-timeout",
        "1s",
    ]);
    let c = s.client();
    let ns = format!("{}/apis/hello.zeng.dev/v2/namespaces/default/foos", s.url);
    let r = c.post(&ns).json(&foo("before")).send().await.unwrap();
    assert_eq!(r.status(), 201);

    etcd.pause();
    let started = Instant::now();
    let r = c
        .get(format!("{ns}/before?timeout=300ms"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["reason"], "Timeout", "{v}");
    assert_eq!(
        v["message"],
        "Timeout: request did not complete within the allotted timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "the 300 ms timeout was not kept"
    );

    let started = Instant::now();
    let r = c.post(&ns).json(&foo("during")).send().await.unwrap();
    assert_eq!(r.status(), 504);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["message"],
        "Timeout: request did not complete within requested timeout - context deadline exceeded"
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "--request-timeout 1s took {took:?}"
    );

    etcd.unpause();
    let r = c.get(format!("{ns}/before")).send().await.unwrap();
    assert_eq!(r.status(), 200, "serving again once etcd answers");
}
