//! One watcher: registration with the cacher, then the newline-delimited JSON events
//! of its HTTP response.

use bytes::{BufMut, Bytes, BytesMut};
use futures::stream::BoxStream;
use futures::StreamExt as _;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

use super::watch_cache::{Item, Slot};
use super::{CachedEvent, CachedObject, Cacher, Encoding, EventType, Result, WatchError};
use crate::api::selectors::{self, FieldSelector, LabelSelector};
use crate::api::ApiError;
use crate::storage::Revision;

/// Initial events are encoded in batches of this many (one `convert` call each).
const INITIAL_BATCH: usize = 100;

/// Where a watch starts, from its `resourceVersion`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchStart {
    /// Unset: the current state (read consistently), then changes.
    Latest,
    /// `0`: any recent state (the cache's), then changes.
    Any,
    /// `N`: the changes after N.
    After(Revision),
}

/// A watch request, parsed and validated by the HTTP layer.
pub struct WatchRequest {
    /// Keys under this prefix (the resource's, or one namespace's).
    pub prefix: String,
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub encoding: Encoding,
    pub start: WatchStart,
    pub send_initial_events: Option<bool>,
    pub bookmarks: bool,
    pub timeout: Duration,
}

impl WatchRequest {
    fn matches(&self, o: &CachedObject) -> bool {
        o.key.starts_with(&self.prefix) && selectors::matches(&self.labels, &self.fields, &o.value)
    }

    /// Whether the watch begins with the state as synthetic ADDED events.
    pub fn sends_initial_state(&self) -> bool {
        match self.start {
            WatchStart::Latest | WatchStart::Any => self.send_initial_events != Some(false),
            WatchStart::After(_) => self.send_initial_events == Some(true),
        }
    }
}

/// `{"type":T,"object":...}` and a newline.
fn frame(out: &mut BytesMut, kind: &str, object: &[u8]) {
    out.put_slice(b"{\"type\":\"");
    out.put_slice(kind.as_bytes());
    out.put_slice(b"\",\"object\":");
    out.put_slice(object);
    out.put_slice(b"}\n");
}

fn error_event(e: WatchError) -> Bytes {
    let mut out = BytesMut::new();
    let e = ApiError::from(e);
    frame(&mut out, "ERROR", e.to_status().to_string().as_bytes());
    out.freeze()
}

impl Cacher {
    /// Register a watcher and return its response body: newline-delimited JSON events.
    /// Errors before registration are returned as such (the caller answers with a
    /// Status); errors after it (an expired or too new resourceVersion) end the
    /// stream with an ERROR event, as kube-apiserver's cacher does.
    pub async fn watch(self: &Arc<Self>, req: WatchRequest) -> Result<BoxStream<'static, Bytes>> {
        self.wait_ready().await?;
        let waited = match (&req.start, req.sends_initial_state()) {
            (WatchStart::Latest, true) => self.wait_fresh().await.map(|_| ()),
            (WatchStart::After(n), _) => self.wait_for(*n).await,
            _ => Ok(()),
        };
        if let Err(e) = waited {
            return Ok(futures::stream::once(async move { error_event(e) }).boxed());
        }
        let (tx, rx) = mpsc::channel(self.settings.watcher_queue);
        let mut st = self.lock();
        let mut initial = VecDeque::new();
        let mut backlog = VecDeque::new();
        if req.sends_initial_state() {
            initial = st
                .store
                .range(req.prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&req.prefix))
                .map(|(_, o)| o.clone())
                .collect();
        } else if let WatchStart::After(n) = req.start {
            if n < st.window_start {
                let e = WatchError::Expired {
                    requested: n,
                    oldest: st.window_start,
                };
                return Ok(futures::stream::once(async move { error_event(e) }).boxed());
            }
            backlog = st
                .window
                .iter()
                .filter(|e| e.revision > n)
                .cloned()
                .collect();
        }
        let end_bookmark =
            (req.send_initial_events == Some(true) && req.bookmarks).then_some(st.revision);
        let id = st.next_id;
        st.next_id += 1;
        st.watchers.insert(
            id,
            Slot {
                tx,
                encoding: req.encoding.clone(),
                bookmarks: req.bookmarks,
            },
        );
        *st.encodings.entry(req.encoding.clone()).or_default() += 1;
        drop(st);
        let deadline = tokio::time::Instant::now() + req.timeout;
        let watcher = Watcher {
            cacher: self.clone(),
            id,
            rx,
            initial,
            end_bookmark,
            backlog,
            req,
            deadline,
            done: false,
        };
        Ok(futures::stream::unfold(watcher, |mut w| async move {
            w.next_chunk().await.map(|b| (b, w))
        })
        .boxed())
    }
}

