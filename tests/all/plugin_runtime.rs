//! The plugin runtime against real components built from source: the example plugins,
//! and misbehaving guests from `guests/test-plugins`.

use crate::common::{example, test_plugin};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;
use wasm_apiserver::plugin::{
    Operation, Plugin, PluginEngine, PluginError, PluginRegistry, QuarantinePolicy, RequestInfo,
    RuntimeLimits, Scope, UserInfo,
};

fn engine() -> PluginEngine {
    PluginEngine::new(
        RuntimeLimits {
            call_deadline: Duration::from_millis(300),
            memory_bytes: 16 << 20,
            ..RuntimeLimits::default()
        },
        None,
    )
    .unwrap()
}

fn request(op: Operation, subresource: Option<&str>) -> RequestInfo {
    RequestInfo {
        operation: op,
        user: UserInfo {
            name: "alice".into(),
            uid: "1".into(),
            groups: vec!["system:authenticated".into()],
            extra: vec![],
        },
        namespace: Some("default".into()),
        name: "a".into(),
        subresource: subresource.map(Into::into),
        dry_run: false,
    }
}

/// A folder holding copies of the given files (under the given names).
fn plugin_dir(files: &[(&Path, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (src, name) in files {
        std::fs::copy(src, dir.path().join(name)).unwrap();
    }
    dir
}

fn load_err(path: &Path) -> String {
    Plugin::load(&engine(), path).unwrap_err().to_string()
}

#[test]
fn examples_load_and_describe_their_kinds() {
    let dir = plugin_dir(&[
        (&example("hello"), "hello.wasm"),
        (&example("wardle-flunder"), "wardle-flunder.wasm"),
        (&example("wardle-fischer"), "wardle-fischer.wasm"),
    ]);
    let registry = PluginRegistry::new(engine());
    let catalog = registry.load_dir(dir.path()).unwrap();
    assert!(catalog.errors.is_empty(), "{:?}", catalog.errors);
    let foo = &catalog.find("hello.zeng.dev", "foos").unwrap().resource;
    assert_eq!(foo.kind, "Foo");
    assert_eq!(foo.short_names, ["fo"]);
    assert_eq!(foo.scope, Scope::Namespaced);
    assert_eq!(foo.storage_version, "v2");
    assert_eq!(foo.preferred_version, "v2");
    assert!(foo.version("v2").unwrap().status_subresource);
    let flunder = &catalog
        .find("wardle.example.com", "flunders")
        .unwrap()
        .resource;
    assert_eq!(flunder.storage_version, "v1alpha1");
    assert_eq!(flunder.preferred_version, "v1beta1");
    assert_eq!(
        catalog
            .find("wardle.example.com", "flunders")
            .unwrap()
            .world(),
        "wasm-apiserver:plugin/plugin@0.2.0"
    );
    assert_eq!(
        flunder.reads,
        [wasm_apiserver::api::resource::ResourceRef {
            group: "wardle.example.com".into(),
            version: "v1alpha1".into(),
            resource: "fischers".into(),
        }]
    );
    // A build for the released 0.1.0 world loads, bound to that world, with 0.2.0's
    // additions at their defaults.
    let old = wasm_apiserver::plugin::Plugin::load(
        &engine(),
        &crate::common::root().join("tests/fixtures/hello-0.1.0.wasm"),
    )
    .unwrap();
    assert_eq!(old.world(), "wasm-apiserver:plugin/plugin@0.1.0");
    assert_eq!(old.resource.kind, "Foo");
    assert!(old.resource.reads.is_empty() && old.resource.computed.is_none());
    assert!(old
        .resource
        .versions
        .iter()
        .all(|v| v.scale.is_none() && v.subresources.is_empty()));
    let fischer = &catalog
        .find("wardle.example.com", "fischers")
        .unwrap()
        .resource;
    assert_eq!(fischer.scope, Scope::Cluster);
    let groups: Vec<_> = catalog
        .groups()
        .iter()
        .map(|(g, ps)| (g.to_string(), ps.len()))
        .collect();
    assert_eq!(
        groups,
        [
            ("hello.zeng.dev".to_string(), 1),
            ("wardle.example.com".to_string(), 2)
        ]
    );
}

#[test]
fn hello_hooks_do_what_the_contract_says() {
    let plugin = Plugin::load(&engine(), &example("hello")).unwrap();
    let mut i = plugin.instance().unwrap();
    let v1 = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                    "metadata": {"name": "a", "namespace": "default"}, "spec": {"msg": "hi"}});
    // default
    let v1 = i.default(v1).unwrap();
    assert_eq!(v1["spec"]["msg1"], "hello");
    // convert, batched, and back: lossless
    let v2s = i.convert(&[v1.clone(), v1.clone()], "v2").unwrap();
    assert_eq!(v2s.len(), 2);
    assert_eq!(v2s[0]["apiVersion"], "hello.zeng.dev/v2");
    assert_eq!(v2s[0]["spec"]["config"]["msg"], "hi");
    assert_eq!(i.convert(&v2s[..1], "v1").unwrap()[0], v1);
    // prepare-for-create drops status
    let mut with_status = v2s[0].clone();
    with_status["status"] = json!({"phase": "Ready"});
    let created = i
        .prepare_for_create(&request(Operation::Create, None), with_status.clone())
        .unwrap();
    assert!(created.get("status").is_none());
    // prepare-for-update: main resource keeps the old status; status keeps the old spec
    let mut new = v2s[0].clone();
    new["spec"]["image"] = json!("nginx:1.27");
    new["status"] = json!({"phase": "Changed"});
    let updated = i
        .prepare_for_update(&request(Operation::Update, None), new.clone(), &with_status)
        .unwrap();
    assert_eq!(updated["spec"]["image"], "nginx:1.27");
    assert_eq!(updated["status"]["phase"], "Ready");
    let status = i
        .prepare_for_update(
            &request(Operation::Update, Some("status")),
            new.clone(),
            &with_status,
        )
        .unwrap();
    assert_eq!(status["spec"]["image"], "busybox");
    assert_eq!(status["status"]["phase"], "Changed");
    // validate
    let mut bad = v2s[0].clone();
    bad["spec"]["image"] = json!("has space");
    let v = i
        .validate_create(&request(Operation::Create, None), &bad)
        .unwrap();
    assert_eq!(v.errors.len(), 1);
    assert_eq!(v.errors[0].field, "spec.image");
    assert_eq!(v.errors[0].bad_value.as_deref(), Some("\"has space\""));
    assert!(i
        .validate_update(&request(Operation::Update, None), &v2s[0], &v2s[0])
        .unwrap()
        .errors
        .is_empty());
    assert!(i
        .validate_delete(&request(Operation::Delete, None), &v2s[0])
        .unwrap()
        .errors
        .is_empty());
    let mut latest = v2s[0].clone();
    latest["spec"]["image"] = json!("nginx:latest");
    let v = i
        .validate_create(&request(Operation::Create, None), &latest)
        .unwrap();
    assert!(v.errors.is_empty() && v.warnings.len() == 1);
    // print: one row per object, the version's columns
    let rows = i.print(&v2s).unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].len(), 3);
}

