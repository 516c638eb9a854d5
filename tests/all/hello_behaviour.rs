//! One behaviour table, three plugins: the `hello` example in Rust, Python and
//! JavaScript must be indistinguishable to kubectl. Each implementation gets its own
//! real server (TLS, embedded store) serving only that plugin; every case runs in its
//! own namespace and every failure names the case and the language.

use crate::common::server::Server;
use crate::common::{FOO_V1, FOO_V2};
use serde_json::{json, Value};

/// kubectl against one server, in one namespace.
struct Ns<'a> {
    s: &'a Server,
    ns: String,
    /// The plugin file, as errors name it.
    file: String,
}

impl Ns<'_> {
    fn args<'b>(&'b self, args: &[&'b str]) -> Vec<&'b str> {
        let mut all = vec!["-n", self.ns.as_str()];
        all.extend_from_slice(args);
        all
    }

    fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.s.kubectl(&self.args(args))
    }

    fn kubectl_stdin(&self, args: &[&str], stdin: &str) -> (bool, String, String) {
        self.s.kubectl_stdin(&self.args(args), Some(stdin))
    }

    fn ok(&self, args: &[&str]) -> String {
        self.s.ok(&self.args(args))
    }

    fn create(&self, yaml: &str) {
        let (ok, out, err) = self.kubectl_stdin(&["create", "-f", "-"], yaml);
        assert!(ok, "create failed: {err}{out}\n{yaml}");
    }

    /// A create that must be refused; returns kubectl's error.
    fn refused(&self, yaml: &str) -> String {
        let (ok, out, err) = self.kubectl_stdin(&["create", "-f", "-"], yaml);
        assert!(!ok, "accepted: {out}\n{yaml}");
        err
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

type Case = (&'static str, fn(&Ns));

/// The table: every case runs against every implementation.
const CASES: &[Case] = &[
    ("kubectl walkthrough", kubectl_walkthrough),
    ("defaulting", defaulting),
    ("lossless conversion", lossless_conversion),
    ("validation", validation),
    ("status subresource", status_subresource),
    ("tables", tables),
    ("a broken conversion annotation", broken_annotation),
    ("edge cases", edge_cases),
];

fn run(label: &str, wasm: &std::path::Path) {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let file = wasm.file_name().unwrap().to_string_lossy().into_owned();
    std::fs::copy(wasm, plugins.join(&file)).unwrap();
    let s = Server::start_in(dir);
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let ns = Ns {
            s: &s,
            // The walk-through in `default`, as a user would; kubectl reports a
            // NotFound elsewhere as a missing namespace (this server has none).
            ns: if *name == "kubectl walkthrough" {
                "default".into()
            } else {
                name.replace(' ', "-")
            },
            file: file.clone(),
        };
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&ns))).is_err() {
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "hello in {label} ({file}) fails: {failed:?} (panics above)"
    );
    // The server served every case, good and bad, and is still healthy.
    assert!(s.ok(&["get", "--raw", "/readyz"]).contains("ok"));
}

#[test]
fn rust() {
    let [(label, wasm), ..] = crate::common::hellos();
    run(label, &wasm);
}

/// hello as built for the released 0.1.0 world (a binary fixture, never rebuilt): the
/// host links both worlds, and an old build behaves exactly as it did.
#[test]
fn rust_built_for_world_0_1_0() {
    let wasm = crate::common::root().join("tests/fixtures/hello-0.1.0.wasm");
    run("rust, world 0.1.0", &wasm);
}

#[test]
fn python() {
    let [_, (label, wasm), _] = crate::common::hellos();
    run(label, &wasm);
}

#[test]
fn javascript() {
    let [.., (label, wasm)] = crate::common::hellos();
    run(label, &wasm);
}

