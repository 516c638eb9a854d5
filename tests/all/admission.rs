//! Admission with reads (contract 0.2): wardle-flunder's BanFlunder through kubectl, and
//! what a misbehaving `admit` gets — a trap, a read loop, an undeclared read, a read of
//! a kind nobody serves — each a clear Status, with nothing stored.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::send;
use crate::common::server::{with_plugins, Server};

const FISCHER: &str = "apiVersion: wardle.example.com/v1alpha1
kind: Fischer
metadata:
  name: strict
disallowedFlunders: [banned, also-banned]
";

fn flunder(name: &str) -> String {
    format!("apiVersion: wardle.example.com/v1beta1\nkind: Flunder\nmetadata:\n  name: {name}\n")
}

#[test]
fn ban_flunder_refuses_names_a_fischer_disallows() {
    let s = Server::start();
    ban_flunder(&s);

    // Reads are counted per plugin: only wardle-flunder read (one list per create).
    let metrics = s.ok(&["get", "--raw", "/metrics"]);
    let value = |name: &str, plugin: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("{name}{{plugin=\"{plugin}\"}}")))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} for {plugin} missing in:\n{metrics}"))
    };
    assert_eq!(
        value("wasm_apiserver_plugin_reads_total", "wardle-flunder.wasm"),
        5.0
    );
    assert!(
        value(
            "wasm_apiserver_plugin_read_objects_total",
            "wardle-flunder.wasm"
        ) >= 3.0
    );
    assert!(
        value(
            "wasm_apiserver_plugin_read_bytes_total",
            "wardle-flunder.wasm"
        ) > 100.0
    );
    assert_eq!(
        value("wasm_apiserver_plugin_reads_total", "wardle-fischer.wasm"),
        0.0
    );
}

/// BanFlunder written in Python and in JavaScript (`examples/wardle-flunder-python`,
/// `examples/wardle-flunder-js`) behaves as the Rust one.
#[test]
fn ban_flunder_in_python_and_javascript() {
    for flunder in ["wardle-flunder-python", "wardle-flunder-js"] {
        let s = Server::start_in(with_plugins(&[
            (crate::common::example("wardle-fischer"), "wardle-fischer"),
            (crate::common::wasm("lang-plugins", flunder), flunder),
        ]));
        ban_flunder(&s);
    }
}

/// The sample apiserver's BanFlunder, through kubectl, on a server serving Fischers
/// and a Flunder plugin with that admission: five creates, so five reads.
fn ban_flunder(s: &Server) {
    // No Fischer yet: every name is allowed.
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("banned")));
    assert!(ok, "{err}");
    s.ok(&["delete", "flunder", "banned"]);

    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(FISCHER));
    assert!(ok, "{err}");
    // The Fischer is read at once: the read waits for the cache to catch up.
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("banned")));
    assert!(!ok);
    assert!(
        err.contains(
            "flunders.wardle.example.com \"banned\" is forbidden: this name may not be used, please change the resource name"
        ),
        "{err}"
    );
    // Dry runs are admitted the same way.
    let (ok, _, err) = s.kubectl_stdin(
        &["create", "--dry-run=server", "-f", "-"],
        Some(&flunder("also-banned")),
    );
    assert!(
        !ok && err.contains("is forbidden: this name may not be used"),
        "{err}"
    );
    // Nothing was stored; other names are fine; BanFlunder is about creates only.
    let (ok, _, err) = s.kubectl(&["get", "flunder", "banned"]);
    assert!(!ok && err.contains("NotFound"), "{err}");
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("fine")));
    assert!(ok, "{err}");
    s.ok(&["label", "flunder", "fine", "x=y"]);

    // Lifting the ban lets the name in.
    s.ok(&[
        "patch",
        "fischer",
        "strict",
        "--type=merge",
        "-p",
        r#"{"disallowedFlunders":["also-banned"]}"#,
    ]);
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&flunder("banned")));
    assert!(ok, "{err}");
}

/// A server with the misbehave test plugin, and a POST of a Misbehaver in `mode`.
struct Misbehavers {
    s: Server,
    c: reqwest::Client,
}

