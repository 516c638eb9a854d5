//! The read verbs: GET and LIST (from storage, or from the watch cache when any recent
//! state will do), and the Table cells of what was read.

use serde_json::Value;

use super::continue_token;
use super::meta;
use super::options::{ListOptions, ListResult};
use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::selectors;
use crate::api::{ApiError, ApiResult};
use crate::storage::{ListRequest, StorageError};

impl Registry {
    /// Read one object. `resourceVersion` unset reads storage (the latest, consistent);
    /// `0` is any state (the watch cache answers); `N` is a state not older than `N`
    /// (the watch cache, once it has reached `N`), as kube-apiserver serves them.
    pub async fn get(
        &self,
        t: &Target,
        name: &str,
        resource_version: Option<&str>,
    ) -> ApiResult<Value> {
        let r = t.resource();
        if let Some(rv) = resource_version.filter(|rv| !rv.is_empty()) {
            let min = meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
            let obj = self
                .cacher(t)
                .get(&t.key(name), min)
                .await?
                .ok_or_else(|| ApiError::not_found(r, name))?;
            return Ok(self
                .in_request_version(t, vec![obj.value.clone()])?
                .remove(0));
        }
        let stored = self
            .storage
            .get(&t.key(name))
            .await
            .map_err(|e| ApiError::from_storage(e, r, name))?
            .ok_or_else(|| ApiError::not_found(r, name))?;
        let obj = self.decode_stored(t, &stored)?;
        Ok(self.in_request_version(t, vec![obj])?.remove(0))
    }

    /// LIST: selectors, `limit`/`continue`, and resourceVersion semantics.
    pub async fn list(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        opts.validate()?;
        let r = t.resource();
        let prefix = t.prefix();
        let (mut at, mut start) = (None, None);
        if let Some(token) = opts.continue_token.as_deref().filter(|c| !c.is_empty()) {
            if opts
                .resource_version
                .as_deref()
                .is_some_and(|rv| !rv.is_empty() && rv != "0")
            {
                return Err(ApiError::bad_request(
                    "specifying resource version is not allowed when using continue",
                ));
            }
            let (rv, s) = continue_token::decode(token)?;
            at = Some(rv);
            start = Some(format!("{prefix}{s}"));
        } else if let Some(rv) = opts
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty() && *rv != "0")
        {
            let rv = meta::parse_resource_version(rv).map_err(ApiError::bad_request)?;
            if opts.resource_version_match.as_deref() == Some("Exact") {
                at = Some(rv);
            } else {
                let current = self
                    .storage
                    .current_revision()
                    .await
                    .map_err(|e| ApiError::from_storage(e, r, ""))?;
                if rv > current {
                    return Err(ApiError::from_storage(
                        StorageError::TooLarge {
                            requested: rv,
                            current,
                        },
                        r,
                        "",
                    ));
                }
            }
        }

        let from_cache = opts.continue_token.as_deref().is_none_or(str::is_empty)
            && opts.resource_version.as_deref() == Some("0");
        if from_cache {
            return self.list_from_cache(t, opts).await;
        }
        let limit = opts.limit.filter(|l| *l > 0);
        let filtering = !opts.labels.is_empty() || !opts.fields.is_empty();
        let mut items = Vec::new();
        let mut next_token = None;
        let mut list_rv;
        loop {
            let want = limit.map(|l| l - items.len());
            let page = self
                .storage
                .list(ListRequest { prefix: prefix.clone(), start: start.clone(), limit: want.map(|w| if filtering { w.max(64) } else { w }), revision: at })
                .await
                .map_err(|e| match e {
                    StorageError::Expired { .. } if opts.continue_token.is_some() => ApiError::expired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list."),
                    e => ApiError::from_storage(e, r, ""),
                })?;
            list_rv = page.revision;
            at = Some(page.revision);
            let mut last_key = None;
            let mut stopped_early = false;
            for s in &page.items {
                if limit.is_some_and(|l| items.len() >= l) {
                    stopped_early = true;
                    break;
                }
                last_key = Some(s.key.clone());
                let obj = self.decode_stored(t, s)?;
                if selectors::matches(&opts.labels, &opts.fields, &obj) {
                    items.push(obj);
                }
            }
            let more = page.more || stopped_early;
            if !more {
                break;
            }
            let Some(last) = last_key else {
                return Err(ApiError::internal(
                    "storage said more items remain after an empty page",
                ));
            };
            if limit.is_some_and(|l| items.len() >= l) {
                next_token = Some(continue_token::encode(
                    page.revision,
                    &format!(
                        "{}\u{0}",
                        last.strip_prefix(prefix.as_str()).unwrap_or(&last)
                    ),
                ));
                break;
            }
            start = Some(format!("{last}\u{0}"));
        }
        Ok(ListResult {
            items: self.in_request_version(t, items)?,
            resource_version: list_rv,
            continue_token: next_token,
        })
    }

    /// A list at `resourceVersion=0`: any recent state will do, so the watch cache
    /// answers without touching storage. As kube-apiserver's cache did, it ignores
    /// `limit` and returns everything in one page.
    async fn list_from_cache(&self, t: &Target, opts: &ListOptions) -> ApiResult<ListResult> {
        let (objs, rev) = self.cacher(t).list(&t.prefix()).await?;
        let items: Vec<Value> = objs
            .iter()
            .filter(|o| selectors::matches(&opts.labels, &opts.fields, &o.value))
            .map(|o| o.value.clone())
            .collect();
        Ok(ListResult {
            items: self.in_request_version(t, items)?,
            resource_version: rev,
            continue_token: None,
        })
    }

    /// Table cells for objects read in the request's version. Objects the watch cache
    /// holds at the same revision print through it, which remembers the cells; the
    /// others print in one call.
    /// A quarantined plugin prints nothing: its columns are empty (`<none>`), the
    /// name and age are still there.
    pub fn print(&self, t: &Target, objs: &[Value]) -> ApiResult<Vec<Vec<crate::plugin::Cell>>> {
        if objs.is_empty() || t.plugin.is_quarantined() {
            return Ok(vec![Vec::new(); objs.len()]);
        }
        self.through_cache(
            t,
            objs,
            |cacher, hits, version| cacher.rows(hits, version),
            |objs| Ok(hooks(|| t.plugin.instance()?.print(objs))?),
        )
    }
}
