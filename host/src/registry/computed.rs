//! Computed kinds: no storage; the plugin's `compute` makes the objects from reads
//! (as metrics-server's PodMetrics). The host checks what it returns, then selects,
//! sorts (by namespace and name), pages and prints exactly as for stored kinds, and
//! watches by computing again after each change of a kind it derives from. Writes are
//! 405 MethodNotAllowed (the HTTP layer refuses them).

use futures::StreamExt as _;
use serde_json::{json, Value};
use std::sync::Arc;

use super::continue_token;
use super::meta;
use super::options::{ListOptions, ListResult};
use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::{selectors, table, ApiError, ApiResult};
use crate::plugin::ComputeRequest;
use crate::storage::Revision;
use crate::watch::{Encoding, WatchRequest};

impl Registry {
    /// Ask the plugin for the objects (all in the namespace, or the one named), and
    /// check that each is of the kind and version asked, in the namespace asked.
    fn compute(&self, t: &Target, name: Option<&str>) -> ApiResult<Vec<Value>> {
        let r = t.resource();
        let req = ComputeRequest {
            user: t.user.clone(),
            namespace: t.namespace.clone().filter(|_| r.namespaced()),
            name: name.map(str::to_string),
            version: t.version.clone(),
        };
        let answer = hooks(|| {
            let mut inst = t.plugin.instance()?;
            inst.compute(&req, &self.reads)
        })?;
        let objs = answer
            .map_err(|d| ApiError::denied(r, name.unwrap_or_default(), d.code, &d.message))?;
        let api_version = t.api_version();
        for o in &objs {
            let ns = o["metadata"]["namespace"].as_str();
            let wrong = if o["apiVersion"] != api_version.as_str() || o["kind"] != r.kind.as_str() {
                Some(format!("is not a {api_version} {}", r.kind))
            } else if meta::name(o).is_empty() {
                Some("has no metadata.name".to_string())
            } else if r.namespaced() && ns.is_none_or(str::is_empty) {
                Some("has no metadata.namespace".to_string())
            } else if t.namespace.is_some() && ns != t.namespace.as_deref() {
                Some(format!("is in namespace {ns:?}, not {:?}", t.namespace))
            } else {
                None
            };
            if let Some(why) = wrong {
                return Err(ApiError::internal(format!(
                    "plugin {}: compute returned an object that {why}",
                    t.plugin.name
                )));
            }
        }
        Ok(objs)
    }

    /// GET of a computed object.
    pub async fn computed_get(&self, t: &Target, name: &str) -> ApiResult<Value> {
        self.compute(t, Some(name))?
            .into_iter()
            .find(|o| meta::name(o) == name)
            .ok_or_else(|| ApiError::not_found(t.resource(), name))
    }

    /// LIST of a computed kind: selectors, sorted by namespace and name, `limit` and
    /// `continue` (the token carries the last key; each page is computed afresh).
    pub async fn computed_list(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        opts.validate()?;
        let revision = self
            .storage
            .current_revision()
            .await
            .map_err(|e| ApiError::from_storage(e, t.resource(), ""))?;
        let key = |o: &Value| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                meta::name(o)
            )
        };
        let mut items: Vec<(String, Value)> = self
            .compute(t, None)?
            .into_iter()
            .filter(|o| selectors::matches(&opts.labels, &opts.fields, o))
            .map(|o| (key(&o), o))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(token) = opts.continue_token.as_deref().filter(|c| !c.is_empty()) {
            let (_, after) = continue_token::decode(token)?;
            items.retain(|(k, _)| *k > after);
        }
        let mut continue_token = None;
        if let Some(limit) = opts.limit.filter(|l| *l > 0 && *l < items.len()) {
            items.truncate(limit);
            continue_token = items
                .last()
                .map(|(k, _)| continue_token::encode(revision, k));
        }
        Ok(ListResult {
            items: items.into_iter().map(|(_, o)| o).collect(),
            resource_version: revision,
            continue_token,
        })
    }
}

/// How often a computed watch looks again after a derived kind changed: changes that
/// arrive together are computed once.
const COALESCE: std::time::Duration = std::time::Duration::from_millis(20);

