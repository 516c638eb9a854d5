//! Reads of the cluster this server is aggregated into (pods, configmaps, CRD objects):
//! one informer per kind that plugins declare in `reads` and no plugin of this server
//! serves, started with the server's own identity (`--kubeconfig`, or the in-cluster
//! service account). Each informer lists and watches its kind (kube-rs's watcher) into
//! a sorted map; after any failure it lists again, so it resumes by itself after the
//! upstream restarts. Reads are answered from the map, and fail with `unavailable` (at
//! once, never a hang) while the informer has not listed or has lost the upstream.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{ApiResource, DynamicObject};
use kube::core::GroupVersion;
use kube::runtime::watcher;
use serde_json::Value;

use super::continue_token;
use crate::api::resource::ResourceRef;
use crate::api::selectors::{self, FieldSelector, LabelSelector};
use crate::plugin::{ObjectList, PluginCatalog, ReadError, ReadListOptions};

/// The upstream cluster's informers, one per kind plugins read.
pub struct Upstream {
    client: kube::Client,
    informers: Mutex<HashMap<ResourceRef, Arc<Informer>>>,
}

/// A namespace as NamespaceLifecycle sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamespaceState {
    Active,
    Terminating,
    Missing,
}

/// The objects of one kind by `namespace/name`, with `apiVersion` and `kind` set.
type Objects = BTreeMap<String, Arc<Value>>;

/// One kind's informer: its objects, and whether it is in step with the upstream.
struct Informer {
    resource: ResourceRef,
    objects: RwLock<Objects>,
    /// The kind, once discovery has found it.
    api_resource: Mutex<Option<ApiResource>>,
    /// Listed, and the last watch call succeeded.
    healthy: AtomicBool,
    /// Why not, for the read error.
    problem: Mutex<String>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// Retry quickly, then every 2 s at most: a restarted upstream is found again soon.
struct Retry(Duration);

impl Iterator for Retry {
    type Item = Duration;
    fn next(&mut self) -> Option<Duration> {
        let d = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(2));
        Some(d)
    }
}

fn unavailable(why: impl std::fmt::Display) -> ReadError {
    ReadError::Unavailable(why.to_string())
}

impl Upstream {
    pub fn new(client: kube::Client) -> Self {
        Upstream {
            client,
            informers: Mutex::default(),
        }
    }

    /// Start an informer for every kind the catalog's plugins read that none of them
    /// serves (kinds already followed keep their informer).
    pub fn follow(&self, catalog: &PluginCatalog) {
        for r in catalog.plugins.iter().flat_map(|p| &p.resource.reads) {
            if catalog.find(&r.group, &r.resource).is_none() {
                self.start(r);
            }
        }
    }

    /// Follow `r`, unless it is followed already.
    fn start(&self, r: &ResourceRef) {
        let mut informers = crate::sync::lock(&self.informers);
        if informers.contains_key(r) {
            return;
        }
        let informer = Arc::new(Informer {
            resource: r.clone(),
            objects: RwLock::default(),
            api_resource: Mutex::new(None),
            healthy: AtomicBool::new(false),
            problem: Mutex::new("the informer is starting".into()),
            task: Mutex::new(None),
        });
        let task = tokio::spawn(informer.clone().run(self.client.clone()));
        *crate::sync::lock(&informer.task) = Some(task);
        tracing::info!(resource = %r, "upstream: following a kind");
        informers.insert(r.clone(), informer);
    }

    /// Follow the cluster's namespaces (`r`: `v1/namespaces` in a real cluster), for
    /// NamespaceLifecycle.
    pub fn follow_namespaces(&self, r: &ResourceRef) {
        self.start(r);
    }

    /// What NamespaceLifecycle needs to know of namespace `name` (of kind `r`). A
    /// namespace the informer has not seen is looked up in the upstream itself before
    /// it is called missing, as kube-apiserver does (it may have just been created).
    pub async fn namespace(
        &self,
        r: &ResourceRef,
        name: &str,
    ) -> Result<NamespaceState, ReadError> {
        let informer = self.informer(r)?;
        let phase = |o: &Value| match o["status"]["phase"].as_str() {
            Some("Terminating") => NamespaceState::Terminating,
            _ => NamespaceState::Active,
        };
        if let Some(o) = informer.ready()?.get(&format!("/{name}")) {
            return Ok(phase(o));
        }
        let Some(ar) = crate::sync::lock(&informer.api_resource).clone() else {
            return Err(unavailable("the namespaces' kind is not discovered yet"));
        };
        let api: kube::Api<DynamicObject> = kube::Api::all_with(self.client.clone(), &ar);
        match tokio::time::timeout(Duration::from_secs(5), api.get_opt(name)).await {
            Ok(Ok(Some(o))) => Ok(phase(&value(&ar, &o))),
            Ok(Ok(None)) => Ok(NamespaceState::Missing),
            Ok(Err(e)) => Err(unavailable(e)),
            Err(_) => Err(unavailable("the upstream did not answer within 5 s")),
        }
    }

    fn informer(&self, r: &ResourceRef) -> Result<Arc<Informer>, ReadError> {
        crate::sync::lock(&self.informers)
            .get(r)
            .cloned()
            .ok_or_else(|| unavailable(format!("{r} is not followed in the upstream cluster")))
    }

