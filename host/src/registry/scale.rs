//! The `scale` subresource, as kube-apiserver serves it for custom resources: an
//! `autoscaling/v1` Scale made from the paths a version declares (`spec-replicas-path`,
//! `status-replicas-path`, `label-selector-path`). A write sets the desired replicas
//! in the object, in the request's version, records it in managedFields under the
//! `scale` subresource (an apply there owns the replicas path), and runs the update of
//! the main object with `subresource: scale` (its hooks and admission included).

use serde_json::{json, Value};

use super::apply::decode_config;
use super::dry_run::Writes;
use super::field_manager::{self, empty_object, record_update};
use super::guaranteed_update::OnConflict;
use super::meta;
use super::options::{Outcome, PatchType, WriteOptions};
use super::store::{hooks, Registry};
use super::target::Target;
use super::update::apply_patch;
use crate::api::resource::ScaleInfo;
use crate::api::{ApiError, ApiResult, FieldError};
use structured_merge::Type;

/// What a write to `/scale` asks for.
pub enum ScaleChange<'a> {
    /// PUT: this Scale.
    Replace(Value),
    /// PATCH: this patch of the current Scale (an apply included: the Scale's replicas
    /// are applied to the object's replicas path under the `scale` subresource).
    Patch(PatchType, &'a [u8]),
}

/// The value at a simple JSONPath (`.spec.replicas`).
fn at<'v>(obj: &'v Value, path: &str) -> Option<&'v Value> {
    path.trim_start_matches('.')
        .split('.')
        .try_fold(obj, |cur, seg| cur.get(seg))
}

/// Set the value at a simple JSONPath, creating the objects on the way.
fn set_at(obj: &mut Value, path: &str, value: Value) {
    let segs: Vec<&str> = path.trim_start_matches('.').split('.').collect();
    let mut cur = obj;
    for seg in &segs[..segs.len() - 1] {
        if !cur[*seg].is_object() {
            cur[*seg] = json!({});
        }
        cur = &mut cur[*seg];
    }
    cur[segs[segs.len() - 1]] = value;
}

/// The Scale of `obj` (in the version whose paths `info` gives).
fn scale_of(obj: &Value, info: &ScaleInfo) -> Value {
    let m = &obj["metadata"];
    let mut meta = json!({});
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(f) {
            meta[f] = v.clone();
        }
    }
    let replicas = |p: &str| at(obj, p).and_then(Value::as_i64).unwrap_or(0);
    let mut status = json!({"replicas": replicas(&info.status_replicas_path)});
    if let Some(sel) = info
        .label_selector_path
        .as_deref()
        .and_then(|p| at(obj, p))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        status["selector"] = json!(sel);
    }
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": meta,
        "spec": {"replicas": replicas(&info.spec_replicas_path)}, "status": status,
    })
}

/// The desired replicas of a Scale a client sent: an int32 ≥ 0, as `ValidateScale`.
fn desired_replicas(scale: &Value, name: &str) -> ApiResult<i64> {
    let invalid = |value: &Value, detail: &str| {
        ApiError::invalid_kind(
            "autoscaling",
            "Scale",
            name,
            &[FieldError::invalid("spec.replicas", value, detail)],
        )
    };
    let kind = scale["kind"].as_str().unwrap_or("Scale");
    let api_version = scale["apiVersion"].as_str().unwrap_or("autoscaling/v1");
    if kind != "Scale" || api_version != "autoscaling/v1" {
        return Err(ApiError::bad_request(format!(
            "the body must be an autoscaling/v1 Scale, not {api_version} {kind}"
        )));
    }
    let replicas = &scale["spec"]["replicas"];
    match replicas {
        Value::Null => Ok(0),
        v => match v.as_i64() {
            Some(n) if n < 0 => Err(invalid(v, "must be greater than or equal to 0")),
            Some(n) if n <= i64::from(i32::MAX) => Ok(n),
            _ => Err(invalid(v, "must be a 32-bit integer")),
        },
    }
}

impl Registry {
    /// The scale paths of the target's version; 404 when it has no scale subresource.
    fn scale_info(t: &Target) -> ApiResult<ScaleInfo> {
        t.resource()
            .served_version(&t.version)
            .and_then(|v| v.scale.clone())
            .ok_or_else(ApiError::path_not_found)
    }

    /// GET `/scale`.
    pub async fn get_scale(&self, t: &Target, name: &str) -> ApiResult<Value> {
        let info = Self::scale_info(t)?;
        let obj = self.get(t, name, None).await?;
        Ok(scale_of(&obj, &info))
    }

