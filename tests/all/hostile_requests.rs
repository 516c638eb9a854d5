//! Requests kube-apiserver refuses, refused here with its code, reason and wording —
//! and proof that nothing stored changed. One row per request; then deletion
//! propagation end to end with kubectl, the test playing the garbage collector.

use crate::common::send;
use crate::common::server::Server;
use reqwest::{Client, Method};
use serde_json::{json, Value};

const NS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
const ALL: &str = "/apis/hello.zeng.dev/v2/foos";

fn foo(name: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": name}, "spec": {"image": "busybox"}})
}

/// One hostile request and kube-apiserver's answer to it.
struct Row {
    what: &'static str,
    method: Method,
    path: String,
    content_type: &'static str,
    body: String,
    code: u16,
    reason: &'static str,
    /// The start of the message (the whole message where it is short).
    message: String,
}

fn row(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    body: impl Into<String>,
    code: u16,
    reason: &'static str,
    message: impl Into<String>,
) -> Row {
    Row {
        what,
        method,
        path: path.into(),
        content_type: "application/json",
        body: body.into(),
        code,
        reason,
        message: message.into(),
    }
}

/// Every Foo in every namespace, as (namespace/name, resourceVersion, the object).
async fn snapshot(c: &Client, url: &str) -> Vec<(String, String, Value)> {
    let (code, list, _) = send(c, url, Method::GET, ALL, "", String::new()).await;
    assert_eq!(code, 200, "{list}");
    let mut items: Vec<(String, String, Value)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m = &o["metadata"];
            (
                format!(
                    "{}/{}",
                    m["namespace"].as_str().unwrap(),
                    m["name"].as_str().unwrap()
                ),
                m["resourceVersion"].as_str().unwrap().to_string(),
                o.clone(),
            )
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    items
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_requests_get_kube_apiservers_answers_and_change_nothing() {
    let s = Server::start();
    let c = s.client();
    let url = s.url.clone();
    let (code, _, _) = send(
        &c,
        &url,
        Method::POST,
        NS,
        "application/json",
        foo("keep").to_string(),
    )
    .await;
    assert_eq!(code, 201);
    let item = format!("{NS}/keep");

    let with_meta = |meta: Value| {
        let mut o = foo("x");
        for (k, v) in meta.as_object().unwrap() {
            o["metadata"][k] = v.clone();
        }
        o.to_string()
    };
    let ops: Vec<Value> = (0..10_001)
        .map(|_| json!({"op": "test", "path": "/kind", "value": "Foo"}))
        .collect();
    let mut rows = vec![
        row("a namespace that can never exist", Method::POST, "/apis/hello.zeng.dev/v2/namespaces/BAD_NS/foos", foo("x").to_string(), 422, "Invalid",
            "Foo.hello.zeng.dev \"x\" is invalid: metadata.namespace: Invalid value: \"BAD_NS\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'"),
        row("an owner reference without a uid", Method::POST, NS, with_meta(json!({"ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": "p"}]})), 422, "Invalid",
            "Foo.hello.zeng.dev \"x\" is invalid: metadata.ownerReferences[0].uid: Required value: must not be empty"),
        row("a label value that is a list (found by the fuzz suite: the plugin's decoder answered 500)", Method::POST, NS, with_meta(json!({"labels": {"a": ["b"]}})), 400, "BadRequest",
            "Foo in version \"v2\" cannot be handled as a Foo: metadata: invalid type: sequence, expected a string"),
        row("two controllers", Method::POST, NS, with_meta(json!({"ownerReferences": [
                {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "1", "controller": true},
                {"apiVersion": "v1", "kind": "Pod", "name": "q", "uid": "2", "controller": true}]})), 422, "Invalid",
            "Foo.hello.zeng.dev \"x\" is invalid: metadata.ownerReferences: Invalid value: "),
        row("both garbage-collector finalizers", Method::POST, NS, with_meta(json!({"finalizers": ["orphan", "foregroundDeletion"]})), 422, "Invalid",
            "Foo.hello.zeng.dev \"x\" is invalid: metadata.finalizers: Invalid value: [\"orphan\",\"foregroundDeletion\"]: finalizer orphan and foregroundDeletion cannot be both set"),
        row("a bad generateName (kube reports the generated name too)", Method::POST, NS, json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"generateName": "Bad_"}, "spec": {}}).to_string(), 422, "Invalid",
            "Foo.hello.zeng.dev \"Bad_"),
        row("a fieldManager of 200 characters", Method::POST, format!("{NS}?fieldManager={}", "m".repeat(200)), foo("x").to_string(), 422, "Invalid",
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes"),
        row("a fieldManager with a newline", Method::PUT, format!("{item}?fieldManager=a%0Ab"), foo("keep").to_string(), 422, "Invalid",
            "UpdateOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"a\\nb\": invalid character U+000A (at position 1)"),
        row("an unknown dryRun", Method::POST, format!("{NS}?dryRun=Foo"), foo("x").to_string(), 422, "Invalid",
            "CreateOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Foo\"]: supported values: \"All\""),
        row("an unknown fieldValidation", Method::POST, format!("{NS}?fieldValidation=Loose"), foo("x").to_string(), 422, "Invalid",
            "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Loose\": supported values: \"\", \"Ignore\", \"Strict\", \"Warn\""),
        row("an unknown field under Strict", Method::POST, format!("{NS}?fieldValidation=Strict"),
            json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "x"}, "spec": {"bogus": 1}}).to_string(), 400, "BadRequest",
            "Foo in version \"v2\" cannot be handled as a Foo: strict decoding error: unknown field \"spec.bogus\""),
        row("a dry-run create of a taken name", Method::POST, format!("{NS}?dryRun=All"), foo("keep").to_string(), 409, "AlreadyExists",
            "foos.hello.zeng.dev \"keep\" already exists"),
        row("a JSON patch of 10,001 operations", Method::PATCH, item.clone(), serde_json::to_string(&ops).unwrap(), 413, "RequestEntityTooLarge",
            "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001"),
        row("a JSON patch that moves a value into itself (found by the fuzz suite: json-patch panicked undoing it)", Method::PATCH, item.clone(),
            json!([{"op": "move", "path": "", "from": "/metadata/resourceVersion"}, {"op": "add", "path": "/", "value": null}]).to_string(), 422, "Invalid",
            "the server rejected our request due to an error in our request"),
        row("a non-ASCII generateName ending in '-' (found by review: it panicked)", Method::POST, NS,
            json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"generateName": "é-"}, "spec": {}}).to_string(), 422, "Invalid", "Foo.hello.zeng.dev \"é-"),
        row("Exact at resourceVersion 0", Method::GET, format!("{NS}?resourceVersionMatch=Exact&resourceVersion=0"), "", 422, "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""),
        row("resourceVersionMatch without a resourceVersion", Method::GET, format!("{NS}?resourceVersionMatch=NotOlderThan"), "", 422, "Invalid",
            "ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"),
        row("an unknown propagationPolicy (body)", Method::DELETE, item.clone(), json!({"propagationPolicy": "Bad"}).to_string(), 422, "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Bad\": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\""),
        row("an unknown propagationPolicy (query)", Method::DELETE, format!("{item}?propagationPolicy=Bad"), "", 422, "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Unsupported value: \"Bad\""),
        row("orphanDependents and propagationPolicy", Method::DELETE, item.clone(), json!({"propagationPolicy": "Orphan", "orphanDependents": true}).to_string(), 422, "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: propagationPolicy: Invalid value: \"Orphan\": orphanDependents and deletionPropagation cannot be both set"),
        row("an unknown dryRun on delete", Method::DELETE, item.clone(), json!({"dryRun": ["Some"]}).to_string(), 422, "Invalid",
            "DeleteOptions.meta.k8s.io \"\" is invalid: dryRun: Unsupported value: [\"Some\"]: supported values: \"All\""),
        row("an unparseable timeout", Method::GET, format!("{NS}?timeout=abc"), "", 400, "BadRequest",
            "invalid timeout specified in the request URL - time: invalid duration \"abc\""),
        row("a DeleteOptions body that is not JSON", Method::DELETE, item.clone(), "{nope", 400, "BadRequest", "error decoding DeleteOptions"),
    ];
    let mut strict_patch = row(
        "an unknown field in a merge patch under Strict",
        Method::PATCH,
        format!("{item}?fieldValidation=Strict"),
        json!({"spec": {"bogus": 1}}).to_string(),
        422,
        "Invalid",
        " \"\" is invalid: patch: Invalid value: ",
    );
    strict_patch.content_type = "application/merge-patch+json";
    rows.push(strict_patch);
    rows.iter_mut()
        .filter(|r| r.what.contains("JSON patch"))
        .for_each(|r| r.content_type = "application/json-patch+json");

    // Standalone, the server cannot tell a namespace that does not exist: it says so.
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert!(log.contains("NamespaceLifecycle admission is off"), "{log}");
    let before = snapshot(&c, &url).await;
    assert_eq!(before.len(), 1);
    println!("| request | code | reason |\n|---|---|---|");
    for r in &rows {
        let (code, v, _) = send(
            &c,
            &url,
            r.method.clone(),
            &r.path,
            r.content_type,
            r.body.clone(),
        )
        .await;
        println!(
            "| {} | {code} | {} |",
            r.what,
            v["reason"].as_str().unwrap_or("-")
        );
        assert_eq!(code, r.code, "{}: {v}", r.what);
        assert_eq!(v["kind"], "Status", "{}: {v}", r.what);
        assert_eq!(v["code"], r.code, "{}: {v}", r.what);
        assert_eq!(v["reason"], r.reason, "{}: {v}", r.what);
        let message = v["message"].as_str().unwrap_or_default();
        assert!(
            message.starts_with(&r.message),
            "{}:\n  got      {message}\n  expected {}",
            r.what,
            r.message
        );
        if r.what.starts_with("a bad generateName") {
            assert!(message.contains("[metadata.generateName: Invalid value: \"Bad_\": a lowercase RFC 1123 subdomain"), "{message}");
        }
        assert_eq!(
            snapshot(&c, &url).await,
            before,
            "{} changed what is stored",
            r.what
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_fields_are_dropped_with_a_warning_by_default() {
    let s = Server::start();
    let c = s.client();
    let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "newer"},
                      "spec": {"image": "nginx", "fromANewerVersion": true}});
    let (code, v, headers) = send(
        &c,
        &s.url,
        Method::POST,
        NS,
        "application/json",
        body.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .map(|h| h.to_str().unwrap())
        .collect();
    assert_eq!(
        warnings,
        ["299 - \"unknown field \\\"spec.fromANewerVersion\\\"\""]
    );
    assert_eq!(v["spec"]["image"], "nginx");
    assert!(v["spec"].get("fromANewerVersion").is_none(), "{v}");
    let (_, stored, _) = send(
        &c,
        &s.url,
        Method::GET,
        &format!("{NS}/newer"),
        "",
        String::new(),
    )
    .await;
    assert!(
        stored["spec"].get("fromANewerVersion").is_none(),
        "{stored}"
    );
    // Ignore drops it silently.
    let mut quiet = body.clone();
    quiet["metadata"]["name"] = json!("quiet");
    let (code, _, headers) = send(
        &c,
        &s.url,
        Method::POST,
        &format!("{NS}?fieldValidation=Ignore"),
        "application/json",
        quiet.to_string(),
    )
    .await;
    assert_eq!(code, 201);
    assert!(headers.get("warning").is_none());
}