const PATH: &str = "/apis/test.wasm-apiserver.dev/v1/namespaces/default/misbehavers";

impl Misbehavers {
    fn start() -> Self {
        let s = Server::start_in(with_plugins(&[(
            crate::common::test_plugin("misbehave"),
            "misbehave",
        )]));
        let c = s.client();
        Misbehavers { s, c }
    }

    async fn create(&self, name: &str, mode: &str, query: &str) -> (u16, Value, Vec<String>) {
        let obj = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
                         "metadata": {"name": name}, "spec": {"mode": mode}});
        let (code, v, headers) = send(
            &self.c,
            &self.s.url,
            Method::POST,
            &format!("{PATH}{query}"),
            "application/json",
            obj.to_string(),
        )
        .await;
        let warnings = headers
            .get_all("warning")
            .iter()
            .map(|h| h.to_str().unwrap().to_string())
            .collect();
        (code, v, warnings)
    }

    async fn names(&self) -> Vec<String> {
        let (code, v, _) = send(&self.c, &self.s.url, Method::GET, PATH, "", String::new()).await;
        assert_eq!(code, 200, "{v}");
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admit_that_misbehaves_fails_closed_with_a_status_naming_the_plugin() {
    let m = Misbehavers::start();
    let (code, v, _) = m.create("plain", "", "").await;
    assert_eq!(code, 201, "{v}");

    // Reads see the request's own state and more: the first object is there.
    let (code, v, warnings) = m.create("reader", "readself", "").await;
    assert_eq!(code, 201, "{v}");
    assert_eq!(warnings, ["299 - \"saw 1 misbehavers\""]);

    let cases: [(&str, u16, &str, &str); 5] = [
        ("admit-deny", 403, "Forbidden", "misbehavers.test.wasm-apiserver.dev \"x-admit-deny\" is forbidden: asked to deny"),
        ("admit-trap", 500, "InternalError", "plugin misbehave.wasm: admit trapped: "),
        ("readloop", 500, "InternalError", "plugin misbehave.wasm: admit read past its budget of 1000 reads in one call"),
        ("undeclared", 400, "BadRequest", "Undeclared(\"the plugin did not declare wardle.example.com/v1alpha1/fischers in describe's reads\")"),
        ("unserved", 400, "BadRequest", "Unavailable(\"no plugin of this server serves nobody.example.com/v1/ghosts, and no upstream cluster is configured (--kubeconfig)\")"),
    ];
    for (mode, want_code, reason, message) in cases {
        let name = format!("x-{mode}");
        for query in ["", "?dryRun=All"] {
            let (code, v, _) = m.create(&name, mode, query).await;
            assert_eq!(code, want_code, "{mode}{query}: {v}");
            assert_eq!(v["kind"], "Status", "{mode}: {v}");
            assert_eq!(v["reason"], reason, "{mode}: {v}");
            assert!(
                v["message"].as_str().unwrap().contains(message),
                "{mode}{query}: {v}"
            );
        }
    }
    // Nothing of the refused writes was stored, and the server still serves.
    assert_eq!(m.names().await, ["plain", "reader"]);

    // An update is admitted: the new object is what admit sees.
    let (code, v, _) = m.create("keeper", "", "").await;
    assert_eq!(code, 201, "{v}");
    let (code, v, _) = send(
        &m.c,
        &m.s.url,
        Method::PATCH,
        &format!("{PATH}/keeper"),
        "application/merge-patch+json",
        r#"{"spec":{"mode":"admit-deny"}}"#.into(),
    )
    .await;
    assert_eq!(code, 403, "an update that admit denies: {v}");
    assert!(m.names().await.contains(&"keeper".to_string()));

    // A delete is admitted: the stored object is what admit sees (here it reads).
    let (code, v, headers) = send(
        &m.c,
        &m.s.url,
        Method::DELETE,
        &format!("{PATH}/reader"),
        "",
        String::new(),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        headers.get("warning").map(|h| h.to_str().unwrap()),
        Some("299 - \"saw 3 misbehavers\"")
    );
}
