//! Server-side apply, strategic merge, managed fields and dry runs, through the real
//! kubectl, kube-rs and raw HTTP against a kind whose schema uses every list and map
//! marker (`guests/test-plugins/examples/lists.rs`) and against hello's two versions.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::server::{with_plugins, Server};
use crate::common::{example, send, test_plugin};

const APPLY: &str = "application/apply-patch+yaml";
const LISTERS: &str = "/apis/test.wasm-apiserver.dev/v1/namespaces/default/listers";

fn lists_server() -> Server {
    Server::start_in(with_plugins(&[(test_plugin("lists"), "lists")]))
}

fn lister(spec: &str) -> String {
    format!(
        "apiVersion: test.wasm-apiserver.dev/v1\nkind: Lister\nmetadata:\n  name: x\n  namespace: default\nspec:\n{spec}"
    )
}

fn get(s: &Server) -> Value {
    serde_json::from_str(&s.ok(&["get", "lister", "x", "-o", "json", "--show-managed-fields"]))
        .unwrap()
}

/// The managers of `o` as (manager, operation, subresource), and the fields of one.
fn managers(o: &Value) -> Vec<(String, String, String)> {
    o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().into(),
                e["operation"].as_str().unwrap().into(),
                e["subresource"].as_str().unwrap_or_default().into(),
            )
        })
        .collect()
}

fn fields_of<'a>(o: &'a Value, manager: &str) -> &'a Value {
    &o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == manager)
        .unwrap_or_else(|| panic!("no manager {manager} in {}", o["metadata"]))["fieldsV1"]
}

fn apply(s: &Server, manager: &str, spec: &str, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec![
        "apply",
        "--server-side",
        "--field-manager",
        manager,
        "-f",
        "-",
    ];
    args.extend_from_slice(extra);
    s.kubectl_stdin(&args, Some(&lister(spec)))
}