    /// PUT or PATCH `/scale`: the new Scale.
    pub async fn update_scale(
        &self,
        t: &Target,
        name: &str,
        change: ScaleChange<'_>,
        opts: &WriteOptions,
    ) -> ApiResult<Outcome> {
        let info = Self::scale_info(t)?;
        let mut inst = hooks(|| t.plugin.instance())?;
        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let mut warnings = Vec::new();
        let out = self
            .guaranteed_update(t, name, &writes, OnConflict::Retry, |stored, rev| {
                warnings.clear();
                let live = self
                    .to_request_version(t, &mut inst, vec![stored.clone()])?
                    .remove(0);
                let wanted = match &change {
                    ScaleChange::Replace(body) => body.clone(),
                    ScaleChange::Patch(PatchType::Apply, body) => decode_config(body)?,
                    ScaleChange::Patch(kind, patch) => {
                        let mut s = scale_of(&live, &info);
                        apply_patch(&mut s, *kind, patch, &Type::Untyped)?;
                        s
                    }
                };
                match wanted["metadata"]["name"].as_str() {
                    None | Some("") => {}
                    Some(n) if n == name => {}
                    Some(n) => return Err(meta::name_mismatch(n, name)),
                }
                // A resourceVersion in the Scale is a precondition on the object's.
                if let Some(rv) = wanted["metadata"]["resourceVersion"]
                    .as_str()
                    .filter(|rv| !rv.is_empty())
                {
                    meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
                    if rv != rev.to_string() {
                        return Err(ApiError::modified(t.resource(), name));
                    }
                }
                let replicas = desired_replicas(&wanted, name)?;
                let doc = match &change {
                    ScaleChange::Patch(PatchType::Apply, _) => {
                        // A Scale that leaves replicas out applies nothing to them.
                        let mut config = empty_object(t, name);
                        if !wanted["spec"]["replicas"].is_null() {
                            set_at(&mut config, &info.spec_replicas_path, json!(replicas));
                        }
                        field_manager::apply(t, &mut inst, &live, &config, Some("scale"), opts)?
                    }
                    _ => {
                        let mut doc = live.clone();
                        set_at(&mut doc, &info.spec_replicas_path, json!(replicas));
                        record_update(t, &mut inst, &live, &mut doc, Some("scale"), opts);
                        doc
                    }
                };
                let new = self.to_storage_version(t, &mut inst, doc)?;
                self.decide_update(
                    t,
                    &mut inst,
                    name,
                    new,
                    stored,
                    Some("scale"),
                    opts,
                    &mut warnings,
                )
            })
            .await?;
        let object = self.to_request_version(t, &mut inst, vec![out])?.remove(0);
        Ok(Outcome {
            object: scale_of(&object, &info),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> ScaleInfo {
        ScaleInfo {
            spec_replicas_path: ".spec.parallelism".into(),
            status_replicas_path: ".status.running".into(),
            label_selector_path: Some(".status.selector".into()),
        }
    }

    #[test]
    fn a_scale_is_made_from_the_declared_paths() {
        let obj = json!({"metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7", "labels": {"a": "b"}},
                         "spec": {"parallelism": 3}, "status": {"running": 2, "selector": "app=p"}});
        assert_eq!(
            scale_of(&obj, &info()),
            json!({"kind": "Scale", "apiVersion": "autoscaling/v1",
                   "metadata": {"name": "p", "namespace": "ns", "resourceVersion": "7"},
                   "spec": {"replicas": 3}, "status": {"replicas": 2, "selector": "app=p"}})
        );
        // Missing fields read as 0 and no selector.
        let bare = scale_of(&json!({"metadata": {"name": "p"}}), &info());
        assert_eq!(bare["spec"]["replicas"], 0);
        assert_eq!(bare["status"], json!({"replicas": 0}));
    }

    #[test]
    fn replicas_are_set_creating_the_path() {
        let mut obj = json!({"metadata": {}});
        set_at(&mut obj, ".spec.parallelism", json!(4));
        assert_eq!(obj["spec"]["parallelism"], 4);
    }

    #[test]
    fn negative_or_huge_replicas_are_invalid() {
        let e = desired_replicas(&json!({"spec": {"replicas": -1}}), "p").unwrap_err();
        assert_eq!(e.code, 422);
        assert_eq!(
            e.message,
            "Scale.autoscaling \"p\" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0"
        );
        assert_eq!(
            desired_replicas(&json!({"spec": {"replicas": 1u64 << 40}}), "p")
                .unwrap_err()
                .code,
            422
        );
        assert_eq!(
            desired_replicas(&json!({"kind": "Deployment", "spec": {"replicas": 1}}), "p")
                .unwrap_err()
                .code,
            400
        );
        assert_eq!(
            desired_replicas(&json!({"spec": {"replicas": 5}}), "p").unwrap(),
            5
        );
    }
}
