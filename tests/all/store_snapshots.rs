//! Snapshots of the embedded store: taken under writes and restored exactly, refused
//! when truncated or tampered, scheduled and pruned.

use crate::common::send;
use crate::common::server::{copy_examples, Server};
use crate::embedded_store::{create, names, run};
use reqwest::Method;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";

/// `wasm-apiserver store snapshot restore SNAPSHOT --data-dir data [--force]` in `dir`.
fn restore(dir: &std::path::Path, snapshot: &str, force: bool) -> (i32, String, String) {
    let mut args = vec![
        "store",
        "snapshot",
        "restore",
        snapshot,
        "--data-dir",
        "data",
    ];
    if force {
        args.push("--force");
    }
    run(dir, &args)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_snapshot_under_writes_restores_exactly_what_was_acknowledged_before_it() {
    use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
    use std::sync::{Arc, Mutex};
    let s = Arc::new(Server::start());
    for i in 0..500 {
        assert_eq!(create(&s, &format!("s{i}"), 300).await.0, 201);
    }
    // Four writers create objects and record each one's resourceVersion.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(Mutex::new(Vec::<(String, u64)>::new()));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (s, stop, written) = (s.clone(), stop.clone(), written.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Relaxed) {
                let name = format!("w{w}-{i}");
                let (code, body) = create(&s, &name, 300).await;
                assert_eq!(code, 201, "{body}");
                let rv = body["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                written.lock().unwrap().push((name, rv));
                i += 1;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let snap = s.path().join("snap.wasnap");
    let kubeconfig = s.kubeconfig.display().to_string();
    let (code, out, err) = tokio::task::spawn_blocking({
        let dir = s.path().to_path_buf();
        let snap = snap.display().to_string();
        move || {
            run(
                &dir,
                &[
                    "store",
                    "snapshot",
                    "save",
                    &snap,
                    "--kubeconfig",
                    &kubeconfig,
                ],
            )
        }
    })
    .await
    .unwrap();
    assert_eq!(code, 0, "{err}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let revision: u64 = out
        .split("revision ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("no revision in {out:?}"));
    let written = written.lock().unwrap().clone();
    assert!(
        written.iter().any(|(_, rv)| *rv > revision),
        "no write after the snapshot"
    );
    let mut expected: BTreeSet<String> = (0..500).map(|i| format!("s{i}")).collect();
    expected.extend(
        written
            .iter()
            .filter(|(_, rv)| *rv <= revision)
            .map(|(n, _)| n.clone()),
    );

    // A watcher that saw a resourceVersion after the snapshot.
    let late_rv = written.iter().map(|(_, rv)| *rv).max().unwrap();
    let s = Arc::try_unwrap(s).ok().unwrap();
    let dir = s.stop();

    // Restore into a fresh folder; a non-empty one is refused without --force.
    let fresh = tempfile::tempdir().unwrap();
    copy_examples(fresh.path());
    let snap_arg = snap.display().to_string();
    let (code, out, err) = restore(fresh.path(), &snap_arg, false);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored "), "{out}");
    let (code, _, err) = restore(fresh.path(), &snap_arg, false);
    assert!(code != 0 && err.contains("--force"), "{err}");
    drop(dir);
    let s = Server::start_in(fresh);
    assert_eq!(names(&s).await, expected);
    // A client resuming from a resourceVersion of the old timeline relists.
    let (code, body, _) = send(
        &s.client(),
        &s.url,
        Method::GET,
        &format!("{FOOS}?watch=true&timeoutSeconds=5&resourceVersion={late_rv}"),
        "application/json",
        String::new(),
    )
    .await;
    let gone = code == 410
        || (code == 200
            && body.to_string().contains("410")
            && body.to_string().contains("Expired"));
    assert!(gone, "watch from {late_rv} after a restore: {code} {body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_truncated_or_tampered_snapshot_is_refused_and_nothing_is_written() {
    let s = Server::start();
    for i in 0..200 {
        assert_eq!(create(&s, &format!("t{i}"), 200).await.0, 201);
    }
    let snap = s.path().join("good.wasnap");
    let (code, _, err) = run(
        s.path(),
        &[
            "store",
            "snapshot",
            "save",
            &snap.display().to_string(),
            "--kubeconfig",
            &s.kubeconfig.display().to_string(),
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = run(
        s.path(),
        &["store", "snapshot", "status", &snap.display().to_string()],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains(" objects, ") && out.contains("sha256 "),
        "{out}"
    );
    // A running server's store is not replaced, even with --force.
    let (code, _, err) = restore(s.path(), &snap.display().to_string(), true);
    assert!(
        code != 0 && err.contains("in use by another process"),
        "{err}"
    );
    assert_eq!(
        names(&s).await.len(),
        200,
        "the running server's objects are all there"
    );
    let good = std::fs::read(&snap).unwrap();
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated",
            good[..good.len() * 2 / 3].to_vec(),
            "truncated",
        ),
        (
            "tampered",
            {
                let mut b = good.clone();
                let at = b.len() / 2;
                b[at] ^= 0x01;
                b
            },
            "checksum does not match",
        ),
        (
            "not a snapshot",
            b"{\"kind\":\"Foo\"}".to_vec(),
            "not a wasm-apiserver store snapshot",
        ),
    ];
    for (what, bytes, expected) in cases {
        let fresh = tempfile::tempdir().unwrap();
        let file = fresh.path().join("bad.wasnap");
        std::fs::write(&file, bytes).unwrap();
        let (code, _, err) = restore(fresh.path(), &file.display().to_string(), false);
        assert_ne!(code, 0, "{what}: restored");
        assert!(err.contains(expected), "{what}: {err}");
        let store = fresh.path().join("data/store");
        let left: Vec<_> = std::fs::read_dir(&store)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(left.is_empty(), "{what}: restore left {left:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn scheduled_snapshots_are_taken_verified_and_pruned() {
    let s = Server::start_with(&[
        "--store-snapshot-interval",
        "300ms",
        "--store-snapshot-retention",
        "2",
    ]);
    assert_eq!(create(&s, "kept", 100).await.0, 201);
    let dir = s.path().join("data/snapshots");
    let snapshots = || -> Vec<PathBuf> {
        let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        v.retain(|p| p.extension().is_some_and(|e| e == "wasnap"));
        v.sort();
        v
    };
    // Several intervals pass: two are kept, the newest has the object.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let kept = snapshots();
    assert_eq!(kept.len(), 2, "{kept:?}");
    let newest = kept.last().unwrap().display().to_string();
    let (code, out, err) = run(s.path(), &["store", "snapshot", "status", &newest]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains(" objects, ") && out.contains("sha256 "),
        "{out}"
    );
    let fresh = tempfile::tempdir().unwrap();
    let (code, _, err) = restore(fresh.path(), &newest, false);
    assert_eq!(code, 0, "{err}");
    copy_examples(fresh.path());
    let restored = Server::start_in(fresh);
    assert!(names(&restored).await.contains("kept"));
}