#[test]
fn kubectl_server_side_apply_by_two_managers() {
    let s = lists_server();
    let (ok, out, err) = apply(
        &s,
        "alice",
        "  replicas: 1\n  color: red\n  ports: [{name: http, port: 80}]\n  tags: [a]\n  env: {A: '1'}\n",
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("serverside-applied"), "{out}");
    let o = get(&s);
    assert_eq!(
        managers(&o),
        vec![("alice".into(), "Apply".into(), "".into())]
    );
    assert_eq!(
        fields_of(&o, "alice"),
        &json!({"f:spec": {"f:color": {}, "f:env": {"f:A": {}},
            "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:replicas": {}, "f:tags": {"v:\"a\"": {}}}})
    );
    let rv = o["metadata"]["resourceVersion"].clone();

    // bob wants another replica count: a conflict naming alice and the field.
    let (ok, _, err) = apply(&s, "bob", "  replicas: 2\n", &[]);
    assert!(!ok);
    assert!(
        err.contains("Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"),
        "{err}"
    );
    assert_eq!(
        get(&s)["metadata"]["resourceVersion"],
        rv,
        "nothing was written"
    );

    // The same value is shared; list items and set members merge by key.
    let (ok, _, err) = apply(
        &s,
        "bob",
        "  replicas: 1\n  ports: [{name: metrics, port: 9090}]\n  tags: [b]\n",
        &[],
    );
    assert!(ok, "{err}");
    let o = get(&s);
    assert_eq!(o["spec"]["replicas"], 1);
    assert_eq!(
        o["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])
    );
    assert_eq!(o["spec"]["tags"], json!(["a", "b"]));
    assert_eq!(fields_of(&o, "alice")["f:spec"]["f:replicas"], json!({}));
    assert_eq!(fields_of(&o, "bob")["f:spec"]["f:replicas"], json!({}));

    // --force-conflicts takes the field from alice.
    let (ok, _, err) = apply(
        &s,
        "bob",
        "  replicas: 3\n  ports: [{name: metrics, port: 9090}]\n  tags: [b]\n",
        &["--force-conflicts"],
    );
    assert!(ok, "{err}");
    let o = get(&s);
    assert_eq!(o["spec"]["replicas"], 3);
    assert!(fields_of(&o, "alice")["f:spec"].get("f:replicas").is_none());

    // alice stops applying color, her port and her tag: removed, as no one else owns
    // them; bob's stay.
    let (ok, _, err) = apply(&s, "alice", "  env: {A: '1'}\n", &[]);
    assert!(ok, "{err}");
    let o = get(&s);
    assert!(o["spec"].get("color").is_none(), "{}", o["spec"]);
    assert_eq!(
        o["spec"]["ports"],
        json!([{"name": "metrics", "port": 9090}])
    );
    assert_eq!(o["spec"]["tags"], json!(["b"]));
    assert_eq!(o["spec"]["replicas"], 3);

    // kubectl shows managed fields only when asked.
    let yaml = s.ok(&["get", "lister", "x", "-o", "yaml", "--show-managed-fields"]);
    assert!(
        yaml.contains("manager: bob") && yaml.contains("operation: Apply"),
        "{yaml}"
    );
    assert!(!s
        .ok(&["get", "lister", "x", "-o", "yaml"])
        .contains("managedFields"));

    // An apply that changes nothing writes nothing.
    let rv = o["metadata"]["resourceVersion"].clone();
    assert!(apply(&s, "alice", "  env: {A: '1'}\n", &[]).0);
    assert_eq!(get(&s)["metadata"]["resourceVersion"], rv);
}

#[test]
fn client_side_apply_diff_and_strategic_patch() {
    let s = lists_server();
    let first = lister("  color: red\n  ports: [{name: http, port: 80}, {name: https, port: 443}]\n  tags: [a, b]\n  env: {A: '1', B: '2'}\n");
    s.kubectl_stdin(&["apply", "-f", "-"], Some(&first));
    let o = get(&s);
    assert!(managers(&o).contains(&(
        "kubectl-client-side-apply".into(),
        "Update".into(),
        "".into()
    )));

    // A second client-side apply: kubectl sends a strategic merge patch, so list items
    // merge by key and removed ones go.
    let second = lister(
        "  color: blue\n  ports: [{name: http, port: 8080}]\n  tags: [a, c]\n  env: {A: '1'}\n",
    );
    let (ok, _, err) = s.kubectl_stdin(&["apply", "-f", "-", "-v=8"], Some(&second));
    assert!(ok, "{err}");
    assert!(
        err.contains("application/strategic-merge-patch+json"),
        "kubectl did not send a strategic merge patch:\n{err}"
    );
    let o = get(&s);
    assert_eq!(o["spec"]["color"], "blue");
    assert_eq!(o["spec"]["ports"], json!([{"name": "http", "port": 8080}]));
    assert_eq!(o["spec"]["tags"], json!(["a", "c"]));
    assert_eq!(o["spec"]["env"], json!({"A": "1"}));

    // kubectl diff: a dry run shows the change and stores nothing.
    let rv = o["metadata"]["resourceVersion"].clone();
    let third = lister(
        "  color: green\n  ports: [{name: http, port: 8080}]\n  tags: [a, c]\n  env: {A: '1'}\n",
    );
    let (ok, out, err) = s.kubectl_stdin(&["diff", "-f", "-"], Some(&third));
    assert!(!ok, "diff exits 1 when there are differences: {err}");
    assert!(
        out.contains("-  color: blue") && out.contains("+  color: green"),
        "{out}\n{err}"
    );
    let o = get(&s);
    assert_eq!(o["metadata"]["resourceVersion"], rv);
    assert_eq!(o["spec"]["color"], "blue");

    // kubectl patch --type strategic with directives.
    s.ok(&[
        "patch",
        "lister",
        "x",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"ports":[{"name":"https","port":443}],"$deleteFromPrimitiveList/tags":["a"],"env":{"$patch":"replace","Z":"26"}}}"#,
    ]);
    // Without `$setElementOrder`, new items go first, as kube-apiserver places them.
    let o = get(&s);
    assert_eq!(
        o["spec"]["ports"],
        json!([{"name": "https", "port": 443}, {"name": "http", "port": 8080}])
    );
    assert_eq!(o["spec"]["tags"], json!(["c"]));
    assert_eq!(o["spec"]["env"], json!({"Z": "26"}));
    s.ok(&[
        "patch",
        "lister",
        "x",
        "--type",
        "strategic",
        "-p",
        r#"{"spec":{"ports":[{"name":"http","$patch":"delete"}]}}"#,
    ]);
    assert_eq!(
        get(&s)["spec"]["ports"],
        json!([{"name": "https", "port": 443}])
    );

    // Moving to server-side apply: kubectl takes over what its client-side apply set,
    // without a conflict.
    let (ok, _, err) = s.kubectl_stdin(
        &["apply", "--server-side", "-f", "-"],
        Some(&lister("  color: green\n")),
    );
    assert!(ok, "{err}");
    let o = get(&s);
    assert_eq!(o["spec"]["color"], "green");
    assert!(
        managers(&o).contains(&("kubectl".into(), "Apply".into(), "".into())),
        "{:?}",
        managers(&o)
    );
}

