//! The Rust SDK for wasm-apiserver resource plugins.
//!
//! A plugin is a type that implements [`Plugin`]; only [`Plugin::describe`] is
//! required, every other hook has the default the WIT contract documents. One macro,
//! [`export_plugin!`], turns the type into the component's exports:
//!
//! ```ignore
//! use wasm_apiserver_sdk::prelude::*;
//!
//! struct Widget;
//!
//! impl Plugin for Widget {
//!     fn describe() -> Resource {
//!         ResourceBuilder::new("example.com", "Widget", "widgets")
//!             .version(VersionBuilder::new("v1").storage().schema(r#"{"type":"object"}"#))
//!             .build()
//!     }
//! }
//!
//! wasm_apiserver_sdk::export_plugin!(Widget);
//! ```
//!
//! Build it with `cargo build --target wasm32-wasip2` and drop the `.wasm` file into the
//! server's plugin folder. The trait's hooks are plain Rust functions over [`Object`]
//! (JSON text that decodes into your types, or dereferences to a `serde_json::Value`),
//! so a plugin is unit-tested natively with `cargo test`, without Wasm (see the
//! `hello` example's tests).

pub mod bindings {
    //! Bindings generated from the project's WIT package (`wit/world.wit`).
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasm-apiserver:plugin/plugin@0.2.0",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "wasm_apiserver_sdk::bindings",
    });
}

/// The plugin author's guide (`guests/README.md`): its Rust code runs as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct AuthorsGuide;

mod builder;
mod errors;
pub mod jsonpath;
pub mod log;
mod object;
pub mod reads;

pub use bindings::wasm_apiserver::plugin::types::{
    Admission, AdmissionRequest, Cell, ComputeRequest, Computed, Denial, FieldError,
    FieldErrorType, Operation, PrinterColumn, Propagation, Request, Resource, ResourceRef, Scale,
    Scope, Subresource, SubresourceRequest, SubresourceVerb, UserInfo, Validation, Version,
};
pub use builder::{ResourceBuilder, VersionBuilder};
pub use errors::{ErrorList, Path};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use object::{api_version_of, from_value, to_value, version_of, Object, TypeMeta};
pub use serde_json::{self, json, Value};

/// What most plugins need, in one import.
pub mod prelude {
    pub use crate::reads::{self, ListOptions, ReadError};
    pub use crate::{
        json, Cell, ComputeRequest, Denial, ErrorList, FieldError, FieldErrorType, Object,
        ObjectMeta, Operation, Path, Plugin, PrinterColumn, Propagation, Request, Resource,
        ResourceBuilder, ResourceRef, Scope, SubresourceRequest, SubresourceVerb, TypeMeta,
        Validation, Value, Version, VersionBuilder,
    };
    pub use serde::{Deserialize, Serialize};
}

