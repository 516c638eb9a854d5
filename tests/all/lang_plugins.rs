//! Python and JavaScript plugins that misbehave: a hook that raises or throws, returns
//! the wrong shape or never returns. Each request fails with a 500 naming the plugin and
//! the cause, nothing is stored, and the server (and the plugin) keep serving. Also:
//! what a plugin prints reaches the server log with its name, and a warm restart loads
//! the big components from the precompiled cache.

use crate::common::server::Server;

fn server(flags: &[&str]) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in ["misbehave-python", "misbehave-js"] {
        std::fs::copy(
            crate::common::test_plugin(name),
            plugins.join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    Server::start_in_with(dir, flags)
}

fn object(kind: &str, name: &str, mode: &str) -> String {
    format!("apiVersion: test.wasm-apiserver.dev/v1\nkind: {kind}\nmetadata: {{name: {name}}}\nspec: {{mode: {mode}}}\n")
}

/// Create an object in `mode` and return kubectl's error; then show the plugin still
/// serves a well-behaved request.
fn refused(s: &Server, kind: &str, mode: &str) -> String {
    let (ok, out, err) = s.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&object(kind, &format!("bad-{mode}"), mode)),
    );
    assert!(!ok, "{mode} was accepted: {out}");
    let fine = object(kind, &format!("after-{mode}"), "fine");
    let (ok, _, after) = s.kubectl_stdin(&["create", "-f", "-"], Some(&fine));
    assert!(ok, "the plugin stopped serving after {mode}: {after}");
    err
}

fn assert_500(err: &str, wants: &[&str]) {
    assert!(
        err.starts_with("Error from server (InternalError): error when creating \"STDIN\": Internal error occurred: "),
        "{err}"
    );
    for want in wants {
        assert!(err.contains(want), "want {want:?} in {err}");
    }
}

#[test]
fn python_and_javascript_plugins_that_misbehave_get_a_clear_500_and_nothing_is_lost() {
    let s = server(&["--plugin-deadline-ms", "300"]);
    let py = "PyMisbehaver";
    assert_500(
        &refused(&s, py, "raise"),
        &["plugin misbehave-python.wasm: default failed: ValueError: asked to raise"],
    );
    assert_500(
        &refused(&s, py, "raise-in-validate"),
        &[
            "plugin misbehave-python.wasm: validate-create trapped: ",
            // The traceback Python wrote, with the exception last.
            "Traceback (most recent call last):",
            "RuntimeError: asked to raise in validate",
        ],
    );
    assert_500(
        &refused(&s, py, "notobject"),
        &["plugin misbehave-python.wasm: default returned a malformed result: the object is not a JSON object"],
    );
    assert_500(
        &refused(&s, py, "wrongtype"),
        &[
            "plugin misbehave-python.wasm: validate-create trapped: ",
            "'str' object has no attribute",
        ],
    );
    assert_500(
        &refused(&s, py, "loop"),
        &["plugin misbehave-python.wasm: default did not return within its deadline of 300 ms"],
    );

    let js = "JsMisbehaver";
    assert_500(
        &refused(&s, js, "throw"),
        &["plugin misbehave-js.wasm: default failed: TypeError: asked to throw"],
    );
    assert_500(
        &refused(&s, js, "throw-in-validate"),
        &[
            "plugin misbehave-js.wasm: validate-create trapped: ",
            "asked to throw in validate",
            // The JavaScript stack, with the plugin's own file.
            "misbehave.js:",
        ],
    );
    assert_500(
        &refused(&s, js, "notobject"),
        &["plugin misbehave-js.wasm: default returned a malformed result: the object is not a JSON object"],
    );
    assert_500(
        &refused(&s, js, "wrongtype"),
        &["plugin misbehave-js.wasm: validate-create trapped: "],
    );
    assert_500(
        &refused(&s, js, "loop"),
        &["plugin misbehave-js.wasm: default did not return within its deadline of 300 ms"],
    );

    // Nothing bad was stored; every well-behaved request after a failure was.
    for (plural, modes) in [
        (
            "pymisbehavers",
            [
                "raise",
                "raise-in-validate",
                "notobject",
                "wrongtype",
                "loop",
            ],
        ),
        (
            "jsmisbehavers",
            [
                "throw",
                "throw-in-validate",
                "notobject",
                "wrongtype",
                "loop",
            ],
        ),
    ] {
        let names = s.ok(&["get", plural, "-o", "name"]);
        let mut names: Vec<&str> = names
            .lines()
            .map(|l| l.rsplit('/').next().unwrap())
            .collect();
        names.sort();
        let mut want: Vec<String> = modes.iter().map(|m| format!("after-{m}")).collect();
        want.sort();
        assert_eq!(names, want, "{plural}");
    }
    assert!(s.ok(&["get", "--raw", "/readyz"]).contains("ok"));
}

/// The first log line that mentions `needle`, without ANSI colours.
fn log_line(s: &Server, needle: &str) -> Option<String> {
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    let plain = |l: &str| {
        let mut out = String::new();
        let mut chars = l.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                chars.by_ref().find(|c| *c == 'm');
            } else {
                out.push(c);
            }
        }
        out
    };
    log.lines().map(plain).find(|l| l.contains(needle))
}

#[test]
fn what_a_plugin_prints_reaches_the_server_log_with_its_name_and_a_restart_uses_the_cache() {
    let s = server(&[]);
    for (kind, file) in [
        ("PyMisbehaver", "misbehave-python.wasm"),
        ("JsMisbehaver", "misbehave-js.wasm"),
    ] {
        let name = format!("printed-by-{}", kind.to_lowercase());
        let (ok, _, err) =
            s.kubectl_stdin(&["create", "-f", "-"], Some(&object(kind, &name, "print")));
        assert!(ok, "{err}");
        let line = log_line(&s, &format!("defaulting {name}"))
            .unwrap_or_else(|| panic!("{kind}'s print is not in the server log"));
        assert!(
            line.contains(&format!("plugin=\"{file}\"")) && line.contains("stream=\"stdout\""),
            "{line}"
        );
    }
    // stderr (a Python traceback) goes to the log too, line by line, as warnings.
    s.kubectl_stdin(
        &["create", "-f", "-"],
        Some(&object("PyMisbehaver", "tb", "raise-in-validate")),
    );
    let line =
        log_line(&s, "RuntimeError: asked to raise in validate").expect("the traceback is logged");
    assert!(
        line.contains("WARN") && line.contains("plugin=\"misbehave-python.wasm\""),
        "{line}"
    );

    // A restart finds both compiled components in the cache.
    let dir = s.stop();
    let s = Server::start_in(dir);
    for file in ["misbehave-python.wasm", "misbehave-js.wasm"] {
        let line = log_line(&s, &format!("file=plugins/{file}")).expect("the plugin loaded");
        assert!(
            line.contains("loaded plugin") && line.contains("cached=true"),
            "{line}"
        );
    }
    assert_eq!(
        s.ok(&["get", "pymisbehavers", "-o", "name"])
            .lines()
            .count(),
        1
    );
}
