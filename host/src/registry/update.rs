//! UPDATE (PUT) and PATCH, the main resource or its status. Both record the writer's
//! fields in managedFields ([`super::field_manager`]) and end in the same
//! decision ([`Registry::decide_update`]): system metadata kept from the stored object,
//! `prepare-for-update`, generation, `validate-update`, then write, keep (nothing
//! changed) or delete (the last finalizer of an object being deleted is gone). Both run
//! through [`Registry::guaranteed_update`], so a lost race re-reads and decides again.

use serde_json::{json, Value};

use super::dry_run::Writes;
use super::field_manager::record_update;
use super::guaranteed_update::{Action, OnConflict};
use super::meta;
use super::options::{Outcome, PatchType, WriteOptions, MAX_JSON_PATCH_OPERATIONS};
use super::store::{hooks, invalid_if, Registry};
use super::target::Target;
use crate::api::{ApiError, ApiResult, FieldError};
use crate::plugin::{Operation, PluginInstance};
use crate::storage::Revision;

/// System fields a client cannot change with an update: always the stored ones.
const SYSTEM_FIELDS: [&str; 6] = [
    "uid",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "generation",
    "namespace",
];

/// A resourceVersion given in a body: a 422 on `metadata.resourceVersion` when it is
/// not a number.
fn parse_body_rv(t: &Target, name: &str, rv: &str) -> ApiResult<Revision> {
    meta::parse_resource_version(rv).map_err(|m| {
        ApiError::invalid(
            t.resource(),
            name,
            &[FieldError::invalid(
                "metadata.resourceVersion",
                &json!(rv),
                m,
            )],
        )
    })
}

/// Apply a merge, JSON or strategic merge patch to `doc` (of type `ty`), with
/// kube-apiserver's limits and wording. An apply is not a patch of a document: see
/// [`super::apply`].
pub(super) fn apply_patch(
    doc: &mut Value,
    kind: PatchType,
    patch: &[u8],
    ty: &structured_merge::Type,
) -> ApiResult<()> {
    match kind {
        PatchType::Strategic => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            *doc =
                structured_merge::strategic::apply(doc, &p, ty).map_err(ApiError::bad_request)?;
        }
        PatchType::Apply => {
            return Err(ApiError::internal("an apply is not a document patch"));
        }
        PatchType::Merge => {
            let p: Value = serde_json::from_slice(patch)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {e}")))?;
            json_patch::merge(doc, &p);
        }
        PatchType::Json => {
            let p: json_patch::Patch =
                serde_json::from_slice(patch).map_err(|e| ApiError::bad_request(e.to_string()))?;
            if p.0.len() > MAX_JSON_PATCH_OPERATIONS {
                return Err(ApiError::new(413, "RequestEntityTooLarge", format!(
                    "Request entity too large: The allowed maximum operations in a JSON patch is {MAX_JSON_PATCH_OPERATIONS}, got {}",
                    p.0.len()
                )));
            }
            json_patch::patch_unsafe(doc, &p).map_err(|e| {
                // kube-apiserver's wording; the reason stays in causes.
                ApiError::new(
                    422,
                    "Invalid",
                    "the server rejected our request due to an error in our request",
                )
                .with_details(json!({"causes": [{"message": e.to_string()}]}))
            })?;
        }
    }
    Ok(())
}

