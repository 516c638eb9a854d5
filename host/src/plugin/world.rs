//! The worlds a plugin may target, and one face for both.
//!
//! The host links every released world: `wasm-apiserver:plugin@0.2.0` (`wit/world.wit`,
//! the current one) and `@0.1.0` (frozen in `wit/released/0.1.0`). A component is
//! bound to the newest world it implements. The rest of the host speaks 0.2.0's types
//! only: [`Exports`] calls a 0.1.0 plugin's hooks through the conversions below, and
//! answers the hooks 0.1.0 lacks with their documented defaults, so an old build keeps
//! behaving exactly as it did.

use wasmtime::component::{Component, HasSelf, InstancePre, Linker};
use wasmtime::Store;

use super::state::CallState;

/// Bindings of the current world.
pub(crate) mod v0_2 {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "wasm-apiserver:plugin/plugin@0.2.0",
        imports: { default: trappable },
    });
}

/// Bindings of the released 0.1.0 world.
pub(crate) mod v0_1 {
    wasmtime::component::bindgen!({
        path: "../wit/released/0.1.0",
        world: "wasm-apiserver:plugin/plugin@0.1.0",
    });
}

use v0_1::wasm_apiserver::plugin::types as old;
use v0_2::wasm_apiserver::plugin::types as wit;

/// The worlds, newest first, as load errors name them.
pub const WORLDS: [&str; 2] = [
    "wasm-apiserver:plugin/plugin@0.2.0",
    "wasm-apiserver:plugin/plugin@0.1.0",
];

/// Link what every world imports.
pub(crate) fn add_to_linker(linker: &mut Linker<CallState>) -> wasmtime::Result<()> {
    v0_2::wasm_apiserver::plugin::host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_2::wasm_apiserver::plugin::reads::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    v0_1::wasm_apiserver::plugin::host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// A pre-instantiated component of one world.
pub(crate) enum WorldPre {
    V0_2(v0_2::PluginPre<CallState>),
    V0_1(v0_1::PluginPre<CallState>),
}

impl WorldPre {
    /// Bind a component to the newest world it implements.
    pub(crate) fn new(linker: &Linker<CallState>, component: &Component) -> anyhow::Result<Self> {
        let pre: InstancePre<CallState> = linker.instantiate_pre(component)?;
        match v0_2::PluginPre::new(pre.clone()) {
            Ok(p) => Ok(WorldPre::V0_2(p)),
            Err(newest) => v0_1::PluginPre::new(pre)
                .map(WorldPre::V0_1)
                .map_err(|_| anyhow::Error::from(newest)),
        }
    }

    /// The world's name, e.g. `wasm-apiserver:plugin/plugin@0.2.0`.
    pub(crate) fn world(&self) -> &'static str {
        match self {
            WorldPre::V0_2(_) => WORLDS[0],
            WorldPre::V0_1(_) => WORLDS[1],
        }
    }

    pub(crate) fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Exports> {
        Ok(match self {
            WorldPre::V0_2(p) => Exports::V0_2(p.instantiate(store)?),
            WorldPre::V0_1(p) => Exports::V0_1(p.instantiate(store)?),
        })
    }
}

/// An instance's hooks, whichever world it was built for.
pub(crate) enum Exports {
    V0_2(v0_2::Plugin),
    V0_1(v0_1::Plugin),
}

type Out<T> = wasmtime::Result<T>;
type S<'a> = &'a mut Store<CallState>;

#[allow(
    clippy::ptr_arg,
    reason = "the generated bindings take the WIT `object` alias, a String"
)]
impl Exports {
    pub(crate) fn describe(&self, s: S) -> Out<wit::Resource> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_describe(s),
            Exports::V0_1(p) => Ok(resource(p.wasm_apiserver_plugin_hooks().call_describe(s)?)),
        }
    }

    pub(crate) fn default(&self, s: S, obj: &String) -> Out<Result<String, String>> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_default(s, obj),
            Exports::V0_1(p) => p.wasm_apiserver_plugin_hooks().call_default(s, obj),
        }
    }

    pub(crate) fn convert(
        &self,
        s: S,
        objs: &[String],
        to: &str,
    ) -> Out<Result<Vec<String>, String>> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_convert(s, objs, to),
            Exports::V0_1(p) => p.wasm_apiserver_plugin_hooks().call_convert(s, objs, to),
        }
    }

    pub(crate) fn prepare_for_create(
        &self,
        s: S,
        req: &wit::Request,
        obj: &String,
    ) -> Out<Result<String, String>> {
        match self {
            Exports::V0_2(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_prepare_for_create(s, req, obj),
            Exports::V0_1(p) => {
                p.wasm_apiserver_plugin_hooks()
                    .call_prepare_for_create(s, &request(req), obj)
            }
        }
    }

    pub(crate) fn prepare_for_update(
        &self,
        s: S,
        req: &wit::Request,
        new: &String,
        old: &String,
    ) -> Out<Result<String, String>> {
        match self {
            Exports::V0_2(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_prepare_for_update(s, req, new, old),
            Exports::V0_1(p) => {
                p.wasm_apiserver_plugin_hooks()
                    .call_prepare_for_update(s, &request(req), new, old)
            }
        }
    }

    pub(crate) fn validate_create(
        &self,
        s: S,
        req: &wit::Request,
        obj: &String,
    ) -> Out<wit::Validation> {
        match self {
            Exports::V0_2(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_create(s, req, obj),
            Exports::V0_1(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_create(s, &request(req), obj)
                .map(validation),
        }
    }

    pub(crate) fn validate_update(
        &self,
        s: S,
        req: &wit::Request,
        new: &String,
        old: &String,
    ) -> Out<wit::Validation> {
        match self {
            Exports::V0_2(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_update(s, req, new, old),
            Exports::V0_1(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_update(s, &request(req), new, old)
                .map(validation),
        }
    }

    pub(crate) fn validate_delete(
        &self,
        s: S,
        req: &wit::Request,
        obj: &String,
    ) -> Out<wit::Validation> {
        match self {
            Exports::V0_2(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_delete(s, req, obj),
            Exports::V0_1(p) => p
                .wasm_apiserver_plugin_hooks()
                .call_validate_delete(s, &request(req), obj)
                .map(validation),
        }
    }

    pub(crate) fn print(&self, s: S, objs: &[String]) -> Out<Result<Vec<Vec<wit::Cell>>, String>> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_print(s, objs),
            Exports::V0_1(p) => {
                Ok(p.wasm_apiserver_plugin_hooks()
                    .call_print(s, objs)?
                    .map(|rows| {
                        rows.into_iter()
                            .map(|r| r.into_iter().map(cell).collect())
                            .collect()
                    }))
            }
        }
    }

    /// `admit`; a 0.1.0 plugin has none and allows everything.
    pub(crate) fn admit(&self, s: S, req: &wit::AdmissionRequest) -> Out<wit::Admission> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_admit(s, req),
            Exports::V0_1(_) => Ok(wit::Admission::Allowed(Vec::new())),
        }
    }

    /// `serve-subresource`; a 0.1.0 plugin cannot declare one, so this is never asked.
    pub(crate) fn serve_subresource(
        &self,
        s: S,
        req: &wit::SubresourceRequest,
    ) -> Out<Result<String, wit::Denial>> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_serve_subresource(s, req),
            Exports::V0_1(_) => Ok(Err(wit::Denial {
                code: 404,
                message: "the plugin was built for wasm-apiserver:plugin@0.1.0, which has no custom subresources".into(),
            })),
        }
    }

    /// `compute`; a 0.1.0 plugin cannot describe a computed kind: none.
    pub(crate) fn compute(
        &self,
        s: S,
        req: &wit::ComputeRequest,
    ) -> Out<Result<Vec<String>, wit::Denial>> {
        match self {
            Exports::V0_2(p) => p.wasm_apiserver_plugin_hooks().call_compute(s, req),
            Exports::V0_1(_) => Ok(Ok(Vec::new())),
        }
    }
}

