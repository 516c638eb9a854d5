"""The Python SDK for wasm-apiserver plugins: the counterpart of the Rust
`wasm-apiserver-sdk` crate, for plugins built with componentize-py.

Write a class with the hooks your kind needs, working on plain dicts, and export it:

    import wasm_apiserver_sdk as sdk

    class Hello(sdk.Plugin):
        def describe(self):
            return sdk.resource("hello.example.com", "Foo", "foos", versions=[...])

        def default(self, obj):
            obj.setdefault("spec", {}).setdefault("msg", "hi")
            return obj

    Hooks = sdk.export(Hello)

Every hook but `describe` has the default the WIT contract documents (see
`wit/world.wit`). Objects arrive as dicts decoded from the JSON text the host sends,
in the version their `apiVersion` names; return dicts. Raise `HookError` to fail a
request on purpose (the client gets a 500 naming the plugin and your message); any
other exception in a hook that may fail is reported the same way, with its type.
"""

import json
import sys
from typing import Any, Dict, List, Optional

from componentize_py_types import Err
from wit_world.imports import host, reads, types

__all__ = [
    "Plugin", "HookError", "Path", "ErrorList", "export", "resource", "version",
    "column", "valid", "get", "api_version", "log",
]

Object = Dict[str, Any]

# `print()` reaches the server log (tagged with the plugin's name) line by line, not
# when a buffer fills. This runs when componentize-py snapshots the module, so it holds
# in every instance.
sys.stdout.reconfigure(line_buffering=True)


class HookError(Exception):
    """A deliberate failure: the request gets a 500 naming the plugin and this message."""


# ---------------------------------------------------------------------------
# Logging: lines reach the server log tagged with the plugin's file name.


class log:
    """`log.info("...")` etc. write to the server log with the plugin's name."""

    @staticmethod
    def trace(message: str) -> None:
        host.log(host.Level.TRACE, message)

    @staticmethod
    def debug(message: str) -> None:
        host.log(host.Level.DEBUG, message)

    @staticmethod
    def info(message: str) -> None:
        host.log(host.Level.INFO, message)

    @staticmethod
    def warn(message: str) -> None:
        host.log(host.Level.WARN, message)

    @staticmethod
    def error(message: str) -> None:
        host.log(host.Level.ERROR, message)


# ---------------------------------------------------------------------------
# Describing the kind.


def column(name: str, type: str, json_path: str, priority: int = 0,
           format: str = "", description: str = "") -> types.PrinterColumn:
    """A printer column; `priority` 0 shows by default, 1 only in `-o wide`."""
    return types.PrinterColumn(name=name, type=type, format=format,
                               description=description, priority=priority,
                               json_path=json_path)


def version(name: str, schema: str, *, storage: bool = False, served: bool = True,
            deprecation_warning: Optional[str] = None,
            columns: Optional[List[types.PrinterColumn]] = None,
            status_subresource: bool = False,
            scale: Optional[types.Scale] = None,
            subresources: Optional[List[types.Subresource]] = None) -> types.Version:
    """One version of the kind; `schema` is the OpenAPI v3 schema as JSON text."""
    return types.Version(name=name, served=served, storage=storage,
                         deprecation_warning=deprecation_warning, schema=schema,
                         printer_columns=list(columns or []),
                         status_subresource=status_subresource, scale=scale,
                         subresources=list(subresources or []))


def resource_ref(group: str, version: str, resource: str) -> types.ResourceRef:
    """A resource the plugin reads, e.g. `resource_ref("wardle.example.com",
    "v1alpha1", "fischers")`; `""` is the core group."""
    return types.ResourceRef(group=group, version=version, resource=resource)


