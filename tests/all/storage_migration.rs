//! Storage version migration: a new build of widgets stores v2 where the old one
//! stored v1. 10,000 stored widgets are rewritten in the background while 8 clients
//! update them; the server is killed with SIGKILL half-way and resumes where it was;
//! no acknowledged update is lost, every object ends in v2, and discovery's
//! `storageVersionHash` changes when the migration completes. The v1 build's return
//! migrates them back.

use crate::common::server::{with_plugins, Server};
use crate::common::{send, test_plugin};
use futures::StreamExt as _;
use reqwest::Method;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const OBJECTS: usize = 10_000;
const V2: &str = "/apis/test.wasm-apiserver.dev/v2/namespaces/default/widgets";

async fn storage_version_hash(s: &Server) -> String {
    let doc: Value =
        serde_json::from_str(&s.text("/apis/test.wasm-apiserver.dev/v2").await).unwrap();
    doc["resources"][0]["storageVersionHash"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Whether `/readyz?verbose` lists a migration of widgets from `from` to `to`.
async fn migrating(s: &Server, from: &str, to: &str) -> bool {
    s.text("/readyz?verbose").await.contains(&format!(
        "migrating widgets.test.wasm-apiserver.dev from {from} to {to}"
    ))
}

/// 8 writers set `spec.dimensions.size` of random widgets until `stop`; each records
/// the last value acknowledged per widget.
fn writers(
    s: &Arc<Server>,
    stop: &Arc<AtomicBool>,
    acked: &Arc<Mutex<HashMap<usize, u64>>>,
) -> Vec<tokio::task::JoinHandle<u64>> {
    (0..8u64)
        .map(|w| {
            let (s, stop, acked) = (s.clone(), stop.clone(), acked.clone());
            tokio::spawn(async move {
                let c = s.client();
                let mut n = 0u64;
                while !stop.load(Relaxed) {
                    n += 1;
                    let i = ((w * 7919 + n * 104_729) % OBJECTS as u64) as usize;
                    let value = 1_000_000 + w * 1_000_000 + n;
                    let patch = json!({"spec": {"dimensions": {"size": value}}}).to_string();
                    let (code, v, _) = send(
                        &c,
                        &s.url,
                        Method::PATCH,
                        &format!("{V2}/w{i}"),
                        "application/merge-patch+json",
                        patch,
                    )
                    .await;
                    assert_eq!(code, 200, "{v}");
                    assert_eq!(v["apiVersion"], "test.wasm-apiserver.dev/v2");
                    acked.lock().unwrap().insert(i, value);
                    // Paced, so that the migration (not the writers) rewrites most objects.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                n
            })
        })
        .collect()
}

/// A server whose widgets plugin stores v1, with `OBJECTS` widgets created through it.
async fn serve_seeded_widgets() -> Server {
    let dir = with_plugins(&[(test_plugin("widgets_v1"), "widgets")]);
    let s = Server::start_in(dir);
    let c = s.client();
    let v1 = "/apis/test.wasm-apiserver.dev/v1/namespaces/default/widgets";
    let codes = futures::stream::iter(0..OBJECTS)
        .map(|i| {
            let (c, url) = (c.clone(), s.url.clone());
            async move {
                let w = json!({"apiVersion": "test.wasm-apiserver.dev/v1", "kind": "Widget",
                               "metadata": {"name": format!("w{i}")}, "spec": {"size": i}});
                send(
                    &c,
                    &url,
                    Method::POST,
                    v1,
                    "application/json",
                    w.to_string(),
                )
                .await
                .0
            }
        })
        .buffer_unordered(32)
        .collect::<Vec<_>>()
        .await;
    assert!(codes.iter().all(|c| *c == 201));
    s
}

#[tokio::test(flavor = "multi_thread")]
async fn ten_thousand_objects_migrate_under_writes_across_a_kill() {
    let s = serve_seeded_widgets().await;
    let hash_v1 = storage_version_hash(&s).await;

    // The new build arrives (hot reload) and the migration starts under writes.
    let s = Arc::new(s);
    let acked = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let running = writers(&s, &stop, &acked);
    std::fs::write(
        s.path().join("plugins/widgets.wasm"),
        std::fs::read(test_plugin("widgets_v2")).unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    while s
        .sample("wasm_apiserver_storage_migration_rewritten_total{resource=\"widgets.test.wasm-apiserver.dev\"")
        .await
        .unwrap_or(0.0)
        < 3_000.0
    {
        assert!(started.elapsed() < Duration::from_secs(120), "the migration did not start: {}", std::fs::read_to_string(s.path().join("server.log")).unwrap());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        storage_version_hash(&s).await,
        hash_v1,
        "the hash changes only when the migration completes"
    );
    stop.store(true, Relaxed);
    let mut updates: u64 = 0;
    for w in running {
        updates += w.await.unwrap();
    }
    // SIGKILL mid-migration, and a restart on the same data.
    let dir = Arc::try_unwrap(s)
        .ok()
        .expect("the writers are done")
        .kill9();
    let s = Arc::new(Server::start_in(dir));
    let stop = Arc::new(AtomicBool::new(false));
    let running = writers(&s, &stop, &acked);
    let started = Instant::now();
    while migrating(&s, "v1", "v2").await {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the migration did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Relaxed);
    for w in running {
        updates += w.await.unwrap();
    }
    let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
    assert!(
        log.contains("storage version migration started")
            && log.contains("Some(\"/test.wasm-apiserver.dev/widgets/default/w"),
        "resumed where it stopped: {log}"
    );
    assert!(log.contains("storage version migration completed"));
    assert_ne!(
        storage_version_hash(&s).await,
        hash_v1,
        "discovery's hash follows the new storage version"
    );

    // No acknowledged update lost: every widget reads as its last acknowledged value,
    // or its original size if nobody wrote it.
    let c = s.client();
    let list: Value = c
        .get(format!("{}{V2}", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), OBJECTS);
    let acked = acked.lock().unwrap().clone();
    assert!(updates > 0 && !acked.is_empty());
    for item in items {
        let name = item["metadata"]["name"].as_str().unwrap();
        let i: usize = name[1..].parse().unwrap();
        let want = acked.get(&i).copied().unwrap_or(i as u64);
        assert_eq!(item["spec"]["dimensions"]["size"], want, "{name}: {item}");
    }

    // In the store, every object is now in v2.
    let dir = Arc::try_unwrap(s).ok().expect("done").stop();
    assert_all_stored_in(&dir, "v2").await;

    // And back: the v1 build returns (a restart, then a hot reload); the objects
    // migrate back to v1.
    let s = Server::start_in(dir);
    std::fs::write(
        s.path().join("plugins/widgets.wasm"),
        std::fs::read(test_plugin("widgets_v1")).unwrap(),
    )
    .unwrap();
    let started = Instant::now();
    while !std::fs::read_to_string(s.path().join("server.log"))
        .unwrap()
        .contains("migration completed")
        || migrating(&s, "v2", "v1").await
    {
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the migration back did not complete"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_all_stored_in(&s.stop(), "v1").await;
}

/// Every widget in the store file of `dir` is in `version`.
async fn assert_all_stored_in(dir: &tempfile::TempDir, version: &str) {
    use wasm_apiserver::storage::{ListRequest, Storage as _};
    let store =
        wasm_apiserver::storage::embedded::EmbeddedStore::open(&dir.path().join("data/store"))
            .unwrap();
    let page = store
        .list(ListRequest {
            prefix: "/test.wasm-apiserver.dev/widgets/".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), OBJECTS);
    let want = format!("test.wasm-apiserver.dev/{version}");
    for s in &page.items {
        let v: Value = serde_json::from_slice(&s.value).unwrap();
        assert_eq!(v["apiVersion"], want.as_str(), "{}", s.key);
    }
}

/// A migration cut short by a build that goes back to the old storage version: the
/// objects the cut-short migration rewrote are migrated back, so every object ends in
/// the version the serving build stores.
#[tokio::test(flavor = "multi_thread")]
async fn a_migration_cut_short_by_a_revert_is_finished_by_the_reverted_build() {
    let s = serve_seeded_widgets().await;
    let plugin = s.path().join("plugins/widgets.wasm");
    std::fs::write(&plugin, std::fs::read(test_plugin("widgets_v2")).unwrap()).unwrap();
    let started = Instant::now();
    while s
        .sample("wasm_apiserver_storage_migration_rewritten_total{resource=\"widgets.test.wasm-apiserver.dev\",from=\"v1\"")
        .await
        .unwrap_or(0.0)
        < 500.0
    {
        assert!(started.elapsed() < Duration::from_secs(120), "the migration did not start");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Back to v1 while objects are in both versions.
    std::fs::write(&plugin, std::fs::read(test_plugin("widgets_v1")).unwrap()).unwrap();
    let started = Instant::now();
    loop {
        let log = std::fs::read_to_string(s.path().join("server.log")).unwrap();
        // The second migration (back to v1) has started and no migration runs now.
        let back = log.matches("storage version migration started").count() >= 2;
        if back
            && s.sample("wasm_apiserver_storage_migration_rewritten_total")
                .await
                .is_none()
        {
            assert!(log.contains("storage version migration completed"), "{log}");
            // The v2 migration was cut short (it takes seconds; the revert came after
            // 500 objects), and its task handed over.
            assert!(
                log.contains("storage version migration handed over to a newer build"),
                "{log}"
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the migration back did not complete: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_all_stored_in(&s.stop(), "v1").await;
}
