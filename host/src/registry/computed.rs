//! Computed kinds: no storage; the plugin's `compute` makes the objects from reads
//! (as metrics-server's PodMetrics). The host checks what it returns, then selects,
//! sorts (by namespace and name), pages and prints exactly as for stored kinds. Writes
//! are 405 MethodNotAllowed (the HTTP layer refuses them).

use serde_json::Value;

use super::continue_token;
use super::meta;
use super::options::{ListOptions, ListResult};
use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::{selectors, ApiError, ApiResult};
use crate::plugin::ComputeRequest;

impl Registry {
    /// Ask the plugin for the objects (all in the namespace, or the one named), and
    /// check that each is of the kind and version asked, in the namespace asked.
    fn compute(&self, t: &Target, name: Option<&str>) -> ApiResult<Vec<Value>> {
        let r = t.resource();
        let req = ComputeRequest {
            user: t.user.clone(),
            namespace: t.namespace.clone().filter(|_| r.namespaced()),
            name: name.map(str::to_string),
            version: t.version.clone(),
        };
        let answer = hooks(|| {
            let mut inst = t.plugin.instance()?;
            inst.compute(&req, &self.reads)
        })?;
        let objs = answer
            .map_err(|d| ApiError::denied(r, name.unwrap_or_default(), d.code, &d.message))?;
        let api_version = t.api_version();
        for o in &objs {
            let ns = o["metadata"]["namespace"].as_str();
            let wrong = if o["apiVersion"] != api_version.as_str() || o["kind"] != r.kind.as_str() {
                Some(format!("is not a {api_version} {}", r.kind))
            } else if meta::name(o).is_empty() {
                Some("has no metadata.name".to_string())
            } else if r.namespaced() && ns.is_none_or(str::is_empty) {
                Some("has no metadata.namespace".to_string())
            } else if t.namespace.is_some() && ns != t.namespace.as_deref() {
                Some(format!("is in namespace {ns:?}, not {:?}", t.namespace))
            } else {
                None
            };
            if let Some(why) = wrong {
                return Err(ApiError::internal(format!(
                    "plugin {}: compute returned an object that {why}",
                    t.plugin.name
                )));
            }
        }
        Ok(objs)
    }

    /// GET of a computed object.
    pub async fn computed_get(&self, t: &Target, name: &str) -> ApiResult<Value> {
        self.compute(t, Some(name))?
            .into_iter()
            .find(|o| meta::name(o) == name)
            .ok_or_else(|| ApiError::not_found(t.resource(), name))
    }

    /// LIST of a computed kind: selectors, sorted by namespace and name, `limit` and
    /// `continue` (the token carries the last key; each page is computed afresh).
    pub async fn computed_list(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        opts.validate()?;
        let revision = self
            .storage
            .current_revision()
            .await
            .map_err(|e| ApiError::from_storage(e, t.resource(), ""))?;
        let key = |o: &Value| {
            format!(
                "{}/{}",
                o["metadata"]["namespace"].as_str().unwrap_or_default(),
                meta::name(o)
            )
        };
        let mut items: Vec<(String, Value)> = self
            .compute(t, None)?
            .into_iter()
            .filter(|o| selectors::matches(&opts.labels, &opts.fields, o))
            .map(|o| (key(&o), o))
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        if let Some(token) = opts.continue_token.as_deref().filter(|c| !c.is_empty()) {
            let (_, after) = continue_token::decode(token)?;
            items.retain(|(k, _)| *k > after);
        }
        let mut continue_token = None;
        if let Some(limit) = opts.limit.filter(|l| *l > 0 && *l < items.len()) {
            items.truncate(limit);
            continue_token = items
                .last()
                .map(|(k, _)| continue_token::encode(revision, k));
        }
        Ok(ListResult {
            items: items.into_iter().map(|(_, o)| o).collect(),
            resource_version: revision,
            continue_token,
        })
    }
}