#[test]
fn plugins_see_no_environment_or_filesystem() {
    let plugin = Plugin::load(&engine(), &test_plugin("misbehave")).unwrap();
    let obj = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
                     "metadata": {"name": "x"}, "spec": {"mode": "probe"}});
    let v = plugin
        .instance()
        .unwrap()
        .validate_create(&request(Operation::Create, None), &obj)
        .unwrap();
    assert_eq!(v.warnings, ["env=0 args=0 fs=false"]);
}

#[test]
fn files_that_are_not_plugins_are_refused_with_the_cause() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello, I am not wasm").unwrap();
    let e = load_err(&text);
    assert!(
        e.contains("notes.wasm") && e.contains("not a WebAssembly file"),
        "{e}"
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(
        &core,
        wat::parse_str("(module (func (export \"f\")))").unwrap(),
    )
    .unwrap();
    let e = load_err(&core);
    assert!(
        e.contains("core WebAssembly module, not a component"),
        "{e}"
    );

    let e = load_err(&test_plugin("other_world"));
    assert!(
        e.contains("other_world.wasm")
            && e.contains("implements none of the worlds wasm-apiserver:plugin/plugin@0.2.0, wasm-apiserver:plugin/plugin@0.1.0"),
        "{e}"
    );
}

#[test]
fn invalid_descriptions_are_refused_with_every_problem() {
    let e = load_err(&test_plugin("no_storage"));
    assert!(
        e.contains("no version is marked as the storage version"),
        "{e}"
    );
    let e = load_err(&test_plugin("two_storage"));
    assert!(
        e.contains("[\"v1\", \"v2\"] are all marked as storage versions"),
        "{e}"
    );
    let e = load_err(&test_plugin("bad_names"));
    for part in [
        "group \"Bad_Group\"",
        "kind \"lowercase-kind\"",
        "plural \"Plural\"",
        "version \"V1\"",
    ] {
        assert!(e.contains(part), "{part} missing in: {e}");
    }
    let e = load_err(&test_plugin("bad_subresources"));
    for part in [
        "subresource \"status\" is the host's",
        "subresource \"runs\" is declared more than once",
        "subresource \"logs\" has no verbs",
        "scale spec-replicas-path \"spec.replicas\" must be a simple JSONPath",
    ] {
        assert!(e.contains(part), "{part} missing in: {e}");
    }
    // Schema markers apply and strategic merge cannot use (the first one found).
    let e = load_err(&test_plugin("bad_markers"));
    assert!(
        e.contains("the schema of version \"v1\": spec.ports: x-kubernetes-list-type map needs x-kubernetes-list-map-keys"),
        "{e}"
    );
    let e = load_err(&test_plugin("bad_computed"));
    for part in [
        "computed objects derive from test.wasm-apiserver.dev/v1/pipelines, which is not declared in reads",
        "a computed kind cannot have status or scale subresources",
    ] {
        assert!(e.contains(part), "{part} missing in: {e}");
    }
    let e = load_err(&test_plugin("describe_traps"));
    assert!(
        e.contains("describe trapped") && e.contains("describe is broken"),
        "{e}"
    );
}

