//! The storage contract, written against the trait so that every backend runs it:
//! the embedded store, and the etcd store on a real etcd started for each test.

use crate::common::etcd::Etcd;
use std::any::Any;
use wasm_apiserver::storage::embedded::EmbeddedStore;
use wasm_apiserver::storage::etcd::{EtcdOptions, EtcdStore};
use wasm_apiserver::storage::{ListRequest, Storage, StorageError};

/// Each backend, with what keeps it alive (its folder, its etcd process).
async fn backends() -> Vec<(&'static str, Box<dyn Storage>, Box<dyn Any>)> {
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path()).unwrap();
    let (etcd, store) = etcd_store().await;
    vec![
        ("embedded", Box::new(embedded), Box::new(dir)),
        ("etcd", Box::new(store), Box::new(etcd)),
    ]
}

async fn etcd_store() -> (Etcd, EtcdStore) {
    let etcd = tokio::task::block_in_place(Etcd::start);
    let store = EtcdStore::connect(&EtcdOptions {
        servers: vec![etcd.url()],
        ..EtcdOptions::default()
    })
    .await
    .unwrap();
    (etcd, store)
}

#[tokio::test(flavor = "multi_thread")]
async fn create_get_update_delete_with_preconditions() {
    for (name, s, _dir) in backends().await {
        let r1 = s.create("/g/p/ns/a", b"1".to_vec()).await.unwrap();
        assert!(
            matches!(
                s.create("/g/p/ns/a", b"x".to_vec()).await,
                Err(StorageError::AlreadyExists { .. })
            ),
            "{name}"
        );
        let got = s.get("/g/p/ns/a").await.unwrap().unwrap();
        assert_eq!(
            (got.value.as_slice(), got.revision),
            (&b"1"[..], r1),
            "{name}"
        );
        assert!(s.get("/g/p/ns/missing").await.unwrap().is_none());
        let r2 = s.update("/g/p/ns/a", b"2".to_vec(), r1).await.unwrap();
        assert!(r2 > r1, "{name}: revisions increase");
        match s.update("/g/p/ns/a", b"3".to_vec(), r1).await {
            Err(StorageError::Conflict {
                expected, current, ..
            }) => assert_eq!((expected, current), (r1, r2)),
            other => panic!("{name}: stale update must conflict, got {other:?}"),
        }
        assert_eq!(
            s.get("/g/p/ns/a").await.unwrap().unwrap().value,
            b"2",
            "{name}: a failed update changes nothing"
        );
        assert!(matches!(
            s.update("/g/p/ns/none", b"x".to_vec(), 1).await,
            Err(StorageError::NotFound { .. })
        ));
        assert!(matches!(
            s.delete("/g/p/ns/a", Some(r1)).await,
            Err(StorageError::Conflict { .. })
        ));
        let deleted = s.delete("/g/p/ns/a", Some(r2)).await.unwrap();
        assert_eq!(deleted.value, b"2");
        assert!(deleted.revision > r2);
        assert!(matches!(
            s.delete("/g/p/ns/a", None).await,
            Err(StorageError::NotFound { .. })
        ));
        assert_eq!(
            s.current_revision().await.unwrap(),
            deleted.revision,
            "{name}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_by_key_within_a_prefix_and_at_a_revision() {
    for (name, s, _dir) in backends().await {
        for k in ["/g/p/a/1", "/g/p/a/2", "/g/p/b/3", "/g/q/a/9"] {
            s.create(k, k.as_bytes().to_vec()).await.unwrap();
        }
        let all = s
            .list(ListRequest {
                prefix: "/g/p/".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let keys: Vec<&str> = all.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["/g/p/a/1", "/g/p/a/2", "/g/p/b/3"], "{name}");
        let page = s
            .list(ListRequest {
                prefix: "/g/p/".into(),
                limit: Some(2),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(page.items.len(), 2);
        assert!(page.more);
        let at = page.revision;
        // Changes after the first page...
        s.create("/g/p/a/15", b"late".to_vec()).await.unwrap();
        s.delete("/g/p/b/3", None).await.unwrap();
        let cur2 = s.get("/g/p/a/2").await.unwrap().unwrap();
        s.update("/g/p/a/2", b"changed".to_vec(), cur2.revision)
            .await
            .unwrap();
        // ...are invisible to the rest of the list at the first page's revision.
        let rest = s
            .list(ListRequest {
                prefix: "/g/p/".into(),
                start: Some("/g/p/a/2\0".into()),
                limit: Some(10),
                revision: Some(at),
            })
            .await
            .unwrap();
        let keys: Vec<&str> = rest.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["/g/p/b/3"], "{name}");
        assert!(!rest.more);
        let again = s
            .list(ListRequest {
                prefix: "/g/p/".into(),
                revision: Some(at),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            again.items[1].value, b"/g/p/a/2",
            "{name}: the old value, as of the revision"
        );
        let now = s
            .list(ListRequest {
                prefix: "/g/p/".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let keys: Vec<&str> = now.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["/g/p/a/1", "/g/p/a/15", "/g/p/a/2"]);
        let future = now.revision + 100;
        assert!(matches!(
            s.list(ListRequest {
                prefix: "/g/p/".into(),
                revision: Some(future),
                ..Default::default()
            })
            .await,
            Err(StorageError::TooLarge { .. })
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn revisions_are_monotonic_under_concurrent_writers() {
    for (name, s, _dir) in backends().await {
        let s: std::sync::Arc<dyn Storage> = s.into();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..20 {
                    revs.push(
                        s.create(&format!("/g/p/ns/w{w}-{i}"), vec![1])
                            .await
                            .unwrap(),
                    );
                }
                revs
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            let revs = t.await.unwrap();
            assert!(
                revs.windows(2).all(|w| w[0] < w[1]),
                "{name}: one writer's revisions increase"
            );
            all.extend(revs);
        }
        let n = all.len();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), n, "{name}: no two writes share a revision");
    }
}

/// Watch properties from etcd's robustness tests: ordered, unique, reliable (no gap),
/// atomic (one event per write with its previous value), resumable from any kept
/// revision, bookmarkable (progress for writes outside the prefix), and a
/// compacted start reports `Expired`.
#[tokio::test(flavor = "multi_thread")]
async fn watches_are_ordered_unique_reliable_resumable_and_bookmarkable() {
    use futures::StreamExt as _;
    use std::sync::Arc;
    use wasm_apiserver::storage::WatchItem;
    for (name, s, _dir) in backends().await {
        let s: Arc<dyn Storage> = Arc::from(s);
        let start = s.current_revision().await.unwrap();
        let mut w = s.watch("/g/w/", start).await.unwrap();
        // Concurrent writers under the prefix, and one outside it.
        let mut tasks = Vec::new();
        for t in 0..4 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let mut revs = Vec::new();
                for i in 0..25 {
                    let key = format!("/g/w/ns/k{t}-{i}");
                    let r = s.create(&key, format!("{i}").into_bytes()).await.unwrap();
                    let r2 = s.update(&key, b"u".to_vec(), r).await.unwrap();
                    revs.push((key, r, r2));
                }
                revs
            }));
        }
        let mut writes = Vec::new();
        for t in tasks {
            writes.extend(t.await.unwrap());
        }
        // The last write is outside the prefix: only progress can tell the watch.
        let outside = s.create("/g/other/ns/x", b"o".to_vec()).await.unwrap();
        let mut seen = Vec::new();
        let mut progress = Vec::new();
        while seen.len() < 200 {
            match tokio::time::timeout(std::time::Duration::from_secs(10), w.next()).await {
                Ok(Some(Ok(WatchItem::Event(e)))) => seen.push(e),
                Ok(Some(Ok(WatchItem::Progress(r)))) => progress.push(r),
                other => panic!("{name}: watch ended early: {other:?}"),
            }
        }
        let revs: Vec<u64> = seen.iter().map(|e| e.revision).collect();
        assert!(
            revs.windows(2).all(|p| p[0] < p[1]),
            "{name}: strictly increasing"
        );
        assert!(revs[0] > start, "{name}: only events after the start");
        for (key, r, r2) in &writes {
            let create = seen
                .iter()
                .find(|e| e.revision == *r)
                .expect("every create seen");
            assert_eq!((&create.key, create.prev.is_none()), (key, true), "{name}");
            let update = seen
                .iter()
                .find(|e| e.revision == *r2)
                .expect("every update seen");
            assert_eq!(
                update.prev.as_ref().map(|p| p.0),
                Some(*r),
                "{name}: prev revision"
            );
            assert_eq!(update.value.as_deref(), Some(&b"u"[..]), "{name}");
        }
        // Bookmarkable: the write elsewhere is progress, after every event.
        if !progress.contains(&outside) {
            loop {
                match tokio::time::timeout(std::time::Duration::from_secs(10), w.next()).await {
                    Ok(Some(Ok(WatchItem::Progress(r)))) if r == outside => break,
                    Ok(Some(Ok(WatchItem::Progress(_)))) => {}
                    other => panic!("{name}: expected progress to {outside}, got {other:?}"),
                }
            }
        }
        // Resumable: from the middle, exactly the rest, in the same order.
        let mid = revs[99];
        let mut again = s.watch("/g/w/", mid).await.unwrap();
        let mut rest = Vec::new();
        while rest.len() < 100 {
            if let Some(Ok(WatchItem::Event(e))) = again.next().await {
                rest.push(e.revision);
            }
        }
        assert_eq!(rest, revs[100..], "{name}: resumes without gap or repeat");
        // A delete carries the last value.
        let del = s.delete(&writes[0].0, None).await.unwrap();
        loop {
            match again.next().await {
                Some(Ok(WatchItem::Event(e))) => {
                    assert_eq!(e.revision, del.revision, "{name}");
                    assert_eq!(e.value, None);
                    assert_eq!(e.prev.map(|p| p.1), Some(b"u".to_vec()));
                    break;
                }
                Some(Ok(WatchItem::Progress(_))) => {}
                other => panic!("{name}: {other:?}"),
            }
        }
    }
}

/// A watch or a list from a revision etcd has compacted is `Expired`.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_compacted_revisions_are_expired() {
    let (_etcd, s) = etcd_store().await;
    let mut rev = 0;
    for i in 0..20 {
        rev = s
            .create(&format!("/g/c/ns/k{i}"), b"x".to_vec())
            .await
            .unwrap();
    }
    let compact_at = rev - 5;
    s.compact(compact_at).await.unwrap();
    match s.watch("/g/c/", 2).await {
        Err(StorageError::Expired { requested, .. }) => assert_eq!(requested, 2),
        Err(e) => panic!("expected Expired, got {e:?}"),
        Ok(_) => panic!("expected Expired, got a stream"),
    }
    let list = s
        .list(ListRequest {
            prefix: "/g/c/".into(),
            revision: Some(compact_at - 1),
            limit: Some(2),
            ..Default::default()
        })
        .await;
    assert!(
        matches!(list, Err(StorageError::Expired { requested, .. }) if requested == compact_at - 1),
        "{list:?}"
    );
    // The compaction revision itself is kept: a watch from there sees the rest.
    use futures::StreamExt as _;
    let mut w = s.watch("/g/c/", compact_at).await.unwrap();
    match w.next().await {
        Some(Ok(wasm_apiserver::storage::WatchItem::Event(e))) => {
            assert_eq!(e.revision, compact_at + 1)
        }
        other => panic!("{other:?}"),
    }
}

/// A watch from a revision the store no longer keeps is `Expired`.
#[tokio::test(flavor = "multi_thread")]
async fn a_watch_from_a_compacted_revision_is_expired() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(dir.path()).unwrap();
    let total = wasm_apiserver::storage::embedded::HISTORY_REVISIONS + 200;
    let mut rev = 0;
    for i in 0..total {
        rev = s
            .create(&format!("/g/c/ns/k{i}"), b"x".to_vec())
            .await
            .unwrap();
    }
    match s.watch("/g/c/", 1).await {
        Err(StorageError::Expired { requested, oldest }) => {
            assert_eq!(requested, 1);
            assert!(oldest > 1 && oldest <= rev);
        }
        Err(e) => panic!("expected Expired, got {e:?}"),
        Ok(_) => panic!("expected Expired, got a stream"),
    }
    assert!(s.watch("/g/c/", rev - 10).await.is_ok());
}

/// Another writer's transaction of several writes gives several events at one
/// revision: the watch delivers every one of them.
#[tokio::test(flavor = "multi_thread")]
async fn etcd_multi_write_transactions_from_another_writer_are_all_watched() {
    use futures::StreamExt as _;
    use wasm_apiserver::storage::WatchItem;
    let (etcd, s) = etcd_store().await;
    let start = s.current_revision().await.unwrap();
    let mut w = s.watch("/g/t/", start).await.unwrap();
    let mut raw = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    let txn = etcd_client::Txn::new().and_then([
        etcd_client::TxnOp::put("/registry/g/t/ns/a", "1", None),
        etcd_client::TxnOp::put("/registry/g/t/ns/b", "2", None),
    ]);
    raw.txn(txn).await.unwrap();
    let mut keys = Vec::new();
    while keys.len() < 2 {
        match tokio::time::timeout(std::time::Duration::from_secs(10), w.next()).await {
            Ok(Some(Ok(WatchItem::Event(e)))) => keys.push((e.key, e.revision)),
            Ok(Some(Ok(WatchItem::Progress(_)))) => {}
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(keys[0].1, keys[1].1, "one revision");
    assert_eq!(
        [keys[0].0.as_str(), keys[1].0.as_str()],
        ["/g/t/ns/a", "/g/t/ns/b"]
    );
}
