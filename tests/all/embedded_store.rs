//! The embedded store under real faults: a full tmpfs, its quota, a damaged file; and
//! etcd's NOSPACE alarm, which reads the same.
//! Snapshots and restore are in `store_snapshots`, which shares these helpers.
//! The disk is never mocked: the full-disk test mounts a small tmpfs (the tests run
//! as root; where mounting is refused it says so and skips).

use crate::common::server::{binary, copy_examples, Server};
use crate::common::{send, wait_for};
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";

/// A Foo whose annotation pads it to about `pad` bytes.
pub(super) fn foo(name: &str, pad: usize) -> String {
    json!({
        "apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
        "metadata": {"name": name, "annotations": {"pad": "x".repeat(pad)}},
        "spec": {"msg": "hi"},
    })
    .to_string()
}

pub(super) async fn create(s: &Server, name: &str, pad: usize) -> (u16, Value) {
    let (code, body, _) = send(
        &s.client(),
        &s.url,
        Method::POST,
        FOOS,
        "application/json",
        foo(name, pad),
    )
    .await;
    (code, body)
}

async fn delete(s: &Server, name: &str) -> u16 {
    let path = format!("{FOOS}/{name}");
    send(
        &s.client(),
        &s.url,
        Method::DELETE,
        &path,
        "application/json",
        String::new(),
    )
    .await
    .0
}