#[test]
fn a_second_claim_on_a_kind_or_plural_is_refused_and_the_first_keeps_serving() {
    let dir = plugin_dir(&[
        (&example("hello"), "a-hello.wasm"),
        (&example("hello"), "b-hello-again.wasm"),
        (&test_plugin("dup_plural"), "c-dup-plural.wasm"),
        (&example("wardle-fischer"), "d-fischer.wasm"),
    ]);
    let registry = PluginRegistry::new(engine());
    let catalog = registry.load_dir(dir.path()).unwrap();
    let errors: Vec<String> = catalog.errors.iter().map(|e| e.to_string()).collect();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(
        errors[0].contains("b-hello-again.wasm")
            && errors[0]
                .contains("foos.hello.zeng.dev (kind Foo) is already served by a-hello.wasm"),
        "{errors:?}"
    );
    assert!(
        errors[1].contains("c-dup-plural.wasm")
            && errors[1].contains("(kind Bar) is already served by a-hello.wasm"),
        "{errors:?}"
    );
    assert_eq!(catalog.plugins.len(), 2);
    assert_eq!(
        catalog
            .find("hello.zeng.dev", "foos")
            .unwrap()
            .name
            .as_ref(),
        "a-hello.wasm"
    );
}

fn misbehaver(mode: &str) -> Value {
    json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Misbehaver",
           "metadata": {"name": "x"}, "spec": {"mode": mode}})
}

