//! End to end with the real kubectl against the real binary over TLS. The `hello`
//! walk-through runs for all three implementations in `hello_behaviour.rs`.

use crate::common::server::Server;
use crate::common::{FOO_V1, FOO_V2};

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
    s.ok(&["delete", "flunders", "fl"]);
    let (ok, _, err) = s.kubectl(&["get", "flunders", "fl"]);
    assert!(
        !ok && err.contains("flunders.wardle.example.com \"fl\" not found"),
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
    let _ = watch.wait();
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