/// kubectl's `--cascade` sets `propagationPolicy`; the object stays with the garbage
/// collector's finalizer until the collector (here, the test) removes it.
#[tokio::test(flavor = "multi_thread")]
async fn deletion_propagation_keeps_objects_until_the_garbage_collector_finishes() {
    let s = Server::start();
    let c = s.client();
    let create = |o: &Value| {
        let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&o.to_string()));
        assert!(ok, "{err}");
    };
    for name in ["orphaned", "foreground", "background"] {
        create(&foo(name));
    }
    let get = |name: &str| -> Option<Value> {
        let (ok, out, _) = s.kubectl(&["get", "foo", name, "-o", "json"]);
        ok.then(|| serde_json::from_str(&out).unwrap())
    };
    assert!(get("orphaned").is_some());

    for (name, cascade, finalizer) in [
        ("orphaned", "orphan", "orphan"),
        ("foreground", "foreground", "foregroundDeletion"),
    ] {
        s.ok(&[
            "delete",
            "foo",
            name,
            &format!("--cascade={cascade}"),
            "--wait=false",
        ]);
        let kept =
            get(name).unwrap_or_else(|| panic!("--cascade={cascade} deleted {name} at once"));
        assert_eq!(kept["metadata"]["finalizers"], json!([finalizer]), "{kept}");
        assert!(kept["metadata"]["deletionTimestamp"].is_string(), "{kept}");
        assert_eq!(
            kept["metadata"]["generation"], 2,
            "marking as deleting bumps generation, as kube does"
        );
        // A second delete without options changes nothing (kubectl would send
        // Background, which drops the collector's finalizer, as in kube).
        let (code, again, _) = send(
            &c,
            &s.url,
            Method::DELETE,
            &format!("{NS}/{name}"),
            "",
            String::new(),
        )
        .await;
        assert_eq!(code, 200, "{again}");
        assert_eq!(
            again["metadata"]["resourceVersion"],
            kept["metadata"]["resourceVersion"]
        );
        assert_eq!(
            get(name).unwrap()["metadata"]["resourceVersion"],
            kept["metadata"]["resourceVersion"]
        );
        // The garbage collector has done its work: it removes its finalizer...
        s.ok(&[
            "patch",
            "foo",
            name,
            "--type=json",
            "-p",
            r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
        ]);
        // ...and the object is gone.
        assert!(get(name).is_none(), "{name} outlived its last finalizer");
    }
    s.ok(&[
        "delete",
        "foo",
        "background",
        "--cascade=background",
        "--wait=false",
    ]);
    assert!(get("background").is_none());

    // The deprecated orphanDependents=false on an object another finalizer holds: 202.
    let mut held = foo("held");
    held["metadata"]["finalizers"] = json!(["example.com/hold"]);
    create(&held);
    let (code, v, _) = send(
        &c,
        &s.url,
        Method::DELETE,
        &format!("{NS}/held"),
        "application/json",
        json!({"orphanDependents": false}).to_string(),
    )
    .await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["metadata"]["finalizers"], json!(["example.com/hold"]));
    // Background on an object held by the orphan finalizer drops it, and deletes.
    let orphan = foo("switch");
    create(&orphan);
    s.ok(&[
        "delete",
        "foo",
        "switch",
        "--cascade=orphan",
        "--wait=false",
    ]);
    assert!(get("switch").is_some());
    s.ok(&[
        "delete",
        "foo",
        "switch",
        "--cascade=background",
        "--wait=false",
    ]);
    assert!(
        get("switch").is_none(),
        "Background removes the orphan finalizer, and with it the object"
    );
}

