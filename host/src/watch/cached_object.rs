//! A cached object and what is made of it, as k8s.io/apiserver's
//! `caching_object.go`: an object at a revision never changes and hooks are pure, so
//! its conversions to each version, its Table cells and its serializations for each
//! [`Encoding`] are computed once, the first time a watcher or a read needs them, and
//! remembered with the object (until a plugin reload forgets them).

use bytes::Bytes;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::{Cacher, Result};
use crate::api::table::{self, IncludeObject};
use crate::api::{ApiError, ApiResult};
use crate::plugin::{Cell, Plugin};
use crate::storage::Revision;

/// What a watcher's events are serialized as.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// The object as JSON in this version.
    Json(Arc<str>),
    /// A one-row `meta.k8s.io/v1` Table in this version.
    Table(Arc<str>, IncludeObject),
    /// The object's metadata as a `PartialObjectMetadata` of this `meta.k8s.io`
    /// apiVersion, from the storage version (the first field).
    Metadata(Arc<str>, &'static str),
}

impl Encoding {
    pub fn version(&self) -> &Arc<str> {
        match self {
            Encoding::Json(v) | Encoding::Table(v, _) | Encoding::Metadata(v, _) => v,
        }
    }
}

/// One object as the cache holds it: the storage version with its resourceVersion set,
/// and the conversions and serializations made of it so far.
pub struct CachedObject {
    pub key: String,
    pub revision: Revision,
    pub value: Value,
    forms: Mutex<Forms>,
}

#[derive(Default)]
pub(super) struct Forms {
    converted: Vec<(Arc<str>, Arc<Value>)>,
    /// Table cells per version, from the plugin's `print`.
    printed: Vec<(Arc<str>, Arc<Vec<Cell>>)>,
    encoded: Vec<(Encoding, Bytes)>,
}

/// Which of an object's remembered forms (per version: converted objects or cells).
type FormOf<T> = fn(&mut Forms) -> &mut Vec<(Arc<str>, Arc<T>)>;

impl CachedObject {
    pub(super) fn new(key: String, revision: Revision, mut value: Value) -> Arc<Self> {
        if let Some(m) = value.get_mut("metadata").and_then(Value::as_object_mut) {
            m.insert(
                "resourceVersion".into(),
                Value::String(revision.to_string()),
            );
        }
        Arc::new(CachedObject {
            key,
            revision,
            value,
            forms: Mutex::default(),
        })
    }

    pub(super) fn forms(&self) -> std::sync::MutexGuard<'_, Forms> {
        crate::sync::lock(&self.forms)
    }

    fn encoded(&self, enc: &Encoding) -> Option<Bytes> {
        self.forms()
            .encoded
            .iter()
            .find(|(e, _)| e == enc)
            .map(|(_, b)| b.clone())
    }

    /// What `form` remembers for `version`, if anything.
    fn remembered<T>(&self, form: FormOf<T>, version: &str) -> Option<Arc<T>> {
        form(&mut self.forms())
            .iter()
            .find(|(v, _)| &**v == version)
            .map(|(_, x)| x.clone())
    }
}

impl Cacher {
    /// Serialize objects in an encoding, converting (one batched `convert`) and
    /// printing (one batched `print`) what is not cached yet.
    pub fn encode(&self, objs: &[&Arc<CachedObject>], enc: &Encoding) -> Result<Vec<Bytes>> {
        // One look at each object's forms; the common case (a watcher's or a read's
        // objects, all encoded before) ends here.
        let found: Vec<Option<Bytes>> = objs.iter().map(|o| o.encoded(enc)).collect();
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let missing: Vec<&Arc<CachedObject>> = objs
            .iter()
            .zip(&found)
            .filter(|(_, f)| f.is_none())
            .map(|(o, _)| *o)
            .collect();
        {
            let plugin = self.plugin();
            let storage = **enc.version() == *plugin.resource.storage_version;
            let bytes: Vec<Bytes> = match enc {
                Encoding::Json(_) if storage => missing
                    .iter()
                    .map(|o| Bytes::from(serde_json::to_vec(&o.value).expect("JSON serializes")))
                    .collect(),
                Encoding::Json(version) => self
                    .convert(&missing, version)?
                    .iter()
                    .map(|v| Bytes::from(serde_json::to_vec(&**v).expect("JSON serializes")))
                    .collect(),
                Encoding::Metadata(_, api_version) => missing
                    .iter()
                    .map(|o| {
                        let m = table::partial_object_metadata(&o.value, api_version);
                        Bytes::from(serde_json::to_vec(&m).expect("JSON serializes"))
                    })
                    .collect(),
                // A quarantined plugin neither converts nor prints: rows from the
                // stored objects' metadata, with empty cells.
                Encoding::Table(_, include) if plugin.is_quarantined() => {
                    let info = plugin
                        .resource
                        .version(enc.version())
                        .expect("watch requests name a served version");
                    missing
                        .iter()
                        .map(|o| {
                            let row = table::row(info, &o.value, &[], *include);
                            let meta =
                                json!({"resourceVersion": o.value["metadata"]["resourceVersion"]});
                            let t = table::table(info, vec![row], meta);
                            Bytes::from(serde_json::to_vec(&t).expect("JSON serializes"))
                        })
                        .collect()
                }
                Encoding::Table(version, include) => {
                    let versions = self.convert(&missing, version)?;
                    let rows = self.print(&missing, version)?;
                    let info = plugin
                        .resource
                        .version(version)
                        .expect("watch requests name a served version");
                    versions
                        .iter()
                        .zip(rows)
                        .map(|(obj, cells)| {
                            let row = table::row(info, obj, &cells, *include);
                            let meta =
                                json!({"resourceVersion": obj["metadata"]["resourceVersion"]});
                            let t = table::table(info, vec![row], meta);
                            Bytes::from(serde_json::to_vec(&t).expect("JSON serializes"))
                        })
                        .collect()
                }
            };
            for (o, b) in missing.iter().zip(bytes) {
                o.forms().encoded.push((enc.clone(), b));
            }
        }
        Ok(objs
            .iter()
            .map(|o| o.encoded(enc).expect("encoded above"))
            .collect())
    }

