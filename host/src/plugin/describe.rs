//! What a plugin's `describe()` says, checked once at load time and kept in host types.

use super::wit;
use serde_json::Value;

use crate::api::resource::{
    is_dns_label, is_dns_subdomain, PrinterColumn, Propagation, ResourceInfo, ResourceRef,
    ScaleInfo, Scope, SubresourceInfo, SubresourceVerb, VersionInfo,
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
            let merge_type = match structured_merge::Type::object(&schema) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(format!("the schema of version {:?}: {e}", v.name));
                    structured_merge::Type::Untyped
                }
            };
            versions.push(VersionInfo {
                name: v.name.clone(),
                served: v.served,
                storage: v.storage,
                deprecation_warning: v.deprecation_warning.clone(),
                schema,
                merge_type: std::sync::Arc::new(merge_type),
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
                scale: v.scale.as_ref().map(|sc| ScaleInfo {
                    spec_replicas_path: sc.spec_replicas_path.clone(),
                    status_replicas_path: sc.status_replicas_path.clone(),
                    label_selector_path: sc.label_selector_path.clone(),
                }),
                subresources: v
                    .subresources
                    .iter()
                    .map(|sub| SubresourceInfo {
                        name: sub.name.clone(),
                        verbs: sub
                            .verbs
                            .iter()
                            .map(|verb| match verb {
                                wit::SubresourceVerb::Get => SubresourceVerb::Get,
                                wit::SubresourceVerb::Create => SubresourceVerb::Create,
                                wit::SubresourceVerb::Update => SubresourceVerb::Update,
                            })
                            .collect(),
                        kind: sub.kind.clone(),
                        api_version: sub.api_version.clone(),
                    })
                    .collect(),
            });
            check_subresources(v, &mut problems);
        }
        let reads: Vec<ResourceRef> = r.reads.iter().map(resource_ref).collect();
        for read in &reads {
            if !read.group.is_empty() && !is_dns_subdomain(&read.group) {
                problems.push(format!(
                    "read {read}: group {:?} is not a DNS subdomain",
                    read.group
                ));
            }
            if !is_dns_label(&read.version) || !is_dns_label(&read.resource) {
                problems.push(format!(
                    "read {read}: version and resource must be lowercase DNS-1035 labels"
                ));
            }
        }
        let computed = r.computed.as_ref().map(|c| {
            let from: Vec<ResourceRef> = c.derived_from.iter().map(resource_ref).collect();
            for f in &from {
                if !reads.contains(f) {
                    problems.push(format!(
                        "computed objects derive from {f}, which is not declared in reads"
                    ));
                }
            }
            from
        });
        if computed.is_some()
            && versions
                .iter()
                .any(|v| v.status_subresource || v.scale.is_some())
        {
            problems.push(
                "a computed kind cannot have status or scale subresources (it has no storage to write)"
                    .into(),
            );
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
            reads,
            computed,
            default_propagation: r.default_propagation.map(|p| match p {
                wit::Propagation::Orphan => Propagation::Orphan,
                wit::Propagation::Background => Propagation::Background,
                wit::Propagation::Foreground => Propagation::Foreground,
            }),
        })
    }
}

fn resource_ref(r: &wit::ResourceRef) -> ResourceRef {
    ResourceRef {
        group: r.group.clone(),
        version: r.version.clone(),
        resource: r.resource.clone(),
    }
}

/// A version's subresources: `status` and `scale` are the host's; the others are
/// DNS-1035 labels, each declared once, with at least one verb and a kind.
fn check_subresources(v: &wit::Version, problems: &mut Vec<String>) {
    let version = &v.name;
    for (i, sub) in v.subresources.iter().enumerate() {
        let name = &sub.name;
        if name == "status" || name == "scale" {
            problems.push(format!(
                "version {version:?}: subresource {name:?} is the host's (declare it with \
                 status-subresource or scale)"
            ));
        } else if !is_dns_label(name) {
            problems.push(format!(
                "version {version:?}: subresource {name:?} must be a lowercase DNS-1035 label"
            ));
        }
        if v.subresources[..i].iter().any(|o| &o.name == name) {
            problems.push(format!(
                "version {version:?}: subresource {name:?} is declared more than once"
            ));
        }
        if sub.verbs.is_empty() {
            problems.push(format!(
                "version {version:?}: subresource {name:?} has no verbs"
            ));
        }
        if !is_kind(&sub.kind) {
            problems.push(format!(
                "version {version:?}: subresource {name:?}: kind {:?} must be UpperCamelCase",
                sub.kind
            ));
        }
    }
    if let Some(sc) = &v.scale {
        for (what, path) in [
            ("spec-replicas-path", Some(&sc.spec_replicas_path)),
            ("status-replicas-path", Some(&sc.status_replicas_path)),
            ("label-selector-path", sc.label_selector_path.as_ref()),
        ] {
            if let Some(p) = path {
                if !p.starts_with('.') || p.len() < 2 {
                    problems.push(format!(
                        "version {version:?}: scale {what} {p:?} must be a simple JSONPath such as .spec.replicas"
                    ));
                }
            }
        }
    }
}

fn is_kind(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}