/// What a plugin's `validate-delete` warns about reaches the client as a `Warning`, as
/// for creates and updates.
#[tokio::test(flavor = "multi_thread")]
async fn warnings_from_validate_delete_reach_the_client() {
    let s = Server::start_in(crate::common::server::with_plugins(&[(
        crate::common::test_plugin("misbehave"),
        "misbehave",
    )]));
    let c = s.client();
    let path = "/apis/test.wasm-apiserver.dev/v1/namespaces/default/misbehavers";
    let probe = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
                       "metadata": {"name": "p"}, "spec": {"mode": "probe"}});
    let (code, v, _) = send(
        &c,
        &s.url,
        Method::POST,
        path,
        "application/json",
        probe.to_string(),
    )
    .await;
    assert_eq!(code, 201, "{v}");
    let (code, v, headers) = send(
        &c,
        &s.url,
        Method::DELETE,
        &format!("{path}/p"),
        "",
        String::new(),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let warnings: Vec<&str> = headers
        .get_all("warning")
        .iter()
        .map(|h| h.to_str().unwrap())
        .collect();
    assert_eq!(warnings, ["299 - \"env=0 args=0 fs=false\""]);
}

/// A kind that declares `default-propagation: orphan` (contract 0.2): a delete without
/// a policy keeps the object with the `orphan` finalizer; an explicit Background
/// deletes it at once.
#[test]
fn a_kinds_default_propagation_applies_when_the_request_names_none() {
    let s = Server::start_in(crate::common::server::with_plugins(&[(
        crate::common::test_plugin("orphan_by_default"),
        "orphan_by_default",
    )]));
    for name in ["a", "b"] {
        let (ok, _, err) = s.kubectl_stdin(
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: test.wasm-apiserver.dev/v1\nkind: Keeper\nmetadata:\n  name: {name}\n"
            )),
        );
        assert!(ok, "{err}");
    }
    // kubectl's default cascade is background: it says so in the request. A raw
    // DELETE without options takes the kind's default.
    s.ok(&[
        "delete",
        "--raw",
        "/apis/test.wasm-apiserver.dev/v1/namespaces/default/keepers/a",
    ]);
    let finalizers = s.ok(&[
        "get",
        "keeper",
        "a",
        "-o",
        "jsonpath={.metadata.finalizers}",
    ]);
    assert_eq!(finalizers, r#"["orphan"]"#);
    let deleting = s.ok(&[
        "get",
        "keeper",
        "a",
        "-o",
        "jsonpath={.metadata.deletionTimestamp}",
    ]);
    assert!(!deleting.is_empty());
    s.ok(&[
        "delete",
        "keeper",
        "b",
        "--cascade=background",
        "--wait=false",
    ]);
    let (ok, _, err) = s.kubectl(&["get", "keeper", "b"]);
    assert!(!ok && err.contains("NotFound"), "{err}");
}