    /// Table cells for the objects in `version`, printing those not printed yet in one
    /// call; remembered with the object, as conversions are.
    fn print(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
    ) -> Result<Vec<Arc<Vec<Cell>>>> {
        self.remember(
            objs,
            version,
            |f| &mut f.printed,
            |plugin, missing| {
                let plain: Vec<Value> = self
                    .convert(missing, version)?
                    .iter()
                    .map(|v| (**v).clone())
                    .collect();
                self.stats.prints.fetch_add(1, Ordering::Relaxed);
                Ok(tokio::task::block_in_place(|| {
                    plugin.instance().and_then(|mut i| i.print(&plain))
                })?)
            },
        )
    }

    /// A per-object result in `version` for each object: the one remembered in `form`,
    /// or computed for all missing ones in one `compute` call and remembered, unless a
    /// reload swapped the plugin meanwhile (a swap forgets what the old build produced).
    fn remember<T>(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
        form: FormOf<T>,
        compute: impl FnOnce(&Arc<Plugin>, &[&Arc<CachedObject>]) -> Result<Vec<T>>,
    ) -> Result<Vec<Arc<T>>> {
        let mut out: Vec<Option<Arc<T>>> =
            objs.iter().map(|o| o.remembered(form, version)).collect();
        let todo: Vec<usize> = (0..objs.len()).filter(|&i| out[i].is_none()).collect();
        if !todo.is_empty() {
            let plugin = self.plugin();
            let missing: Vec<&Arc<CachedObject>> = todo.iter().map(|&i| objs[i]).collect();
            let computed = compute(&plugin, &missing)?;
            let current = Arc::ptr_eq(&self.plugin(), &plugin);
            for (&i, x) in todo.iter().zip(computed) {
                let x = Arc::new(x);
                if current {
                    form(&mut objs[i].forms()).push((version.clone(), x.clone()));
                }
                out[i] = Some(x);
            }
        }
        Ok(out
            .into_iter()
            .map(|x| x.expect("every object filled"))
            .collect())
    }

    /// The objects in `version`, converting those not converted yet in one call. Each
    /// conversion is remembered with the object: hooks are pure and an object at a
    /// revision never changes, so a later watcher or read gets it without the plugin.
    fn convert(&self, objs: &[&Arc<CachedObject>], version: &Arc<str>) -> Result<Vec<Arc<Value>>> {
        let plugin = self.plugin();
        if **version == plugin.resource.storage_version {
            return Ok(objs.iter().map(|o| Arc::new(o.value.clone())).collect());
        }
        // A quarantined build serves no other version, remembered or not.
        if plugin.is_quarantined() {
            plugin.instance()?;
        }
        self.remember(
            objs,
            version,
            |f| &mut f.converted,
            |plugin, missing| {
                self.stats.conversions.fetch_add(1, Ordering::Relaxed);
                let input: Vec<Value> = missing.iter().map(|o| o.value.clone()).collect();
                Ok(tokio::task::block_in_place(|| {
                    plugin
                        .instance()
                        .and_then(|mut i| i.convert(&input, version))
                })?)
            },
        )
    }

    /// The objects in `version` for a read (the registry's GET and LIST), as
    /// `convert` remembers them; a failure is the API's error.
    pub fn in_version(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
    ) -> ApiResult<Vec<Arc<Value>>> {
        self.convert(objs, version).map_err(ApiError::from)
    }

    /// Table cells for a read (the registry's GET and LIST as a Table), as `print`
    /// remembers them; a failure is the API's error.
    pub fn rows(
        &self,
        objs: &[&Arc<CachedObject>],
        version: &Arc<str>,
    ) -> ApiResult<Vec<Arc<Vec<Cell>>>> {
        self.print(objs, version).map_err(ApiError::from)
    }
}