#[tokio::test]
async fn apply_on_status_and_scale_and_dry_runs() {
    let s = lists_server();
    let c = s.client();
    let body = lister("  replicas: 2\n");
    // An apply creates (201), and a dry run of that creates nothing.
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x?fieldManager=m&dryRun=All"),
        APPLY,
        body.clone(),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    assert_eq!(
        send(
            &c,
            &s.url,
            Method::GET,
            &format!("{LISTERS}/x"),
            "",
            String::new()
        )
        .await
        .0,
        404
    );
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x?fieldManager=m"),
        APPLY,
        body.clone(),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    let rv = o["metadata"]["resourceVersion"].clone();

    // A dry-run apply with a change: answered as it would be, nothing stored.
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x?fieldManager=m&dryRun=All"),
        APPLY,
        lister("  replicas: 5\n"),
    )
    .await;
    assert_eq!((code, o["spec"]["replicas"].clone()), (200, json!(5)));
    let (_, o, _) = send(
        &c,
        &s.url,
        Method::GET,
        &format!("{LISTERS}/x"),
        "",
        String::new(),
    )
    .await;
    assert_eq!(
        (
            o["metadata"]["resourceVersion"].clone(),
            o["spec"]["replicas"].clone()
        ),
        (rv, json!(2))
    );

    // A second manager applies status; spec and status owners stay apart.
    let status = "apiVersion: test.wasm-apiserver.dev/v1\nkind: Lister\nmetadata:\n  name: x\nstatus:\n  ready: 2\n  phase: Running\n";
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x/status?fieldManager=controller"),
        APPLY,
        status.into(),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    assert_eq!(o["status"]["phase"], "Running");
    assert_eq!(o["spec"]["replicas"], 2);
    assert!(managers(&o).contains(&("controller".into(), "Apply".into(), "status".into())));
    assert_eq!(
        fields_of(&o, "controller"),
        &json!({"f:status": {"f:phase": {}, "f:ready": {}}})
    );
    // Status written through the main resource is not kept, nor owned.
    assert!(fields_of(&o, "m").get("f:status").is_none());

    // Apply on scale: owns the replicas path under the scale subresource, so m's apply
    // of another count now conflicts.
    let scale =
        "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: x\nspec:\n  replicas: 4\n";
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x/scale?fieldManager=hpa&force=true"),
        APPLY,
        scale.into(),
    )
    .await;
    assert_eq!(
        (code, o["spec"]["replicas"].clone()),
        (200, json!(4)),
        "{o}"
    );
    let (_, o, _) = send(
        &c,
        &s.url,
        Method::GET,
        &format!("{LISTERS}/x"),
        "",
        String::new(),
    )
    .await;
    assert!(managers(&o).contains(&("hpa".into(), "Apply".into(), "scale".into())));
    // A Scale applied without replicas leaves them alone.
    let bare = "apiVersion: autoscaling/v1\nkind: Scale\nmetadata:\n  name: x\n";
    let url = format!("{}{LISTERS}/x/scale?fieldManager=other", s.url);
    let r = c
        .patch(&url)
        .header("content-type", APPLY)
        .body(bare)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["spec"]["replicas"], 4);
    let (code, e, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x?fieldManager=m"),
        APPLY,
        lister("  replicas: 2\n"),
    )
    .await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(e["message"], "Apply failed with 1 conflict: conflict with \"hpa\" with subresource \"scale\": .spec.replicas");
    assert_eq!(
        e["details"]["causes"][0],
        json!({"type": "FieldManagerConflict", "message": "conflict with \"hpa\" with subresource \"scale\"", "field": ".spec.replicas"})
    );

    // A merge patch is recorded as an update, named from the User-Agent without a
    // fieldManager.
    let r = c
        .patch(format!("{}{LISTERS}/x", s.url))
        .header("content-type", "application/merge-patch+json")
        .header("user-agent", "my-controller/1.2 (linux)")
        .body(r#"{"spec":{"color":"teal"}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let o: Value = r.json().await.unwrap();
    assert!(
        managers(&o).contains(&("my-controller".into(), "Update".into(), "".into())),
        "{}",
        o["metadata"]
    );
}

