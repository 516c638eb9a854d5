//! End to end with the real kubectl against the real binary over TLS.

mod common;

use common::server::Server;

const FOO_V1: &str = "apiVersion: hello.zeng.dev/v1
kind: Foo
metadata:
  name: from-v1
  labels:
    app: demo
spec:
  msg: hello from v1
";

const FOO_V2: &str = "apiVersion: hello.zeng.dev/v2
kind: Foo
metadata:
  name: from-v2
  labels:
    app: other
spec:
  image: nginx:1.27
  config:
    msg: hello from v2
";

#[test]
fn kubectl_walkthrough() {
    let s = Server::start();

    let resources = s.ok(&["api-resources"]);
    for line in [
        "foos",
        "fo",
        "hello.zeng.dev/v2",
        "Foo",
        "flunders",
        "wardle.example.com/v1beta1",
        "fischers",
    ] {
        assert!(
            resources.contains(line),
            "api-resources lacks {line}: {resources}"
        );
    }

    // create -f, v1 and v2 manifests
    assert!(s.kubectl_stdin(&["create", "-f", "-"], Some(FOO_V1)).0);
    assert!(s.kubectl_stdin(&["create", "-f", "-"], Some(FOO_V2)).0);
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(FOO_V1));
    assert!(
        !ok && err.contains("foos.hello.zeng.dev \"from-v1\" already exists"),
        "{err}"
    );

    // get: default columns, wide, yaml, json, -l, --field-selector, -A
    let table = s.ok(&["get", "foos"]);
    let header: Vec<&str> = table.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "IMAGE", "MESSAGE", "AGE"]);
    assert!(
        table.contains("from-v1") && table.contains("busybox") && table.contains("hello from v1"),
        "{table}"
    );
    let wide = s.ok(&["get", "fo", "-o", "wide"]);
    assert!(wide.lines().next().unwrap().contains("PHASE"), "{wide}");
    let yaml = s.ok(&["get", "foo", "from-v1", "-o", "yaml"]);
    assert!(
        yaml.contains("apiVersion: hello.zeng.dev/v2") && yaml.contains("msg1: hello"),
        "{yaml}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "foo", "from-v2", "-o", "json"])).unwrap();
    assert_eq!(json["spec"]["image"], "nginx:1.27");
    assert_eq!(json["metadata"]["generation"], 1);
    let by_label = s.ok(&["get", "fo", "-l", "app=demo", "-o", "name"]);
    assert_eq!(by_label.trim(), "foo.hello.zeng.dev/from-v1");
    let by_field = s.ok(&[
        "get",
        "fo",
        "--field-selector",
        "spec.image=nginx:1.27",
        "-o",
        "name",
    ]);
    assert_eq!(by_field.trim(), "foo.hello.zeng.dev/from-v2");
    let by_name = s.ok(&[
        "get",
        "fo",
        "--field-selector",
        "metadata.name!=from-v2",
        "-o",
        "name",
    ]);
    assert_eq!(by_name.trim(), "foo.hello.zeng.dev/from-v1");
    let all = s.ok(&["get", "fo", "-A"]);
    assert!(
        all.lines().next().unwrap().starts_with("NAMESPACE"),
        "{all}"
    );
    let (ok, _, err) = s.kubectl(&["get", "fo", "--field-selector", "spec.bogus=x"]);
    assert!(
        !ok && err.contains("field label not supported: spec.bogus"),
        "{err}"
    );

    // v1-created read as v2 and back without loss
    let as_v1 = s.ok(&["get", "foos.v1.hello.zeng.dev", "from-v2", "-o", "json"]);
    let as_v1: serde_json::Value = serde_json::from_str(&as_v1).unwrap();
    assert_eq!(as_v1["spec"]["msg"], "hello from v2");
    assert!(as_v1["metadata"]["annotations"]["hello.zeng.dev/v2-fields"]
        .as_str()
        .unwrap()
        .contains("nginx:1.27"));
    let mut back = as_v1.clone();
    back["metadata"]["labels"]["touched"] = "yes".into();
    assert!(
        s.kubectl_stdin(&["replace", "-f", "-"], Some(&back.to_string()))
            .0
    );
    let v2: serde_json::Value =
        serde_json::from_str(&s.ok(&["get", "foo", "from-v2", "-o", "json"])).unwrap();
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
    assert!(s.kubectl_stdin(&["apply", "-f", "-"], Some(&applied)).0);
    let changed = applied.replace("hello from v2", "changed");
    let (ok, out, err) = s.kubectl_stdin(&["apply", "-f", "-"], Some(&changed));
    assert!(ok && out.contains("configured"), "{out}{err}");
    let msg = s.ok(&[
        "get",
        "fo",
        "applied",
        "-o",
        "jsonpath={.spec.config.msg} {.metadata.generation}",
    ]);
    assert_eq!(msg, "changed 2");

    // patch merge and json, label, annotate
    s.ok(&[
        "patch",
        "fo",
        "applied",
        "--type",
        "merge",
        "-p",
        r#"{"spec":{"image":"nginx:1.28"}}"#,
    ]);
    s.ok(&[
        "patch",
        "fo",
        "applied",
        "--type",
        "json",
        "-p",
        r#"[{"op":"replace","path":"/spec/config/msg","value":"patched"}]"#,
    ]);
    s.ok(&["label", "fo", "applied", "tier=web"]);
    s.ok(&["annotate", "fo", "applied", "note=hi"]);
    let got = s.ok(&["get", "fo", "applied", "-o", "jsonpath={.spec.image} {.spec.config.msg} {.metadata.labels.tier} {.metadata.annotations.note}"]);
    assert_eq!(got, "nginx:1.28 patched web hi");
    let (ok, _, err) = s.kubectl(&["patch", "fo", "applied", "-p", r#"{"spec":{"image":"x"}}"#]);
    assert!(
        !ok && err.contains("application/strategic-merge-patch+json is not supported"),
        "{err}"
    );
    let (ok, _, err) = s.kubectl(&[
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
    let explain = s.ok(&["explain", "foo.spec"]);
    assert!(
        explain.contains("image") && explain.contains("Container image"),
        "{explain}"
    );

    // an unknown field is rejected as kubectl reports it; a plugin validation error too
    let bogus = FOO_V2
        .replace("from-v2", "bogus")
        .replace("  image: nginx:1.27", "  image: nginx:1.27\n  bogus: 1");
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&bogus));
    assert!(
        !ok && err.contains("strict decoding error: unknown field \"spec.bogus\""),
        "{err}"
    );
    let invalid = FOO_V2
        .replace("from-v2", "invalid")
        .replace("nginx:1.27", "has space");
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&invalid));
    assert!(!ok && err.contains("The Foo \"invalid\" is invalid: spec.image: Invalid value: \"has space\": must not contain whitespace"), "{err}");
    let missing = FOO_V1
        .replace("from-v1", "nomsg")
        .replace("  msg: hello from v1\n", "  msg1: x\n");
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&missing));
    assert!(!ok && err.contains("spec.msg: Required value"), "{err}");

    // wardle kinds, cluster-scoped and namespaced
    let fischer = "apiVersion: wardle.example.com/v1alpha1\nkind: Fischer\nmetadata:\n  name: f1\ndisallowedFlunders: [bad]\n";
    assert!(s.kubectl_stdin(&["create", "-f", "-"], Some(fischer)).0);
    let flunder = "apiVersion: wardle.example.com/v1beta1\nkind: Flunder\nmetadata:\n  name: fl\nspec:\n  reference: f1\n";
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(flunder));
    assert!(
        !ok && err.contains("spec.referenceType: Required value"),
        "{err}"
    );
    assert!(
        s.kubectl_stdin(
            &["create", "-f", "-"],
            Some(&format!("{flunder}  referenceType: Fischer\n"))
        )
        .0
    );
    assert!(s.ok(&["get", "fischers"]).contains("f1"));
    assert!(s.ok(&["get", "flunders", "-o", "wide"]).contains("Fischer"));

    // delete
    s.ok(&["delete", "fo", "applied"]);
    let (ok, _, err) = s.kubectl(&["get", "fo", "applied"]);
    assert!(
        !ok && err.contains("foos.hello.zeng.dev \"applied\" not found"),
        "{err}"
    );
}

