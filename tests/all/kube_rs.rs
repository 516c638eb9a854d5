//! The kube-rs client and its runtime against the real binary: a watcher feeding a
//! reflector while concurrent writers create, update and delete Foos. At the end the
//! reflector's store equals a fresh list, and the event stream had no lost,
//! duplicated or out-of-order event — across a forced 410 Expired and relist.

use crate::common::server::Server;
use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{reflector, watcher};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

async fn client(s: &Server) -> kube::Client {
    s.kube_client().await
}

fn foo_resource() -> ApiResource {
    let gvk = GroupVersionKind::gvk("hello.zeng.dev", "v2", "Foo");
    ApiResource::from_gvk_with_plural(&gvk, "foos")
}

fn foos(client: kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(client, "default", &foo_resource())
}

fn rv(o: &DynamicObject) -> u64 {
    o.metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap()
}

/// One writer: create, update twice, delete some, with its own names.
async fn writer(api: Api<DynamicObject>, w: usize, stop: Arc<AtomicBool>) -> usize {
    let mut writes = 0;
    let mut i = 0;
    while !stop.load(Ordering::Relaxed) {
        let name = format!("w{w}-{i}");
        let obj: DynamicObject = serde_json::from_value(json!({
            "apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
            "metadata": {"name": name}, "spec": {"image": "busybox", "config": {"msg": "0"}}}))
        .unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
        for n in 1..=2 {
            let p = json!({"spec": {"config": {"msg": n.to_string()}}});
            api.patch(&name, &PatchParams::default(), &Patch::Merge(&p))
                .await
                .unwrap();
        }
        writes += 3;
        if i % 3 == 0 {
            api.delete(&name, &DeleteParams::default()).await.unwrap();
            writes += 1;
        }
        i += 1;
    }
    writes
}

/// Per watch (between relists): resourceVersions strictly increase, none repeats.
#[derive(Default)]
struct Check {
    relists: usize,
    last_rv: u64,
    seen: HashSet<(String, u64)>,
    events: usize,
    expired: usize,
}

impl Check {
    fn consume(&mut self, e: Result<watcher::Event<DynamicObject>, watcher::Error>) {
        let e = match e {
            Ok(e) => e,
            // The watcher surfaces the 410 and relists when polled again.
            Err(watcher::Error::WatchError(s)) if s.code == 410 => {
                assert_eq!(s.reason, "Expired");
                assert!(
                    s.message.starts_with("too old resource version"),
                    "{}",
                    s.message
                );
                self.expired += 1;
                return;
            }
            Err(e) => panic!("watch failed: {e}"),
        };
        match e {
            watcher::Event::Init => {
                self.relists += 1;
                self.last_rv = 0;
            }
            watcher::Event::InitApply(_) | watcher::Event::InitDone => {}
            watcher::Event::Apply(o) | watcher::Event::Delete(o) => {
                let r = rv(&o);
                assert!(r > self.last_rv, "out of order: {r} after {}", self.last_rv);
                let name = o.metadata.name.clone().unwrap();
                assert!(self.seen.insert((name, r)), "duplicate event at {r}");
                self.last_rv = r;
                self.events += 1;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reflector_matches_a_fresh_list_across_a_forced_410() {
    // A small window so that a watcher away for a moment gets 410 Expired.
    let s = Server::start_with(&["--watch-cache-window", "10"]);
    let api = foos(client(&s).await);

    let store_writer = reflector::store::Writer::<DynamicObject>::new(foo_resource());
    let reader = store_writer.as_reader();
    // Each watch lasts 2 s, then the watcher resumes from its last resourceVersion.
    let config = watcher::Config::default().timeout(2);
    let mut stream = reflector(store_writer, watcher(api.clone(), config)).boxed();

    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = (0..8)
        .map(|w| tokio::spawn(writer(api.clone(), w, stop.clone())))
        .collect();

    let mut check = Check::default();
    let run_for = |d: Duration| tokio::time::Instant::now() + d;

    // Phase 1: follow the writers.
    let until = run_for(Duration::from_secs(3));
    while tokio::time::Instant::now() < until {
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            check.consume(e);
        }
    }
    assert_eq!(check.relists, 1, "one initial list so far");
    // Phase 2: stop polling for 4 s. The current watch times out server-side, and the
    // watcher does not resume until polled, while the writers go on: its
    // resourceVersion falls out of the 10-event window.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // Phase 3: follow again: 410 Expired, relist, then events.
    let until = run_for(Duration::from_secs(3));
    while tokio::time::Instant::now() < until {
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            check.consume(e);
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut writes = 0;
    for w in writers {
        writes += w.await.unwrap();
    }
    // Drain until the reflector has caught up with a fresh list.
    let fresh = api.list(&ListParams::default()).await.unwrap();
    let fresh_rv: u64 = fresh
        .metadata
        .resource_version
        .as_deref()
        .unwrap()
        .parse()
        .unwrap();
    let want: BTreeMap<String, u64> = fresh
        .items
        .iter()
        .map(|o| (o.metadata.name.clone().unwrap(), rv(o)))
        .collect();
    let deadline = run_for(Duration::from_secs(20));
    loop {
        let have: BTreeMap<String, u64> = reader
            .state()
            .iter()
            .map(|o| (o.metadata.name.clone().unwrap(), rv(o)))
            .collect();
        if have == want {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reflector never matched the list at {fresh_rv}: {} vs {} objects",
            have.len(),
            want.len()
        );
        if let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            check.consume(e);
        }
    }
    assert!(check.expired >= 1, "the watcher saw 410 Expired");
    assert!(
        check.relists >= 2,
        "the 410 forced a relist ({} lists)",
        check.relists
    );
    assert!(
        writes > 100 && check.events > 50,
        "{writes} writes, {} events",
        check.events
    );
    let closed = s.metric("apiserver_registered_watchers", "foos").await;
    assert!(closed <= 1, "{closed} watchers registered");
}
