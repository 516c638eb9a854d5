//! Builders for [`Resource`] and [`Version`], so that `describe` reads as a declaration.

use crate::{PrinterColumn, Resource, Scope, Version};

/// Builds a [`Resource`]; defaults: namespaced, singular = lowercase kind,
/// list kind = `<kind>List`, no short names or categories.
pub struct ResourceBuilder(Resource);

impl ResourceBuilder {
    pub fn new(group: &str, kind: &str, plural: &str) -> Self {
        ResourceBuilder(Resource {
            group: group.into(),
            kind: kind.into(),
            list_kind: format!("{kind}List"),
            plural: plural.into(),
            singular: kind.to_lowercase(),
            short_names: Vec::new(),
            categories: Vec::new(),
            scope: Scope::Namespaced,
            versions: Vec::new(),
            preferred_version: None,
            selectable_fields: Vec::new(),
        })
    }

    pub fn cluster_scoped(mut self) -> Self {
        self.0.scope = Scope::Cluster;
        self
    }

    pub fn singular(mut self, singular: &str) -> Self {
        self.0.singular = singular.into();
        self
    }

    pub fn short_name(mut self, name: &str) -> Self {
        self.0.short_names.push(name.into());
        self
    }

    pub fn category(mut self, category: &str) -> Self {
        self.0.categories.push(category.into());
        self
    }

    /// Add a version; versions are listed in order of preference.
    pub fn version(mut self, version: VersionBuilder) -> Self {
        self.0.versions.push(version.0);
        self
    }

    /// Advertise `version` as preferred instead of the storage version.
    pub fn preferred_version(mut self, version: &str) -> Self {
        self.0.preferred_version = Some(version.into());
        self
    }

    /// Make a field usable in field selectors, e.g. `.spec.color`.
    pub fn selectable_field(mut self, json_path: &str) -> Self {
        self.0.selectable_fields.push(json_path.into());
        self
    }

    pub fn build(self) -> Resource {
        self.0
    }
}

/// Builds a [`Version`]; defaults: served, not storage, no columns, no status subresource.
pub struct VersionBuilder(pub(crate) Version);

impl VersionBuilder {
    pub fn new(name: &str) -> Self {
        VersionBuilder(Version {
            name: name.into(),
            served: true,
            storage: false,
            deprecation_warning: None,
            // Until the plugin gives a schema, accept any fields.
            schema: r#"{"type":"object","x-kubernetes-preserve-unknown-fields":true}"#.into(),
            printer_columns: Vec::new(),
            status_subresource: false,
        })
    }

    /// Mark this as the storage version (exactly one per resource).
    pub fn storage(mut self) -> Self {
        self.0.storage = true;
        self
    }

    pub fn not_served(mut self) -> Self {
        self.0.served = false;
        self
    }

    pub fn deprecated(mut self, warning: &str) -> Self {
        self.0.deprecation_warning = Some(warning.into());
        self
    }

    /// The OpenAPI v3 schema of the whole object, as JSON text.
    pub fn schema(mut self, schema: &str) -> Self {
        self.0.schema = schema.into();
        self
    }

    pub fn status_subresource(mut self) -> Self {
        self.0.status_subresource = true;
        self
    }

    /// A printer column shown by `kubectl get`; `priority` 0 is default output, more is `-o wide`.
    pub fn column(mut self, name: &str, type_: &str, json_path: &str, priority: i32) -> Self {
        self.0.printer_columns.push(PrinterColumn {
            name: name.into(),
            type_: type_.into(),
            format: String::new(),
            description: String::new(),
            priority,
            json_path: json_path.into(),
        });
        self
    }
}
