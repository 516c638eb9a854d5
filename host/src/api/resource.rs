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
    pub printer_columns: Vec<PrinterColumn>,
    pub status_subresource: bool,
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