pub(super) async fn names(s: &Server) -> BTreeSet<String> {
    let (code, body, _) = send(
        &s.client(),
        &s.url,
        Method::GET,
        FOOS,
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(code, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_string())
        .collect()
}

/// Create Foos until one is refused; returns the names acknowledged and the refusal.
async fn fill(s: &Server, prefix: &str, pad: usize) -> (BTreeSet<String>, Value) {
    let mut acked = BTreeSet::new();
    for i in 0..100_000 {
        let name = format!("{prefix}{i}");
        match create(s, &name, pad).await {
            (201, _) => {
                acked.insert(name);
            }
            (500, refusal) => return (acked, refusal),
            (code, body) => panic!("create {name}: {code} {body}"),
        }
    }
    panic!("100,000 creates and no refusal")
}

/// A tmpfs mounted at `path` for the life of the value.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output()
            .ok()?;
        if !out.status.success() {
            eprintln!(
                "SKIPPED: mounting a tmpfs was refused ({}); the full-disk test needs root",
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        Some(Tmpfs(path.to_path_buf()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Fill the rest of the disk at `dir` with a file; returns it.
fn filler(dir: &Path) -> PathBuf {
    use std::io::Write as _;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let block = vec![7u8; 64 << 10];
    while f.write_all(&block).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_writes_serves_reads_and_deletes_and_recovers_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    copy_examples(dir.path());
    let Some(tmpfs) = Tmpfs::mount(&dir.path().join("data"), "24m") else {
        return;
    };
    let s = Server::start_in(dir);

    // Filled by its own objects.
    let (mut acked, refusal) = fill(&s, "f", 8000).await;
    assert!(acked.len() > 50, "only {} objects fitted", acked.len());
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.contains("no space left on device") && message.contains("objects.redb"),
        "{refusal}"
    );
    assert_eq!(refusal["code"], 500);
    // Reads, lists and a second refusal, all without a restart.
    assert_eq!(names(&s).await, acked);
    let first = acked.iter().next().unwrap().clone();
    let (code, _, _) = send(
        &s.client(),
        &s.url,
        Method::GET,
        &format!("{FOOS}/{first}"),
        "application/json",
        String::new(),
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(create(&s, "refused", 10).await.0, 500);
    // /readyz names the condition and stays ready; /metrics says so too.
    let ready = s
        .client()
        .get(format!("{}/readyz?verbose", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(text.contains("out of disk space since"), "{text}");
    assert_eq!(
        s.sample("wasm_apiserver_store_out_of_space").await,
        Some(1.0)
    );

    // A watch sees the deletes that make room.
    let client = s.kube_client().await;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        "default",
        &kube::api::ApiResource {
            group: "hello.zeng.dev".into(),
            version: "v1".into(),
            api_version: "hello.zeng.dev/v1".into(),
            kind: "Foo".into(),
            plural: "foos".into(),
        },
    );
    let list = api.list(&Default::default()).await.unwrap();
    let rv = list.metadata.resource_version.unwrap();
    let mut events = api.watch(&Default::default(), &rv).await.unwrap().boxed();
    let doomed: Vec<String> = acked.iter().take(40).cloned().collect();
    for name in &doomed {
        assert_eq!(delete(&s, name).await, 200, "delete {name} on a full disk");
        acked.remove(name);
    }
    use futures::StreamExt as _;
    let mut deleted = 0;
    while deleted < doomed.len() {
        let e = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("a DELETED event")
            .unwrap()
            .unwrap();
        if matches!(e, kube::api::WatchEvent::Deleted(_)) {
            deleted += 1;
        }
    }
    // Writes come back by themselves once deletes made room.
    wait_for(
        "a create after deletes",
        Duration::from_secs(10),
        || async { create(&s, "after-deletes", 10).await.0 == 201 },
    )
    .await;
    acked.insert("after-deletes".into());
    assert!(!s
        .text("/readyz?verbose")
        .await
        .contains("out of disk space"));

    // Filled by another file: refused, then served again once it is removed.
    let extra = filler(&tmpfs.0);
    let (more, refusal) = fill(&s, "g", 8000).await;
    acked.extend(more);
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("no space left on device"),
        "{refusal}"
    );
    std::fs::remove_file(extra).unwrap();
    wait_for(
        "a create after the disk is freed",
        Duration::from_secs(10),
        || async { create(&s, "after-free", 10).await.0 == 201 },
    )
    .await;
    acked.insert("after-free".into());

    // Nothing acknowledged is lost across a kill -9 and a restart on the same disk.
    let dir = s.kill9();
    let s = Server::start_in(dir);
    assert_eq!(names(&s).await, acked);
    drop(s);
    drop(tmpfs);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quota_refuses_writes_that_add_bytes_and_deletes_free_it_at_once() {
    let s = Server::start_with(&["--store-quota-bytes", "200000"]);
    let (mut acked, refusal) = fill(&s, "q", 4000).await;
    assert!(
        (35..=50).contains(&acked.len()),
        "{} objects under a 200 kB quota",
        acked.len()
    );
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.contains("database space exceeded") && message.contains("--store-quota-bytes"),
        "{refusal}"
    );
    // kubectl shows the cause.
    let (ok, _, err) = s.kubectl_stdin(&["create", "-f", "-"], Some(&foo("by-kubectl", 4000)));
    assert!(!ok && err.contains("database space exceeded"), "{err}");
    assert!(s
        .text("/readyz?verbose")
        .await
        .contains("database space exceeded"));
    // Reads and a shrinking update still work.
    assert_eq!(names(&s).await, acked);
    let victim = acked.iter().next().unwrap().clone();
    let (ok, _, err) = s.kubectl(&["annotate", "foo", &victim, "pad-", "--overwrite"]);
    assert!(ok, "{err}");
    // A delete frees quota at once.
    let gone = acked.iter().nth(1).unwrap().clone();
    assert_eq!(delete(&s, &gone).await, 200);
    acked.remove(&gone);
    assert_eq!(create(&s, "after-delete", 4000).await.0, 201);
    acked.insert("after-delete".into());
    let dir = s.stop();
    let s = Server::start_in_with(dir, &["--store-quota-bytes", "200000"]);
    assert_eq!(names(&s).await, acked);
}

fn sha256(path: &Path) -> String {
    use sha2::Digest as _;
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

/// Run `wasm-apiserver ARGS` in `dir`; (exit code, stdout, stderr).
pub(super) fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(binary())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_store_is_refused_by_name_and_left_untouched() {
    let s = Server::start();
    for i in 0..300 {
        assert_eq!(create(&s, &format!("d{i}"), 500).await.0, 201);
    }
    // A running server's store is in use: the offline check says so.
    let (code, _, err) = run(s.path(), &["store", "check", "--data-dir", "data"]);
    assert!(
        code != 0 && err.contains("in use by another process"),
        "{err}"
    );
    let dir = s.stop();
    let (code, out, err) = run(
        dir.path(),
        &["store", "check", "--data-dir", "data", "--full"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("sound (full check): 30"), "{out}");

    // Overwrite every block that holds d150 (its live copy among them).
    let file = dir.path().join("data/store/objects.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    let needle = b"\"name\":\"d150\"";
    let mut damaged = 0;
    let hits: Vec<usize> = (0..bytes.len() - needle.len())
        .filter(|&i| bytes[i..].starts_with(needle))
        .collect();
    for at in hits {
        let block = at - at % 4096;
        for b in &mut bytes[block..block + 4096] {
            *b = 0x5a;
        }
        damaged += 1;
    }
    assert!(damaged > 0);
    std::fs::write(&file, &bytes).unwrap();
    let before = sha256(&file);

    let (code, _, err) = run(
        dir.path(),
        &[
            "--dev",
            "--secure-port",
            "0",
            "--plugin-dir",
            "plugins",
            "--data-dir",
            "data",
        ],
    );
    assert_ne!(code, 0, "the server started on a damaged store: {err}");
    assert!(
        err.contains("data/store/objects.redb is damaged")
            && err.contains("The file was not changed")
            && err.contains("wasm-apiserver store snapshot restore"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "a panic reached the user: {err}");
    let (code, _, check) = run(dir.path(), &["store", "check", "--data-dir", "data"]);
    assert_ne!(code, 0);
    assert!(check.contains("is damaged"), "{check}");
    assert_eq!(sha256(&file), before, "the damaged file was changed");
}

#[tokio::test(flavor = "multi_thread")]
async fn etcds_nospace_alarm_refuses_writes_like_the_quota_and_serves_reads_and_deletes() {
    let etcd = crate::common::etcd::Etcd::start_with(&["--quota-backend-bytes=2097152"]);
    let s = Server::start_with(&["--storage", "etcd", "--etcd-servers", &etcd.url()]);
    let (acked, refusal) = fill(&s, "e", 60_000).await;
    assert!(!acked.is_empty());
    assert_eq!(refusal["code"], 500, "{refusal}");
    assert!(
        refusal["message"]
            .as_str()
            .unwrap()
            .contains("etcdserver: mvcc: database space exceeded"),
        "{refusal}"
    );
    // etcd applies the write that crosses its quota, then answers NOSPACE (its quota
    // applier checks after applying); kube-apiserver passes that error on as it is,
    // and so does this server: the refused create may be there.
    let listed = names(&s).await;
    let refused = format!("e{}", acked.len());
    assert!(
        listed.is_superset(&acked) && listed.iter().all(|n| acked.contains(n) || *n == refused),
        "reads are served under the alarm: {listed:?}"
    );
    let first = acked.iter().next().unwrap().clone();
    assert_eq!(
        delete(&s, &first).await,
        200,
        "deletes are served under the alarm"
    );
}
