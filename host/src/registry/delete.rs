//! DELETE and DELETE on a collection. A delete first decides what state the object
//! goes to ([`Deletion`], from its finalizers and deletionTimestamp, after the
//! preconditions and `validate-delete`), then acts on that decision through
//! [`Registry::guaranteed_update`], as k8s.io/apiserver's store marks an object as
//! deleting or removes it.

use serde_json::{json, Value};

use super::dry_run::Writes;
use super::guaranteed_update::{Action, OnConflict};
use super::meta;
use super::options::{DeleteOptions, ListOptions, ListResult, Propagation};
use super::store::{hooks, invalid_if, Registry};
use super::target::Target;
use crate::api::{now_rfc3339, ApiError, ApiResult};
use crate::plugin::Operation;

/// The garbage collector's finalizers: a delete that orphans the dependents leaves
/// `orphan`, one that deletes them first leaves `foregroundDeletion`.
const ORPHAN: &str = "orphan";
const FOREGROUND: &str = "foregroundDeletion";

/// The finalizers an object keeps after a delete with `propagation`, as
/// k8s.io/apiserver's `deletionFinalizersForGarbageCollection`: the options decide;
/// without them a GC finalizer already there stays; then the kind's default.
fn finalizers_after_delete(
    existing: &[String],
    propagation: Option<Propagation>,
    default: Option<Propagation>,
) -> Vec<String> {
    let first_gc = existing.iter().find(|f| *f == ORPHAN || *f == FOREGROUND);
    let (orphan, foreground) = match propagation {
        Some(p) => (p == Propagation::Orphan, p == Propagation::Foreground),
        None => match first_gc.map(String::as_str) {
            Some(ORPHAN) => (true, false),
            Some(_) => (false, true),
            None => (
                default == Some(Propagation::Orphan),
                default == Some(Propagation::Foreground),
            ),
        },
    };
    let mut out: Vec<String> = existing
        .iter()
        .filter(|f| *f != ORPHAN && *f != FOREGROUND)
        .cloned()
        .collect();
    if orphan {
        out.push(ORPHAN.into());
    }
    if foreground {
        out.push(FOREGROUND.into());
    }
    out
}

/// What a DELETE does to an object, decided before anything is written (as
/// k8s.io/apiserver's store: finalizers for garbage collection, then `markAsDeleting`
/// or delete now).
#[derive(Debug, PartialEq, Eq)]
enum Deletion {
    /// Nothing to wait for: remove it now.
    Now,
    /// Finalizers remain (or change): these finalizers, `deletionTimestamp` stamped if
    /// it was not; the object stays until the last finalizer is removed (an update
    /// then removes it).
    MarkDeleting { finalizers: Vec<String> },
    /// Already being deleted, and this delete changes nothing: answer with it as is.
    AlreadyDeleting,
}

impl Deletion {
    /// What a delete with `propagation` does to `obj`; `default` is the kind's
    /// propagation when the request names none.
    fn of(obj: &Value, propagation: Option<Propagation>, default: Option<Propagation>) -> Deletion {
        let m = &obj["metadata"];
        let existing: Vec<String> = m["finalizers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect();
        let finalizers = finalizers_after_delete(&existing, propagation, default);
        let same = |a: &[String], b: &[String]| {
            a.iter().all(|f| b.contains(f)) && b.iter().all(|f| a.contains(f))
        };
        if finalizers.is_empty() {
            Deletion::Now
        } else if m.get("deletionTimestamp").is_none() || !same(&finalizers, &existing) {
            Deletion::MarkDeleting { finalizers }
        } else {
            Deletion::AlreadyDeleting
        }
    }
}

/// What a DELETE answered: the object's last state, and whether it is gone.
#[derive(Debug)]
pub struct Deleted {
    /// In the request's version.
    pub object: Value,
    /// False when finalizers keep the object (it now has a `deletionTimestamp`).
    pub removed: bool,
    /// What the plugin's `validate-delete` warned about.
    pub warnings: Vec<String>,
}

impl Registry {
    /// DELETE: honours preconditions, finalizers and the propagation policy. A
    /// quarantined plugin's kind is still deleted, without its hooks (validate-delete,
    /// admit): a broken build must not stall namespace deletion or garbage collection.
    pub async fn delete(&self, t: &Target, name: &str, opts: &DeleteOptions) -> ApiResult<Deleted> {
        let r = t.resource();
        let mut inst = match t.plugin.is_quarantined() {
            true => None,
            false => Some(hooks(|| t.plugin.instance())?),
        };
        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let on_conflict = match opts.precondition_rv {
            Some(_) => OnConflict::Fail,
            None => OnConflict::Retry,
        };
        let mut removed = false;
        let mut warnings = Vec::new();
        let out = self
            .guaranteed_update(t, name, &writes, on_conflict, |mut obj, rev| {
                removed = false;
                warnings.clear();
                if let Some(uid) = &opts.precondition_uid {
                    let actual = obj["metadata"]["uid"].as_str().unwrap_or_default();
                    if uid != actual {
                        return Err(ApiError::conflict_on_kind(r, name, &format!("the UID in the precondition ({uid}) does not match the UID in record ({actual}). The object might have been deleted and then recreated")));
                    }
                }
                if let Some(expected) = &opts.precondition_rv {
                    if *expected != rev.to_string() {
                        return Err(ApiError::conflict_on_kind(r, name, &format!("the ResourceVersion in the precondition ({expected}) does not match the ResourceVersion in record ({rev}). The object might have been modified")));
                    }
                }
                if let Some(inst) = inst.as_mut() {
                    let req = t.request(Operation::Delete, name, None, opts.dry_run);
                    let validation = hooks(|| inst.validate_delete(&req, &obj))?;
                    warnings.extend(validation.warnings);
                    invalid_if(r, name, validation.errors.into_iter().map(Into::into).collect())?;
                    self.admit_write(t, inst, req, None, Some(&obj), &mut warnings)?;
                }
                Ok(match Deletion::of(&obj, opts.propagation, r.default_propagation) {
                    Deletion::Now => {
                        removed = true;
                        Action::Delete(obj)
                    }
                    Deletion::AlreadyDeleting => Action::Unchanged(obj),
                    Deletion::MarkDeleting { finalizers } => {
                        let m = meta::meta_mut(&mut obj);
                        m.insert("finalizers".into(), json!(finalizers));
                        if !m.contains_key("deletionTimestamp") {
                            m.insert("deletionTimestamp".into(), Value::String(now_rfc3339()));
                            if let Some(g) = m.get("generation").and_then(Value::as_i64).filter(|g| *g > 0) {
                                m.insert("generation".into(), json!(g + 1));
                            }
                        }
                        m.insert("deletionGracePeriodSeconds".into(), json!(0));
                        Action::Update(obj)
                    }
                })
            })
            .await?;
        let object = match inst.as_mut() {
            Some(inst) => self.to_request_version(t, inst, vec![out])?.remove(0),
            None if t.version == r.storage_version => out,
            // No conversion without the plugin: kube's other answer to a delete.
            None => success_status(r, &out),
        };
        Ok(Deleted {
            object,
            removed,
            warnings,
        })
    }

