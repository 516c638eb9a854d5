//! Reads of the cluster the server is aggregated into. No kube-apiserver binary exists
//! here, so the upstream cluster is a second instance of this server, serving the kind
//! read (wardle's Fischers); the server under test serves only Flunders, with
//! BanFlunder reading the upstream's Fischers through an informer (`--kubeconfig`).
//! The informer starts, follows changes, fails reads at once while the upstream is
//! down, and resumes after it restarts.

use std::time::{Duration, Instant};

use crate::common::server::Server;

fn fischer(name: &str, banned: &str) -> String {
    format!(
        "apiVersion: wardle.example.com/v1alpha1\nkind: Fischer\nmetadata:\n  name: {name}\ndisallowedFlunders: [{banned}]\n"
    )
}

fn flunder(name: &str) -> String {
    format!("apiVersion: wardle.example.com/v1beta1\nkind: Flunder\nmetadata:\n  name: {name}\n")
}

fn with_plugin(plugin: &str) -> tempfile::TempDir {
    crate::common::server::with_plugins(&[(crate::common::example(plugin), plugin)])
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Try to create a Flunder until `done` says the answer is the awaited one (the
/// informer follows the upstream asynchronously); the last answer.
fn create_until(s: &Server, name: &str, done: impl Fn(bool, &str) -> bool) -> (bool, String) {
    let started = Instant::now();
    loop {
        let (ok, _, err) = s.kubectl_stdin(
            &[
                "create",
                "--dry-run=server",
                "--request-timeout=10s",
                "-f",
                "-",
            ],
            Some(&flunder(name)),
        );
        if done(ok, &err) || started.elapsed() > Duration::from_secs(30) {
            return (ok, err);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn informers_follow_the_upstream_cluster_and_resume_after_it_restarts() {
    let port = free_port().to_string();
    let upstream = Server::start_in_with(with_plugin("wardle-fischer"), &["--secure-port", &port]);
    let (ok, _, err) =
        upstream.kubectl_stdin(&["create", "-f", "-"], Some(&fischer("strict", "banned")));
    assert!(ok, "{err}");

    let kubeconfig = upstream.kubeconfig.to_str().unwrap().to_string();
    // The stand-in upstream serves no core namespaces: NamespaceLifecycle is off here
    // (its own test below gives it a namespace source).
    let s = Server::start_in_with(
        with_plugin("wardle-flunder"),
        &[
            "--kubeconfig",
            &kubeconfig,
            "--disable-admission-plugins=NamespaceLifecycle",
        ],
    );

    // The informer starts and syncs: the upstream's Fischer bans the name.
    let forbidden = |ok: bool, err: &str| !ok && err.contains("this name may not be used");
    let (ok, err) = create_until(&s, "banned", forbidden);
    assert!(
        forbidden(ok, &err),
        "{err}\n{}",
        std::fs::read_to_string(s.path().join("server.log")).unwrap()
    );
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("fine")));
    assert!(ok, "{err}");

    // It follows changes.
    let (ok, _, err) =
        upstream.kubectl_stdin(&["create", "-f", "-"], Some(&fischer("later", "fine-too")));
    assert!(ok, "{err}");
    let (ok, err) = create_until(&s, "fine-too", forbidden);
    assert!(forbidden(ok, &err), "{err}");

    // The upstream goes away: reads fail at once (BanFlunder then denies as the sample
    // apiserver does when its informer is not ready), never a hang.
    let upstream_dir = upstream.kill9();
    let not_ready = |ok: bool, err: &str| !ok && err.contains("not yet ready to handle request");
    let (ok, err) = create_until(&s, "any", not_ready);
    assert!(not_ready(ok, &err), "{err}");
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert!(log.contains("upstream: lost the upstream cluster"), "{log}");

    // It comes back on the same port with the same data: the informer resumes and sees
    // what changed meanwhile.
    let upstream = Server::start_in_with(upstream_dir, &["--secure-port", &port]);
    let (ok, _, err) =
        upstream.kubectl_stdin(&["create", "-f", "-"], Some(&fischer("after", "new-ban")));
    assert!(ok, "{err}");
    let (ok, err) = create_until(&s, "new-ban", forbidden);
    assert!(
        forbidden(ok, &err),
        "{err}\n{}",
        std::fs::read_to_string(s.path().join("server.log")).unwrap()
    );
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("allowed")));
    assert!(ok, "{err}");

    // The reads are the upstream's: this server stores no Fischers and serves none.
    let (ok, _, err) = s.kubectl(&["get", "fischers"]);
    assert!(!ok, "{err}");
}

/// NamespaceLifecycle with the upstream's namespaces (here a test kind of the second
/// instance, named by `--namespace-source`): a create in a missing namespace is 404,
/// in a terminating one 403, with kube's messages; one created upstream a moment ago
/// is found by a live lookup.
#[test]
fn namespace_lifecycle_reads_the_upstreams_namespaces() {
    let upstream = Server::start_in(crate::common::server::with_plugins(&[(
        crate::common::test_plugin("namespaces"),
        "namespaces",
    )]));
    let namespace = |name: &str, phase: &str| {
        let (ok, _, err) = upstream.kubectl_stdin(
            &["create", "-f", "-"],
            Some(&format!(
                "apiVersion: test.wasm-apiserver.dev/v1\nkind: Namespace\nmetadata:\n  name: {name}\nstatus:\n  phase: {phase}\n"
            )),
        );
        assert!(ok, "{err}");
    };
    namespace("live", "Active");
    namespace("dying", "Terminating");
    let kubeconfig = upstream.kubeconfig.to_str().unwrap().to_string();
    let s = Server::start_in_with(
        with_plugin("hello"),
        &[
            "--kubeconfig",
            &kubeconfig,
            "--namespace-source",
            "test.wasm-apiserver.dev/v1/namespaces",
        ],
    );
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert!(log.contains("NamespaceLifecycle admission is on"), "{log}");
    let foo =
        "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: f\nspec:\n  image: nginx\n";
    let create_in = |ns: &str| s.kubectl_stdin(&["create", "-n", ns, "-f", "-"], Some(foo));
    // Wait for the informer: the first create may find it not yet in step.
    let started = Instant::now();
    let (mut ok, mut err) = (false, String::new());
    while started.elapsed() < Duration::from_secs(30) {
        let (o, _, e) = create_in("live");
        (ok, err) = (o, e);
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(ok, "{err}");
    let (ok, _, err) = create_in("missing");
    assert!(!ok);
    assert!(
        err.contains(r#"namespaces "missing" not found"#) && err.contains("NotFound"),
        "{err}"
    );
    let (ok, _, err) = create_in("dying");
    assert!(!ok);
    assert!(
        err.contains(r#"foos.hello.zeng.dev "f" is forbidden: unable to create new content in namespace dying because it is being terminated"#),
        "{err}"
    );
    // Created upstream just now: found by the live lookup even before the informer.
    namespace("fresh", "Active");
    let (ok, _, err) = create_in("fresh");
    assert!(ok, "{err}");
}
