//! `-- store`: the embedded store an operator trusts, at 100,000 Foos of ~1 KiB.
//!
//! - restore of a 100,000-object snapshot (`store snapshot restore`, the CLI);
//! - opening that store with the quick check (every start) and the full check
//!   (`--store-verify-full`), in process; and the server's start, as a process, until
//!   `/readyz` answers 200 (plugins cached, every watch cache loaded);
//! - a snapshot of the running server over its API (`store snapshot save`, the CLI),
//!   and CREATE throughput at 8 clients while it streams, as a ratio of the same
//!   creates without it, measured in the same run.

use super::common::server::{binary, copy_examples, Server};
use serde_json::json;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_apiserver::storage::embedded::{snapshot, EmbeddedStore, Options};

const OBJECTS: usize = 100_000;
const FOOS: &str = "/apis/hello.zeng.dev/v1/namespaces/default/foos";

fn cli(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(binary())
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    started.elapsed()
}

async fn create(s: &Server, client: &reqwest::Client, name: &str) {
    let body = json!({
        "apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
        "metadata": {"name": name, "annotations": {"pad": "x".repeat(800)}},
        "spec": {"msg": "hi"},
    });
    let r = client
        .post(format!("{}{FOOS}", s.url))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Creates at 8 clients until `stop`: creates per second.
async fn creates(s: Arc<Server>, tag: String, stop: Arc<AtomicBool>) -> f64 {
    let n = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..8 {
        let (s, stop, n, tag) = (s.clone(), stop.clone(), n.clone(), tag.clone());
        tasks.push(tokio::spawn(async move {
            let client = s.client();
            let mut i = 0;
            while !stop.load(Relaxed) {
                create(&s, &client, &format!("{tag}-{c}-{i}")).await;
                n.fetch_add(1, Relaxed);
                i += 1;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    n.load(Relaxed) as f64 / started.elapsed().as_secs_f64()
}

pub async fn store() {
    println!("\n### Embedded store (`-- store`), {OBJECTS} Foos of ~1 KiB\n");
    // One Foo as the server stores it: the template of the 100,000.
    let template_dir = {
        let s = Server::start();
        create(&s, &s.client(), "template").await;
        let snap = s.path().join("one.wasnap");
        cli(
            s.path(),
            &[
                "store",
                "snapshot",
                "save",
                snap.to_str().unwrap(),
                "--kubeconfig",
                s.kubeconfig.to_str().unwrap(),
            ],
        );
        s.stop()
    };
    let mut template = None;
    let mut others = Vec::new();
    snapshot::read(
        std::fs::File::open(template_dir.path().join("one.wasnap")).unwrap(),
        |key, rev, value| {
            if key.ends_with("/template") {
                template = Some((key, value));
            } else {
                others.push((key, rev, value));
            }
            Ok(())
        },
    )
    .unwrap();
    let (key, value) = template.unwrap();
    let value = String::from_utf8(value).unwrap();
    let big = tempfile::tempdir().unwrap();
    let snap = big.path().join("100k.wasnap");
    let count = (OBJECTS + others.len()) as u64;
    // In key order: the server's own records (`/.wasm-apiserver/...`) sort first.
    let objects = others.clone().into_iter().chain((0..OBJECTS).map(|i| {
        let name = format!("foo-{i:06}");
        (
            key.replace("/template", &format!("/{name}")),
            (i + 10) as u64,
            value
                .replace("\"template\"", &format!("\"{name}\""))
                .into_bytes(),
        )
    }));
    let summary = snapshot::write_objects(
        std::fs::File::create(&snap).unwrap(),
        (OBJECTS + 10) as u64,
        count,
        objects,
    )
    .unwrap();
    println!(
        "- snapshot file: {} objects, {:.1} MiB",
        summary.header.objects,
        summary.bytes as f64 / (1 << 20) as f64
    );

    let server_dir = tempfile::tempdir_in(big.path()).unwrap();
    let dir = server_dir.path().to_path_buf();
    copy_examples(&dir);
    // The plugin cache of the template server: start with compiled plugins.
    let _ = std::process::Command::new("cp")
        .arg("-r")
        .arg(template_dir.path().join("data"))
        .arg(&dir)
        .status();
    let _ = std::fs::remove_dir_all(dir.join("data/store"));
    let took = cli(
        &dir,
        &[
            "store",
            "snapshot",
            "restore",
            snap.to_str().unwrap(),
            "--data-dir",
            "data",
        ],
    );
    println!(
        "- restore (`store snapshot restore`): {:.2} s",
        took.as_secs_f64()
    );

    let store_dir = dir.join("data/store");
    for full in [false, true] {
        let mut runs = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let store = tokio::task::block_in_place(|| {
                EmbeddedStore::open_with(
                    &store_dir,
                    &Options {
                        verify_full: full,
                        ..Options::default()
                    },
                )
            })
            .unwrap();
            runs.push(started.elapsed());
            drop(store);
        }
        runs.sort();
        println!(
            "- open with the {} check: median {:.2} s (3 runs)",
            if full { "full" } else { "quick" },
            runs[1].as_secs_f64()
        );
    }

    let started = Instant::now();
    let s = Arc::new(Server::start_in(server_dir));
    let client = s.client();
    loop {
        let r = client.get(format!("{}/readyz", s.url)).send().await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    println!(
        "- server start to /readyz 200 (quick check, watch caches loaded): {:.2} s",
        started.elapsed().as_secs_f64()
    );

    // CREATE throughput without and with a snapshot streaming, alternately.
    let mut ratios = Vec::new();
    for round in 0..3 {
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(creates(s.clone(), format!("base{round}"), stop.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Relaxed);
        let base = load.await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(creates(s.clone(), format!("snap{round}"), stop.clone()));
        let out = s.path().join(format!("live{round}.wasnap"));
        let (path, kc) = (s.path().to_path_buf(), s.kubeconfig.clone());
        let took = tokio::task::spawn_blocking(move || {
            cli(
                &path,
                &[
                    "store",
                    "snapshot",
                    "save",
                    out.to_str().unwrap(),
                    "--kubeconfig",
                    kc.to_str().unwrap(),
                ],
            )
        })
        .await
        .unwrap();
        stop.store(true, Relaxed);
        let during = load.await.unwrap();
        println!(
            "- round {round}: snapshot of the live server {:.2} s; CREATE at 8 clients {base:.0}/s without, {during:.0}/s during: {:.2}x",
            took.as_secs_f64(),
            during / base
        );
        ratios.push(during / base);
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "- CREATE during a snapshot / without: median {:.2}x (goal >= 0.7)",
        ratios[1]
    );
}