    /// DELETE on a collection: delete every object the selectors match. For a
    /// quarantined plugin the objects are listed in the storage version (no hook).
    pub async fn delete_collection(
        &self,
        t: &Target,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> ApiResult<ListResult> {
        let listing = match t.plugin.is_quarantined() {
            true => t.in_version(&t.resource().storage_version),
            false => t.clone(),
        };
        let all = self
            .list(
                &listing,
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
            let namespace = obj["metadata"]["namespace"]
                .as_str()
                .map(str::to_string)
                .or(t.namespace.clone());
            match self.delete(&t.in_namespace(namespace), &name, opts).await {
                Ok(d) => deleted.push(d.object),
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
}

/// A `Status` of success naming the deleted object, as kube-apiserver answers a
/// delete of a kind that does not return the object.
pub fn success_status(r: &crate::api::ResourceInfo, obj: &Value) -> Value {
    json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
        "details": {"name": meta::name(obj), "group": r.group, "kind": r.plural,
                    "uid": obj["metadata"]["uid"]},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(finalizers: &[&str], deleting: bool) -> Value {
        let mut o = json!({"metadata": {"name": "a", "finalizers": finalizers}});
        if deleting {
            o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        }
        o
    }

    fn mark(f: &[&str]) -> Deletion {
        Deletion::MarkDeleting {
            finalizers: f.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn deletion_is_decided_from_finalizers_and_the_deletion_timestamp() {
        assert_eq!(
            Deletion::of(&json!({"metadata": {"name": "a"}}), None, None),
            Deletion::Now
        );
        assert_eq!(Deletion::of(&obj(&[], false), None, None), Deletion::Now);
        assert_eq!(
            Deletion::of(&obj(&["x.io/f"], false), None, None),
            mark(&["x.io/f"])
        );
        assert_eq!(
            Deletion::of(&obj(&["x.io/f"], true), None, None),
            Deletion::AlreadyDeleting
        );
    }

    #[test]
    fn the_propagation_policy_decides_the_garbage_collectors_finalizers() {
        use Propagation::*;
        // Orphan and Foreground keep the object with the GC's finalizer.
        assert_eq!(
            Deletion::of(&obj(&[], false), Some(Orphan), None),
            mark(&["orphan"])
        );
        assert_eq!(
            Deletion::of(&obj(&[], false), Some(Foreground), None),
            mark(&["foregroundDeletion"])
        );
        assert_eq!(
            Deletion::of(&obj(&[], false), Some(Background), None),
            Deletion::Now
        );
        // Other finalizers stay, in order; the GC's comes last.
        assert_eq!(
            Deletion::of(&obj(&["x.io/f"], false), Some(Orphan), None),
            mark(&["x.io/f", "orphan"])
        );
        // A second delete may switch the policy of an object being deleted...
        assert_eq!(
            Deletion::of(&obj(&["orphan"], true), Some(Foreground), None),
            mark(&["foregroundDeletion"])
        );
        // ...Background drops the GC's finalizer, so nothing holds the object...
        assert_eq!(
            Deletion::of(&obj(&["orphan"], true), Some(Background), None),
            Deletion::Now
        );
        // ...and without options the finalizer already there decides.
        assert_eq!(
            Deletion::of(&obj(&["orphan"], true), None, None),
            Deletion::AlreadyDeleting
        );
        assert_eq!(
            finalizers_after_delete(&["foregroundDeletion".into()], None, Some(Orphan)),
            ["foregroundDeletion"]
        );
        assert_eq!(finalizers_after_delete(&[], None, Some(Orphan)), ["orphan"]);
    }
}
