//! k8s.io/apimachinery's default field manager around [`Updater`]: manager
//! identifiers, times, metadata that is never owned, objects that were never applied,
//! the cap on update managers, `kubectl`'s move from client-side apply, and the
//! `managedFields` wire form.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::managed::{is_reset, Managed, ManagerId, Operation};
use crate::path::PathElement;
use crate::set::Set;
use crate::typed;
use crate::updater::{internal, ApplyError, Conflict, Updater, Versions};

/// The annotation client-side `kubectl apply` keeps its last configuration in.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Metadata no manager owns (`stripMetaManager`).
fn strip_set() -> &'static Set {
    static STRIP: std::sync::OnceLock<Set> = std::sync::OnceLock::new();
    STRIP.get_or_init(build_strip_set)
}

fn build_strip_set() -> Set {
    let mut s = Set::new();
    for p in ["apiVersion", "kind", "metadata"] {
        s.insert(&[PathElement::Field(p.into())]);
    }
    for f in [
        "name",
        "namespace",
        "creationTimestamp",
        "selfLink",
        "uid",
        "clusterName",
        "generation",
        "managedFields",
        "resourceVersion",
    ] {
        s.insert(&[
            PathElement::Field("metadata".into()),
            PathElement::Field(f.into()),
        ]);
    }
    s
}

/// At most this many update managers; the oldest merge into `ancient-changes`.
pub const MAX_UPDATE_MANAGERS: usize = 10;

/// k8s.io/apimachinery's default field manager, for one request.
pub struct FieldManager<'a, V: Versions> {
    pub versions: &'a mut V,
    /// The request's `group/version`: the version objects are given and returned in.
    pub api_version: String,
    /// `status`, `scale`, or empty for the main resource.
    pub subresource: String,
    /// Fields no manager owns, per version (see [`Updater::ignored`]).
    pub ignored: BTreeMap<String, Set>,
    /// The time recorded for this change (RFC 3339, seconds).
    pub now: String,
}

fn managed_fields_of(obj: &Value) -> Option<&Value> {
    obj.get("metadata").and_then(|m| m.get("managedFields"))
}

fn set_managed_fields(obj: &mut Value, m: &Managed) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    if m.fields.is_empty() {
        meta.remove("managedFields");
    } else {
        meta.insert("managedFields".into(), m.encode());
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    o
}