/// A resource plugin. Every hook but `describe` has the default the WIT contract
/// documents; override the ones the kind needs. Hooks are associated functions because
/// hooks are pure functions of their input: there is no state to keep.
///
/// Objects arrive as [`Object`]s: decode them into your types with
/// [`Object::decode`] and return [`Object::encode`]d ones, or work on the
/// `serde_json::Value` they dereference to. An object returned unchanged costs nothing.
pub trait Plugin: 'static {
    /// The kind, its versions and how it is printed. Must always return the same value.
    fn describe() -> Resource;

    /// Set defaults on an object of any served version. Must be idempotent.
    fn default(obj: Object) -> Result<Object, String> {
        Ok(obj)
    }

    /// Convert one object to `to_version`. The SDK calls it for each object of a batch
    /// whose version differs from `to_version`. Default: rewrite `apiVersion` only,
    /// which is right when versions share one schema.
    fn convert(mut obj: Object, to_version: &str) -> Result<Object, String> {
        let group = &described::<Self>().group;
        obj.value_mut()["apiVersion"] = Value::String(format!("{group}/{to_version}"));
        Ok(obj)
    }

    /// Normalise a new object. Default: drop `status` when the kind has a status
    /// subresource (status is written through `/status` only).
    fn prepare_for_create(_req: &Request, mut obj: Object) -> Result<Object, String> {
        if has_status_subresource(described::<Self>(), &obj) && obj.field("status").is_some() {
            if let Some(map) = obj.value_mut().as_object_mut() {
                map.remove("status");
            }
        }
        Ok(obj)
    }

    /// Normalise an update. Default with a status subresource: a main-resource update
    /// keeps the stored status, a status update keeps everything but status.
    fn prepare_for_update(req: &Request, mut new: Object, old: &Object) -> Result<Object, String> {
        if !has_status_subresource(described::<Self>(), &new) {
            return Ok(new);
        }
        Ok(if req.subresource.as_deref() == Some("status") {
            // As kube-apiserver's status strategy for custom resources: the stored object
            // with only the new status.
            let mut kept = old.value().clone();
            set_or_remove(&mut kept, "status", new.field("status").as_ref());
            Object::from_value(kept)
        } else {
            let (now, before) = (new.field("status"), old.field("status"));
            if now != before {
                set_or_remove(new.value_mut(), "status", before.as_ref());
            }
            new
        })
    }

    /// Validate a new object (storage version). Default: valid.
    fn validate_create(_req: &Request, _obj: &Object) -> Validation {
        Validation::ok()
    }

    /// Validate an update (storage version). Default: valid.
    fn validate_update(_req: &Request, _new: &Object, _old: &Object) -> Validation {
        Validation::ok()
    }

    /// Validate a delete. Default: valid.
    fn validate_delete(_req: &Request, _obj: &Object) -> Validation {
        Validation::ok()
    }

    /// One table row for an object: one cell per printer column of its version.
    /// Default: evaluate each column's JSONPath.
    fn print(obj: &Object) -> Result<Vec<Cell>, String> {
        let version = obj.version().unwrap_or_default();
        let columns = described::<Self>()
            .versions
            .iter()
            .find(|v| v.name == version)
            .map(|v| v.printer_columns.as_slice())
            .unwrap_or_default();
        Ok(columns
            .iter()
            .map(|c| jsonpath::cell(obj, &c.json_path, &c.type_))
            .collect())
    }

    /// Admission, after validation, on creates, updates and deletes (dry runs too):
    /// `obj` is the object to store (none for a delete), `old` the stored one (none
    /// for a create), both in the storage version. [`reads`] may be used. Return
    /// warnings for the client, or a [`Denial`]. Default: allowed.
    fn admit(
        _req: &Request,
        _obj: Option<&Object>,
        _old: Option<&Object>,
    ) -> Result<Vec<String>, Denial> {
        Ok(Vec::new())
    }

    /// Answer a custom subresource the version declares; `parent` is the object in the
    /// request's version. [`reads`] may be used. Default: 404 NotFound.
    fn serve_subresource(req: &SubresourceRequest, _parent: &Object) -> Result<Object, Denial> {
        Err(Denial::not_found(format!(
            "the server could not find the requested resource (subresource {:?})",
            req.subresource
        )))
    }

    /// The objects of a computed kind, in `req.version`: the one named, or all in the
    /// namespace; the host selects, sorts, pages and prints them. [`reads`] may be
    /// used. Default: none.
    fn compute(_req: &ComputeRequest) -> Result<Vec<Object>, Denial> {
        Ok(Vec::new())
    }
}

impl Denial {
    /// 403 Forbidden: `<plural>.<group> "<name>" is forbidden: <message>`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Denial {
            code: 403,
            message: message.into(),
        }
    }

    /// 404 NotFound with this message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Denial {
            code: 404,
            message: message.into(),
        }
    }

    /// Any status code the host maps (400, 403, 404, 409, 422, 429; others are 500).
    pub fn with_code(code: u16, message: impl Into<String>) -> Self {
        Denial {
            code,
            message: message.into(),
        }
    }
}

/// `P::describe()`, computed once per plugin type (hooks consult it often).
pub fn described<P: Plugin + ?Sized>() -> &'static Resource {
    use std::any::TypeId;
    use std::sync::Mutex;
    static CACHE: Mutex<Vec<(TypeId, &'static Resource)>> = Mutex::new(Vec::new());
    let id = TypeId::of::<P>();
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, r)) = cache.iter().find(|(t, _)| *t == id) {
        return r;
    }
    let r: &'static Resource = Box::leak(Box::new(P::describe()));
    cache.push((id, r));
    r
}

fn has_status_subresource(resource: &Resource, obj: &Object) -> bool {
    let version = obj.version().unwrap_or_default();
    resource
        .versions
        .iter()
        .any(|v| v.name == version && v.status_subresource)
}

fn set_or_remove(obj: &mut Value, key: &str, value: Option<&Value>) {
    if let Some(map) = obj.as_object_mut() {
        match value {
            Some(v) => {
                map.insert(key.to_string(), v.clone());
            }
            None => {
                map.remove(key);
            }
        }
    }
}