// 0.1.0's types in 0.2.0's terms: the same records, less what 0.2.0 added.

fn request(r: &wit::Request) -> old::Request {
    old::Request {
        operation: match r.operation {
            wit::Operation::Create => old::Operation::Create,
            wit::Operation::Update => old::Operation::Update,
            wit::Operation::Delete => old::Operation::Delete,
        },
        user: old::UserInfo {
            name: r.user.name.clone(),
            uid: r.user.uid.clone(),
            groups: r.user.groups.clone(),
            extra: r.user.extra.clone(),
        },
        namespace: r.namespace.clone(),
        name: r.name.clone(),
        subresource: r.subresource.clone(),
        dry_run: r.dry_run,
    }
}

fn validation(v: old::Validation) -> wit::Validation {
    wit::Validation {
        errors: v
            .errors
            .into_iter()
            .map(|e| wit::FieldError {
                type_: match e.type_ {
                    old::FieldErrorType::Required => wit::FieldErrorType::Required,
                    old::FieldErrorType::Invalid => wit::FieldErrorType::Invalid,
                    old::FieldErrorType::Forbidden => wit::FieldErrorType::Forbidden,
                    old::FieldErrorType::Duplicate => wit::FieldErrorType::Duplicate,
                    old::FieldErrorType::NotSupported => wit::FieldErrorType::NotSupported,
                    old::FieldErrorType::TooLong => wit::FieldErrorType::TooLong,
                    old::FieldErrorType::TooMany => wit::FieldErrorType::TooMany,
                    old::FieldErrorType::NotFound => wit::FieldErrorType::NotFound,
                },
                field: e.field,
                bad_value: e.bad_value,
                detail: e.detail,
                supported_values: e.supported_values,
            })
            .collect(),
        warnings: v.warnings,
    }
}

fn cell(c: old::Cell) -> wit::Cell {
    match c {
        old::Cell::None => wit::Cell::None,
        old::Cell::Text(s) => wit::Cell::Text(s),
        old::Cell::Integer(i) => wit::Cell::Integer(i),
        old::Cell::Number(n) => wit::Cell::Number(n),
        old::Cell::Boolean(b) => wit::Cell::Boolean(b),
    }
}

fn resource(r: old::Resource) -> wit::Resource {
    wit::Resource {
        group: r.group,
        kind: r.kind,
        list_kind: r.list_kind,
        plural: r.plural,
        singular: r.singular,
        short_names: r.short_names,
        categories: r.categories,
        scope: match r.scope {
            old::Scope::Namespaced => wit::Scope::Namespaced,
            old::Scope::Cluster => wit::Scope::Cluster,
        },
        versions: r
            .versions
            .into_iter()
            .map(|v| wit::Version {
                name: v.name,
                served: v.served,
                storage: v.storage,
                deprecation_warning: v.deprecation_warning,
                schema: v.schema,
                printer_columns: v
                    .printer_columns
                    .into_iter()
                    .map(|c| wit::PrinterColumn {
                        name: c.name,
                        type_: c.type_,
                        format: c.format,
                        description: c.description,
                        priority: c.priority,
                        json_path: c.json_path,
                    })
                    .collect(),
                status_subresource: v.status_subresource,
                scale: None,
                subresources: Vec::new(),
            })
            .collect(),
        preferred_version: r.preferred_version,
        selectable_fields: r.selectable_fields,
        reads: Vec::new(),
        computed: None,
        default_propagation: None,
    }
}