impl Registry {
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
        let mut admitted = Vec::new();
        let mut body = self.admit_body(t, body, opts, &mut admitted)?;
        meta::name_from_url(&mut body, name)?;
        let precondition = match body["metadata"]["resourceVersion"].as_str() {
            Some(rv) if !rv.is_empty() => Some(parse_body_rv(t, name, rv)?),
            _ => None,
        };
        let mut inst = hooks(|| t.plugin.instance())?;
        let defaulted = hooks(|| inst.default(body))?;
        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let on_conflict = match precondition {
            Some(_) => OnConflict::Fail,
            None => OnConflict::Retry,
        };
        let mut warnings = Vec::new();
        let out = self
            .guaranteed_update(t, name, &writes, on_conflict, |old, rev| {
                if precondition.is_some_and(|p| p != rev) {
                    return Err(ApiError::modified(r, name));
                }
                warnings = admitted.clone();
                let live = self
                    .to_request_version(t, &mut inst, vec![old.clone()])?
                    .remove(0);
                let mut new = defaulted.clone();
                record_update(t, &mut inst, &live, &mut new, subresource, opts);
                let new = self.to_storage_version(t, &mut inst, new)?;
                self.decide_update(
                    t,
                    &mut inst,
                    name,
                    new,
                    old,
                    subresource,
                    opts,
                    &mut warnings,
                )
            })
            .await?;
        let object = self.to_request_version(t, &mut inst, vec![out])?.remove(0);
        Ok(Outcome { object, warnings })
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
        let version = r.version(&t.version).ok_or_else(ApiError::path_not_found)?;
        let mut inst = hooks(|| t.plugin.instance())?;
        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let mut warnings = Vec::new();
        let out = self
            .guaranteed_update(t, name, &writes, OnConflict::Retry, |stored, rev| {
                warnings = Vec::new();
                let live = self
                    .to_request_version(t, &mut inst, vec![stored.clone()])?
                    .remove(0);
                let mut doc = live.clone();
                apply_patch(&mut doc, kind, patch, &version.merge_type)?;
                // A resourceVersion the patch sets is a precondition on the stored one.
                match doc["metadata"]["resourceVersion"].as_str() {
                    Some(rv) if rv != rev.to_string() => {
                        parse_body_rv(t, name, rv)?;
                        return Err(ApiError::modified(r, name));
                    }
                    _ => {}
                }
                if meta::name(&doc) != name {
                    return Err(meta::name_mismatch(meta::name(&doc), name));
                }
                let body = self.admit_body(t, doc, opts, &mut warnings)?;
                let mut defaulted = hooks(|| inst.default(body))?;
                record_update(t, &mut inst, &live, &mut defaulted, subresource, opts);
                let new = self.to_storage_version(t, &mut inst, defaulted)?;
                self.decide_update(
                    t,
                    &mut inst,
                    name,
                    new,
                    stored,
                    subresource,
                    opts,
                    &mut warnings,
                )
            })
            .await?;
        let object = self.to_request_version(t, &mut inst, vec![out])?.remove(0);
        Ok(Outcome { object, warnings })
    }

    /// What an update or patch does with `new` given the stored `old` (both in the
    /// storage version, `old` with its resourceVersion).
    #[allow(
        clippy::too_many_arguments,
        reason = "the parts of one update, each used once"
    )]
    pub(super) fn decide_update(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        name: &str,
        mut new: Value,
        old: Value,
        subresource: Option<&str>,
        opts: &WriteOptions,
        warnings: &mut Vec<String>,
    ) -> ApiResult<Action> {
        let r = t.resource();
        let old_meta = old["metadata"].clone();
        let new_uid = new["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if !new_uid.is_empty() && Some(new_uid.as_str()) != old_meta["uid"].as_str() {
            return Err(ApiError::invalid(
                r,
                name,
                &[FieldError::invalid(
                    "metadata.uid",
                    &json!(new_uid),
                    "field is immutable",
                )],
            ));
        }
        {
            let m = meta::meta_mut(&mut new);
            for f in SYSTEM_FIELDS {
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
                return Err(ApiError::invalid(r, name, &[FieldError::forbidden(
                    "metadata.finalizers",
                    format!("no new finalizers can be added if the object is being deleted, found new finalizers {added:?}"),
                )]));
            }
        }
        let req = t.request(Operation::Update, name, subresource, opts.dry_run);
        // The host owns managedFields: what a plugin's prepare does to them is undone.
        let managed = new["metadata"].get("managedFields").cloned();
        let mut new = hooks(|| inst.prepare_for_update(&req, new, &old))?;
        meta::set_managed_fields(&mut new, managed);
        let mut old_cmp = old.clone();
        if let Some(m) = old_cmp["metadata"].as_object_mut() {
            m.remove("resourceVersion");
        }
        if meta::spec_changed(&new, &old) {
            let g = old_meta["generation"].as_i64().unwrap_or(0) + 1;
            meta::meta_mut(&mut new).insert("generation".into(), json!(g));
        }
        let validation = hooks(|| inst.validate_update(&req, &new, &old))?;
        warnings.extend(validation.warnings);
        let mut errors: Vec<FieldError> = validation.errors.into_iter().map(Into::into).collect();
        errors.extend(meta::validate(&new, r.namespaced()));
        invalid_if(r, name, errors)?;
        self.admit_write(t, inst, req, Some(&new), Some(&old), warnings)?;

        Ok(if new == old_cmp {
            Action::Unchanged(old)
        } else if new["metadata"].get("deletionTimestamp").is_some()
            && new["metadata"]["finalizers"]
                .as_array()
                .is_none_or(|a| a.is_empty())
        {
            Action::Delete(new)
        } else {
            Action::Update(new)
        })
    }
}
