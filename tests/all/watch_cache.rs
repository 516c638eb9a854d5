//! The watch cache in-process, where timing can be controlled: a watcher that does
//! not read is closed once its queue is full, never buffered without bound, and a
//! closed watcher is unregistered.

use futures::StreamExt as _;
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use wasm_apiserver::api::selectors::{FieldSelector, LabelSelector};
use wasm_apiserver::plugin::{Plugin, PluginEngine, RuntimeLimits};
use wasm_apiserver::storage::embedded::EmbeddedStore;
use wasm_apiserver::storage::Storage;
use wasm_apiserver::watch::{Cacher, Encoding, WatchRequest, WatchSettings, WatchStart};

fn request(start: WatchStart) -> WatchRequest {
    WatchRequest {
        prefix: "/hello.zeng.dev/foos/".into(),
        labels: LabelSelector::default(),
        fields: FieldSelector::default(),
        encoding: Encoding::Json("v2".into()),
        start,
        send_initial_events: None,
        bookmarks: false,
        timeout: Duration::from_secs(60),
    }
}

fn object(name: &str) -> Vec<u8> {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
           "metadata": {"name": name, "namespace": "default"}, "spec": {"image": "busybox"}})
    .to_string()
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_watcher_that_falls_behind_is_closed_and_unregistered() {
    let dir = tempfile::tempdir().unwrap();
    let engine = PluginEngine::new(RuntimeLimits::default(), None).unwrap();
    let plugin = Arc::new(Plugin::load(&engine, &crate::common::example("hello")).unwrap());
    let storage: Arc<dyn Storage> = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
    let settings = WatchSettings {
        watcher_queue: 3,
        ..WatchSettings::default()
    };
    let cacher = Cacher::start(plugin, storage.clone(), settings);
    let rev = storage.current_revision().await.unwrap();
    let mut stalled = cacher.watch(request(WatchStart::After(rev))).await.unwrap();
    let mut reading = cacher.watch(request(WatchStart::After(rev))).await.unwrap();
    assert_eq!(cacher.watcher_count(), 2);

    // Ten writes; the reader keeps up, the stalled watcher's queue holds three.
    for i in 0..10 {
        storage
            .create(
                &format!("/hello.zeng.dev/foos/default/f{i}"),
                object(&format!("f{i}")),
            )
            .await
            .unwrap();
        let e = tokio::time::timeout(Duration::from_secs(5), reading.next())
            .await
            .unwrap()
            .unwrap();
        assert!(std::str::from_utf8(&e)
            .unwrap()
            .contains(&format!("\"f{i}\"")));
    }
    assert_eq!(cacher.stats.closed_slow.load(Ordering::Relaxed), 1);
    assert_eq!(
        cacher.watcher_count(),
        1,
        "the stalled watcher is unregistered"
    );
    // It gets what was queued, then its stream ends: the client relists.
    let mut got = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_secs(5), stalled.next()).await {
        got += 1;
    }
    assert_eq!(got, 3);
    drop(reading);
    assert_eq!(cacher.watcher_count(), 0);
    cacher.stop();
}