#[tokio::test]
async fn bad_applies_get_clear_errors_and_store_nothing() {
    let s = lists_server();
    let c = s.client();
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{LISTERS}/x?fieldManager=m"),
        APPLY,
        lister("  replicas: 1\n  ports: [{name: a, port: 1}]\n"),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    let rv = o["metadata"]["resourceVersion"].clone();
    let cases: Vec<(&str, String, &str, u16, &str)> = vec![
        ("?fieldManager=m", "{not: [yaml".into(), APPLY, 400, "error decoding YAML"),
        ("", lister("  replicas: 3\n"), APPLY, 422,
         "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"),
        ("?fieldManager=m", lister("  replicas: 3\n").replace("test.wasm-apiserver.dev/v1", "test.wasm-apiserver.dev/v2"), APPLY, 400,
         "Incorrect version specified in apply patch. Specified patch version: test.wasm-apiserver.dev/v2, expected: test.wasm-apiserver.dev/v1"),
        ("?fieldManager=m", lister("  replicas: 3\n").replace("kind: Lister", "kind: Other"), APPLY, 400,
         "the object provided is unrecognized (must be of type Lister): kind \"Other\" in the body"),
        ("?fieldManager=m", lister("  ports: [{port: 1}]\n"), APPLY, 400,
         "failed to create typed patch object (default/x; test.wasm-apiserver.dev/v1, Kind=Lister): .spec.ports: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"),
        ("?fieldManager=m", lister("  ports: [{name: a}, {name: a}]\n"), APPLY, 400,
         ".spec.ports: duplicate entries for key [name=\"a\"]"),
        ("?fieldManager=m", lister("  replicas: 3\n").replace("  namespace: default\n", "  namespace: default\n  managedFields: [{manager: x}]\n"), APPLY, 400,
         "metadata.managedFields must be nil"),
        ("?force=true", r#"{"spec":{"replicas":3}}"#.into(), "application/merge-patch+json", 422,
         "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch"),
        ("", r#"{"spec":{"ports":[{"name":"a","$patch":"remove"}]}}"#.into(), "application/strategic-merge-patch+json", 400,
         "remove"),
        ("", r#"{"spec":{"ports":[{"port":3}]}}"#.into(), "application/strategic-merge-patch+json", 400,
         "does not contain declared merge key: name"),
    ];
    for (query, body, ct, want_code, want) in cases {
        let (code, e, _) = send(
            &c,
            &s.url,
            Method::PATCH,
            &format!("{LISTERS}/x{query}"),
            ct,
            body.clone(),
        )
        .await;
        assert_eq!(code, want_code, "{query} {body}: {e}");
        let msg = e["message"].as_str().unwrap_or_default();
        assert!(msg.contains(want), "{query} {body}: {msg}");
        let (_, o, _) = send(
            &c,
            &s.url,
            Method::GET,
            &format!("{LISTERS}/x"),
            "",
            String::new(),
        )
        .await;
        assert_eq!(
            o["metadata"]["resourceVersion"], rv,
            "{body} stored something"
        );
    }

    // A PUT whose list map items lack their key, or repeat one: 422, nothing stored
    // (apply and strategic merge could not address such items).
    let url = format!("{}{LISTERS}/x", s.url);
    let live: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    for (ports, want) in [
        (json!([{"port": 1}]), "spec.ports: Invalid value: element 0: associative list with keys has an element that omits key field \"name\""),
        (json!([{"name": "a"}, {"name": "a"}]), "spec.ports: Invalid value: duplicate entries for key [name=\"a\"]"),
    ] {
        let mut o = live.clone();
        o["spec"]["ports"] = ports;
        let r = c.put(&url).json(&o).send().await.unwrap();
        assert_eq!(r.status(), 422);
        let e: Value = r.json().await.unwrap();
        assert!(e["message"].as_str().unwrap().contains(want), "{e}");
        let now: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(now["metadata"]["resourceVersion"], rv);
    }

    // managedFields a client sends that are not even ObjectMeta's shape: 400, as
    // kube-apiserver's decoder answers; nothing stored.
    let url = format!("{}{LISTERS}/x", s.url);
    let mut o: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    o["metadata"]["managedFields"] = json!([{"manager": 7}]);
    let r = c.put(&url).json(&o).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let e: Value = r.json().await.unwrap();
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("metadata: invalid type: integer `7`"),
        "{e}"
    );
    // Well-typed but malformed ones are ignored (the stored ones stay), never a 500;
    // an empty list resets them.
    o["metadata"]["managedFields"] = json!([{"manager": "x", "operation": "Sideways",
        "fieldsType": "FieldsV1", "fieldsV1": {"zz": 1}}]);
    o["spec"]["color"] = json!("red");
    let (code, u, _) = send(
        &c,
        &s.url,
        Method::PUT,
        &format!("{LISTERS}/x?fieldManager=editor"),
        "application/json",
        o.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{u}");
    assert!(managers(&u).contains(&("m".into(), "Apply".into(), "".into())));
    assert!(managers(&u).contains(&("editor".into(), "Update".into(), "".into())));
    let mut o = u.clone();
    o["metadata"]["managedFields"] = json!([]);
    let (code, u, _) = send(
        &c,
        &s.url,
        Method::PUT,
        &format!("{LISTERS}/x"),
        "application/json",
        o.to_string(),
    )
    .await;
    assert_eq!(code, 200, "{u}");
    assert!(
        u["metadata"].get("managedFields").is_none(),
        "{}",
        u["metadata"]
    );
}

