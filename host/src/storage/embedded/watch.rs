//! A storage watch: the history after its start, then the live feed of commits.

use futures::StreamExt as _;
use std::sync::Arc;
use tokio::sync::broadcast;

use super::Change;
use crate::storage::{Event, Result, Revision, StorageError, WatchItem, WatchStream};

/// Every write under `prefix` after `from`: `history` first (read after `live`
/// subscribed, so nothing falls between them), then `live`, duplicates dropped by
/// revision. Writes elsewhere are progress notifications.
pub(super) fn stream(
    mut live: broadcast::Receiver<Arc<Event>>,
    history: Vec<(Revision, Change)>,
    prefix: String,
    from: Revision,
) -> WatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<WatchItem>>(256);
    tokio::spawn(async move {
        let item = |rev: Revision, key: &str, make: &dyn Fn() -> Event| {
            if key.starts_with(&prefix) {
                WatchItem::Event(make())
            } else {
                WatchItem::Progress(rev)
            }
        };
        let mut last = from;
        for (rev, c) in history {
            last = rev;
            let out = item(rev, &c.key, &|| Event {
                key: c.key.clone(),
                revision: rev,
                value: c.value.clone(),
                prev: c.prev.clone(),
            });
            if tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
        loop {
            let next = tokio::select! {
                next = live.recv() => next,
                _ = tx.closed() => return,
            };
            let e = match next {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    let _ = tx
                        .send(Err(StorageError::Internal(format!(
                            "the watch fell {n} writes behind; resume from revision {last}"
                        ))))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if e.revision <= last {
                continue;
            }
            last = e.revision;
            let out = item(e.revision, &e.key, &|| (*e).clone());
            if tx.send(Ok(out)).await.is_err() {
                return;
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}
