//! NamespaceLifecycle, as kube-apiserver's admission plugin (the sample apiserver
//! enables it): a create in a namespace that does not exist is 404 NotFound, and in a
//! namespace being terminated 403 Forbidden, with kube's messages. It needs the
//! cluster's namespaces: it is on when the server has an upstream cluster (it follows
//! `--namespace-source`, `v1/namespaces` by default); standalone, the server says at
//! start that it is off.

use serde_json::json;

use super::store::Registry;
use super::target::Target;
use super::NamespaceState;
use crate::api::{ApiError, ApiResult};

impl Registry {
    /// Refuse a create of `name` in the target's namespace when that namespace is
    /// missing or terminating.
    pub(super) async fn namespace_lifecycle(&self, t: &Target, name: &str) -> ApiResult<()> {
        let (Some(upstream), Some(source)) = (&self.upstream, &self.namespaces) else {
            return Ok(());
        };
        let r = t.resource();
        let Some(ns) = t.namespace.as_deref().filter(|_| r.namespaced()) else {
            return Ok(());
        };
        match upstream.namespace(source, ns).await {
            Ok(NamespaceState::Active) => Ok(()),
            Ok(NamespaceState::Missing) => {
                Err(
                    ApiError::new(404, "NotFound", format!("namespaces {ns:?} not found"))
                        .with_details(json!({"name": ns, "kind": "namespaces"})),
                )
            }
            Ok(NamespaceState::Terminating) => {
                let mut e = ApiError::forbidden(
                    r,
                    name,
                    &format!(
                        "unable to create new content in namespace {ns} because it is being terminated"
                    ),
                );
                e.details = Some(json!({
                    "name": name, "group": r.group, "kind": r.plural,
                    "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}],
                }));
                Err(e)
            }
            Err(e) => {
                tracing::warn!(namespace = ns, error = ?e, "NamespaceLifecycle: cannot read the namespace");
                Err(ApiError::forbidden(
                    r,
                    name,
                    "not yet ready to handle request",
                ))
            }
        }
    }
}