impl<V: Versions> FieldManager<'_, V> {
    fn updater(&mut self) -> Updater<'_, V> {
        Updater {
            versions: self.versions,
            ignored: self.ignored.clone(),
        }
    }

    /// Record `manager`'s change of `live` into `new` in `new`'s managedFields (both in
    /// the request's version; `live` is an empty object on create). Never fails: when
    /// the fields cannot be worked out, the live object's managedFields are kept, as
    /// kube-apiserver's `UpdateNoErrors` does. Managed fields a client sent are used
    /// when they decode (an empty list resets them), else the live ones.
    pub fn update(&mut self, live: &Value, new: &mut Value, manager: &str) {
        let sent = managed_fields_of(new).cloned();
        let managed = if !self.subresource.is_empty() {
            Managed::decode(managed_fields_of(live)).unwrap_or_default()
        } else if is_reset(sent.as_ref()) {
            Managed::default()
        } else {
            match Managed::decode(sent.as_ref()) {
                Ok(m) if !m.fields.is_empty() => m,
                _ => Managed::decode(managed_fields_of(live)).unwrap_or_default(),
            }
        };
        *new = without_managed_fields(new);
        let exists = live["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty());
        if managed.fields.is_empty() && exists {
            // Objects written before managed fields were tracked start on their first
            // apply (`skipNonAppliedManager`).
            return;
        }
        let id = ManagerId::new(
            manager,
            Operation::Update,
            &self.api_version,
            &self.subresource,
        );
        match self.record_update(live, new, managed, &id) {
            Ok(m) => set_managed_fields(new, &m),
            Err(_) => {
                if let Some(mf) = managed_fields_of(live).cloned() {
                    if let Some(meta) = new.get_mut("metadata").and_then(Value::as_object_mut) {
                        meta.insert("managedFields".into(), mf);
                    }
                }
            }
        }
    }

    fn record_update(
        &mut self,
        live: &Value,
        new: &Value,
        mut managed: Managed,
        id: &ManagerId,
    ) -> Result<Managed, ApplyError> {
        let current = ManagerId::new(
            "current-operation",
            Operation::Update,
            &self.api_version,
            &self.subresource,
        );
        let version = self.api_version.clone();
        let live = without_managed_fields(live);
        self.updater()
            .update(&live, new, &version, &mut managed.fields, &current)?;
        if let Some(mut vs) = managed.fields.remove(&current) {
            vs.set = vs.set.difference(strip_set());
            if !vs.set.is_empty() {
                if let Some(prev) = managed.fields.get(id) {
                    vs.set = vs.set.union(&prev.set);
                }
                managed.fields.insert(id.clone(), vs);
                managed.times.insert(id.clone(), self.now.clone());
            }
        }
        cap_update_managers(&mut managed);
        Ok(managed)
    }

    /// `manager` applies `config` to `live` (both in the request's version; `live` an
    /// empty object when the apply creates). Returns the new object with its
    /// managedFields; when the configuration changes nothing, the live object with
    /// (possibly unchanged) managedFields.
    pub fn apply(
        &mut self,
        live: &Value,
        config: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApplyError> {
        if managed_fields_of(config).is_some_and(|m| !m.is_null()) {
            return Err(ApplyError::BadRequest(
                "metadata.managedFields must be nil".into(),
            ));
        }
        let sent = config["apiVersion"].as_str().unwrap_or_default();
        if sent != self.api_version {
            return Err(ApplyError::BadRequest(format!(
                "Incorrect version specified in apply patch. Specified patch version: {sent}, expected: {}",
                self.api_version
            )));
        }
        let managed = Managed::decode(managed_fields_of(live))
            .map_err(|e| internal(format!("failed to decode managed fields: {e}")))?;
        let id = ManagerId::new(
            manager,
            Operation::Apply,
            &self.api_version,
            &self.subresource,
        );
        let first = self.apply_once(live, config, managed.clone(), &id, force);
        let (obj, managed) = match first {
            Err(ApplyError::Conflicts(conflicts)) if manager == "kubectl" => {
                // kubectl moving from client-side apply: fields its last-applied
                // configuration set to the live value are its own.
                let allowed = self.allowed_from_last_applied(live);
                let rest: Vec<Conflict> = conflicts
                    .iter()
                    .filter(|c| !allowed.as_ref().is_some_and(|a| a.has(&c.path)))
                    .cloned()
                    .collect();
                if !rest.is_empty() {
                    return Err(ApplyError::Conflicts(rest));
                }
                self.apply_once(live, config, managed, &id, true)?
            }
            other => other?,
        };
        let mut obj = obj;
        if manager == "kubectl" {
            update_last_applied(&mut obj, config);
        }
        set_managed_fields(&mut obj, &managed);
        Ok(obj)
    }

    fn apply_once(
        &mut self,
        live: &Value,
        config: &Value,
        mut managed: Managed,
        id: &ManagerId,
        force: bool,
    ) -> Result<(Value, Managed), ApplyError> {
        let version = self.api_version.clone();
        let live = without_managed_fields(live);
        if managed.fields.is_empty() {
            // The object's fields so far belong to `before-first-apply`.
            let before = ManagerId::new(
                "before-first-apply",
                Operation::Update,
                &version,
                &self.subresource,
            );
            let empty = json!({"apiVersion": live["apiVersion"], "kind": live["kind"]});
            self.updater()
                .update(&empty, &live, &version, &mut managed.fields, &before)?;
            if let Some(vs) = managed.fields.get_mut(&before) {
                vs.set = vs.set.difference(strip_set());
                if vs.set.is_empty() {
                    managed.fields.remove(&before);
                } else {
                    managed.times.insert(before.clone(), self.now.clone());
                }
            }
        }
        let new = self
            .updater()
            .apply(&live, config, &version, &mut managed.fields, id, force)?;
        if let Some(vs) = managed.fields.get_mut(id) {
            vs.set = vs.set.difference(strip_set());
            if vs.set.is_empty() {
                managed.fields.remove(id);
            }
        }
        let obj = match new {
            Some(n) => {
                managed.times.insert(id.clone(), self.now.clone());
                n
            }
            None => live,
        };
        managed.times.retain(|k, _| managed.fields.contains_key(k));
        Ok((obj, managed))
    }

    /// The fields of kubectl's last-applied configuration whose values the live object
    /// still has (`lastAppliedManager`).
    fn allowed_from_last_applied(&mut self, live: &Value) -> Option<Set> {
        let text = live["metadata"]["annotations"][LAST_APPLIED].as_str()?;
        let last: Value = serde_json::from_str(text).ok()?;
        if last["apiVersion"].as_str()? != self.api_version {
            return None;
        }
        let t = self.versions.type_of(&self.api_version)?;
        let live = without_managed_fields(live);
        let set = typed::field_set(&last, &t).ok()?;
        let c = typed::compare(&last, &live, &t).ok()?;
        Some(
            set.difference(&c.modified)
                .difference(&c.added)
                .difference(&c.removed),
        )
    }
}

/// When the object keeps a last-applied annotation, server-side apply by `kubectl`
/// keeps it current (`lastAppliedUpdater`), so a later client-side apply agrees.
fn update_last_applied(obj: &mut Value, config: &Value) {
    let has = obj["metadata"]["annotations"][LAST_APPLIED]
        .as_str()
        .is_some_and(|s| !s.is_empty());
    if !has {
        return;
    }
    let mut c = config.clone();
    if let Some(a) = c
        .get_mut("metadata")
        .and_then(|m| m.get_mut("annotations"))
        .and_then(Value::as_object_mut)
    {
        a.remove(LAST_APPLIED);
    }
    if let Some(a) = obj["metadata"]["annotations"].as_object_mut() {
        a.insert(LAST_APPLIED.into(), Value::String(c.to_string()));
    }
}

/// Merge the oldest update managers beyond [`MAX_UPDATE_MANAGERS`] into one
/// `ancient-changes` manager per version (`capManagersManager`).
fn cap_update_managers(managed: &mut Managed) {
    let mut updaters: Vec<ManagerId> = managed
        .fields
        .iter()
        .filter(|(_, vs)| !vs.applied)
        .map(|(id, _)| id.clone())
        .collect();
    if updaters.len() <= MAX_UPDATE_MANAGERS {
        return;
    }
    updaters.sort_by(|a, b| {
        managed
            .times
            .get(a)
            .cmp(&managed.times.get(b))
            .then_with(|| a.cmp(b))
    });
    let mut excess = updaters.len() - MAX_UPDATE_MANAGERS;
    let mut first_of_version: BTreeMap<String, ManagerId> = BTreeMap::new();
    for id in updaters {
        if excess == 0 {
            break;
        }
        let vs = managed.fields[&id].clone();
        let Some(first) = first_of_version.get(&vs.api_version).cloned() else {
            first_of_version.insert(vs.api_version.clone(), id);
            continue;
        };
        let bucket = ManagerId::new("ancient-changes", Operation::Update, &vs.api_version, "");
        if !managed.fields.contains_key(&bucket) {
            if let Some(s) = managed.fields.remove(&first) {
                managed.fields.insert(bucket.clone(), s);
            }
            managed.times.remove(&first);
        }
        let b = managed
            .fields
            .get_mut(&bucket)
            .expect("bucket was just filled");
        b.set = b.set.union(&vs.set);
        managed.fields.remove(&id);
        if let Some(t) = managed.times.remove(&id) {
            managed.times.insert(bucket.clone(), t);
        }
        excess -= 1;
    }
}
