//! The generic request lifecycle, written once for every kind. Plugins only answer
//! questions (default, convert, prepare, validate, print); this module decides the
//! order, talks to storage and keeps kube-apiserver's semantics:
//!
//! create: check apiVersion/kind/namespace → schema (+ fieldValidation) → `default` →
//! convert to the storage version → system metadata → `prepare-for-create` →
//! `validate-create` → ObjectMeta validation → (dryRun stops) → storage → convert back.
//! update and patch read the stored object first and use its revision as the
//! precondition; unconditional updates retry on conflict, as `GuaranteedUpdate` does.

pub mod meta;

use base64::Engine as _;
use serde_json::{json, Value};
use std::sync::Arc;

use crate::api::schema;
use crate::api::selectors::{self, FieldSelector, LabelSelector};
use crate::api::{now_rfc3339, ApiError, ApiResult, FieldError};
use crate::plugin::{
    Operation, Plugin, PluginInstance, PluginRegistry, RequestInfo, ResourceInfo, UserInfo,
};
use crate::storage::{ListRequest, Revision, Storage, StorageError, Stored};
use crate::watch::{CachedObject, Cacher, WatchCaches, WatchSettings};

/// How often an unconditional update or patch is retried after losing a race.
const MAX_UPDATE_RETRIES: usize = 16;

/// The registry: plugins and storage, shared by every request.
pub struct Registry {
    pub plugins: Arc<PluginRegistry>,
    pub storage: Arc<dyn Storage>,
    /// Watch caches, one per resource (all started with the server); reads in another
    /// version or as a Table reuse their remembered conversions and cells.
    pub watch: WatchCaches,
}

/// What a request addresses: a plugin's kind in one of its versions, in a namespace.
pub struct Target {
    pub plugin: Arc<Plugin>,
    /// The version from the URL.
    pub version: String,
    /// The namespace from the URL (`None` for cluster-scoped kinds or all namespaces).
    pub namespace: Option<String>,
    pub user: UserInfo,
}

impl Target {
    pub fn resource(&self) -> &ResourceInfo {
        &self.plugin.resource
    }

    fn api_version(&self) -> String {
        format!("{}/{}", self.resource().group, self.version)
    }

    /// The storage key prefix for this target's objects (all namespaces when `None`).
    pub fn prefix(&self) -> String {
        let r = self.resource();
        match &self.namespace {
            Some(ns) if r.namespaced() => format!("/{}/{}/{ns}/", r.group, r.plural),
            _ => format!("/{}/{}/", r.group, r.plural),
        }
    }

    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix())
    }

    fn request(
        &self,
        operation: Operation,
        name: &str,
        subresource: Option<&str>,
        dry_run: bool,
    ) -> RequestInfo {
        RequestInfo {
            operation,
            user: self.user.clone(),
            namespace: self
                .namespace
                .clone()
                .filter(|_| self.resource().namespaced()),
            name: name.to_string(),
            subresource: subresource.map(str::to_string),
            dry_run,
        }
    }
}