struct Watcher {
    cacher: Arc<Cacher>,
    id: u64,
    rx: mpsc::Receiver<Item>,
    initial: VecDeque<Arc<CachedObject>>,
    end_bookmark: Option<Revision>,
    backlog: VecDeque<Arc<CachedEvent>>,
    req: WatchRequest,
    deadline: tokio::time::Instant,
    done: bool,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.cacher.unregister(self.id);
    }
}

impl Watcher {
    /// The next bytes to send: one or more events. `None` ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if self.done {
                return None;
            }
            if !self.initial.is_empty() {
                let n = self.initial.len().min(INITIAL_BATCH);
                let batch: Vec<Arc<CachedObject>> = self
                    .initial
                    .drain(..n)
                    .filter(|o| self.req.matches(o))
                    .collect();
                if batch.is_empty() {
                    continue;
                }
                let refs: Vec<&Arc<CachedObject>> = batch.iter().collect();
                return Some(match self.cacher.encode(&refs, &self.req.encoding) {
                    Ok(encoded) => {
                        let mut out = BytesMut::new();
                        for b in encoded {
                            frame(&mut out, "ADDED", &b);
                        }
                        out.freeze()
                    }
                    Err(e) => self.fail(e),
                });
            }
            if let Some(rev) = self.end_bookmark.take() {
                return Some(self.bookmark(rev, true));
            }
            let item = match self.backlog.pop_front() {
                Some(e) => Item::Event(e),
                None => match tokio::time::timeout_at(self.deadline, self.rx.recv()).await {
                    Ok(Some(item)) => item,
                    // The deadline (timeoutSeconds), or the cacher closed us.
                    Err(_) | Ok(None) => return None,
                },
            };
            match item {
                Item::Bookmark(rev) => return Some(self.bookmark(rev, false)),
                Item::Event(e) => match self.translate(&e) {
                    Ok(Some(b)) => return Some(b),
                    Ok(None) => continue,
                    Err(err) => return Some(self.fail(err)),
                },
            }
        }
    }

    fn fail(&mut self, e: WatchError) -> Bytes {
        self.done = true;
        error_event(e)
    }

    fn bookmark(&self, rev: Revision, initial_events_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rev.to_string()});
        if initial_events_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        let plugin = self.cacher.plugin();
        let r = &plugin.resource;
        let obj: Value = match self.req.encoding {
            Encoding::Metadata(_, api_version) => {
                json!({"kind": "PartialObjectMetadata", "apiVersion": api_version, "metadata": meta})
            }
            _ => {
                let api_version = format!("{}/{}", r.group, self.req.encoding.version());
                json!({"kind": r.kind, "apiVersion": api_version, "metadata": meta})
            }
        };
        let mut out = BytesMut::new();
        frame(&mut out, "BOOKMARK", obj.to_string().as_bytes());
        out.freeze()
    }

    /// An event as this watcher sees it through its selectors: an object that stops
    /// matching is DELETED (its previous state, at the event's revision), one that
    /// starts matching is ADDED.
    fn translate(&self, e: &CachedEvent) -> Result<Option<Bytes>> {
        let now = self.req.matches(&e.object);
        let (kind, object) = match e.kind {
            EventType::Added | EventType::Deleted if now => (e.kind, e.object.clone()),
            EventType::Added | EventType::Deleted => return Ok(None),
            EventType::Modified => {
                let before = e.prev.as_ref().is_some_and(|p| self.req.matches(p));
                match (now, before) {
                    (true, true) => (EventType::Modified, e.object.clone()),
                    (true, false) => (EventType::Added, e.object.clone()),
                    (false, true) => {
                        let prev = e.prev.as_ref().expect("matched");
                        let gone =
                            CachedObject::new(prev.key.clone(), e.revision, prev.value.clone());
                        (EventType::Deleted, gone)
                    }
                    (false, false) => return Ok(None),
                }
            }
        };
        let bytes = self
            .cacher
            .encode(&[&object], &self.req.encoding)?
            .pop()
            .expect("one in, one out");
        let mut out = BytesMut::with_capacity(bytes.len() + 32);
        frame(&mut out, kind.as_str(), &bytes);
        Ok(Some(out.freeze()))
    }
}