impl Validation {
    /// No errors, no warnings.
    pub fn ok() -> Self {
        Validation {
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The given errors, no warnings.
    pub fn from_errors(errors: impl Into<Vec<FieldError>>) -> Self {
        Validation {
            errors: errors.into(),
            warnings: Vec::new(),
        }
    }

    /// Add a warning.
    pub fn warn(mut self, warning: impl Into<String>) -> Self {
        self.warnings.push(warning.into());
        self
    }

    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The glue behind [`export_plugin!`]: adapts a [`Plugin`] to the generated `Guest`
/// trait. Public only for the macro.
#[doc(hidden)]
pub mod adapter {
    use super::*;

    pub fn default<P: Plugin>(obj: String) -> Result<String, String> {
        P::default(Object::from_json(obj)).map(Object::into_json)
    }

    pub fn convert<P: Plugin>(objs: Vec<String>, to: String) -> Result<Vec<String>, String> {
        objs.into_iter()
            .map(|o| {
                let o = Object::from_json(o);
                if o.version().as_deref() == Some(to.as_str()) {
                    return Ok(o.into_json());
                }
                P::convert(o, &to).map(Object::into_json)
            })
            .collect()
    }

    pub fn prepare_for_create<P: Plugin>(req: Request, obj: String) -> Result<String, String> {
        P::prepare_for_create(&req, Object::from_json(obj)).map(Object::into_json)
    }

    pub fn prepare_for_update<P: Plugin>(
        req: Request,
        new: String,
        old: String,
    ) -> Result<String, String> {
        P::prepare_for_update(&req, Object::from_json(new), &Object::from_json(old))
            .map(Object::into_json)
    }

    pub fn validate_create<P: Plugin>(req: Request, obj: String) -> Validation {
        P::validate_create(&req, &Object::from_json(obj))
    }

    pub fn validate_update<P: Plugin>(req: Request, new: String, old: String) -> Validation {
        P::validate_update(&req, &Object::from_json(new), &Object::from_json(old))
    }

    pub fn validate_delete<P: Plugin>(req: Request, obj: String) -> Validation {
        P::validate_delete(&req, &Object::from_json(obj))
    }

    pub fn print<P: Plugin>(objs: Vec<String>) -> Result<Vec<Vec<Cell>>, String> {
        objs.into_iter()
            .map(|o| P::print(&Object::from_json(o)))
            .collect()
    }

    pub fn admit<P: Plugin>(req: AdmissionRequest) -> Admission {
        let obj = req.object.map(Object::from_json);
        let old = req.old_object.map(Object::from_json);
        match P::admit(&req.request, obj.as_ref(), old.as_ref()) {
            Ok(warnings) => Admission::Allowed(warnings),
            Err(d) => Admission::Denied(d),
        }
    }

    pub fn serve_subresource<P: Plugin>(mut req: SubresourceRequest) -> Result<String, Denial> {
        let parent = Object::from_json(std::mem::take(&mut req.parent));
        P::serve_subresource(&req, &parent).map(Object::into_json)
    }

    pub fn compute<P: Plugin>(req: ComputeRequest) -> Result<Vec<String>, Denial> {
        P::compute(&req).map(|objs| objs.into_iter().map(Object::into_json).collect())
    }
}

/// Export a [`Plugin`] implementation as the component's `hooks` interface.
/// Use it once, at the root of the plugin crate.
#[macro_export]
macro_rules! export_plugin {
    ($plugin:ty) => {
        #[doc(hidden)]
        pub struct __WasmApiserverPlugin;

        impl $crate::bindings::exports::wasm_apiserver::plugin::hooks::Guest
            for __WasmApiserverPlugin
        {
            fn describe() -> $crate::Resource {
                <$plugin as $crate::Plugin>::describe()
            }
            fn default(obj: String) -> Result<String, String> {
                $crate::adapter::default::<$plugin>(obj)
            }
            fn convert(objs: Vec<String>, to_version: String) -> Result<Vec<String>, String> {
                $crate::adapter::convert::<$plugin>(objs, to_version)
            }
            fn prepare_for_create(req: $crate::Request, obj: String) -> Result<String, String> {
                $crate::adapter::prepare_for_create::<$plugin>(req, obj)
            }
            fn prepare_for_update(
                req: $crate::Request,
                new: String,
                old: String,
            ) -> Result<String, String> {
                $crate::adapter::prepare_for_update::<$plugin>(req, new, old)
            }
            fn validate_create(req: $crate::Request, obj: String) -> $crate::Validation {
                $crate::adapter::validate_create::<$plugin>(req, obj)
            }
            fn validate_update(
                req: $crate::Request,
                new: String,
                old: String,
            ) -> $crate::Validation {
                $crate::adapter::validate_update::<$plugin>(req, new, old)
            }
            fn validate_delete(req: $crate::Request, obj: String) -> $crate::Validation {
                $crate::adapter::validate_delete::<$plugin>(req, obj)
            }
            fn print(objs: Vec<String>) -> Result<Vec<Vec<$crate::Cell>>, String> {
                $crate::adapter::print::<$plugin>(objs)
            }
            fn admit(req: $crate::AdmissionRequest) -> $crate::Admission {
                $crate::adapter::admit::<$plugin>(req)
            }
            fn serve_subresource(
                req: $crate::SubresourceRequest,
            ) -> Result<String, $crate::Denial> {
                $crate::adapter::serve_subresource::<$plugin>(req)
            }
            fn compute(req: $crate::ComputeRequest) -> Result<Vec<String>, $crate::Denial> {
                $crate::adapter::compute::<$plugin>(req)
            }
        }

        // Only a wasm build exports the component's symbols; a native build (unit tests)
        // has names like `wasm-apiserver:plugin/hooks@0.2.0#describe` the linker rejects.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_plugin_world!(__WasmApiserverPlugin with_types_in $crate::bindings);
    };
}
