//! What a plugin's `describe()` says, checked once at load time and kept in host types.

use super::bindings::wasm_apiserver::plugin::types as wit;
use serde_json::Value;

use crate::api::resource::{
    is_dns_label, is_dns_subdomain, PrinterColumn, ResourceInfo, Scope, VersionInfo,
};

impl ResourceInfo {
    /// Check a describe() answer; the error lists every problem found.
    pub(crate) fn from_wit(r: wit::Resource) -> Result<Self, String> {
        let mut problems = Vec::new();
        if !is_dns_subdomain(&r.group) || !r.group.contains('.') {
            problems.push(format!(
                "group {:?} must be a DNS subdomain with at least one dot (e.g. example.com)",
                r.group
            ));
        }
        if !is_kind(&r.kind) {
            problems.push(format!(
                "kind {:?} must be UpperCamelCase letters and digits",
                r.kind
            ));
        }
        if !is_kind(&r.list_kind) {
            problems.push(format!(
                "listKind {:?} must be UpperCamelCase letters and digits",
                r.list_kind
            ));
        }
        for (what, name) in [("plural", &r.plural), ("singular", &r.singular)] {
            if !is_dns_label(name) {
                problems.push(format!(
                    "{what} {name:?} must be a lowercase DNS-1035 label"
                ));
            }
        }
        for s in &r.short_names {
            if !is_dns_label(s) {
                problems.push(format!(
                    "short name {s:?} must be a lowercase DNS-1035 label"
                ));
            }
        }
        let mut versions = Vec::new();
        for v in &r.versions {
            if !is_dns_label(&v.name) {
                problems.push(format!(
                    "version {:?} must be a lowercase DNS-1035 label",
                    v.name
                ));
            }
            if r.versions.iter().filter(|o| o.name == v.name).count() > 1 {
                problems.push(format!("version {:?} is declared more than once", v.name));
            }
            let schema = match serde_json::from_str::<Value>(&v.schema) {
                Ok(s) if s.is_object() => s,
                Ok(_) => {
                    problems.push(format!(
                        "the schema of version {:?} is not a JSON object",
                        v.name
                    ));
                    Value::Null
                }
                Err(e) => {
                    problems.push(format!(
                        "the schema of version {:?} is not JSON: {e}",
                        v.name
                    ));
                    Value::Null
                }
            };
            versions.push(VersionInfo {
                name: v.name.clone(),
                served: v.served,
                storage: v.storage,
                deprecation_warning: v.deprecation_warning.clone(),
                schema,
                printer_columns: v
                    .printer_columns
                    .iter()
                    .map(|c| PrinterColumn {
                        name: c.name.clone(),
                        type_: c.type_.clone(),
                        format: c.format.clone(),
                        description: c.description.clone(),
                        priority: c.priority,
                        json_path: c.json_path.clone(),
                    })
                    .collect(),
                status_subresource: v.status_subresource,
            });
        }
        let storage: Vec<_> = versions.iter().filter(|v| v.storage).collect();
        let storage_version = match storage.as_slice() {
            [one] => one.name.clone(),
            [] => {
                problems.push(
                    "no version is marked as the storage version (exactly one must be)".into(),
                );
                String::new()
            }
            many => {
                let names: Vec<_> = many.iter().map(|v| v.name.as_str()).collect();
                problems.push(format!(
                    "versions {names:?} are all marked as storage versions (exactly one must be)"
                ));
                String::new()
            }
        };
        if !versions.iter().any(|v| v.served) {
            problems.push("no version is served".into());
        }
        let preferred_version = r
            .preferred_version
            .clone()
            .unwrap_or_else(|| storage_version.clone());
        if r.preferred_version.is_some()
            && !versions
                .iter()
                .any(|v| v.served && v.name == preferred_version)
        {
            problems.push(format!(
                "preferred version {preferred_version:?} is not a served version"
            ));
        }
        if !problems.is_empty() {
            return Err(format!("invalid describe(): {}", problems.join("; ")));
        }
        Ok(ResourceInfo {
            group: r.group,
            kind: r.kind,
            list_kind: r.list_kind,
            plural: r.plural,
            singular: r.singular,
            short_names: r.short_names,
            categories: r.categories,
            scope: match r.scope {
                wit::Scope::Namespaced => Scope::Namespaced,
                wit::Scope::Cluster => Scope::Cluster,
            },
            versions,
            storage_version,
            preferred_version,
            selectable_fields: r.selectable_fields,
        })
    }
}

fn is_kind(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}