#[test]
fn data_survives_restart_and_kill_9() {
    let s = Server::start();
    let _ = s.kubectl_stdin(&["create", "-f", "-"], Some(FOO_V1));
    let dir = s.stop();
    let s = Server::start_in(dir);
    assert!(s.ok(&["get", "fo", "-o", "name"]).contains("from-v1"));

    // A stream of acknowledged writes, then kill -9: every acknowledged one is there.
    let client = s.client();
    let url = format!("{}/apis/hello.zeng.dev/v2/namespaces/default/foos", s.url);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let acknowledged = rt.block_on(async {
        let mut acked = Vec::new();
        for i in 0..60 {
            let body = serde_json::json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                "metadata": {"name": format!("w{i}")}, "spec": {"image": "busybox"}});
            let r = client.post(&url).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201);
            acked.push(format!("w{i}"));
        }
        acked
    });
    let dir = s.kill9();
    let s = Server::start_in(dir);
    let names = s.ok(&["get", "fo", "-o", "name"]);
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|n| !names.contains(&format!("foo.hello.zeng.dev/{n}\n")))
        .collect();
    assert!(lost.is_empty(), "lost acknowledged writes: {lost:?}");
}

/// `kubectl get fo -w` (a Table watch) sees what another kubectl creates, changes
/// and deletes, in order.
#[test]
fn kubectl_get_watch_sees_another_kubectls_changes() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let s = Server::start();
    let mut watch = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&s.kubeconfig)
        .args([
            "get",
            "fo",
            "-w",
            "--output-watch-events",
            "--request-timeout",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // kubectl lists (nothing yet) and then watches; give it a moment to start.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let (ok, out, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(FOO_V2));
    assert!(ok, "{out}{err}");
    s.ok(&["label", "fo", "from-v2", "stage=two"]);
    s.ok(&["delete", "fo", "from-v2"]);
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::time::Instant::now() < deadline
        && !lines.iter().any(|l: &String| l.starts_with("DELETED"))
    {
        if let Ok(l) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            lines.push(l);
        }
    }
    let _ = watch.kill();
    let events: Vec<(&str, &str)> = lines
        .iter()
        .filter(|l| !l.starts_with("EVENT"))
        .map(|l| {
            let mut f = l.split_whitespace();
            (f.next().unwrap(), f.next().unwrap_or_default())
        })
        .collect();
    assert_eq!(
        events,
        [
            ("ADDED", "from-v2"),
            ("MODIFIED", "from-v2"),
            ("DELETED", "from-v2")
        ],
        "kubectl get -w printed:\n{}",
        lines.join("\n")
    );
    assert!(
        lines[0].starts_with("EVENT") && lines[0].contains("IMAGE"),
        "{lines:?}"
    );
    assert!(lines[1].contains("nginx:1.27"), "{lines:?}");
}
