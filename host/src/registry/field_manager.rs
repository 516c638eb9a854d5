//! Managed fields for plugin kinds: the `structured-merge` crate's field manager, told
//! how a kind's objects convert between versions (the plugin's `convert`) and what
//! each version's schema says of lists and maps. Every write records who changed what
//! in `metadata.managedFields`; an apply merges a configuration with ownership.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use structured_merge::field_manager::FieldManager;
use structured_merge::path::{display, PathElement};
use structured_merge::set::Set;
use structured_merge::updater::{ApplyError, Versions};
use structured_merge::Type;

use super::options::WriteOptions;
use super::target::Target;
use crate::api::resource::ResourceInfo;
use crate::api::{now_rfc3339, ApiError, ApiResult};
use crate::plugin::PluginInstance;

/// A kind's versions as the field manager sees them.
struct PluginVersions<'a, 'i> {
    r: &'a ResourceInfo,
    inst: &'a mut PluginInstance<'i>,
}

impl Versions for PluginVersions<'_, '_> {
    fn convert(&mut self, obj: &Value, version: &str) -> Result<Option<Value>, String> {
        if obj["apiVersion"].as_str() == Some(version) {
            return Ok(Some(obj.clone()));
        }
        let name = version.rsplit('/').next().unwrap_or(version);
        if self.r.version(name).is_none() {
            return Ok(None);
        }
        let mut out = self
            .inst
            .convert(std::slice::from_ref(obj), name)
            .map_err(|e| e.to_string())?;
        Ok(out.pop())
    }

    fn type_of(&self, version: &str) -> Option<Arc<Type>> {
        let name = version.rsplit('/').next().unwrap_or(version);
        self.r.version(name).map(|v| v.merge_type.clone())
    }
}

/// Fields no manager owns, per version (kube-apiserver's reset fields of custom
/// resources): with a status subresource, `status` for the main resource, and `spec`
/// and `metadata` for `/status` (its strategy keeps the stored ones).
fn ignored(r: &ResourceInfo, subresource: Option<&str>) -> BTreeMap<String, Set> {
    let fields: &[&str] = match subresource {
        None => &["status"],
        Some("status") => &["spec", "metadata"],
        Some(_) => return BTreeMap::new(),
    };
    r.versions
        .iter()
        .filter(|v| v.status_subresource)
        .map(|v| {
            let mut s = Set::new();
            for f in fields {
                s.insert(&[PathElement::Field(f.to_string())]);
            }
            (format!("{}/{}", r.group, v.name), s)
        })
        .collect()
}

fn with_manager<T>(
    t: &Target,
    inst: &mut PluginInstance<'_>,
    subresource: Option<&str>,
    f: impl FnOnce(&mut FieldManager<'_, PluginVersions<'_, '_>>) -> T,
) -> T {
    let r = t.resource();
    let mut versions = PluginVersions { r, inst };
    let mut fm = FieldManager {
        versions: &mut versions,
        api_version: t.api_version(),
        subresource: subresource.unwrap_or_default().to_string(),
        ignored: ignored(r, subresource),
        now: now_rfc3339(),
    };
    f(&mut fm)
}

/// Record the writer's change of `live` into `new` (both in the request's version; for
/// a create, `live` is an empty object) in `new`'s managedFields.
pub(super) fn record_update(
    t: &Target,
    inst: &mut PluginInstance<'_>,
    live: &Value,
    new: &mut Value,
    subresource: Option<&str>,
    opts: &WriteOptions,
) {
    let manager = opts.manager();
    with_manager(t, inst, subresource, |fm| fm.update(live, new, manager));
}

/// An empty object of the target's kind named `name`: what a create changes.
pub(super) fn empty_object(t: &Target, name: &str) -> Value {
    let mut meta = json!({"name": name});
    if let Some(ns) = &t.namespace {
        meta["namespace"] = json!(ns);
    }
    json!({"apiVersion": t.api_version(), "kind": t.resource().kind, "metadata": meta})
}

/// Apply `config` to `live` (both in the request's version) for the request's field
/// manager: the merged object with its managedFields, or kube-apiserver's 409 naming
/// each conflicting field and its manager.
pub(super) fn apply(
    t: &Target,
    inst: &mut PluginInstance<'_>,
    live: &Value,
    config: &Value,
    subresource: Option<&str>,
    opts: &WriteOptions,
) -> ApiResult<Value> {
    let manager = opts.field_manager.as_deref().unwrap_or_default();
    with_manager(t, inst, subresource, |fm| {
        fm.apply(live, config, manager, opts.force)
    })
    .map_err(|e| apply_error(t, config, e))
}

fn apply_error(t: &Target, config: &Value, e: ApplyError) -> ApiError {
    match e {
        ApplyError::Conflicts(conflicts) => {
            let causes: Vec<Value> = conflicts
                .iter()
                .map(|c| {
                    json!({
                        "type": "FieldManagerConflict",
                        "message": format!("conflict with {}", c.manager.describe(None)),
                        "field": display(&c.path),
                    })
                })
                .collect();
            ApiError::new(409, "Conflict", ApplyError::conflict_message(&conflicts))
                .with_details(json!({ "causes": causes }))
        }
        ApplyError::BadRequest(m) => ApiError::bad_request(m),
        ApplyError::Invalid(e) => ApiError::bad_request(format!(
            "failed to create typed patch object ({}/{}; {}, Kind={}): {e}",
            t.namespace.as_deref().unwrap_or_default(),
            config["metadata"]["name"].as_str().unwrap_or_default(),
            t.api_version(),
            t.resource().kind
        )),
        ApplyError::Internal(m) => ApiError::internal(m),
    }
}