def resource(group: str, kind: str, plural: str, *, versions: List[types.Version],
             singular: Optional[str] = None, list_kind: Optional[str] = None,
             short_names: Optional[List[str]] = None,
             categories: Optional[List[str]] = None, cluster_scoped: bool = False,
             preferred_version: Optional[str] = None,
             selectable_fields: Optional[List[str]] = None,
             reads: Optional[List[types.ResourceRef]] = None,
             default_propagation: Optional[types.Propagation] = None) -> types.Resource:
    """The description of the kind; versions in order of preference; `reads` the
    resources the plugin reads with `read`/`read_list`."""
    return types.Resource(
        group=group, kind=kind, list_kind=list_kind or kind + "List", plural=plural,
        singular=singular or kind.lower(), short_names=list(short_names or []),
        categories=list(categories or []),
        scope=types.Scope.CLUSTER if cluster_scoped else types.Scope.NAMESPACED,
        versions=list(versions), preferred_version=preferred_version,
        selectable_fields=list(selectable_fields or []), reads=list(reads or []),
        computed=None, default_propagation=default_propagation)


# ---------------------------------------------------------------------------
# Reads of other objects (in admit, serve_subresource and compute).


class ReadFailed(Exception):
    """A read failed; `kind` is `undeclared`, `not-found`, `invalid`, `unavailable`
    or `not-allowed`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _read_error(e: Err) -> ReadFailed:
    v = e.value
    kind = type(v).__name__.split("_", 1)[-1].lower().replace("notfound", "not-found") \
        .replace("notallowed", "not-allowed")
    return ReadFailed(kind, str(getattr(v, "value", v)))


def read(ref: types.ResourceRef, namespace: Optional[str], name: str) -> Object:
    """The object `name`, as a dict; raises ReadFailed."""
    try:
        return json.loads(reads.get(ref, namespace, name))
    except Err as e:
        raise _read_error(e)


def read_list(ref: types.ResourceRef, namespace: Optional[str] = None,
              label_selector: str = "", field_selector: str = "") -> List[Object]:
    """Every object in `namespace` (all when None), page by page; raises ReadFailed."""
    out: List[Object] = []
    cont = ""
    while True:
        try:
            page = reads.list(ref, namespace, reads.ListOptions(
                label_selector=label_selector, field_selector=field_selector,
                limit=0, continue_=cont))
        except Err as e:
            raise _read_error(e)
        out.extend(json.loads(t) for t in page.items)
        cont = page.continue_
        if not cont:
            return out


class Denied(Exception):
    """Raise from `admit`, `serve_subresource` or `compute` to refuse: `code` 403
    answers `<plural>.<group> "<name>" is forbidden: <message>`."""

    def __init__(self, message: str, code: int = 403):
        super().__init__(message)
        self.code = code

    def denial(self) -> types.Denial:
        return types.Denial(code=self.code, message=str(self))


# ---------------------------------------------------------------------------
# Object access.


def api_version(obj: Object) -> str:
    """The version part of `apiVersion` (`v2` for `hello.zeng.dev/v2`), or ""."""
    return str(obj.get("apiVersion", "")).rpartition("/")[2]


def get(obj: Any, path: str, default: Any = None) -> Any:
    """The value at a simple JSONPath (`.spec.config.msg`, `.spec.items[0].name`)."""
    cur = obj
    for seg in path.lstrip(".").split("."):
        if not seg:
            continue
        name, _, index = seg.partition("[")
        if name:
            if not isinstance(cur, dict) or name not in cur:
                return default
            cur = cur[name]
        if index:
            try:
                cur = cur[int(index.rstrip("]"))]
            except (IndexError, ValueError, TypeError, KeyError):
                return default
    return cur


def _cell(value: Any, type_: str) -> types.Cell:
    if value is None:
        return types.Cell_None_()
    if isinstance(value, bool):
        return types.Cell_Boolean(value)
    if isinstance(value, int) and type_ == "integer":
        return types.Cell_Integer(value)
    if isinstance(value, (int, float)) and type_ in ("integer", "number"):
        return types.Cell_Number(float(value))
    if isinstance(value, str):
        return types.Cell_Text(value)
    return types.Cell_Text(json.dumps(value, separators=(",", ":")))


# ---------------------------------------------------------------------------
# Validation: field errors as k8s.io/apimachinery's field.Error.


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class Path:
    """A field path built like `field.NewPath("spec").Child("config").Index(2)`."""

    def __init__(self, root: str):
        self.path = root

    def child(self, name: str) -> "Path":
        return Path(f"{self.path}.{name}")

    def index(self, i: int) -> "Path":
        return Path(f"{self.path}[{i}]")

    def key(self, k: str) -> "Path":
        return Path(f"{self.path}[{k}]")

    def __str__(self) -> str:
        return self.path

    def _error(self, type_: types.FieldErrorType, bad: Optional[str], detail: str,
               supported: Optional[List[str]] = None) -> types.FieldError:
        return types.FieldError(type=type_, field=self.path, bad_value=bad, detail=detail,
                                supported_values=list(supported or []))

    def required(self, detail: str = "") -> types.FieldError:
        return self._error(types.FieldErrorType.REQUIRED, None, detail)

    def invalid(self, value: Any, detail: str) -> types.FieldError:
        return self._error(types.FieldErrorType.INVALID, _json(value), detail)

    def forbidden(self, detail: str) -> types.FieldError:
        return self._error(types.FieldErrorType.FORBIDDEN, None, detail)

    def duplicate(self, value: Any) -> types.FieldError:
        return self._error(types.FieldErrorType.DUPLICATE, _json(value), "")

    def not_found(self, value: Any) -> types.FieldError:
        return self._error(types.FieldErrorType.NOT_FOUND, _json(value), "")

    def not_supported(self, value: Any, supported: List[str]) -> types.FieldError:
        return self._error(types.FieldErrorType.NOT_SUPPORTED, _json(value), "", supported)

    def too_long(self, max_bytes: int) -> types.FieldError:
        return self._error(types.FieldErrorType.TOO_LONG, None,
                           f"may not be more than {max_bytes} bytes")

    def too_many(self, actual: int, max_items: int) -> types.FieldError:
        return self._error(types.FieldErrorType.TOO_MANY, str(actual),
                           f"must have at most {max_items} items")


class ErrorList(list):
    """Field errors collected by a validation hook; `validation()` ends it."""

    def validation(self, warnings: Optional[List[str]] = None) -> types.Validation:
        return types.Validation(errors=list(self), warnings=list(warnings or []))


def valid(warnings: Optional[List[str]] = None) -> types.Validation:
    """No errors; optional warnings for the client."""
    return types.Validation(errors=[], warnings=list(warnings or []))


# ---------------------------------------------------------------------------
# The plugin and its defaults.


class Plugin:
    """Subclass and override the hooks your kind needs; `describe` is required."""

    def describe(self) -> types.Resource:
        raise NotImplementedError("a plugin must describe its kind")

    def default(self, obj: Object) -> Object:
        """Set defaults on an object of any served version. Must be idempotent."""
        return obj

    def convert(self, obj: Object, to_version: str) -> Object:
        """Convert one object to `to_version` (called only when versions differ).
        Default: rewrite `apiVersion`, right when versions share one schema."""
        obj["apiVersion"] = f"{self.described().group}/{to_version}"
        return obj

    def prepare_for_create(self, req: types.Request, obj: Object) -> Object:
        """Default: drop `status` when the version has a status subresource."""
        if self._has_status(obj):
            obj.pop("status", None)
        return obj

    def prepare_for_update(self, req: types.Request, new: Object, old: Object) -> Object:
        """Default with a status subresource: a main-resource update keeps the stored
        status; a status update keeps everything but status."""
        if not self._has_status(new):
            return new
        if req.subresource == "status":
            kept = dict(old)
            _set_or_remove(kept, "status", new.get("status"))
            return kept
        _set_or_remove(new, "status", old.get("status"))
        return new

    def validate_create(self, req: types.Request, obj: Object) -> types.Validation:
        return valid()

    def validate_update(self, req: types.Request, new: Object, old: Object) -> types.Validation:
        return valid()

    def validate_delete(self, req: types.Request, obj: Object) -> types.Validation:
        return valid()

    def print(self, obj: Object) -> List[types.Cell]:
        """One row: a cell per printer column of the object's version.
        Default: evaluate each column's JSONPath."""
        return [_cell(get(obj, c.json_path), c.type) for c in self._columns(obj)]

    def admit(self, req: types.Request, obj: Optional[Object],
              old: Optional[Object]) -> List[str]:
        """Admission after validation (reads allowed): return warnings, or raise
        Denied. Default: allowed."""
        return []

    def serve_subresource(self, req: types.SubresourceRequest, parent: Object) -> Object:
        """A custom subresource (reads allowed). Default: 404."""
        raise Denied("the server could not find the requested resource", 404)

    def compute(self, req: types.ComputeRequest) -> List[Object]:
        """The objects of a computed kind (reads allowed). Default: none."""
        return []

    # -- helpers for the defaults ----------------------------------------------

    def described(self) -> types.Resource:
        """`describe()`, computed once per instance."""
        cached = getattr(self, "_described", None)
        if cached is None:
            cached = self._described = self.describe()
        return cached

    def _version(self, obj: Object) -> Optional[types.Version]:
        name = api_version(obj)
        return next((v for v in self.described().versions if v.name == name), None)

    def _has_status(self, obj: Object) -> bool:
        v = self._version(obj)
        return v is not None and v.status_subresource

    def _columns(self, obj: Object) -> List[types.PrinterColumn]:
        v = self._version(obj)
        return v.printer_columns if v else []


