//! A kind as the host serves it (group, names, scope, versions with their schemas and
//! columns): the host's own types, filled from a plugin's `describe()` when it loads.

use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Namespaced,
    Cluster,
}

#[derive(Clone, Debug)]
pub struct PrinterColumn {
    pub name: String,
    pub type_: String,
    pub format: String,
    pub description: String,
    pub priority: i32,
    pub json_path: String,
}

#[derive(Clone, Debug)]
pub struct VersionInfo {
    pub name: String,
    pub served: bool,
    pub storage: bool,
    pub deprecation_warning: Option<String>,
    /// The version's OpenAPI v3 schema for the whole object.
    pub schema: Value,
    /// What the schema says of lists and maps, for apply and strategic merge.
    pub merge_type: std::sync::Arc<structured_merge::Type>,
    pub printer_columns: Vec<PrinterColumn>,
    pub status_subresource: bool,
    /// The `scale` subresource, when the version has one.
    pub scale: Option<ScaleInfo>,
    /// Custom subresources, answered by the plugin's `serve-subresource`.
    pub subresources: Vec<SubresourceInfo>,
}

/// Where a version keeps what `autoscaling/v1` Scale shows, as CRDs declare it.
#[derive(Clone, Debug)]
pub struct ScaleInfo {
    pub spec_replicas_path: String,
    pub status_replicas_path: String,
    pub label_selector_path: Option<String>,
}

/// A verb of a custom subresource.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SubresourceVerb {
    Get,
    Create,
    Update,
}

impl SubresourceVerb {
    /// As discovery and authorization name it.
    pub fn as_str(self) -> &'static str {
        match self {
            SubresourceVerb::Get => "get",
            SubresourceVerb::Create => "create",
            SubresourceVerb::Update => "update",
        }
    }
}

/// A custom subresource of a version.
#[derive(Clone, Debug)]
pub struct SubresourceInfo {
    pub name: String,
    pub verbs: Vec<SubresourceVerb>,
    pub kind: String,
    /// Empty: the parent's group and version.
    pub api_version: String,
}

/// A resource in one version, as plugins name what they read.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ResourceRef {
    pub group: String,
    pub version: String,
    pub resource: String,
}

impl std::fmt::Display for ResourceRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.group.is_empty() {
            write!(f, "{}/{}", self.version, self.resource)
        } else {
            write!(f, "{}/{}/{}", self.group, self.version, self.resource)
        }
    }
}

/// `propagationPolicy`: what the garbage collector does with the dependents of a
/// deleted object (a request's, or a kind's default when the request names none).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Propagation {
    /// Keep the dependents: the object gets the `orphan` finalizer, which the garbage
    /// collector removes once it has orphaned them.
    Orphan,
    /// Delete the dependents first: the object gets the `foregroundDeletion`
    /// finalizer, removed once they are gone.
    Foreground,
    /// Delete the object now; the garbage collector deletes the dependents after.
    Background,
}

/// A kind as the host serves it: a validated `describe()`.
#[derive(Clone, Debug)]
pub struct ResourceInfo {
    pub group: String,
    pub kind: String,
    pub list_kind: String,
    pub plural: String,
    pub singular: String,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
    pub scope: Scope,
    /// In the plugin's order of preference.
    pub versions: Vec<VersionInfo>,
    pub storage_version: String,
    pub preferred_version: String,
    pub selectable_fields: Vec<String>,
    /// What the plugin may read through the `reads` import.
    pub reads: Vec<ResourceRef>,
    /// `Some` for a computed kind (no storage): the kinds its objects derive from.
    pub computed: Option<Vec<ResourceRef>>,
    /// The deletion propagation when a request names none (`None`: background).
    pub default_propagation: Option<Propagation>,
}

impl ResourceInfo {
    pub fn namespaced(&self) -> bool {
        self.scope == Scope::Namespaced
    }

    pub fn version(&self, name: &str) -> Option<&VersionInfo> {
        self.versions.iter().find(|v| v.name == name)
    }

    pub fn served_version(&self, name: &str) -> Option<&VersionInfo> {
        self.version(name).filter(|v| v.served)
    }

    pub fn served_versions(&self) -> impl Iterator<Item = &VersionInfo> {
        self.versions.iter().filter(|v| v.served)
    }

    /// Whether the kind is computed by its plugin rather than stored.
    pub fn is_computed(&self) -> bool {
        self.computed.is_some()
    }

    /// `foos.hello.zeng.dev`, as kube-apiserver names a resource in messages.
    pub fn qualified_plural(&self) -> String {
        format!("{}.{}", self.plural, self.group)
    }
}

/// RFC 1035 label: lowercase alphanumerics and '-', starting with a letter, ≤ 63.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// RFC 1123 subdomain: dot-separated RFC 1123 labels, ≤ 253.
pub fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && l.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

/// Decode stored bytes that must be a JSON object of resource `r` (someone else may
/// have written anything there); the error says what was found.
pub fn decode_stored(r: &ResourceInfo, bytes: &[u8]) -> Result<Value, String> {
    let obj: Value =
        serde_json::from_slice(bytes).map_err(|e| format!("is not valid JSON: {e}"))?;
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or_default();
    let api_version = obj
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    if !obj.is_object() || kind != r.kind || group != r.group {
        return Err(format!(
            "is not a {}.{} (found apiVersion {api_version:?}, kind {kind:?})",
            r.kind, r.group
        ));
    }
    Ok(obj)
}
