//! Discovery (`/apis`, `/apis/<group>`, `/apis/<group>/<version>`, aggregated v2) and
//! OpenAPI v2/v3 (one resource version's part is in [`super::openapi_schema`]), all
//! derived from the plugin catalog. Documents are built once per
//! catalog (see [`Documents`]) and served with ETags.

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::cmp::Ordering;

use super::openapi_schema::{list_schema, meta_schemas, object_schema, resource_paths, to_v2_refs};
use crate::plugin::{PluginCatalog, ResourceInfo, Scope, VersionInfo};

const VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: &[&str] = &["get", "patch", "update"];
/// A computed kind is read-only; it is watched when it derives from other kinds.
const COMPUTED_VERBS: &[&str] = &["get", "list"];
const DERIVED_VERBS: &[&str] = &["get", "list", "watch"];

/// A version's subresources as discovery lists them: name, the kind answered
/// (group, version, kind) and verbs.
fn subresources(
    r: &ResourceInfo,
    ver: &VersionInfo,
    group: &str,
) -> Vec<(String, Value, Vec<String>)> {
    let own = |kind: &str| json!({"group": group, "version": ver.name, "kind": kind});
    let verbs = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut out = Vec::new();
    if ver.status_subresource {
        out.push(("status".to_string(), own(&r.kind), verbs(STATUS_VERBS)));
    }
    if ver.scale.is_some() {
        out.push((
            "scale".to_string(),
            json!({"group": "autoscaling", "version": "v1", "kind": "Scale"}),
            verbs(STATUS_VERBS),
        ));
    }
    for sub in &ver.subresources {
        let kind = match sub.api_version.rsplit_once('/') {
            Some((g, v)) => json!({"group": g, "version": v, "kind": sub.kind}),
            None if sub.api_version.is_empty() => own(&sub.kind),
            None => json!({"group": "", "version": sub.api_version, "kind": sub.kind}),
        };
        out.push((
            sub.name.clone(),
            kind,
            sub.verbs.iter().map(|v| v.as_str().to_string()).collect(),
        ));
    }
    out
}

/// kube's version priority: GA before beta before alpha, higher numbers first, then
/// anything else alphabetically.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    fn parse(v: &str) -> Option<(u32, u8, u32)> {
        let rest = v.strip_prefix('v')?;
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
        let major = digits.parse().ok()?;
        let tail = &rest[digits.len()..];
        let (level, minor) = if tail.is_empty() {
            (2, 0)
        } else if let Some(m) = tail.strip_prefix("beta") {
            (1, m.parse().ok()?)
        } else if let Some(m) = tail.strip_prefix("alpha") {
            (0, m.parse().ok()?)
        } else {
            return None;
        };
        Some((major, level, minor))
    }
    match (parse(a), parse(b)) {
        (Some((ma, la, na)), Some((mb, lb, nb))) => lb.cmp(&la).then(mb.cmp(&ma)).then(nb.cmp(&na)),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => a.cmp(b),
    }
}

/// A group's served versions (priority order) and its preferred version.
pub fn group_versions(plugins: &[&ResourceInfo]) -> (Vec<String>, String) {
    let mut versions: Vec<String> = plugins
        .iter()
        .flat_map(|r| r.served_versions().map(|v| v.name.clone()))
        .collect();
    versions.sort_by(|a, b| compare_versions(a, b));
    versions.dedup();
    let preferred = plugins
        .iter()
        .map(|r| r.preferred_version.clone())
        .min_by(|a, b| compare_versions(a, b))
        .unwrap_or_default();
    // The preferred version first, as kube-apiserver lists it.
    versions.sort_by_key(|v| *v != preferred);
    (versions, preferred)
}

fn scope(r: &ResourceInfo) -> &'static str {
    match r.scope {
        Scope::Namespaced => "Namespaced",
        Scope::Cluster => "Cluster",
    }
}

/// Pre-rendered discovery and OpenAPI documents for one catalog.
pub struct Documents {
    pub group_list: Value,
    pub groups: Map<String, Value>,
    /// `group/version` → APIResourceList.
    pub resource_lists: Map<String, Value>,
    pub aggregated: Value,
    pub aggregated_etag: String,
    pub aggregated_legacy: Value,
    pub openapi_v2: Value,
    pub openapi_v2_etag: String,
    /// `group/version` → (document, hash).
    pub openapi_v3: Vec<(String, Value, String)>,
}

pub fn etag_of(v: &Value) -> String {
    let digest = Sha256::digest(v.to_string().as_bytes());
    hex::encode(&digest[..16]).to_uppercase()
}