def _set_or_remove(obj: Object, key: str, value: Any) -> None:
    if value is None:
        obj.pop(key, None)
    else:
        obj[key] = value


# ---------------------------------------------------------------------------
# The adapter between the WIT exports (JSON text) and a Plugin (dicts).


def _fail(hook: str, e: BaseException) -> Err:
    if isinstance(e, HookError):
        return Err(str(e))
    return Err(f"{type(e).__name__}: {e}")


def export(plugin_class: type) -> type:
    """The `Hooks` class componentize-py exports, calling an instance of `plugin_class`.
    Assign it to a module-level `Hooks` in the app module."""
    from wit_world import exports

    plugin = plugin_class()

    class Hooks(exports.Hooks):
        def describe(self) -> types.Resource:
            return plugin.described()

        def default(self, obj: str) -> str:
            try:
                return _json(plugin.default(json.loads(obj)))
            except Exception as e:
                raise _fail("default", e)

        def convert(self, objs: List[str], to_version: str) -> List[str]:
            try:
                out = []
                for text in objs:
                    o = json.loads(text)
                    out.append(text if api_version(o) == to_version
                               else _json(plugin.convert(o, to_version)))
                return out
            except Exception as e:
                raise _fail("convert", e)

        def prepare_for_create(self, req: types.Request, obj: str) -> str:
            try:
                return _json(plugin.prepare_for_create(req, json.loads(obj)))
            except Exception as e:
                raise _fail("prepare-for-create", e)

        def prepare_for_update(self, req: types.Request, new: str, old: str) -> str:
            try:
                return _json(plugin.prepare_for_update(req, json.loads(new), json.loads(old)))
            except Exception as e:
                raise _fail("prepare-for-update", e)

        # Validation hooks cannot fail by contract: an exception traps, and the host's
        # 500 carries the traceback the plugin wrote to stderr.
        def validate_create(self, req: types.Request, obj: str) -> types.Validation:
            return plugin.validate_create(req, json.loads(obj))

        def validate_update(self, req: types.Request, new: str, old: str) -> types.Validation:
            return plugin.validate_update(req, json.loads(new), json.loads(old))

        def validate_delete(self, req: types.Request, obj: str) -> types.Validation:
            return plugin.validate_delete(req, json.loads(obj))

        def print(self, objs: List[str]) -> List[List[types.Cell]]:
            try:
                return [plugin.print(json.loads(text)) for text in objs]
            except Exception as e:
                raise _fail("print", e)

        # An exception other than Denied traps: the host denies the write (fails
        # closed) with a 500 naming the plugin.
        def admit(self, req: types.AdmissionRequest) -> types.Admission:
            obj = json.loads(req.object) if req.object is not None else None
            old = json.loads(req.old_object) if req.old_object is not None else None
            try:
                return types.Admission_Allowed(list(plugin.admit(req.request, obj, old)))
            except Denied as d:
                return types.Admission_Denied(d.denial())

        def serve_subresource(self, req: types.SubresourceRequest) -> str:
            try:
                return _json(plugin.serve_subresource(req, json.loads(req.parent)))
            except Denied as d:
                raise Err(d.denial())

        def compute(self, req: types.ComputeRequest) -> List[str]:
            try:
                return [_json(o) for o in plugin.compute(req)]
            except Denied as d:
                raise Err(d.denial())

    return Hooks