#[test]
fn misbehaving_hooks_fail_with_a_clear_error_and_the_plugin_keeps_serving() {
    let engine = engine();
    let plugin = Plugin::load(&engine, &test_plugin("misbehave")).unwrap();
    let hello = Plugin::load(&engine, &example("hello")).unwrap();
    let call = |mode: &str| {
        plugin
            .instance()
            .unwrap()
            .default(misbehaver(mode))
            .unwrap_err()
    };

    let e = call("trap");
    assert!(matches!(e, PluginError::Trap { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("plugin misbehave.wasm: default trapped"),
        "{e}"
    );
    assert!(
        e.to_string().contains("asked to trap"),
        "the guest's panic message: {e}"
    );

    let started = std::time::Instant::now();
    let e = call("loop");
    assert!(
        matches!(
            e,
            PluginError::Deadline {
                deadline_ms: 300,
                ..
            }
        ),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        e.to_string(),
        "plugin misbehave.wasm: default did not return within its deadline of 300 ms"
    );

    let e = call("oom");
    assert!(
        matches!(e, PluginError::OutOfMemory { limit_mib: 16, .. }),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "plugin misbehave.wasm: default exceeded its memory limit of 16 MiB"
    );

    let e = call("badjson");
    assert!(
        matches!(e, PluginError::Malformed { .. }) && e.to_string().contains("not valid JSON"),
        "{e}"
    );
    let e = call("notobject");
    assert!(
        e.to_string()
            .contains("default returned a malformed result: the object is not a JSON object"),
        "{e}"
    );
    let e = call("hookerror");
    assert_eq!(
        e.to_string(),
        "plugin misbehave.wasm: default failed: refusing on purpose"
    );
    let e = plugin
        .instance()
        .unwrap()
        .convert(&[misbehaver("short"), misbehaver("ok")], "v1")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("convert returned a malformed result: 2 objects in, 1 out"),
        "{e}"
    );
    let e = plugin
        .instance()
        .unwrap()
        .print(&[misbehaver("trap")])
        .unwrap_err();
    assert!(e.to_string().contains("print trapped"), "{e}");

    // Nothing broke: the same plugin and another one still answer.
    let ok = plugin
        .instance()
        .unwrap()
        .default(misbehaver("fine"))
        .unwrap();
    assert_eq!(ok["spec"]["mode"], "fine");
    let foo = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "a"}, "spec": {}});
    assert_eq!(
        hello.instance().unwrap().default(foo.clone()).unwrap()["spec"]["image"],
        "busybox"
    );

    // Four failures so far (trap, deadline, memory, print's trap; deliberate errors and
    // malformed results do not count). A fifth within a minute quarantines this build:
    // no hook of it is called again, and the error says why.
    assert!(!plugin.is_quarantined());
    call("trap");
    let Err(e) = plugin.instance() else {
        panic!("a quarantined build gives no instance")
    };
    assert!(matches!(e, PluginError::Quarantined { .. }), "{e}");
    assert!(
        e.to_string().starts_with(
            "plugin misbehave.wasm is quarantined: 5 hook failures within 60s, the last: \
             plugin misbehave.wasm: default trapped"
        ),
        "{e}"
    );
    use std::sync::atomic::Ordering::Relaxed;
    let default = &plugin.health.hooks[1];
    assert_eq!(
        (
            default.traps.load(Relaxed),
            default.timeouts.load(Relaxed),
            default.out_of_memory.load(Relaxed),
            default.errors.load(Relaxed),
        ),
        (2, 1, 1, 3)
    );
    // The other plugin is not affected.
    assert!(hello.instance().unwrap().default(foo).is_ok());
}

#[test]
fn the_precompiled_cache_is_reused_and_keyed_by_content() {
    let cache = tempfile::tempdir().unwrap();
    let engine =
        PluginEngine::new(RuntimeLimits::default(), Some(cache.path().to_path_buf())).unwrap();
    let first = Plugin::load(&engine, &example("hello")).unwrap();
    assert!(!first.from_cache);
    let second = Plugin::load(&engine, &example("hello")).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.digest, second.digest);
    let other = Plugin::load(&engine, &example("wardle-fischer")).unwrap();
    assert!(!other.from_cache);
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
    // A corrupt entry is ignored and rewritten, not trusted.
    for entry in std::fs::read_dir(cache.path()).unwrap() {
        std::fs::write(entry.unwrap().path(), b"garbage").unwrap();
    }
    let again = Plugin::load(&engine, &example("hello")).unwrap();
    assert!(!again.from_cache);
    assert_eq!(again.resource.kind, "Foo");
}

