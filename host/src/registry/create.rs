//! CREATE, in k8s.io/apiserver's `BeforeCreate` order: admit the body → `default` →
//! managed fields → the storage version → system metadata → `prepare-for-create` → `validate-create` and
//! ObjectMeta validation → store (dry runs stop before the write) → the request's version.

use serde_json::{json, Value};

use super::dry_run::Writes;
use super::field_manager::{empty_object, record_update};
use super::meta;
use super::options::{Outcome, WriteOptions};
use super::store::{encode, hooks, invalid_if, set_rv, Registry};
use super::target::Target;
use crate::api::{now_rfc3339, ApiError, ApiResult, FieldError};
use crate::plugin::Operation;
use crate::storage::StorageError;

/// How often a name drawn from `generateName` is redrawn after colliding.
const GENERATE_NAME_ATTEMPTS: usize = 8;

/// Whether a create records its manager's fields as an update, or they were recorded
/// already (a create by apply).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Record {
    Update,
    Done,
}

impl Registry {
    pub async fn create(&self, t: &Target, body: Value, opts: &WriteOptions) -> ApiResult<Outcome> {
        let mut warnings = Vec::new();
        let body = self.admit_body(t, body, opts, &mut warnings)?;
        self.create_admitted(t, body, opts, Record::Update, warnings)
            .await
    }

    /// Create from a body already admitted against the URL and schema.
    pub(super) async fn create_admitted(
        &self,
        t: &Target,
        body: Value,
        opts: &WriteOptions,
        record: Record,
        mut warnings: Vec<String>,
    ) -> ApiResult<Outcome> {
        let r = t.resource();
        if body["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::bad_request(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let mut inst = hooks(|| t.plugin.instance())?;
        let applied = body["metadata"].get("managedFields").cloned();
        let mut obj = hooks(|| inst.default(body))?;
        match record {
            Record::Update => {
                let empty = empty_object(t, meta::name(&obj));
                record_update(t, &mut inst, &empty, &mut obj, None, opts);
            }
            // Recorded by the apply: what `default` did to them is undone.
            Record::Done => meta::set_managed_fields(&mut obj, applied),
        }
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
        let managed = obj["metadata"].get("managedFields").cloned();
        let mut obj = hooks(|| inst.prepare_for_create(&req, obj))?;
        meta::set_managed_fields(&mut obj, managed);
        let validation = hooks(|| inst.validate_create(&req, &obj))?;
        warnings.extend(validation.warnings);
        let mut errors: Vec<FieldError> = validation.errors.into_iter().map(Into::into).collect();
        errors.extend(meta::validate(&obj, r.namespaced()));
        invalid_if(r, &name, errors)?;
        self.namespace_lifecycle(t, &name).await?;
        self.admit_write(t, &mut inst, req, Some(&obj), None, &mut warnings)?;

        let writes = Writes {
            storage: self.storage.as_ref(),
            dry_run: opts.dry_run,
        };
        let mut attempt = 0;
        loop {
            let name = meta::name(&obj).to_string();
            match writes.create(&t.key(&name), encode(&obj)).await {
                Ok(rev) => {
                    if let Some(rev) = rev {
                        set_rv(&mut obj, rev);
                    }
                    break;
                }
                // A generated name collided: draw another, as kube-apiserver does.
                Err(StorageError::AlreadyExists { .. })
                    if !named && attempt < GENERATE_NAME_ATTEMPTS =>
                {
                    attempt += 1;
                    meta::meta_mut(&mut obj)
                        .insert("name".into(), Value::String(meta::generate_name(&generate)));
                }
                Err(e) => return Err(ApiError::from_storage(e, r, &name)),
            }
        }
        let object = self.to_request_version(t, &mut inst, vec![obj])?.remove(0);
        Ok(Outcome { object, warnings })
    }
}
