//! Builders for [`Resource`] and [`Version`], so that `describe` reads as a declaration.

use crate::{
    Computed, PrinterColumn, Propagation, Resource, ResourceRef, Scale, Scope, Subresource,
    SubresourceVerb, Version,
};

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
            reads: Vec::new(),
            computed: None,
            default_propagation: None,
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

    /// Declare a resource the plugin reads through [`crate::reads`], e.g.
    /// `.reads("wardle.example.com", "v1alpha1", "fischers")` (`""` is the core group).
    pub fn reads(mut self, group: &str, version: &str, resource: &str) -> Self {
        self.0.reads.push(resource_ref(group, version, resource));
        self
    }

    /// Make the kind computed: no storage, its objects come from `compute`. Each
    /// `(group, version, resource)` it derives from is also declared as a read.
    pub fn computed(mut self, derived_from: &[(&str, &str, &str)]) -> Self {
        let from: Vec<ResourceRef> = derived_from
            .iter()
            .map(|(g, v, r)| resource_ref(g, v, r))
            .collect();
        for r in &from {
            if !self
                .0
                .reads
                .iter()
                .any(|d| (&d.group, &d.version, &d.resource) == (&r.group, &r.version, &r.resource))
            {
                self.0.reads.push(r.clone());
            }
        }
        self.0.computed = Some(Computed { derived_from: from });
        self
    }

    /// The deletion propagation when a request names none (default: background).
    pub fn default_propagation(mut self, p: Propagation) -> Self {
        self.0.default_propagation = Some(p);
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
            scale: None,
            subresources: Vec::new(),
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

    /// The `scale` subresource (`kubectl scale`, the HorizontalPodAutoscaler): where
    /// the desired and observed replicas are, and optionally the label selector (its
    /// string form), e.g. `.scale(".spec.replicas", ".status.replicas", Some(".status.selector"))`.
    pub fn scale(
        mut self,
        spec_replicas: &str,
        status_replicas: &str,
        selector: Option<&str>,
    ) -> Self {
        self.0.scale = Some(Scale {
            spec_replicas_path: spec_replicas.into(),
            status_replicas_path: status_replicas.into(),
            label_selector_path: selector.map(Into::into),
        });
        self
    }

    /// A custom subresource answered by [`crate::Plugin::serve_subresource`]: its name,
    /// verbs, and the kind it answers with (in the parent's group and version; see
    /// [`Self::subresource_of`] for another).
    pub fn subresource(self, name: &str, verbs: &[SubresourceVerb], kind: &str) -> Self {
        self.subresource_of(name, verbs, kind, "")
    }

    /// [`Self::subresource`] answering with a kind of another `api_version`.
    pub fn subresource_of(
        mut self,
        name: &str,
        verbs: &[SubresourceVerb],
        kind: &str,
        api_version: &str,
    ) -> Self {
        self.0.subresources.push(Subresource {
            name: name.into(),
            verbs: verbs.to_vec(),
            kind: kind.into(),
            api_version: api_version.into(),
        });
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

fn resource_ref(group: &str, version: &str, resource: &str) -> ResourceRef {
    ResourceRef {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
    }
}
