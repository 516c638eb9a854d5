//! Server-side apply (`application/apply-patch+yaml`) on the main resource and on
//! `/status`: the configuration is checked against the URL and schema like any body,
//! merged into the live object by the field manager (ownership, conflicts, removal of
//! what the manager stopped applying), then runs the update's pipeline; an apply that
//! changes neither the object nor its managed fields (a GitOps resync) answers the
//! stored object without running the plugin's hooks or writing. When the object does
//! not exist, the apply creates it (201), as kube-apiserver's does.

use serde_json::Value;

use super::create::Record;
use super::dry_run::Writes;
use super::field_manager::{self, empty_object};
use super::guaranteed_update::{Action, OnConflict};
use super::meta;
use super::options::{FieldValidation, Outcome, WriteOptions};
use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::{ApiError, ApiResult};

/// The configuration an apply sends: YAML (or JSON, which is YAML), one object.
pub(super) fn decode_config(body: &[u8]) -> ApiResult<Value> {
    let v: Value = serde_yaml::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML: {e}")))?;
    if !v.is_object() {
        return Err(ApiError::bad_request(
            "error decoding YAML: the apply configuration is not an object",
        ));
    }
    Ok(v)
}

impl Registry {
    /// Apply `body` to `name` (or its status) for `opts`' field manager. Returns the
    /// outcome and whether the apply created the object.
    pub async fn apply(
        &self,
        t: &Target,
        name: &str,
        body: &[u8],
        subresource: Option<&str>,
        opts: &WriteOptions,
    ) -> ApiResult<(Outcome, bool)> {
        let mut config = decode_config(body)?;
        let sent = config["apiVersion"].as_str().unwrap_or_default();
        if !sent.is_empty() && sent != t.api_version() {
            return Err(ApiError::bad_request(format!(
                "Incorrect version specified in apply patch. Specified patch version: {sent}, expected: {}",
                t.api_version()
            )));
        }
        meta::name_from_url(&mut config, name)?;
        let mut admitted = Vec::new();
        let partial = WriteOptions {
            partial: true,
            ..opts.clone()
        };
        let config = self.admit_body(t, config, &partial, &mut admitted)?;
        // The merged object is checked whole, its unknown fields already settled.
        let whole = WriteOptions {
            field_validation: FieldValidation::Ignore,
            ..opts.clone()
        };
        let mut inst = hooks(|| t.plugin.instance())?;
        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let mut warnings = Vec::new();
        let updated = self
            .guaranteed_update(t, name, &writes, OnConflict::Retry, |stored, rev| {
                warnings = admitted.clone();
                let live = self
                    .to_request_version(t, &mut inst, vec![stored.clone()])?
                    .remove(0);
                if let Some(rv) = config["metadata"]["resourceVersion"]
                    .as_str()
                    .filter(|rv| !rv.is_empty())
                {
                    meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
                    if rv != rev.to_string() {
                        return Err(ApiError::modified(t.resource(), name));
                    }
                }
                let merged = field_manager::apply(t, &mut inst, &live, &config, subresource, opts)?;
                if merged == live {
                    // A resync: the configuration is what is stored and owned as recorded.
                    // Nothing to default, validate or admit: the stored object stands.
                    return Ok(Action::Unchanged(stored));
                }
                // The merged object is a whole one: the schema's `required` holds again.
                let merged = self.admit_body(t, merged, &whole, &mut Vec::new())?;
                let managed = merged["metadata"].get("managedFields").cloned();
                let mut defaulted = hooks(|| inst.default(merged))?;
                meta::set_managed_fields(&mut defaulted, managed);
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
            .await;
        match updated {
            Ok(out) => {
                let object = self.to_request_version(t, &mut inst, vec![out])?.remove(0);
                Ok((Outcome { object, warnings }, false))
            }
            Err(e) if e.code == 404 && subresource.is_none() => {
                let empty = empty_object(t, name);
                let merged =
                    field_manager::apply(t, &mut inst, &empty, &config, subresource, opts)?;
                let merged = self.admit_body(t, merged, &whole, &mut Vec::new())?;
                drop(inst);
                let out = self
                    .create_admitted(t, merged, opts, Record::Done, admitted)
                    .await?;
                Ok((out, true))
            }
            Err(e) => Err(e),
        }
    }
}