/// The isolation policy: an instance serves at most `instance_reuse` hook calls, one at a
/// time, and is never reused after a trap or a malformed result; a deliberate hook error
/// keeps it.
#[test]
fn instances_are_reused_within_the_limit_and_dropped_after_a_failure() {
    use std::sync::atomic::Ordering::Relaxed;
    let engine = |reuse: u32| {
        PluginEngine::new(
            RuntimeLimits {
                call_deadline: Duration::from_millis(300),
                instance_reuse: reuse,
                pool_size: 4,
                // This test traps on purpose, more often than quarantine allows.
                quarantine: QuarantinePolicy {
                    threshold: 0,
                    ..QuarantinePolicy::default()
                },
                ..RuntimeLimits::default()
            },
            None,
        )
        .unwrap()
    };
    let counts = |p: &Plugin| {
        (
            p.stats.instances.load(Relaxed),
            p.stats.reuses.load(Relaxed),
        )
    };

    // Limit 3. Loading ran describe on instance #1 (one use).
    let plugin = Plugin::load(&engine(3), &test_plugin("misbehave")).unwrap();
    assert_eq!(counts(&plugin), (1, 0));
    for _ in 0..6 {
        plugin
            .instance()
            .unwrap()
            .default(misbehaver("fine"))
            .unwrap();
    }
    // #1 serves 2 more requests (3 uses), #2 three, #3 the last one.
    assert_eq!(counts(&plugin), (3, 4));
    assert_eq!(plugin.idle_instances(), 1);

    // A request's instance goes back to the pool after each hook call, not when the
    // request ends: a request never holds one across its storage I/O.
    let mut request = plugin.instance().unwrap();
    let idle = plugin.idle_instances();
    request.default(misbehaver("fine")).unwrap();
    assert_eq!(
        plugin.idle_instances(),
        idle,
        "returned right after the call"
    );
    request.default(misbehaver("fine")).unwrap();
    drop(request);

    // A trap drops the instance it happened in, and so does a malformed result; a
    // deliberate error (`Err`) leaves the guest intact and the instance goes back.
    // Each call starts with exactly one idle instance, which it takes.
    for (mode, kept) in [("trap", false), ("badjson", false), ("hookerror", true)] {
        while plugin.idle_instances() > 1 {
            plugin
                .instance()
                .unwrap()
                .default(misbehaver("trap"))
                .unwrap_err();
        }
        if plugin.idle_instances() == 0 {
            plugin
                .instance()
                .unwrap()
                .default(misbehaver("fine"))
                .unwrap();
        }
        assert_eq!(plugin.idle_instances(), 1);
        let e = plugin
            .instance()
            .unwrap()
            .default(misbehaver(mode))
            .unwrap_err();
        assert_eq!(matches!(e, PluginError::Hook { .. }), kept, "{mode}: {e}");
        assert_eq!(plugin.idle_instances(), kept as usize, "{mode}");
    }
    let (instances, _) = counts(&plugin);
    plugin
        .instance()
        .unwrap()
        .default(misbehaver("fine"))
        .unwrap();
    assert_eq!(counts(&plugin).0, instances, "served from the pool");

    // Limit 1: a fresh instance for every call, nothing kept.
    let plugin = Plugin::load(&engine(1), &example("hello")).unwrap();
    let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                     "metadata": {"name": "a"}, "spec": {"msg": "m"}});
    for _ in 0..4 {
        plugin.instance().unwrap().default(foo.clone()).unwrap();
    }
    assert_eq!(counts(&plugin), (5, 0));
    assert_eq!(plugin.idle_instances(), 0);
}

/// A plugin keeps at most `pool_size` idle instances, however many calls ran at once.
#[test]
fn the_pool_keeps_at_most_its_size() {
    let engine = PluginEngine::new(
        RuntimeLimits {
            pool_size: 2,
            ..RuntimeLimits::default()
        },
        None,
    )
    .unwrap();
    let plugin = Plugin::load(&engine, &example("hello")).unwrap();
    let foo = json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                     "metadata": {"name": "a"}, "spec": {"msg": "m"}});
    std::thread::scope(|scope| {
        for _ in 0..6 {
            scope.spawn(|| {
                for _ in 0..50 {
                    let out = plugin.instance().unwrap().default(foo.clone()).unwrap();
                    assert_eq!(out["spec"]["msg1"], "hello");
                }
            });
        }
    });
    assert!(plugin.idle_instances() <= 2, "{}", plugin.idle_instances());
    assert!(plugin.idle_instances() >= 1);
}