/// Field sets are recorded in the request's version and compared through the plugin's
/// conversion: hello's v1 `spec.msg` is v2's `spec.config.msg`.
#[tokio::test]
async fn managers_in_two_versions_conflict_where_their_fields_overlap() {
    let s = Server::start_in(with_plugins(&[(example("hello"), "hello")]));
    let c = s.client();
    let v1 = "/apis/hello.zeng.dev/v1/namespaces/default/foos/f";
    let v2 = "/apis/hello.zeng.dev/v2/namespaces/default/foos/f";
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{v1}?fieldManager=old-tool"),
        APPLY,
        "apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: f\nspec:\n  msg: from v1\n"
            .into(),
    )
    .await;
    assert_eq!(code, 201, "{o}");
    let (code, e, _) = send(&c, &s.url, Method::PATCH, &format!("{v2}?fieldManager=new-tool"), APPLY,
        "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: f\nspec:\n  config:\n    msg: from v2\n".into()).await;
    assert_eq!(code, 409, "{e}");
    assert_eq!(
        e["message"],
        "Apply failed with 1 conflict: conflict with \"old-tool\": .spec.msg"
    );
    // Fields only v2 has do not conflict, and are recorded in v2.
    let (code, o, _) = send(
        &c,
        &s.url,
        Method::PATCH,
        &format!("{v2}?fieldManager=new-tool"),
        APPLY,
        "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: f\nspec:\n  image: nginx\n"
            .into(),
    )
    .await;
    assert_eq!(code, 200, "{o}");
    let entries = o["metadata"]["managedFields"].as_array().unwrap();
    let new = entries.iter().find(|e| e["manager"] == "new-tool").unwrap();
    assert_eq!(new["apiVersion"], "hello.zeng.dev/v2");
    assert_eq!(new["fieldsV1"], json!({"f:spec": {"f:image": {}}}));
    let old = entries.iter().find(|e| e["manager"] == "old-tool").unwrap();
    assert_eq!(old["apiVersion"], "hello.zeng.dev/v1");
}

