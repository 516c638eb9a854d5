//! A store written by an earlier version (history as JSON, no bytes counter) opens,
//! is counted, and its history still serves watch resume.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn a_store_from_before_the_binary_history_and_the_quota_opens_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE_NAME);
    {
        let db = Database::create(&path).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut objects = tx.open_table(OBJECTS).unwrap();
            let mut history = tx.open_table(HISTORY).unwrap();
            let mut meta = tx.open_table(META).unwrap();
            objects
                .insert("/g/foos/default/a", (2, &b"{\"a\":1}"[..]))
                .unwrap();
            let change = Change {
                key: "/g/foos/default/a".into(),
                prev: None,
                value: Some(b"{\"a\":1}".to_vec()),
            };
            let json = serde_json::to_vec(&change).unwrap();
            history.insert(2, json.as_slice()).unwrap();
            meta.insert(REVISION, 2).unwrap();
            meta.insert(COMPACTED, 1).unwrap();
        }
        tx.commit().unwrap();
    }
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let bytes = "/g/foos/default/a".len() as u64 + 7;
    assert_eq!(
        store.inner.space.objects_bytes.load(Ordering::Relaxed),
        bytes
    );
    store
        .create("/g/foos/default/b", b"{}".to_vec())
        .await
        .unwrap();
    let changes = store.changes_since(1).await.unwrap();
    let keys: Vec<_> = changes.iter().map(|(r, c)| (*r, c.key.as_str())).collect();
    assert_eq!(keys, [(2, "/g/foos/default/a"), (3, "/g/foos/default/b")]);
    assert_eq!(changes[0].1.value.as_deref(), Some(&b"{\"a\":1}"[..]));
    // The binary encoding round-trips every shape.
    for c in [
        Change {
            key: "k".into(),
            prev: None,
            value: None,
        },
        Change {
            key: "k".into(),
            prev: Some((9, b"{}".to_vec())),
            value: Some(vec![]),
        },
    ] {
        let back = Change::decode(&c.encode()).unwrap();
        assert_eq!((back.key, back.prev, back.value), (c.key, c.prev, c.value));
    }
    assert!(
        Change::decode(&[history::CHANGE_V1, 0, 0, 0, 9]).is_err(),
        "a cut entry is an error"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quota_counts_objects_and_lets_shrinking_writes_and_deletes_through() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        quota_bytes: 100,
        ..Options::default()
    };
    let store = EmbeddedStore::open_with(dir.path(), &options).unwrap();
    let big = vec![b'x'; 60];
    let rev = store.create("/k/a", big.clone()).await.unwrap();
    let err = store.create("/k/b", big.clone()).await.unwrap_err();
    assert!(
        matches!(err, StorageError::NoSpace(ref m) if m.contains("database space exceeded")),
        "{err}"
    );
    assert!(
        store.get("/k/b").await.unwrap().is_none(),
        "the refused create left nothing"
    );
    let rev = store.update("/k/a", vec![b'y'; 10], rev).await.unwrap();
    store.create("/k/b", big.clone()).await.unwrap();
    store.delete("/k/a", Some(rev)).await.unwrap();
    assert_eq!(
        store.inner.space.objects_bytes.load(Ordering::Relaxed),
        4 + 60
    );
}

#[test]
fn a_snapshot_with_keys_out_of_order_or_repeated_is_refused() {
    for keys in [["/b", "/a"], ["/a", "/a"]] {
        let mut bytes = Vec::new();
        let objects = keys.iter().map(|k| (k.to_string(), 1, b"{}".to_vec()));
        snapshot::write_objects(&mut bytes, 1, 2, objects).unwrap();
        let mut seen = Vec::new();
        let err = snapshot::read(&bytes[..], |k, _, _| {
            seen.push(k);
            Ok(())
        })
        .unwrap_err();
        assert!(err.to_string().contains("keys are not in order"), "{err}");
        assert_eq!(seen, [keys[0].to_string()], "it stops at the bad key");
    }
}