fn kubectl_walkthrough(k: &Ns) {
    let resources = k.ok(&["api-resources"]);
    for word in ["foos", "fo", "hello.zeng.dev/v2", "Foo"] {
        assert!(
            resources.contains(word),
            "api-resources lacks {word}: {resources}"
        );
    }

    // create -f, v1 and v2 manifests
    k.create(FOO_V1);
    k.create(FOO_V2);
    let err = k.refused(FOO_V1);
    assert!(
        err.contains("foos.hello.zeng.dev \"from-v1\" already exists"),
        "{err}"
    );

    // get: default columns, wide, yaml, json, -l, --field-selector, -A
    let table = k.ok(&["get", "foos"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "IMAGE", "MESSAGE", "AGE"]);
    assert!(
        table.contains("from-v1") && table.contains("busybox") && table.contains("hello from v1"),
        "{table}"
    );
    let wide = k.ok(&["get", "fo", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("PHASE"), "{wide}");
    let yaml = k.ok(&["get", "foo", "from-v1", "-o", "yaml"]);
    assert!(
        yaml.contains("apiVersion: hello.zeng.dev/v2") && yaml.contains("msg1: hello"),
        "{yaml}"
    );
    let json = k.json(&["get", "foo", "from-v2"]);
    assert_eq!(json["spec"]["image"], "nginx:1.27");
    assert_eq!(json["metadata"]["generation"], 1);
    let by_label = k.ok(&["get", "fo", "-l", "app=demo", "-o", "name"]);
    assert_eq!(by_label.trim(), "foo.hello.zeng.dev/from-v1");
    let by_field = k.ok(&[
        "get",
        "fo",
        "--field-selector",
        "spec.image=nginx:1.27",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "foo.hello.zeng.dev/from-v2");
    let by_name = k.ok(&[
        "get",
        "fo",
        "--field-selector",
        "metadata.name!=from-v2",
        "-o",
        "name",
    ]);
    assert_eq!(by_name.trim(), "foo.hello.zeng.dev/from-v1");
    let all = k.s.ok(&["get", "fo", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    let (ok, _, err) = k.kubectl(&["get", "fo", "--field-selector", "spec.bogus=x"]);
    assert!(
        !ok && err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    // v2-created read as v1 and written back without loss
    let as_v1 = k.json(&["get", "foos.v1.hello.zeng.dev", "from-v2"]);
    assert_eq!(as_v1["spec"]["msg"], "hello from v2");
    assert!(as_v1["metadata"]["annotations"]["hello.zeng.dev/v2-fields"]
        .as_str()
        .unwrap()
        .contains("nginx:1.27"));
    let mut back = as_v1.clone();
    back["metadata"]["labels"]["touched"] = "yes".into();
    let (ok, _, err) = k.kubectl_stdin(&["replace", "-f", "-"], &back.to_string());
    assert!(ok, "{err}");
    let v2 = k.json(&["get", "foo", "from-v2"]);
    assert_eq!(
        v2["spec"]["image"], "nginx:1.27",
        "the v2-only field survived a v1 round trip"
    );
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");
    assert_eq!(v2["metadata"]["labels"]["touched"], "yes");
    assert_eq!(
        v2["metadata"]["generation"], 1,
        "a label change is not a spec change"
    );

    // apply twice with a change (client-side three-way merge)
    let applied = FOO_V2.replace("from-v2", "applied");
    assert!(k.kubectl_stdin(&["apply", "-f", "-"], &applied).0);
    let changed = applied.replace("hello from v2", "changed");
    let (ok, out, err) = k.kubectl_stdin(&["apply", "-f", "-"], &changed);
    assert!(ok && out.contains("configured"), "{out}{err}");
    let msg = k.ok(&[
        "get",
        "fo",
        "applied",
        "-o",
        "jsonpath={.spec.config.msg} {.metadata.generation}",
    ]);
    assert_eq!(msg, "changed 2");

    // patch merge and json, label, annotate
    k.ok(&[
        "patch",
        "fo",
        "applied",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"image":"nginx:1.28"}}"#,
    ]);
    k.ok(&[
        "patch",
        "fo",
        "applied",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/config/msg","value":"patched"}]"#,
    ]);
    k.ok(&["label", "fo", "applied", "tier=web"]);
    k.ok(&["annotate", "fo", "applied", "note=hi"]);
    let got = k.ok(&["get", "fo", "applied", "-o", "jsonpath={.spec.image} {.spec.config.msg} {.metadata.labels.tier} {.metadata.annotations.note}"]);
    assert_eq!(got, "nginx:1.28 patched web hi");
    // kubectl patch's default type, a strategic merge patch, merges by the schema.
    k.ok(&[
        "patch",
        "fo",
        "applied",
        "-p",
        r#"{"spec":{"image":"nginx:1.29"}}"#,
    ]);
    let got = k.ok(&[
        "get",
        "fo",
        "applied",
        "-o",
        "jsonpath={.spec.image} {.spec.config.msg}",
    ]);
    assert_eq!(got, "nginx:1.29 patched");
    let (ok, _, err) = k.kubectl(&[
        "patch",
        "fo",
        "applied",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/nothere/x","value":1}]"#,
    ]);
    assert!(
        !ok && err.contains("The request is invalid") && err.contains("/spec/nothere/x"),
        "{err}"
    );

    // explain
    let explain = k.ok(&["explain", "foo.spec"]);
    assert!(
        explain.contains("image") && explain.contains("Container image"),
        "{explain}"
    );

    // an unknown field is rejected as kubectl reports it; a plugin validation error too
    let bogus = FOO_V2
        .replace("from-v2", "bogus")
        .replace("  image: nginx:1.27", "  image: nginx:1.27\n  bogus: 1");
    let err = k.refused(&bogus);
    assert!(
        err.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{err}"
    );
    let invalid = FOO_V2
        .replace("from-v2", "invalid")
        .replace("nginx:1.27", "has space");
    let err = k.refused(&invalid);
    assert!(
        err.contains("The Foo \"invalid\" is invalid: spec.image: Invalid value: \"has space\": must not contain whitespace"), "{err}");
    let missing = FOO_V1
        .replace("from-v1", "nomsg")
        .replace("  msg: hello from v1\n", "  msg1: x\n");
    let err = k.refused(&missing);
    assert!(err.contains("spec.msg: Required value"), "{err}");

    // delete
    k.ok(&["delete", "fo", "applied"]);
    let (ok, _, err) = k.kubectl(&["get", "fo", "applied"]);
    assert!(
        !ok && err.contains("foos.hello.zeng.dev \"applied\" not found"),
        "{err}"
    );
    let names = k.ok(&["get", "fo", "-o", "name"]);
    assert_eq!(names.lines().count(), 2, "nothing else was stored: {names}");
}

fn defaulting(k: &Ns) {
    k.create(
        "apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata: {name: v1-bare}\nspec: {msg: m}\n",
    );
    let v1 = k.json(&["get", "foos.v1.hello.zeng.dev", "v1-bare"]);
    assert_eq!(v1["spec"], serde_json::json!({"msg": "m", "msg1": "hello"}));
    let v2 = k.json(&["get", "foos.v2.hello.zeng.dev", "v1-bare"]);
    assert_eq!(
        v2["spec"],
        serde_json::json!({"image": "busybox", "config": {"msg": "m", "msg1": "hello"}})
    );

    k.create("apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: v2-bare}\nspec: {}\n");
    assert_eq!(
        k.json(&["get", "foo", "v2-bare"])["spec"],
        serde_json::json!({"image": "busybox"})
    );
    k.create("apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: v2-empty-image}\nspec: {image: '', config: {msg: a}}\n");
    assert_eq!(
        k.json(&["get", "foo", "v2-empty-image"])["spec"],
        serde_json::json!({"image": "busybox", "config": {"msg": "a", "msg1": "hello"}})
    );
    k.create("apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: v2-set}\nspec: {image: 'redis:7', config: {msg: a, msg1: b}}\n");
    assert_eq!(
        k.json(&["get", "foo", "v2-set"])["spec"],
        serde_json::json!({"image": "redis:7", "config": {"msg": "a", "msg1": "b"}}),
        "set fields are kept"
    );
    // Defaulting is idempotent: an update with no change does not bump the generation.
    let before = k.json(&["get", "foo", "v2-bare"]);
    k.ok(&["label", "fo", "v2-bare", "x=y"]);
    assert_eq!(
        k.json(&["get", "foo", "v2-bare"])["metadata"]["generation"],
        before["metadata"]["generation"]
    );
}

fn lossless_conversion(k: &Ns) {
    k.create("apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: rich, annotations: {keep: me}}\nspec: {image: 'nginx:1.27', config: {msg: m, msg1: 'n'}}\n");
    k.ok(&[
        "patch",
        "fo",
        "rich",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Ready","observedGeneration":1}}"#,
    ]);
    let v1 = k.json(&["get", "foos.v1.hello.zeng.dev", "rich"]);
    assert_eq!(v1["apiVersion"], "hello.zeng.dev/v1");
    assert_eq!(v1["spec"], serde_json::json!({"msg": "m", "msg1": "n"}));
    assert!(v1.get("status").is_none(), "v1 has no status: {v1}");
    let extra: Value = serde_json::from_str(
        v1["metadata"]["annotations"]["hello.zeng.dev/v2-fields"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(
        extra,
        serde_json::json!({"image": "nginx:1.27", "status": {"phase": "Ready", "observedGeneration": 1}})
    );
    assert_eq!(v1["metadata"]["annotations"]["keep"], "me");

    // Write the v1 form back with a change: the v2-only fields survive.
    let mut back = v1.clone();
    back["spec"]["msg"] = "m2".into();
    let (ok, _, err) = k.kubectl_stdin(&["replace", "-f", "-"], &back.to_string());
    assert!(ok, "{err}");
    let v2 = k.json(&["get", "foo", "rich"]);
    assert_eq!(
        v2["spec"],
        serde_json::json!({"image": "nginx:1.27", "config": {"msg": "m2", "msg1": "n"}})
    );
    assert_eq!(v2["status"]["phase"], "Ready");
    assert_eq!(
        v2["metadata"]["annotations"],
        serde_json::json!({"keep": "me"})
    );

    // A default image is not carried in the annotation; a v1 object round trips as is.
    k.create("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata: {name: plain}\nspec: {msg: p, msg1: q}\n");
    let v1 = k.json(&["get", "foos.v1.hello.zeng.dev", "plain"]);
    assert!(v1["metadata"].get("annotations").is_none(), "{v1}");
    assert_eq!(v1["spec"], serde_json::json!({"msg": "p", "msg1": "q"}));

    // A v1 client may carry the annotation itself: it becomes v2 fields.
    k.create("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: carried\n  annotations: {hello.zeng.dev/v2-fields: '{\"image\":\"alpine:3\"}'}\nspec: {msg: c}\n");
    let v2 = k.json(&["get", "foo", "carried"]);
    assert_eq!(v2["spec"]["image"], "alpine:3");
    assert!(v2["metadata"].get("annotations").is_none(), "{v2}");
}

fn validation(k: &Ns) {
    let foo = |name: &str, spec: &str| {
        format!(
            "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {{name: {name}}}\nspec: {spec}\n"
        )
    };
    let err = k.refused(&foo("ws", "{image: 'a b'}"));
    assert!(
        err.contains("The Foo \"ws\" is invalid: spec.image: Invalid value: \"a b\": must not contain whitespace"), "{err}");
    let long = "x".repeat(257);
    let err = k.refused(&foo(
        "long",
        &format!("{{config: {{msg: ok, msg1: {long}}}}}"),
    ));
    assert!(
        err.contains("spec.config.msg1: Too long: may not be more than 256 bytes"),
        "{err}"
    );
    // The limit is in bytes, as in Go: 129 two-byte characters are too long.
    let wide = "é".repeat(129);
    let err = k.refused(&foo("utf8", &format!("{{config: {{msg: {wide}}}}}")));
    assert!(
        err.contains("spec.config.msg: Too long: may not be more than 256 bytes"),
        "{err}"
    );
    let exact = "x".repeat(256);
    k.create(&foo("exact", &format!("{{config: {{msg: {exact}}}}}")));
    // Two errors at once, in field order.
    let err = k.refused(&foo(
        "two",
        &format!("{{image: 'a b', config: {{msg: {long}}}}}"),
    ));
    let (i, m) = (
        err.find("spec.image: Invalid value").unwrap(),
        err.find("spec.config.msg: Too long").unwrap(),
    );
    assert!(i < m, "{err}");

    // A :latest image is a warning, not an error.
    let (ok, out, err) = k.kubectl_stdin(
        &["create", "-f", "-"],
        &foo("latest", "{image: 'nginx:latest'}"),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("created")
            && err.contains(
                "Warning: spec.image: the :latest tag is not reproducible; pin a version"
            ),
        "{out}{err}"
    );

    // Updates are validated too, and a refused update changes nothing.
    let (ok, _, err) = k.kubectl(&[
        "patch",
        "fo",
        "exact",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"b c"}}"#,
    ]);
    assert!(
        !ok && err.contains("spec.image: Invalid value: \"b c\": must not contain whitespace"),
        "{err}"
    );
    assert_eq!(
        k.ok(&[
            "get",
            "fo",
            "exact",
            "-o",
            "jsonpath={.spec.image} {.metadata.generation}"
        ]),
        "busybox 1"
    );
    let names = k.ok(&["get", "fo", "-o", "name"]);
    assert_eq!(
        names.lines().count(),
        2,
        "only the valid ones were stored: {names}"
    );
}

fn status_subresource(k: &Ns) {
    // status on create is dropped: it is written through /status only.
    k.create("apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: st}\nspec: {image: 'a:1'}\nstatus: {phase: Sneaky}\n");
    assert!(k.json(&["get", "foo", "st"]).get("status").is_none());
    k.ok(&[
        "patch",
        "fo",
        "st",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Running"},"spec":{"image":"ignored:1"}}"#,
    ]);
    let got = k.json(&["get", "foo", "st"]);
    assert_eq!(got["status"]["phase"], "Running");
    assert_eq!(
        got["spec"]["image"], "a:1",
        "a status update keeps the spec"
    );
    k.ok(&[
        "patch",
        "fo",
        "st",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Hacked"},"spec":{"image":"b:2"}}"#,
    ]);
    let got = k.json(&["get", "foo", "st"]);
    assert_eq!(
        got["status"]["phase"], "Running",
        "a main update keeps the status"
    );
    assert_eq!(got["spec"]["image"], "b:2");
    let wide = k.ok(&["get", "fo", "st", "-o", "wide", "--no-headers"]);
    assert!(wide.split_whitespace().any(|c| c == "Running"), "{wide}");
}

fn tables(k: &Ns) {
    k.create(FOO_V1.replace("from-v1", "t1").as_str());
    let v1 = k.ok(&["get", "foos.v1.hello.zeng.dev", "-o", "wide"]);
    let header: Vec<&str> = v1.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "MESSAGE", "MESSAGE1", "AGE"]);
    let row: Vec<&str> = v1.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..5], ["t1", "hello", "from", "v1", "hello"], "{v1}");
    let v2 = k.ok(&["get", "fo", "t1", "--no-headers", "-o", "wide"]);
    let cells: Vec<&str> = v2.split_whitespace().collect();
    assert_eq!(
        &cells[..5],
        ["t1", "busybox", "hello", "from", "v1"],
        "{v2}"
    );
    assert_eq!(cells.len(), 6, "an unset phase is an empty cell: {v2}");
    // The Table API itself, as kubectl asks for it.
    let table: Value = serde_json::from_str(&k.s.ok(&[
        "get",
        "--raw",
        &format!(
            "/apis/hello.zeng.dev/v2/namespaces/{}/foos?includeObject=None",
            k.ns
        ),
    ]))
    .unwrap();
    assert_eq!(table["items"][0]["metadata"]["name"], "t1");
}

