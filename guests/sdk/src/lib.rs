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
//! server's plugin folder. The trait's hooks are plain Rust functions over
//! `serde_json::Value`, so a plugin is unit-tested natively with `cargo test`, without
//! Wasm (see the `hello` example's tests).

pub mod bindings {
    //! Bindings generated from the project's WIT package (`wit/world.wit`).
    wit_bindgen::generate!({
        path: "../../wit",
        world: "wasm-apiserver:plugin/plugin@0.1.0",
        pub_export_macro: true,
        export_macro_name: "__export_plugin_world",
        default_bindings_module: "wasm_apiserver_sdk::bindings",
    });
}

mod builder;
mod errors;
pub mod jsonpath;
pub mod log;
mod object;

pub use bindings::wasm_apiserver::plugin::types::{
    Cell, FieldError, FieldErrorType, Operation, PrinterColumn, Request, Resource, Scope, UserInfo,
    Validation, Version,
};
pub use builder::{ResourceBuilder, VersionBuilder};
pub use errors::{ErrorList, Path};
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
pub use object::{api_version_of, from_value, to_value, version_of, TypeMeta};
pub use serde_json::{self, json, Value};

/// What most plugins need, in one import.
pub mod prelude {
    pub use crate::{
        json, Cell, ErrorList, FieldError, FieldErrorType, ObjectMeta, Operation, Path, Plugin,
        PrinterColumn, Request, Resource, ResourceBuilder, Scope, TypeMeta, Validation, Value,
        Version, VersionBuilder,
    };
    pub use serde::{Deserialize, Serialize};
}

/// A resource plugin. Every hook but `describe` has the default the WIT contract
/// documents; override the ones the kind needs. Hooks are associated functions because
/// every call runs in a fresh instance: there is no state to keep.
pub trait Plugin {
    /// The kind, its versions and how it is printed. Must always return the same value.
    fn describe() -> Resource;

    /// Set defaults on an object of any served version. Must be idempotent.
    fn default(obj: Value) -> Result<Value, String> {
        Ok(obj)
    }

    /// Convert one object to `to_version`. The SDK calls it for each object of a batch
    /// whose version differs from `to_version`. Default: rewrite `apiVersion` only,
    /// which is right when versions share one schema.
    fn convert(mut obj: Value, to_version: &str) -> Result<Value, String> {
        let group = Self::describe().group;
        obj["apiVersion"] = Value::String(format!("{group}/{to_version}"));
        Ok(obj)
    }

    /// Normalise a new object. Default: drop `status` when the kind has a status
    /// subresource (status is written through `/status` only).
    fn prepare_for_create(_req: &Request, mut obj: Value) -> Result<Value, String> {
        if has_status_subresource(&Self::describe(), &obj) {
            if let Some(map) = obj.as_object_mut() {
                map.remove("status");
            }
        }
        Ok(obj)
    }

    /// Normalise an update. Default with a status subresource: a main-resource update
    /// keeps the stored status, a status update keeps everything but status.
    fn prepare_for_update(req: &Request, new: Value, old: &Value) -> Result<Value, String> {
        if !has_status_subresource(&Self::describe(), &new) {
            return Ok(new);
        }
        Ok(if req.subresource.as_deref() == Some("status") {
            let mut kept = old.clone();
            set_or_remove(&mut kept, "status", new.get("status"));
            // As kube-apiserver's status strategy for custom resources: the stored object
            // with only the new status.
            kept
        } else {
            let mut kept = new;
            set_or_remove(&mut kept, "status", old.get("status"));
            kept
        })
    }

    /// Validate a new object (storage version). Default: valid.
    fn validate_create(_req: &Request, _obj: &Value) -> Validation {
        Validation::ok()
    }

    /// Validate an update (storage version). Default: valid.
    fn validate_update(_req: &Request, _new: &Value, _old: &Value) -> Validation {
        Validation::ok()
    }

    /// Validate a delete. Default: valid.
    fn validate_delete(_req: &Request, _obj: &Value) -> Validation {
        Validation::ok()
    }

    /// One table row for an object: one cell per printer column of its version.
    /// Default: evaluate each column's JSONPath.
    fn print(obj: &Value) -> Result<Vec<Cell>, String> {
        let resource = Self::describe();
        let version = version_of(obj).unwrap_or_default();
        let columns = resource
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
}

fn has_status_subresource(resource: &Resource, obj: &Value) -> bool {
    let version = version_of(obj).unwrap_or_default();
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

    fn parse(obj: &str) -> Result<Value, String> {
        serde_json::from_str(obj).map_err(|e| format!("object from host is not JSON: {e}"))
    }

    fn render(v: &Value) -> String {
        // Not `v.to_string()`: `Display` goes through `fmt`, several times slower.
        serde_json::to_string(v).expect("JSON values serialize")
    }

    pub fn default<P: Plugin>(obj: String) -> Result<String, String> {
        P::default(parse(&obj)?).map(|v| render(&v))
    }

    pub fn convert<P: Plugin>(objs: Vec<String>, to: String) -> Result<Vec<String>, String> {
        objs.into_iter()
            .map(|o| {
                let v = parse(&o)?;
                if version_of(&v).as_deref() == Some(to.as_str()) {
                    return Ok(o);
                }
                P::convert(v, &to).map(|v| render(&v))
            })
            .collect()
    }

    pub fn prepare_for_create<P: Plugin>(req: Request, obj: String) -> Result<String, String> {
        P::prepare_for_create(&req, parse(&obj)?).map(|v| render(&v))
    }

    pub fn prepare_for_update<P: Plugin>(
        req: Request,
        new: String,
        old: String,
    ) -> Result<String, String> {
        P::prepare_for_update(&req, parse(&new)?, &parse(&old)?).map(|v| render(&v))
    }

    fn invalid_input(e: String) -> Validation {
        Validation::from_errors(vec![FieldError {
            type_: FieldErrorType::Invalid,
            field: String::new(),
            bad_value: None,
            detail: e,
            supported_values: Vec::new(),
        }])
    }

    pub fn validate_create<P: Plugin>(req: Request, obj: String) -> Validation {
        match parse(&obj) {
            Ok(v) => P::validate_create(&req, &v),
            Err(e) => invalid_input(e),
        }
    }

    pub fn validate_update<P: Plugin>(req: Request, new: String, old: String) -> Validation {
        match (parse(&new), parse(&old)) {
            (Ok(n), Ok(o)) => P::validate_update(&req, &n, &o),
            (Err(e), _) | (_, Err(e)) => invalid_input(e),
        }
    }

    pub fn validate_delete<P: Plugin>(req: Request, obj: String) -> Validation {
        match parse(&obj) {
            Ok(v) => P::validate_delete(&req, &v),
            Err(e) => invalid_input(e),
        }
    }

    pub fn print<P: Plugin>(objs: Vec<String>) -> Result<Vec<Vec<Cell>>, String> {
        objs.iter().map(|o| P::print(&parse(o)?)).collect()
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
        }

        // Only a wasm build exports the component's symbols; a native build (unit tests)
        // has names like `wasm-apiserver:plugin/hooks@0.1.0#describe` the linker rejects.
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_plugin_world!(__WasmApiserverPlugin with_types_in $crate::bindings);
    };
}