    pub(super) fn get(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<String, ReadError> {
        let informer = self.informer(r)?;
        let objects = informer.ready()?;
        let key = format!("{}/{name}", namespace.unwrap_or_default());
        let obj = objects
            .get(&key)
            .ok_or_else(|| ReadError::NotFound(format!("{} {name:?} not found", r.resource)))?;
        Ok(obj.to_string())
    }

    pub(super) fn list(
        &self,
        r: &ResourceRef,
        namespace: Option<&str>,
        opts: &ReadListOptions,
    ) -> Result<ObjectList, ReadError> {
        let informer = self.informer(r)?;
        let objects = informer.ready()?;
        let labels = LabelSelector::parse(&opts.label_selector).map_err(ReadError::Invalid)?;
        let fields: Vec<String> = opts
            .field_selector
            .split(',')
            .filter_map(|p| p.split(['=', '!']).next())
            .map(|f| f.trim().to_string())
            .collect();
        let fields =
            FieldSelector::parse(&opts.field_selector, &fields).map_err(ReadError::Invalid)?;
        let prefix = namespace.map(|ns| format!("{ns}/")).unwrap_or_default();
        let start = match opts.continue_.as_str() {
            "" => prefix.clone(),
            token => {
                let (_, after) =
                    continue_token::decode(token).map_err(|e| ReadError::Invalid(e.message))?;
                format!("{after}\u{0}")
            }
        };
        let limit = opts.limit as usize;
        let mut items = Vec::new();
        let mut cont = String::new();
        for (key, obj) in objects
            .range(start..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, o)| selectors::matches(&labels, &fields, o))
        {
            if limit > 0 && items.len() == limit {
                // The token names the last item returned; the next page starts after it.
                cont = continue_token::encode(0, last_key(&items, key));
                break;
            }
            items.push((key.clone(), obj.to_string()));
        }
        Ok(ObjectList {
            items: items.into_iter().map(|(_, t)| t).collect(),
            continue_: cont,
            resource_version: String::new(),
        })
    }
}

/// The key of the last item of a page (the one before `next`).
fn last_key<'a>(items: &'a [(String, String)], next: &'a str) -> &'a str {
    items.last().map_or(next, |(k, _)| k.as_str())
}

/// An informer's object with `apiVersion` and `kind` (list items arrive without them).
fn value(ar: &ApiResource, o: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or_default();
    v["apiVersion"] = Value::String(ar.api_version.clone());
    v["kind"] = Value::String(ar.kind.clone());
    v
}

fn key(o: &DynamicObject) -> String {
    format!(
        "{}/{}",
        o.metadata.namespace.as_deref().unwrap_or_default(),
        o.metadata.name.as_deref().unwrap_or_default()
    )
}

impl Informer {
    /// The objects, when the informer is in step with the upstream.
    fn ready(&self) -> Result<std::sync::RwLockReadGuard<'_, Objects>, ReadError> {
        let problem = || {
            unavailable(format!(
                "{} in the upstream cluster: {}",
                self.resource,
                crate::sync::lock(&self.problem)
            ))
        };
        if !self.healthy.load(Ordering::Acquire) {
            return Err(problem());
        }
        Ok(crate::sync::read(&self.objects))
    }

    fn trouble(&self, why: String) {
        if self.healthy.swap(false, Ordering::AcqRel) {
            tracing::warn!(resource = %self.resource, error = %why, "upstream: lost the upstream cluster");
        }
        *crate::sync::lock(&self.problem) = why;
    }

    /// Discover the kind, then list and watch it until the server stops, resuming
    /// after every failure.
    async fn run(self: Arc<Self>, client: kube::Client) {
        let r = &self.resource;
        let gv = GroupVersion::gv(&r.group, &r.version);
        let mut retry = Retry(Duration::from_millis(100));
        let ar = loop {
            match kube::discovery::oneshot::pinned_group(&client, &gv).await {
                Ok(group) => match group
                    .versioned_resources(&r.version)
                    .into_iter()
                    .find(|(ar, _)| ar.plural == r.resource)
                {
                    Some((ar, _)) => break ar,
                    None => self.trouble(format!("the upstream cluster does not serve {r}")),
                },
                Err(e) => self.trouble(format!("discovery failed: {e}")),
            }
            tokio::time::sleep(retry.next().unwrap_or(Duration::from_secs(2))).await;
        };
        *crate::sync::lock(&self.api_resource) = Some(ar.clone());
        let api: kube::Api<DynamicObject> = kube::Api::all_with(client, &ar);
        loop {
            // A fresh watcher lists first: after a failure the map is rebuilt whole.
            let mut events = watcher(api.clone(), watcher::Config::default()).boxed();
            let mut listing: Option<Objects> = None;
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Init) => listing = Some(Objects::new()),
                    Ok(watcher::Event::InitApply(o)) => {
                        if let Some(l) = listing.as_mut() {
                            l.insert(key(&o), Arc::new(value(&ar, &o)));
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        if let Some(l) = listing.take() {
                            *crate::sync::write(&self.objects) = l;
                        }
                        retry = Retry(Duration::from_millis(100));
                        if !self.healthy.swap(true, Ordering::AcqRel) {
                            tracing::info!(resource = %r, "upstream: in step with the upstream cluster");
                        }
                    }
                    Ok(watcher::Event::Apply(o)) => {
                        crate::sync::write(&self.objects).insert(key(&o), Arc::new(value(&ar, &o)));
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        crate::sync::write(&self.objects).remove(&key(&o));
                    }
                    Err(e) => {
                        self.trouble(format!("the watch failed: {e}"));
                        break;
                    }
                }
            }
            tokio::time::sleep(retry.next().unwrap_or(Duration::from_secs(2))).await;
        }
    }
}

impl Drop for Upstream {
    /// The informers' tasks hold their informers: stop them with the server.
    fn drop(&mut self) {
        for i in crate::sync::lock(&self.informers).values() {
            if let Some(t) = crate::sync::lock(&i.task).take() {
                t.abort();
            }
        }
    }
}