impl Documents {
    /// The documents of `catalog`; `hashed` names the version each kind's
    /// `storageVersionHash` is computed from (the old one while a migration runs).
    pub fn build(catalog: &PluginCatalog, hashed: impl Fn(&ResourceInfo) -> String) -> Self {
        let mut group_list = Vec::new();
        let mut groups = Map::new();
        let mut resource_lists = Map::new();
        let mut aggregated_items = Vec::new();
        let mut definitions = Map::new();
        let mut v3 = Vec::new();
        for (group, plugins) in catalog.groups() {
            let infos: Vec<&ResourceInfo> = plugins.iter().map(|p| &p.resource).collect();
            let (versions, preferred) = group_versions(&infos);
            let gv = |v: &str| json!({"groupVersion": format!("{group}/{v}"), "version": v});
            let group_doc = json!({
                "name": group,
                "versions": versions.iter().map(|v| gv(v)).collect::<Vec<_>>(),
                "preferredVersion": gv(&preferred),
            });
            group_list.push(group_doc.clone());
            let mut g = group_doc;
            g["kind"] = json!("APIGroup");
            g["apiVersion"] = json!("v1");
            groups.insert(group.to_string(), g);

            let mut agg_versions = Vec::new();
            for v in &versions {
                let mut resources = Vec::new();
                let mut agg_resources = Vec::new();
                let mut schemas = Map::new();
                for r in infos.iter().filter(|r| r.served_version(v).is_some()) {
                    let ver = r.served_version(v).expect("filtered");
                    let verbs = match &r.computed {
                        None => VERBS,
                        Some(from) if from.is_empty() => COMPUTED_VERBS,
                        Some(_) => DERIVED_VERBS,
                    };
                    let mut main = json!({
                        "name": r.plural, "singularName": r.singular, "namespaced": r.namespaced(),
                        "kind": r.kind, "verbs": verbs, "shortNames": r.short_names,
                        "categories": r.categories,
                    });
                    if !r.is_computed() {
                        main["storageVersionHash"] = json!(storage_version_hash(r, &hashed(r)));
                    }
                    resources.push(main);
                    let mut agg = json!({
                        "resource": r.plural,
                        "responseKind": {"group": group, "version": v, "kind": r.kind},
                        "scope": scope(r), "singularResource": r.singular, "verbs": verbs,
                        "shortNames": r.short_names, "categories": r.categories,
                    });
                    let subs = subresources(r, ver, group);
                    for (name, kind, verbs) in &subs {
                        let mut entry = json!({
                            "name": format!("{}/{name}", r.plural), "singularName": "",
                            "namespaced": r.namespaced(), "kind": kind["kind"], "verbs": verbs,
                        });
                        if kind["group"] != group || kind["version"] != v.as_str() {
                            entry["group"] = kind["group"].clone();
                            entry["version"] = kind["version"].clone();
                        }
                        resources.push(entry);
                    }
                    if !subs.is_empty() {
                        agg["subresources"] = subs
                            .iter()
                            .map(|(name, kind, verbs)| {
                                json!({"subresource": name, "responseKind": kind, "verbs": verbs})
                            })
                            .collect();
                    }
                    agg_resources.push(agg);
                    let (name, schema) = object_schema(r, v, &ver.schema);
                    definitions.insert(name.clone(), schema.clone());
                    schemas.insert(name, schema);
                    let (list_name, list_schema) = list_schema(r, v);
                    definitions.insert(list_name.clone(), list_schema.clone());
                    schemas.insert(list_name, list_schema);
                }
                resource_lists.insert(
                    format!("{group}/{v}"),
                    json!({"kind": "APIResourceList", "apiVersion": "v1",
                           "groupVersion": format!("{group}/{v}"), "resources": resources}),
                );
                agg_versions.push(
                    json!({"version": v, "resources": agg_resources, "freshness": "Current"}),
                );
                for (n, s) in meta_schemas() {
                    schemas.insert(n, s);
                }
                let mut paths = Map::new();
                for r in infos.iter().filter(|r| r.served_version(v).is_some()) {
                    paths.extend(resource_paths(r, v));
                }
                let doc = json!({
                    "openapi": "3.0.0",
                    "info": {"title": "wasm-apiserver", "version": env!("CARGO_PKG_VERSION")},
                    "paths": paths,
                    "components": {"schemas": schemas},
                });
                let hash = etag_of(&doc);
                v3.push((format!("{group}/{v}"), doc, hash));
            }
            aggregated_items.push(json!({"metadata": {"name": group}, "versions": agg_versions}));
        }
        for (n, s) in meta_schemas() {
            definitions.insert(n, s);
        }
        let aggregated = json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2",
                                "metadata": {}, "items": aggregated_items});
        let openapi_v2 = json!({
            "swagger": "2.0",
            "info": {"title": "wasm-apiserver", "version": env!("CARGO_PKG_VERSION")},
            "paths": {},
            "definitions": to_v2_refs(Value::Object(definitions)),
        });
        Documents {
            group_list: json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": group_list}),
            groups,
            resource_lists,
            aggregated_etag: etag_of(&aggregated),
            aggregated,
            aggregated_legacy: json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": []}),
            openapi_v2_etag: etag_of(&openapi_v2),
            openapi_v2,
            openapi_v3: v3,
        }
    }
}

fn storage_version_hash(r: &ResourceInfo, version: &str) -> String {
    use base64::Engine as _;
    let d = Sha256::digest(format!("{}/{version}/{}", r.group, r.kind).as_bytes());
    base64::engine::general_purpose::STANDARD.encode(&d[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_as_kube_sorts_them() {
        let mut v = vec![
            "v1alpha1",
            "v2beta1",
            "v1",
            "v11alpha2",
            "foo",
            "v2",
            "v1beta2",
            "v10beta3",
        ];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(
            v,
            [
                "v2",
                "v1",
                "v10beta3",
                "v2beta1",
                "v1beta2",
                "v11alpha2",
                "v1alpha1",
                "foo"
            ]
        );
    }
}