impl Registry {
    /// WATCH of a computed kind: the kinds it derives from (those this server serves)
    /// are followed through their watch caches; after each change the plugin computes
    /// the objects again and the differences are sent as ADDED, MODIFIED and DELETED.
    /// The watch starts from the state computed when it opens (sent as ADDED events
    /// when the request asks for the initial state): a computed kind has no history
    /// to replay from an older resourceVersion.
    pub fn computed_watch(
        self: Arc<Self>,
        t: Target,
        req: WatchRequest,
    ) -> futures::stream::BoxStream<'static, bytes::Bytes> {
        let (tx, rx) = tokio::sync::mpsc::channel::<bytes::Bytes>(64);
        tokio::spawn(async move {
            let mut revisions: Vec<tokio::sync::watch::Receiver<Revision>> = Vec::new();
            let catalog = self.plugins.snapshot();
            for r in t.resource().computed.iter().flatten() {
                if let Some(p) = catalog.find(&r.group, &r.resource) {
                    revisions.push(self.watch.get(p, &self.storage).subscribe());
                }
            }
            let deadline = tokio::time::Instant::now() + req.timeout;
            let mut last = match self.computed_state(&t, &req) {
                Ok(s) => s,
                Err(e) => {
                    let _ = tx.send(event_bytes("ERROR", &e.to_status())).await;
                    return;
                }
            };
            if req.sends_initial_state() {
                for obj in last.values() {
                    if !self.send_event(&t, &req, &tx, "ADDED", obj).await {
                        return;
                    }
                }
            }
            loop {
                if revisions.is_empty() {
                    tokio::time::sleep_until(deadline).await;
                    return;
                }
                let changed = futures::future::select_all(
                    revisions.iter_mut().map(|r| Box::pin(r.changed())),
                );
                tokio::select! {
                    _ = tokio::time::sleep_until(deadline) => return,
                    _ = tx.closed() => return,
                    (res, _, _) = changed => if res.is_err() { return },
                }
                tokio::time::sleep(COALESCE).await;
                for r in &mut revisions {
                    r.borrow_and_update();
                }
                let now = match self.computed_state(&t, &req) {
                    Ok(s) => s,
                    Err(e) => {
                        let _ = tx.send(event_bytes("ERROR", &e.to_status())).await;
                        return;
                    }
                };
                let mut events: Vec<(&str, &Value)> = Vec::new();
                for (k, obj) in &now {
                    match last.get(k) {
                        None => events.push(("ADDED", obj)),
                        Some(before) if before != obj => events.push(("MODIFIED", obj)),
                        Some(_) => {}
                    }
                }
                for (k, obj) in &last {
                    if !now.contains_key(k) {
                        events.push(("DELETED", obj));
                    }
                }
                for (kind, obj) in events {
                    if !self.send_event(&t, &req, &tx, kind, obj).await {
                        return;
                    }
                }
                last = now;
            }
        });
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
            .boxed()
    }

    /// The computed objects the watch selects, by key.
    fn computed_state(
        &self,
        t: &Target,
        req: &WatchRequest,
    ) -> ApiResult<std::collections::BTreeMap<String, Value>> {
        Ok(self
            .compute(t, None)?
            .into_iter()
            .filter(|o| selectors::matches(&req.labels, &req.fields, o))
            .map(|o| {
                let key = format!(
                    "{}/{}",
                    o["metadata"]["namespace"].as_str().unwrap_or_default(),
                    meta::name(&o)
                );
                (key, o)
            })
            .collect())
    }

    /// Send one event in the watch's encoding; false once the client has gone.
    async fn send_event(
        &self,
        t: &Target,
        req: &WatchRequest,
        tx: &tokio::sync::mpsc::Sender<bytes::Bytes>,
        kind: &str,
        obj: &Value,
    ) -> bool {
        let object = match &req.encoding {
            Encoding::Json(_) => obj.clone(),
            Encoding::Metadata(_, api_version) => table::partial_object_metadata(obj, api_version),
            Encoding::Table(_, include) => {
                let Some(version) = t.resource().served_version(&t.version) else {
                    return false;
                };
                match self.print(t, std::slice::from_ref(obj)) {
                    Ok(cells) => {
                        let row = table::row(version, obj, &cells[0], *include);
                        table::table(version, vec![row], json!({}))
                    }
                    Err(e) => {
                        let _ = tx.send(event_bytes("ERROR", &e.to_status())).await;
                        return false;
                    }
                }
            }
        };
        tx.send(event_bytes(kind, &object)).await.is_ok()
    }
}

/// `{"type":T,"object":...}` and a newline.
fn event_bytes(kind: &str, object: &Value) -> bytes::Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    line.push(b'\n');
    line.into()
}