/// kube-rs's `Patch::Apply` with a field manager, as controllers written with it do.
#[tokio::test]
async fn kube_rs_patch_apply() {
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::core::{ApiResource, GroupVersionKind};
    let s = lists_server();
    let client = s.kube_client().await;
    let gvk = GroupVersionKind::gvk("test.wasm-apiserver.dev", "v1", "Lister");
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &ApiResource::from_gvk_with_plural(&gvk, "listers"),
    );
    let cfg = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Lister", "metadata": {"name": "k"},
        "spec": {"ports": [{"name": "http", "port": 80}]}});
    let pp = PatchParams::apply("kube-rs-controller");
    let o = api.patch("k", &pp, &Patch::Apply(&cfg)).await.unwrap();
    assert_eq!(
        o.data["spec"]["ports"],
        json!([{"name": "http", "port": 80}])
    );
    let mf = o.metadata.managed_fields.unwrap();
    assert_eq!(mf[0].manager.as_deref(), Some("kube-rs-controller"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    // Another controller's apply of the same port conflicts unless forced.
    let other = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Lister", "metadata": {"name": "k"},
        "spec": {"ports": [{"name": "http", "port": 81}]}});
    let e = api
        .patch("k", &PatchParams::apply("other"), &Patch::Apply(&other))
        .await
        .unwrap_err();
    match e {
        kube::Error::Api(s) => {
            assert_eq!(s.code, 409);
            assert!(
                s.message.contains(".spec.ports[name=\"http\"].port"),
                "{}",
                s.message
            );
        }
        other => panic!("{other:?}"),
    }
    let o = api
        .patch(
            "k",
            &PatchParams::apply("other").force(),
            &Patch::Apply(&other),
        )
        .await
        .unwrap();
    assert_eq!(o.data["spec"]["ports"][0]["port"], 81);
}

/// The Kubernetes Python client's dynamic `server_side_apply` (PyPI `kubernetes`,
/// installed into the tools venv by `make py-kube-client`).
#[test]
fn python_client_server_side_apply() {
    let s = lists_server();
    let python = crate::common::root().join("target/tools/python/bin/python");
    let script = r#"
import json, sys
from kubernetes import config, dynamic
from kubernetes.client import api_client
config.load_kube_config(config_file=sys.argv[1])
client = dynamic.DynamicClient(api_client.ApiClient())
listers = client.resources.get(api_version="test.wasm-apiserver.dev/v1", kind="Lister")
body = {"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Lister",
        "metadata": {"name": "py", "namespace": "default"},
        "spec": {"tags": ["from-python"], "ports": [{"name": "http", "port": 80}]}}
out = listers.server_side_apply(body=body, name="py", namespace="default", field_manager="python-client")
print(json.dumps(out.to_dict()))
"#;
    let out = std::process::Command::new(&python)
        .args(["-c", script])
        .arg(&s.kubeconfig)
        .output()
        .expect("make py-kube-client installs the Python client");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let o: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(o["spec"]["tags"], json!(["from-python"]));
    let mf = &o["metadata"]["managedFields"][0];
    assert_eq!(
        (mf["manager"].as_str(), mf["operation"].as_str()),
        (Some("python-client"), Some("Apply"))
    );
    // kubectl sees the same object.
    let yaml = s.ok(&["get", "lister", "py", "-o", "yaml", "--show-managed-fields"]);
    assert!(yaml.contains("manager: python-client"), "{yaml}");
}
