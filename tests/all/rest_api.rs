//! The REST API over real HTTPS: semantics and every bad input, each with the Status
//! kube-apiserver would give, and proof that nothing stored changed.

use crate::common::server::Server;
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

struct Api {
    s: Server,
    c: Client,
}

const FOOS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";

impl Api {
    fn new() -> Self {
        let s = Server::start();
        let c = s.client();
        Api { s, c }
    }

    async fn req(
        &self,
        method: Method,
        path: &str,
        ct: &str,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let r = self
            .c
            .request(method, format!("{}{path}", self.s.url))
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .unwrap();
        let (code, headers) = (r.status(), r.headers().clone());
        let text = r.text().await.unwrap();
        (
            code,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
            headers,
        )
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let (c, v, _) = self.req(Method::GET, path, "application/json", "").await;
        (c, v)
    }

    async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let (c, v, _) = self
            .req(Method::POST, path, "application/json", body.to_string())
            .await;
        (c, v)
    }
}

fn foo(name: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": name}, "spec": {"image": "busybox"}})
}

fn assert_status(v: &Value, code: u16, reason: &str, message: &str) {
    assert_eq!(v["kind"], "Status", "{v}");
    assert_eq!(v["code"], code, "{v}");
    assert_eq!(v["reason"], reason, "{v}");
    assert!(
        v["message"].as_str().unwrap().contains(message),
        "expected {message:?} in {v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_inputs_get_kube_statuses_and_change_nothing() {
    let api = Api::new();
    let (code, created) = api.post(FOOS, &foo("keep")).await;
    assert_eq!(code, 201);
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let item = format!("{FOOS}/keep");

    let (c, v, _) = api
        .req(Method::POST, FOOS, "application/json", "{not json")
        .await;
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest", "error decoding JSON");
    let (c, v, _) = api
        .req(Method::POST, FOOS, "application/yaml", "a: [unclosed")
        .await;
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest", "error decoding YAML");

    let mut wrong = foo("x");
    wrong["apiVersion"] = json!("hello.zeng.dev/v1");
    assert_status(&api.post(FOOS, &wrong).await.1, 400, "BadRequest", "the API version in the data (hello.zeng.dev/v1) does not match the expected API version (hello.zeng.dev/v2)");
    let mut wrong = foo("x");
    wrong["kind"] = json!("Bar");
    assert_status(
        &api.post(FOOS, &wrong).await.1,
        400,
        "BadRequest",
        "must be of type Foo",
    );
    let mut wrong = foo("x");
    wrong["metadata"]["namespace"] = json!("other");
    assert_status(
        &api.post(FOOS, &wrong).await.1,
        400,
        "BadRequest",
        "the namespace of the provided object does not match the namespace sent on the request",
    );

    let mut bad = foo("Bad_Name");
    bad["metadata"]["labels"] = json!({"ok": "bad value!"});
    let (c, v) = api.post(FOOS, &bad).await;
    assert_eq!(c, 422);
    assert_status(
        &v,
        422,
        "Invalid",
        "Foo.hello.zeng.dev \"Bad_Name\" is invalid: [metadata.name: Invalid value: \"Bad_Name\"",
    );
    let fields: Vec<&str> = v["details"]["causes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["metadata.name", "metadata.labels"]);
    assert_eq!(v["details"]["causes"][0]["reason"], "FieldValueInvalid");

    let mut stale = created.clone();
    stale["metadata"]["resourceVersion"] = json!("1");
    stale["spec"]["image"] = json!("changed");
    let (c, v, _) = api
        .req(Method::PUT, &item, "application/json", stale.to_string())
        .await;
    assert_eq!(c, 409);
    assert_status(&v, 409, "Conflict", "Operation cannot be fulfilled on foos.hello.zeng.dev \"keep\": the object has been modified; please apply your changes to the latest version and try again");
    stale["metadata"]["resourceVersion"] = json!("garbage");
    let (c, v, _) = api
        .req(Method::PUT, &item, "application/json", stale.to_string())
        .await;
    assert_eq!(c, 422, "{v}");
    assert_status(
        &v,
        422,
        "Invalid",
        "metadata.resourceVersion: Invalid value: \"garbage\"",
    );

    for path in [
        "/apis/hello.zeng.dev/v2/namespaces/default/bars",
        "/apis/nope.example.com/v1/foos",
        "/apis/hello.zeng.dev/v9/namespaces/default/foos",
        "/apis/wardle.example.com/v1alpha1/namespaces/default/fischers",
    ] {
        let (c, v) = api.get(path).await;
        assert_eq!(c, 404, "{path}");
        assert_status(
            &v,
            404,
            "NotFound",
            "the server could not find the requested resource",
        );
    }
    let (c, v) = api.get(&format!("{FOOS}/missing")).await;
    assert_eq!(c, 404);
    assert_status(
        &v,
        404,
        "NotFound",
        "foos.hello.zeng.dev \"missing\" not found",
    );
    assert_eq!(
        v["details"],
        json!({"name": "missing", "group": "hello.zeng.dev", "kind": "foos"})
    );

    let mut huge = foo("huge");
    huge["metadata"]["annotations"] = json!({"big": "x".repeat(4 << 20)});
    let (c, v) = api.post(FOOS, &huge).await;
    assert_eq!(c, 413);
    assert_status(&v, 413, "RequestEntityTooLarge", "limit is 3145728");

    let (c, v) = api
        .get(&format!(
            "{FOOS}?limit=1&continue=eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJ4In0"
        ))
        .await;
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest", "invalid continue token");
    let (c, v) = api
        .get(&format!("{FOOS}?limit=1&continue=%21%21garbage"))
        .await;
    assert_eq!(c, 400, "{v}");

    let (c, v, _) = api
        .req(
            Method::PATCH,
            &item,
            "application/json-patch+json",
            r#"[{"op":"test","path":"/spec/image","value":"other"}]"#,
        )
        .await;
    assert_eq!(c, 422, "{v}");
    let (c, v, _) = api
        .req(
            Method::PATCH,
            &item,
            "application/merge-patch+json",
            "{nope",
        )
        .await;
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest", "error decoding patch");
    let (c, v, _) = api
        .req(Method::PATCH, &item, "application/cbor-seq", "{}")
        .await;
    assert_eq!(c, 415);
    assert_status(
        &v,
        415,
        "UnsupportedMediaType",
        "accepted media types include: application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json, application/apply-patch+yaml",
    );
    let (c, _, _) = api.req(Method::POST, &item, "application/json", "{}").await;
    assert_eq!(c, 405);
    let r = api
        .c
        .get(format!("{}{FOOS}", api.s.url))
        .header("accept", "application/vnd.kubernetes.protobuf")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 406);
    let (c, v) = api.get(&format!("{FOOS}?labelSelector=a%20b%20c")).await;
    assert_eq!(c, 400);
    assert_status(&v, 400, "BadRequest", "unable to parse requirement");
    let (c, v, _) = api
        .req(
            Method::POST,
            &format!("{FOOS}?fieldValidation=Sometimes"),
            "application/json",
            foo("z").to_string(),
        )
        .await;
    assert_eq!(c, 422);
    assert_status(
        &v,
        422,
        "Invalid",
        "CreateOptions.meta.k8s.io \"\" is invalid: fieldValidation: Unsupported value: \"Sometimes\"",
    );
    let (c, v, _) = api.req(Method::POST, &format!("{FOOS}?fieldValidation=Strict"), "application/json", r#"{"apiVersion":"hello.zeng.dev/v2","kind":"Foo","metadata":{"name":"d"},"spec":{"image":"a","image":"b"}}"#).await;
    assert_eq!(c, 400);
    assert_status(
        &v,
        400,
        "BadRequest",
        "strict decoding error: duplicate field \"spec.image\"",
    );

    // Nothing stored changed: the one object, at its revision, and nothing else.
    let (_, list) = api.get(FOOS).await;
    let names: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep"]);
    assert_eq!(list["items"][0]["metadata"]["resourceVersion"], rv.as_str());
    assert_eq!(list["items"][0]["spec"]["image"], "busybox");
}

#[tokio::test(flavor = "multi_thread")]
async fn rest_semantics() {
    let api = Api::new();
    // dryRun stores nothing
    let (c, v) = api.post(&format!("{FOOS}?dryRun=All"), &foo("dry")).await;
    assert_eq!(c, 201);
    assert!(v["metadata"]["uid"].is_string());
    assert_eq!(api.get(&format!("{FOOS}/dry")).await.0, 404);

    // generateName
    let mut g = foo("");
    g["metadata"] = json!({"generateName": "gen-"});
    let (c, v) = api.post(FOOS, &g).await;
    assert_eq!(c, 201);
    let gen_name = v["metadata"]["name"].as_str().unwrap();
    assert!(
        gen_name.starts_with("gen-") && gen_name.len() == 9,
        "{gen_name}"
    );

    // fieldValidation=Warn keeps going, drops the field and warns
    let mut unknown = foo("warned");
    unknown["spec"]["extra"] = json!(1);
    let (c, v, h) = api
        .req(
            Method::POST,
            &format!("{FOOS}?fieldValidation=Warn"),
            "application/json",
            unknown.to_string(),
        )
        .await;
    assert_eq!(c, 201);
    assert!(v["spec"].get("extra").is_none());
    assert!(
        h.get("warning")
            .unwrap()
            .to_str()
            .unwrap()
            .contains("unknown field \\\"spec.extra\\\""),
        "{h:?}"
    );

    // status subresource: a main update keeps status, a status update keeps spec
    let (_, cur) = api.get(&format!("{FOOS}/warned")).await;
    let mut st = cur.clone();
    st["status"] = json!({"phase": "Ready"});
    st["spec"]["image"] = json!("ignored-by-status");
    let (c, v, _) = api
        .req(
            Method::PUT,
            &format!("{FOOS}/warned/status"),
            "application/json",
            st.to_string(),
        )
        .await;
    assert_eq!(c, 200, "{v}");
    assert_eq!(v["status"]["phase"], "Ready");
    assert_eq!(v["spec"]["image"], "busybox");
    assert_eq!(v["metadata"]["generation"], 1);
    let (c, v, _) = api
        .req(
            Method::PATCH,
            &format!("{FOOS}/warned"),
            "application/merge-patch+json",
            r#"{"spec":{"image":"nginx"},"status":{"phase":"Lost"}}"#,
        )
        .await;
    assert_eq!(c, 200);
    assert_eq!(v["status"]["phase"], "Ready");
    assert_eq!(v["metadata"]["generation"], 2);

    // finalizers: delete marks, removal of the last finalizer deletes
    let mut fin = foo("fin");
    fin["metadata"]["finalizers"] = json!(["example.com/hold"]);
    assert_eq!(api.post(FOOS, &fin).await.0, 201);
    let (c, v, _) = api
        .req(
            Method::DELETE,
            &format!("{FOOS}/fin"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(c, 200);
    assert!(v["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(api.get(&format!("{FOOS}/fin")).await.0, 200);
    let (c, v, _) = api
        .req(
            Method::PATCH,
            &format!("{FOOS}/fin"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":["example.com/hold","example.com/new"]}}"#,
        )
        .await;
    assert_eq!(c, 422);
    assert_status(
        &v,
        422,
        "Invalid",
        "no new finalizers can be added if the object is being deleted",
    );
    let (c, _, _) = api
        .req(
            Method::PATCH,
            &format!("{FOOS}/fin"),
            "application/merge-patch+json",
            r#"{"metadata":{"finalizers":null}}"#,
        )
        .await;
    assert_eq!(c, 200);
    assert_eq!(api.get(&format!("{FOOS}/fin")).await.0, 404);

    // delete preconditions
    let (_, p) = api.post(FOOS, &foo("pre")).await;
    let (c, v, _) = api
        .req(
            Method::DELETE,
            &format!("{FOOS}/pre"),
            "application/json",
            r#"{"preconditions":{"uid":"wrong"}}"#,
        )
        .await;
    assert_eq!(c, 409);
    assert_status(
        &v,
        409,
        "Conflict",
        "Operation cannot be fulfilled on Foo.hello.zeng.dev \"pre\": the UID in the precondition (wrong) does not match the UID in record",
    );
    let body = json!({"preconditions": {"uid": p["metadata"]["uid"], "resourceVersion": p["metadata"]["resourceVersion"]}});
    let (c, _, _) = api
        .req(
            Method::DELETE,
            &format!("{FOOS}/pre"),
            "application/json",
            body.to_string(),
        )
        .await;
    assert_eq!(c, 200);

    // pagination is consistent: a page after writes still sees the list as it was
    for i in 0..5 {
        api.post(FOOS, &foo(&format!("p{i}"))).await;
    }
    let (_, page1) = api.get(&format!("{FOOS}?limit=3")).await;
    let token = page1["metadata"]["continue"].as_str().unwrap().to_string();
    api.post(FOOS, &foo("p9-late")).await;
    api.req(
        Method::DELETE,
        &format!("{FOOS}/p4"),
        "application/json",
        "",
    )
    .await;
    let (_, page2) = api.get(&format!("{FOOS}?limit=10&continue={token}")).await;
    let mut names: Vec<String> = page1["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(page2["items"].as_array().unwrap())
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    assert!(page2["metadata"].get("continue").is_none());
    names.sort();
    let mut want = vec![
        gen_name.to_string(),
        "p0".into(),
        "p1".into(),
        "p2".into(),
        "p3".into(),
        "p4".into(),
        "warned".into(),
    ];
    want.sort();
    assert_eq!(
        names, want,
        "p4 deleted and p9-late created after page 1 do not change the paginated list"
    );
    assert_eq!(
        page1["metadata"]["resourceVersion"],
        page2["metadata"]["resourceVersion"]
    );

    // Table output, with and without objects
    let r = api
        .c
        .get(format!("{}{FOOS}?includeObject=None", api.s.url))
        .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
        .send()
        .await
        .unwrap();
    let t: Value = r.json().await.unwrap();
    assert_eq!(t["kind"], "Table");
    let cols: Vec<&str> = t["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(cols, ["Name", "Image", "Message", "Phase", "Age"]);
    assert!(t["rows"][0].get("object").is_none());

    // deletecollection with a selector
    let (c, v, _) = api
        .req(
            Method::DELETE,
            &format!("{FOOS}?fieldSelector=metadata.name%3Dp0"),
            "application/json",
            "",
        )
        .await;
    assert_eq!(c, 200);
    assert_eq!(v["items"].as_array().unwrap().len(), 1);

    // Aggregated discovery with an ETag
    let accept =
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
    let r = api
        .c
        .get(format!("{}/apis", api.s.url))
        .header("accept", accept)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-type"],
        "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    );
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["items"][0]["metadata"]["name"], "hello.zeng.dev");
    assert_eq!(d["items"][0]["versions"][0]["version"], "v2");
    assert_eq!(
        d["items"][1]["versions"][0]["version"], "v1beta1",
        "wardle prefers v1beta1"
    );
    let r = api
        .c
        .get(format!("{}/apis", api.s.url))
        .header("accept", accept)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);

    // OpenAPI v3: index, hashed document, redirect from a stale hash
    let (_, idx) = api.get("/openapi/v3").await;
    let url = idx["paths"]["apis/hello.zeng.dev/v2"]["serverRelativeURL"]
        .as_str()
        .unwrap()
        .to_string();
    let r = api
        .c
        .get(format!("{}{url}", api.s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["cache-control"], "public, immutable");
    let doc: Value = r.json().await.unwrap();
    assert!(doc["components"]["schemas"]["dev.zeng.hello.v2.Foo"]
        ["x-kubernetes-group-version-kind"]
        .is_array());
    let (_, v2) = api.get("/openapi/v2").await;
    assert!(v2["definitions"]["com.example.wardle.v1alpha1.Fischer"].is_object());
    let r = api
        .c
        .get(format!("{}/readyz?verbose", api.s.url))
        .send()
        .await
        .unwrap();
    assert!(r.text().await.unwrap().contains("[+]storage ok"));
}

/// Hook calls into hello so far, from `/metrics`.
async fn hook_calls(api: &Api) -> u64 {
    let (_, text) = api.get("/metrics").await;
    let text = text.as_str().unwrap().to_string();
    text.lines()
        .filter(|l| l.starts_with("wasm_apiserver_plugin_hook_calls_total{plugin=\"hello.wasm\"}"))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap()
}

/// Reads in a version other than the storage version convert each object revision once:
/// the watch cache remembers the conversion (hooks are pure), so repeated reads of an
/// unchanged object run no hook, and a changed object converts again.
#[tokio::test(flavor = "multi_thread")]
async fn reads_in_another_version_convert_each_revision_once() {
    let api = Api::new();
    let v1 = "/apis/hello.zeng.dev/v1/namespaces/default/foos";
    let (code, created) = api.post(FOOS, &foo("memo")).await;
    assert_eq!(code, 201, "{created}");
    // Once the watch cache has the object (GET at its resourceVersion waits for that).
    let rv = created["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get(&format!("{FOOS}/memo?resourceVersion={rv}"))
            .await
            .0,
        200
    );

    let before = hook_calls(&api).await;
    for _ in 0..3 {
        let (code, got) = api.get(&format!("{v1}/memo")).await;
        assert_eq!(code, 200);
        assert_eq!(got["apiVersion"], "hello.zeng.dev/v1");
        assert_eq!(got["metadata"]["resourceVersion"], rv.as_str());
    }
    assert_eq!(
        hook_calls(&api).await - before,
        1,
        "three reads, one conversion"
    );

    // A change converts again, and the reads see the new content.
    let (code, patched, _) = api
        .req(
            Method::PATCH,
            &format!("{FOOS}/memo"),
            "application/merge-patch+json",
            r#"{"spec":{"config":{"msg":"changed"}}}"#,
        )
        .await;
    assert_eq!(code, 200, "{patched}");
    let rv2 = patched["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get(&format!("{FOOS}/memo?resourceVersion={rv2}"))
            .await
            .0,
        200
    );
    let before = hook_calls(&api).await;
    for _ in 0..2 {
        let (_, got) = api.get(&format!("{v1}/memo")).await;
        assert_eq!(got["spec"]["msg"], "changed");
        assert_eq!(got["metadata"]["resourceVersion"], rv2.as_str());
    }
    assert_eq!(hook_calls(&api).await - before, 1);

    // A list converts only what it has not converted before.
    let (_, second) = api.post(FOOS, &foo("memo2")).await;
    let rv3 = second["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        api.get(&format!("{FOOS}/memo2?resourceVersion={rv3}"))
            .await
            .0,
        200
    );
    let before = hook_calls(&api).await;
    for _ in 0..3 {
        let (_, list) = api.get(v1).await;
        let msgs: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["metadata"]["name"].as_str().unwrap())
            .collect();
        assert!(msgs.contains(&"memo") && msgs.contains(&"memo2"), "{list}");
    }
    assert_eq!(
        hook_calls(&api).await - before,
        1,
        "memo2 once; memo was converted already"
    );

    // Table output (what kubectl get asks for) prints each revision once too.
    let table = |path: String| {
        let c = api.c.clone();
        async move {
            let r = c
                .get(path)
                .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io")
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    };
    let before = hook_calls(&api).await;
    for _ in 0..3 {
        let t = table(format!("{}{v1}", api.s.url)).await;
        let cells: Vec<&Value> = t["rows"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["cells"][1])
            .collect();
        assert_eq!(cells.len(), 2);
        assert!(cells.contains(&&json!("changed")), "{t}");
        let t = table(format!("{}{FOOS}/memo", api.s.url)).await;
        assert_eq!(t["rows"][0]["cells"][1], "busybox", "{t}");
    }
    assert_eq!(
        hook_calls(&api).await - before,
        2,
        "one print per version, then none"
    );
}