/// `fieldValidation`: what to do with unknown or duplicate fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum FieldValidation {
    #[default]
    Strict,
    Warn,
    Ignore,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> ApiResult<Self> {
        match s {
            None | Some("") | Some("Strict") => Ok(FieldValidation::Strict),
            Some("Warn") => Ok(FieldValidation::Warn),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
    /// Field paths the decoder saw twice (only JSON bodies can say).
    pub duplicate_fields: Vec<String>,
}

/// The result of a write: the object in the request's version, and warnings.
#[derive(Debug)]
pub struct Outcome {
    pub object: Value,
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub precondition_uid: Option<String>,
    pub precondition_rv: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct ListOptions {
    pub labels: LabelSelector,
    pub fields: FieldSelector,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
}

pub struct ListResult {
    /// In the request's version.
    pub items: Vec<Value>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Json,
}

/// Run plugin hooks without stalling the async runtime's other tasks.
fn hooks<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

/// The storage key of an object, from its metadata (as [`Target::key`] builds it).
fn stored_key(r: &ResourceInfo, obj: &Value) -> Option<String> {
    let m = &obj["metadata"];
    let name = m["name"].as_str()?;
    Some(if r.namespaced() {
        format!(
            "/{}/{}/{}/{name}",
            r.group,
            r.plural,
            m["namespace"].as_str()?
        )
    } else {
        format!("/{}/{}/{name}", r.group, r.plural)
    })
}

fn encode(obj: &Value) -> Vec<u8> {
    let mut o = obj.clone();
    if let Some(m) = o["metadata"].as_object_mut() {
        m.remove("resourceVersion");
    }
    serde_json::to_vec(&o).expect("JSON values serialize")
}

fn set_rv(obj: &mut Value, rv: Revision) {
    meta::meta_mut(obj).insert("resourceVersion".into(), Value::String(rv.to_string()));
}

/// The continue token format of k8s.io/apiserver: base64url of
/// `{"v":"meta.k8s.io/v1","rv":N,"start":"<key after prefix>"}`.
#[derive(serde::Serialize, serde::Deserialize)]
struct ContinueToken {
    v: String,
    rv: i64,
    start: String,
}

fn encode_continue(rv: Revision, start: &str) -> String {
    let t = ContinueToken {
        v: "meta.k8s.io/v1".into(),
        rv: rv as i64,
        start: start.into(),
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&t).expect("serializes"))
}

fn decode_continue(token: &str) -> ApiResult<(Revision, String)> {
    let invalid = |why: String| {
        ApiError::bad_request(format!(
            "invalid continue token: continue key is not valid: {why}"
        ))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .map_err(|e| invalid(e.to_string()))?;
    let t: ContinueToken = serde_json::from_slice(&bytes).map_err(|e| invalid(e.to_string()))?;
    if t.v != "meta.k8s.io/v1" {
        return Err(invalid(format!(
            "server does not recognize this encoded version {:?}",
            t.v
        )));
    }
    if t.rv <= 0 {
        return Err(invalid(
            "incorrect encoded start resourceVersion (version meta.k8s.io/v1)".into(),
        ));
    }
    if t.start.is_empty() || t.start.split('/').any(|s| s == ".." || s == ".") {
        return Err(invalid("encoded start key empty or not relative".into()));
    }
    Ok((t.rv as Revision, t.start))
}

impl Registry {
    pub fn new(
        plugins: Arc<PluginRegistry>,
        storage: Arc<dyn Storage>,
        watch: WatchSettings,
    ) -> Self {
        Registry {
            plugins,
            storage,
            watch: WatchCaches::new(watch),
        }
    }

    /// The watch cache of a target's resource.
    pub fn cacher(&self, t: &Target) -> Arc<Cacher> {
        self.watch.get(&t.plugin, &self.storage)
    }

    /// A stored object, with its resourceVersion. Bytes that are not a JSON object of
    /// this resource's kind (written by someone else) are a 500 naming where they are.
    fn decode_stored(&self, r: &ResourceInfo, s: &Stored) -> ApiResult<Value> {
        let mut obj = meta::decode_stored(r, &s.value).map_err(|why| {
            ApiError::internal(format!(
                "the object stored at {} {why}",
                self.storage.location(&s.key)
            ))
        })?;
        set_rv(&mut obj, s.revision);
        Ok(obj)
    }

    /// Convert storage-version objects to the request's version in one batch.
    fn to_request_version(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        objs: Vec<Value>,
    ) -> ApiResult<Vec<Value>> {
        if t.version == t.resource().storage_version || objs.is_empty() {
            return Ok(objs);
        }
        Ok(hooks(|| inst.convert(&objs, &t.version))?)
    }

    /// For each object read from storage (in any version), the watch cache's copy when
    /// the cache runs on this plugin build and holds the object at the same revision.
    fn held(
        &self,
        t: &Target,
        objs: &[Value],
    ) -> Option<(Arc<Cacher>, Vec<Option<Arc<CachedObject>>>)> {
        let cacher = self.watch.serving(&t.plugin)?;
        let held = objs
            .iter()
            .map(|o| {
                let (key, rv) = (stored_key(t.resource(), o)?, meta::revision_of(o)?);
                cacher.current(&key).filter(|c| c.revision == rv)
            })
            .collect();
        Some((cacher, held))
    }

    /// [`Self::to_request_version`] for reads, which have no instance yet. An object the
    /// watch cache holds at the same revision converts through the cache, which
    /// remembers conversions: repeated reads of an unchanged object run no hook (this
    /// is what keeps reads in another version cheap for big Python and JavaScript
    /// guests). The others convert in one call on one instance.
    fn in_request_version(&self, t: &Target, objs: Vec<Value>) -> ApiResult<Vec<Value>> {
        if t.version == t.resource().storage_version || objs.is_empty() {
            return Ok(objs);
        }
        self.through_cache(
            t,
            &objs,
            |cacher, hits, version| cacher.in_version(hits, version),
            |objs| Ok(hooks(|| t.plugin.instance()?.convert(objs, &t.version))?),
        )
    }

    /// A per-object read hook for `objs` (read from storage, in the request's version):
    /// through the watch cache (`cached`, which remembers results) for the objects it
    /// holds at the same revision, through the plugin (`direct`) for the others; one
    /// call each, results in `objs`' order.
    fn through_cache<T: Clone>(
        &self,
        t: &Target,
        objs: &[Value],
        cached: impl FnOnce(&Cacher, &[&Arc<CachedObject>], &Arc<str>) -> ApiResult<Vec<Arc<T>>>,
        direct: impl FnOnce(&[Value]) -> ApiResult<Vec<T>>,
    ) -> ApiResult<Vec<T>> {
        let Some((cacher, held)) = self.held(t, objs) else {
            return direct(objs);
        };
        let version: Arc<str> = t.version.as_str().into();
        let hits: Vec<&Arc<CachedObject>> = held.iter().flatten().collect();
        let mut remembered = cached(&cacher, &hits, &version)?.into_iter();
        let misses: Vec<Value> = objs
            .iter()
            .zip(&held)
            .filter(|(_, h)| h.is_none())
            .map(|(o, _)| o.clone())
            .collect();
        let mut fresh = if misses.is_empty() {
            Vec::new()
        } else {
            direct(&misses)?
        }
        .into_iter();
        Ok(held
            .iter()
            .map(|h| match h {
                Some(_) => remembered.next().expect("one per hit").as_ref().clone(),
                None => fresh.next().expect("one per miss"),
            })
            .collect())
    }

    fn to_storage_version(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        obj: Value,
    ) -> ApiResult<Value> {
        let storage = &t.resource().storage_version;
        if t.version == *storage {
            return Ok(obj);
        }
        let mut out = hooks(|| inst.convert(std::slice::from_ref(&obj), storage))?;
        Ok(out.pop().expect("convert checks the length"))
    }

    /// Check what a client sent against the URL and the version's schema.
    fn admit_body(
        &self,
        t: &Target,
        mut body: Value,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> ApiResult<Value> {
        let r = t.resource();
        if !body.is_object() {
            return Err(ApiError::bad_request(
                "the object provided is not a JSON object",
            ));
        }
        let kind = body["kind"].as_str().unwrap_or_default();
        let api_version = body["apiVersion"].as_str().unwrap_or_default();
        if kind.is_empty() {
            return Err(ApiError::bad_request(
                "Object 'Kind' is missing in the request body",
            ));
        }
        if kind != r.kind {
            return Err(ApiError::bad_request(format!(
                "the object provided is unrecognized (must be of type {}): kind {kind:?} in the body",
                r.kind
            )));
        }
        if api_version != t.api_version() {
            return Err(ApiError::bad_request(format!(
                "the API version in the data ({api_version}) does not match the expected API version ({})",
                t.api_version()
            )));
        }
        let version = r
            .version(&t.version)
            .expect("the router checked the version");
        let check = schema::check(&version.schema, &body);
        let mut strict: Vec<String> = Vec::new();
        for path in &opts.duplicate_fields {
            strict.push(format!("json: duplicate field {path:?}"));
        }
        for path in &check.unknown {
            strict.push(format!("unknown field {path:?}"));
        }
        match opts.field_validation {
            FieldValidation::Strict if !strict.is_empty() => {
                return Err(ApiError::bad_request(format!(
                    "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
                    r.kind,
                    t.version,
                    r.kind,
                    strict.join(", ")
                )));
            }
            FieldValidation::Warn => warnings.extend(strict),
            _ => {}
        }
        schema::prune(&mut body, &check.unknown);
        if !check.errors.is_empty() {
            return Err(ApiError::invalid(r, meta::name(&body), &check.errors));
        }
        // Namespace: from the URL; a different one in the body is an error.
        let m = meta::meta_mut(&mut body);
        if r.namespaced() {
            let url_ns = t.namespace.clone().unwrap_or_default();
            match m.get("namespace").and_then(Value::as_str) {
                Some(ns) if !ns.is_empty() && ns != url_ns => {
                    return Err(ApiError::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    m.insert("namespace".into(), Value::String(url_ns));
                }
            }
        } else {
            m.remove("namespace");
        }
        Ok(body)
    }

    fn invalid_if(&self, r: &ResourceInfo, name: &str, errors: Vec<FieldError>) -> ApiResult<()> {
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::invalid(r, name, &errors))
        }
    }

    /// Read one object. `resourceVersion` unset reads storage (the latest, consistent);
    /// `0` is any state (the watch cache answers); `N` is a state not older than `N`
    /// (the watch cache, once it has reached `N`), as kube-apiserver serves them.
    pub async fn get(
        &self,
        t: &Target,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Value> {
        let r = t.resource();
        if let Some(rv) = resource_version.filter(|rv| !rv.is_empty()) {
            let min = meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
            let obj = self
                .cacher(t)
                .get(&t.key(name), min)
                .await?
                .ok_or_else(|| ApiError::not_found(r, name))?;
            return Ok(self
                .in_request_version(t, vec![obj.value.clone()])?
                .remove(0));
        }
        let stored = self
            .storage
            .get(&t.key(name))
            .await
            .map_err(|e| ApiError::from_storage(e, r, name))?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let obj = self.decode_stored(t.resource(), &stored)?;
        Ok(self.in_request_version(t, vec![obj])?.remove(0))
    }

    pub async fn create(&self, t: &Target, body: Value, opts: &WriteOptions) -> ApiResult<Outcome> {
        let r = t.resource();
        let mut warnings = Vec::new();
        let body = self.admit_body(t, body, opts, &mut warnings)?;
        if body["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut inst = hooks(|| t.plugin.instance())?;
        let obj = hooks(|| inst.default(body))?;
        let mut obj = self.to_storage_version(t, &mut inst, obj)?;
        let generate = obj["metadata"]["generateName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let named = !meta::name(&obj).is_empty();
        {
            let m = meta::meta_mut(&mut obj);
            if !named && !generate.is_empty() {
                m.insert("name".into(), Value::String(meta::generate_name(&generate)));
            }
            m.insert(
                "uid".into(),
                Value::String(uuid::Uuid::new_v4().to_string()),
            );
            m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
            m.insert("generation".into(), json!(1));
            for f in [
                "resourceVersion",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "selfLink",
            ] {
                m.remove(f);
            }
        }
        let name = meta::name(&obj).to_string();
        let req = t.request(Operation::Create, &name, None, opts.dry_run);
        let obj = hooks(|| inst.prepare_for_create(&req, obj))?;
        let validation = hooks(|| inst.validate_create(&req, &obj))?;
        warnings.extend(validation.warnings);
        let mut errors: Vec<FieldError> = validation.errors.into_iter().map(Into::into).collect();
        errors.extend(meta::validate(&obj, r.namespaced()));
        self.invalid_if(r, &name, errors)?;

        let mut obj = obj;
        if !opts.dry_run {
            let mut attempt = 0;
            let rev = loop {
                let name = meta::name(&obj).to_string();
                match self.storage.create(&t.key(&name), encode(&obj)).await {
                    Ok(rev) => break rev,
                    // A generated name collided: draw another, as kube-apiserver does.
                    Err(StorageError::AlreadyExists { .. }) if !named && attempt < 8 => {
                        attempt += 1;
                        meta::meta_mut(&mut obj)
                            .insert("name".into(), Value::String(meta::generate_name(&generate)));
                    }
                    Err(e) => return Err(ApiError::from_storage(e, r, &name)),
                }
            };
            set_rv(&mut obj, rev);
        }
        let object = self.to_request_version(t, &mut inst, vec![obj])?.remove(0);
        Ok(Outcome { object, warnings })
    }

    /// PUT: replace the object (or its status).
    pub async fn update(
        &self,
        t: &Target,
        name: &str,
        body: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Outcome> {
        let r = t.resource();
        let mut warnings = Vec::new();
        let mut body = self.admit_body(t, body, opts, &mut warnings)?;
        match meta::name(&body) {
            "" => {
                meta::meta_mut(&mut body).insert("name".into(), Value::String(name.into()));
            }
            n if n != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            _ => {}
        }
        let precondition = match body["metadata"]["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() => Some(meta::parse_resource_version(rv).map_err(|m| {
                ApiError::invalid(
                    r,
                    name,
                    &[FieldError::invalid(
                        "metadata.resourceVersion",
                        &json!(rv),
                        m,
                    )],
                )
            })?),
            _ => None,
        };
        let mut inst = hooks(|| t.plugin.instance())?;
        let defaulted = hooks(|| inst.default(body))?;
        let new = self.to_storage_version(t, &mut inst, defaulted)?;
        for _ in 0..MAX_UPDATE_RETRIES {
            let current = self.read_current(t, name).await?;
            if precondition.is_some_and(|p| p != current.revision) {
                return Err(ApiError::modified(r, name));
            }
            let old = self.decode_stored(t.resource(), &current)?;
            match self
                .finish_update(
                    t,
                    &mut inst,
                    name,
                    new.clone(),
                    old,
                    current.revision,
                    subresource,
                    opts,
                    &mut warnings,
                )
                .await
            {
                Err(Retry::Conflict) if precondition.is_none() => continue,
                Err(Retry::Conflict) => return Err(ApiError::modified(r, name)),
                Err(Retry::Fail(e)) => return Err(e),
                Ok(object) => return Ok(Outcome { object, warnings }),
            }
        }
        Err(ApiError::modified(r, name))
    }

    /// PATCH: apply a merge or JSON patch to the current object in the request's version.
    pub async fn patch(
        &self,
        t: &Target,
        name: &str,
        kind: PatchType,
        patch: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<Outcome> {
        let r = t.resource();
        let mut inst = hooks(|| t.plugin.instance())?;
        for _ in 0..MAX_UPDATE_RETRIES {
            let mut warnings = Vec::new();
            let current = self.read_current(t, name).await?;
            let stored = self.decode_stored(t.resource(), &current)?;
            let mut doc = self
                .to_request_version(t, &mut inst, vec![stored.clone()])?
                .remove(0);
            match kind {
                PatchType::Merge => {
                    let p: Value = serde_json::from_slice(patch)
                        .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
                    json_patch::merge(&mut doc, &p);
                }
                PatchType::Json => {
                    let p: json_patch::Patch = serde_json::from_slice(patch)
                        .map_err(|e| ApiError::bad_request(e.to_string()))?;
                    json_patch::patch(&mut doc, &p)
                        .map_err(|e| ApiError::new(422, "Invalid", e.to_string()))?;
                }
            }
            let current_rv = current.revision.to_string();
            let precondition = match doc["metadata"]["resourceVersion"].as_str() {
                Some(rv) if rv != current_rv => {
                    Some(meta::parse_resource_version(rv).map_err(|m| {
                        ApiError::invalid(
                            r,
                            name,
                            &[FieldError::invalid(
                                "metadata.resourceVersion",
                                &json!(rv),
                                m,
                            )],
                        )
                    })?)
                }
                _ => None,
            };
            if precondition.is_some() {
                return Err(ApiError::modified(r, name));
            }
            if meta::name(&doc) != name {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({}) does not match the name on the URL ({name})",
                    meta::name(&doc)
                )));
            }
            let body = self.admit_body(t, doc, opts, &mut warnings)?;
            let defaulted = hooks(|| inst.default(body))?;
            let new = self.to_storage_version(t, &mut inst, defaulted)?;
            match self
                .finish_update(
                    t,
                    &mut inst,
                    name,
                    new,
                    stored,
                    current.revision,
                    subresource,
                    opts,
                    &mut warnings,
                )
                .await
            {
                Err(Retry::Conflict) => continue,
                Err(Retry::Fail(e)) => return Err(e),
                Ok(object) => return Ok(Outcome { object, warnings }),
            }
        }
        Err(ApiError::modified(r, name))
    }

    async fn read_current(&self, t: &Target, name: &str) -> ApiResult<Stored> {
        let r = t.resource();
        self.storage
            .get(&t.key(name))
            .await
            .map_err(|e| ApiError::from_storage(e, r, name))?
            .ok_or_else(|| ApiError::not_found(r, name))
    }

    /// The shared tail of update and patch: both objects in the storage version.
    #[allow(clippy::too_many_arguments)]
    async fn finish_update(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        name: &str,
        mut new: Value,
        old: Value,
        rev: Revision,
        subresource: Option<&str>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> Result<Value, Retry> {
        let r = t.resource();
        let old_meta = old["metadata"].clone();
        let new_uid = new["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !new_uid.is_empty() && Some(new_uid.as_str()) != old_meta["uid"].as_str() {
            return Err(Retry::Fail(ApiError::invalid(
                r,
                name,
                &[FieldError::invalid(
                    "metadata.uid",
                    &json!(new_uid),
                    "field is immutable",
                )],
            )));
        }
        {
            let m = meta::meta_mut(&mut new);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
            ] {
                match old_meta.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            m.remove("resourceVersion");
        }
        if old_meta.get("deletionTimestamp").is_some() {
            let old_f: Vec<&Value> = old_meta["finalizers"]
                .as_array()
                .map(|a| a.iter().collect())
                .unwrap_or_default();
            let added: Vec<String> = new["metadata"]["finalizers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|f| !old_f.contains(f))
                .map(|f| f.as_str().unwrap_or_default().to_string())
                .collect();
            if !added.is_empty() {
                return Err(Retry::Fail(ApiError::invalid(r, name, &[FieldError::forbidden(
                    "metadata.finalizers",
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                )])));
            }
        }
        let req = t.request(Operation::Update, name, subresource, opts.dry_run);
        let mut new = hooks(|| inst.prepare_for_update(&req, new, &old))
            .map_err(|e| Retry::Fail(e.into()))?;
        let mut old_cmp = old.clone();
        if let Some(m) = old_cmp["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        if meta::spec_changed(&new, &old) {
            let g = old_meta["generation"].as_i64().unwrap_or(0) + 1;
            meta::meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let validation =
            hooks(|| inst.validate_update(&req, &new, &old)).map_err(|e| Retry::Fail(e.into()))?;
        warnings.extend(validation.warnings);
        let mut errors: Vec<FieldError> = validation.errors.into_iter().map(Into::into).collect();
        errors.extend(meta::validate(&new, r.namespaced()));
        self.invalid_if(r, name, errors).map_err(Retry::Fail)?;

        let key = t.key(name);
        let mut out = if new == old_cmp {
            // Nothing changed: no write, the resourceVersion stays.
            old
        } else if opts.dry_run {
            set_rv(&mut new, rev);
            new
        } else if new["metadata"].get("deletionTimestamp").is_some()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        {
            // The last finalizer is gone from an object being deleted: delete it now.
            let deleted = self
                .storage
                .delete(&key, Some(rev))
                .await
                .map_err(|e| match e {
                    StorageError::Conflict { .. } => Retry::Conflict,
                    e => Retry::Fail(ApiError::from_storage(e, r, name)),
                })?;
            set_rv(&mut new, deleted.revision);
            new
        } else {
            let new_rev =
                self.storage
                    .update(&key, encode(&new), rev)
                    .await
                    .map_err(|e| match e {
                        StorageError::Conflict { .. } => Retry::Conflict,
                        e => Retry::Fail(ApiError::from_storage(e, r, name)),
                    })?;
            set_rv(&mut new, new_rev);
            new
        };
        out = self
            .to_request_version(t, inst, vec![out])
            .map_err(Retry::Fail)?
            .remove(0);
        Ok(out)
    }

    /// DELETE: honours preconditions and finalizers. Returns the object's last state.
    pub async fn delete(&self, t: &Target, name: &str, opts: &DeleteOptions) -> ApiResult<Value> {
        let r = t.resource();
        let mut inst = hooks(|| t.plugin.instance())?;
        for _ in 0..MAX_UPDATE_RETRIES {
            let current = self.read_current(t, name).await?;
            let mut obj = self.decode_stored(t.resource(), &current)?;
            if let Some(uid) = &opts.precondition_uid {
                let actual = obj["metadata"]["uid"].as_str().unwrap_or_default();
                if uid != actual {
                    return Err(ApiError::conflict(r, name, &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}")));
                }
            }
            if let Some(rv) = &opts.precondition_rv {
                if *rv != current.revision.to_string() {
                    return Err(ApiError::conflict(r, name, &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {}", current.revision)));
                }
            }
            let req = t.request(Operation::Delete, name, None, opts.dry_run);
            let validation = hooks(|| inst.validate_delete(&req, &obj))?;
            self.invalid_if(
                r,
                name,
                validation.errors.into_iter().map(Into::into).collect(),
            )?;
            let has_finalizers = obj["metadata"]["finalizers"]
                .as_array()
                .is_some_and(|a| !a.is_empty());
            let result = if has_finalizers {
                if obj["metadata"].get("deletionTimestamp").is_some() {
                    Ok(obj)
                } else {
                    let m = meta::meta_mut(&mut obj);
                    m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(0));
                    if opts.dry_run {
                        Ok(obj)
                    } else {
                        self.storage
                            .update(&t.key(name), encode(&obj), current.revision)
                            .await
                            .map(|rev| {
                                set_rv(&mut obj, rev);
                                obj
                            })
                    }
                }
            } else if opts.dry_run {
                Ok(obj)
            } else {
                self.storage
                    .delete(&t.key(name), Some(current.revision))
                    .await
                    .map(|_| obj)
            };
            match result {
                Ok(obj) => return Ok(self.to_request_version(t, &mut inst, vec![obj])?.remove(0)),
                Err(StorageError::Conflict { .. }) if opts.precondition_rv.is_none() => continue,
                Err(e) => return Err(ApiError::from_storage(e, r, name)),
            }
        }
        Err(ApiError::modified(r, name))
    }

    /// DELETE on a collection: delete every object the selectors match.
    pub async fn delete_collection(
        &self,
        t: &Target,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<ListResult> {
        let all = self
            .list(
                t,
                &ListOptions {
                    limit: None,
                    continue_token: None,
                    ..list.clone()
                },
            )
            .await?;
        let mut deleted = Vec::new();
        for obj in all.items {
            let name = meta::name(&obj).to_string();
            let target = Target {
                plugin: t.plugin.clone(),
                version: t.version.clone(),
                namespace: obj["metadata"]["namespace"]
                    .as_str()
                    .map(str::to_string)
                    .or(t.namespace.clone()),
                user: t.user.clone(),
            };
            match self.delete(&target, &name, opts).await {
                Ok(o) => deleted.push(o),
                Err(e) if e.code == 404 => {}
                Err(e) => return Err(e),
            }
        }
        let rv = self
            .storage
            .current_revision()
            .await
            .map_err(|e| ApiError::from_storage(e, t.resource(), ""))?;
        Ok(ListResult {
            items: deleted,
            resource_version: rv,
            continue_token: None,
        })
    }

    /// LIST: selectors, `limit`/`continue`, and resourceVersion semantics.
    pub async fn list(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        let r = t.resource();
        let prefix = t.prefix();
        let (mut at, mut start) = (None, None);
        if let Some(token) = opts.continue_token.as_deref().filter(|c| !c.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|rv| !rv.is_empty() && rv != "0")
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, s) = decode_continue(token)?;
            at = Some(rv);
            start = Some(format!("{prefix}{s}"));
        } else if let Some(rv) = opts
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty() && *rv != "0")
        {
            let rv = meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
            match opts.resource_version_match.as_deref() {
                Some("Exact") => at = Some(rv),
                None | Some("") | Some("NotOlderThan") => {
                    let current = self.storage.current_revision().await.map_err(|e| ApiError::from_storage(e, r, ""))?;
                    if rv > current {
                        return Err(ApiError::from_storage(StorageError::TooLarge { requested: rv, current }, r, ""));
                    }
                }
                Some(other) => return Err(ApiError::bad_request(format!("resourceVersionMatch: Unsupported value: {other:?}: supported values: \"Exact\", \"NotOlderThan\""))),
            }
        } else if opts
            .resource_version_match
            .as_deref()
            .is_some_and(|m| !m.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }

        let from_cache = opts.continue_token.as_deref().is_none_or(str::is_empty)
            && opts.resource_version.as_deref() == Some("0");
        if from_cache {
            return self.list_from_cache(t, opts).await;
        }
        let limit = opts.limit.filter(|l| *l > 0);
        let filtering = !opts.labels.is_empty() || !opts.fields.is_empty();
        let mut items = Vec::new();
        let mut continue_token = None;
        let mut list_rv;
        loop {
            let want = limit.map(|l| l - items.len());
            let page = self
                .storage
                .list(ListRequest { prefix: prefix.clone(), start: start.clone(), limit: want.map(|w| if filtering { w.max(64) } else { w }), revision: at })
                .await
                .map_err(|e| match e {
                    StorageError::Expired { .. } if opts.continue_token.is_some() => ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."),
                    e => ApiError::from_storage(e, r, ""),
                })?;
            list_rv = page.revision;
            at = Some(page.revision);
            let mut last_key = None;
            let mut stopped_early = false;
            for s in &page.items {
                if limit.is_some_and(|l| items.len() >= l) {
                    stopped_early = true;
                    break;
                }
                last_key = Some(s.key.clone());
                let obj = self.decode_stored(t.resource(), s)?;
                if selectors::matches(&opts.labels, &opts.fields, &obj) {
                    items.push(obj);
                }
            }
            let more = page.more || stopped_early;
            if !more {
                break;
            }
            let last = last_key.expect("a page with more has items");
            if limit.is_some_and(|l| items.len() >= l) {
                continue_token = Some(encode_continue(
                    page.revision,
                    &format!("{}\u{0}", &last[prefix.len()..]),
                ));
                break;
            }
            start = Some(format!("{last}\u{0}"));
        }
        Ok(ListResult {
            items: self.in_request_version(t, items)?,
            resource_version: list_rv,
            continue_token,
        })
    }

    /// A list at `resourceVersion=0`: any recent state will do, so the watch cache
    /// answers without touching storage. As kube-apiserver's cache did, it ignores
    /// `limit` and returns everything in one page.
    async fn list_from_cache(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        let (objs, rev) = self.cacher(t).list(&t.prefix()).await?;
        let items: Vec<Value> = objs
            .iter()
            .filter(|o| selectors::matches(&opts.labels, &opts.fields, &o.value))
            .map(|o| o.value.clone())
            .collect();
        Ok(ListResult {
            items: self.in_request_version(t, items)?,
            resource_version: rev,
            continue_token: None,
        })
    }

    /// Table cells for objects read in the request's version. Objects the watch cache
    /// holds at the same revision print through it, which remembers the cells; the
    /// others print in one call.
    pub fn print(&self, t: &Target, objs: &[Value]) -> ApiResult<Vec<Vec<crate::plugin::Cell>>> {
        if objs.is_empty() {
            return Ok(Vec::new());
        }
        self.through_cache(
            t,
            objs,
            |cacher, hits, version| cacher.rows(hits, version),
            |objs| Ok(hooks(|| t.plugin.instance()?.print(objs))?),
        )
    }
}

enum Retry {
    Conflict,
    Fail(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip_and_reject_tampering() {
        let t = encode_continue(42, "default/b\u{0}");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "default/b\u{0}".to_string())
        );
        for bad in [
            "garbage!!",
            "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MCwic3RhcnQiOiJhIn0",
            &t[..t.len() - 3],
        ] {
            let e = decode_continue(bad).unwrap_err();
            assert_eq!(e.code, 400, "{bad}");
            assert!(
                e.message
                    .starts_with("invalid continue token: continue key is not valid"),
                "{}",
                e.message
            );
        }
    }
}
