//! Reading other objects from the hooks that may (`admit`, `serve_subresource`,
//! `compute`). Each read names a resource declared with
//! [`crate::ResourceBuilder::reads`]; the host answers from its caches, never older
//! than the request, in the version asked for.
//!
//! ```ignore
//! let fischers = ResourceRef { group: "wardle.example.com".into(), version: "v1alpha1".into(), resource: "fischers".into() };
//! let page = reads::list(&fischers, None, &ListOptions::default())?;
//! ```

use crate::bindings::wasm_apiserver::plugin::reads as wit;
use crate::{Object, ResourceRef};

pub use wit::{ListOptions, ReadError};

impl Default for ListOptions {
    fn default() -> Self {
        ListOptions {
            label_selector: String::new(),
            field_selector: String::new(),
            limit: 0,
            continue_: String::new(),
        }
    }
}

/// One page of a list.
pub struct ObjectList {
    pub items: Vec<Object>,
    /// Pass back as [`ListOptions`]' `continue_` for the next page; empty on the last.
    pub continue_: String,
    pub resource_version: String,
}

/// The object `name` (in `namespace` for a namespaced resource).
pub fn get(
    resource: &ResourceRef,
    namespace: Option<&str>,
    name: &str,
) -> Result<Object, ReadError> {
    wit::get(resource, namespace, name).map(Object::from_json)
}

/// The objects in `namespace` (all namespaces when none), in key order, one page.
pub fn list(
    resource: &ResourceRef,
    namespace: Option<&str>,
    options: &ListOptions,
) -> Result<ObjectList, ReadError> {
    let page = wit::list(resource, namespace, options)?;
    Ok(ObjectList {
        items: page.items.into_iter().map(Object::from_json).collect(),
        continue_: page.continue_,
        resource_version: page.resource_version,
    })
}

/// Every object in `namespace`, following `continue` page by page.
pub fn list_all(
    resource: &ResourceRef,
    namespace: Option<&str>,
    label_selector: &str,
) -> Result<Vec<Object>, ReadError> {
    let mut opts = ListOptions {
        label_selector: label_selector.into(),
        ..ListOptions::default()
    };
    let mut out = Vec::new();
    loop {
        let page = list(resource, namespace, &opts)?;
        out.extend(page.items);
        if page.continue_.is_empty() {
            return Ok(out);
        }
        opts.continue_ = page.continue_;
    }
}

impl ResourceRef {
    /// `ResourceRef::new("wardle.example.com", "v1alpha1", "fischers")`.
    pub fn new(group: &str, version: &str, resource: &str) -> Self {
        ResourceRef {
            group: group.into(),
            version: version.into(),
            resource: resource.into(),
        }
    }
}