fn broken_annotation(k: &Ns) {
    // A v1 object whose conversion annotation is not JSON: the plugin refuses to convert
    // it, the client gets a 500 naming the plugin, and nothing is stored.
    let bad = "apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: broken\n  annotations: {hello.zeng.dev/v2-fields: 'not json'}\nspec: {msg: b}\n";
    let err = k.refused(bad);
    let want = format!(
        "Internal error occurred: plugin {}: convert failed: annotation hello.zeng.dev/v2-fields is not valid: ",
        k.file);
    assert!(err.contains(&want), "want {want:?} in {err}");
    assert_eq!(k.ok(&["get", "fo", "-o", "name"]), "", "nothing was stored");
    // The plugin keeps serving the next request.
    k.create(&bad.replace("broken", "fine").replace("'not json'", "'{}'"));
}

/// Where implementations in different languages drift apart: what counts as whitespace
/// (Unicode's White_Space, as Rust's `char::is_whitespace`), an empty or mistyped image
/// in the conversion annotation, non-ASCII text in it.
fn edge_cases(k: &Ns) {
    let foo = |name: &str, image: &str| {
        json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
               "metadata": {"name": name}, "spec": {"image": image}})
        .to_string()
    };
    // U+0085 (NEL) and U+3000 are White_Space; U+001C and U+FEFF are not.
    for (name, image) in [("nel", "a\u{85}b"), ("ideographic", "a\u{3000}b")] {
        let err = k.refused(&foo(name, image));
        assert!(err.contains("must not contain whitespace"), "{name}: {err}");
    }
    k.create(&foo("fs", "a\u{1c}b"));
    k.create(&foo("bom", "a\u{feff}b"));

    let v1 = |name: &str, annotation: &str| {
        json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
               "metadata": {"name": name, "annotations": {"hello.zeng.dev/v2-fields": annotation}},
               "spec": {"msg": "m"}})
        .to_string()
    };
    // An empty image in the annotation stays empty, and is then required.
    let err = k.refused(&v1("empty-image", r#"{"image":""}"#));
    assert!(err.contains("spec.image: Required value"), "{err}");
    // Not the annotation's shape: the plugin refuses to convert, naming it.
    for (name, text) in [
        ("number-image", r#"{"image":5}"#),
        ("not-an-object", r#""5""#),
    ] {
        let err = k.refused(&v1(name, text));
        assert!(
            err.contains(&format!(
                "plugin {}: convert failed: annotation hello.zeng.dev/v2-fields is not valid: ",
                k.file
            )),
            "{name}: {err}"
        );
    }
    // Non-ASCII text travels in the annotation as written.
    k.create(&foo("accents", "a:1"));
    k.ok(&[
        "patch",
        "fo",
        "accents",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"phase":"Prêt"}}"#,
    ]);
    let as_v1 = k.json(&["get", "foos.v1.hello.zeng.dev", "accents"]);
    assert_eq!(
        as_v1["metadata"]["annotations"]["hello.zeng.dev/v2-fields"],
        r#"{"image":"a:1","status":{"phase":"Prêt"}}"#
    );
    let names = k.ok(&["get", "fo", "-o", "name"]);
    assert_eq!(
        names.lines().count(),
        3,
        "only the valid ones were stored: {names}"
    );
}
