"""`hello.zeng.dev` `Foo` in Python: the same kind and behaviour as the Rust `hello`
example (examples/hello/src/lib.rs), built with componentize-py.

- v1: `spec.msg` (required), `spec.msg1` (defaults to `hello`).
- v2 (storage): `spec.image` (required, defaults to `busybox`), `spec.config.msg`,
  `spec.config.msg1`, and a `status` written through the status subresource.

Conversion is lossless both ways: what v1 cannot express (`spec.image` when not the
default, and `status`) travels in the `hello.zeng.dev/v2-fields` annotation.
"""

import json
import re

import wasm_apiserver_sdk as sdk

GROUP = "hello.zeng.dev"
V2_FIELDS_ANNOTATION = "hello.zeng.dev/v2-fields"
DEFAULT_IMAGE = "busybox"
DEFAULT_MSG1 = "hello"
MAX_MSG_LEN = 256
# Unicode's White_Space property, as Rust's `char::is_whitespace` (str.isspace differs).
WHITESPACE = re.compile("[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]")

SCHEMA_V1 = json.dumps({
    "type": "object",
    "description": "Foo is an example resource (v1).",
    "properties": {
        "spec": {
            "type": "object",
            "description": "FooSpec is the desired state of a Foo.",
            "required": ["msg"],
            "properties": {
                "msg": {"type": "string", "description": "The message to say."},
                "msg1": {"type": "string", "description": "A second message; defaults to \"hello\"."},
            },
        },
    },
})

SCHEMA_V2 = json.dumps({
    "type": "object",
    "description": "Foo is an example resource (v2).",
    "properties": {
        "spec": {
            "type": "object",
            "description": "FooSpec is the desired state of a Foo.",
            "properties": {
                "image": {"type": "string", "description": "Container image; defaults to \"busybox\"."},
                "config": {
                    "type": "object",
                    "description": "Messages to say.",
                    "properties": {
                        "msg": {"type": "string", "description": "The message to say."},
                        "msg1": {"type": "string", "description": "A second message; defaults to \"hello\"."},
                    },
                },
            },
        },
        "status": {
            "type": "object",
            "description": "FooStatus is the observed state of a Foo.",
            "properties": {
                "phase": {"type": "string", "description": "Processing phase."},
                "observedGeneration": {"type": "integer", "format": "int64"},
            },
        },
    },
})


def default_v1(foo):
    spec = foo.setdefault("spec", {})
    if spec.get("msg1") is None:
        spec["msg1"] = DEFAULT_MSG1


def default_v2(foo):
    spec = foo.setdefault("spec", {})
    if not spec.get("image"):
        spec["image"] = DEFAULT_IMAGE
    config = spec.get("config")
    if config is not None and config.get("msg") is not None and config.get("msg1") is None:
        config["msg1"] = DEFAULT_MSG1


def v1_to_v2(foo):
    metadata = foo.get("metadata", {})
    annotations = metadata.get("annotations")
    text = None
    if annotations is not None:
        text = annotations.pop(V2_FIELDS_ANNOTATION, None)
        if not annotations:
            del metadata["annotations"]
    extra = {}
    if text is not None:
        try:
            extra = json.loads(text)
        except ValueError as e:
            raise sdk.HookError(f"annotation {V2_FIELDS_ANNOTATION} is not valid: {e}")
        if not isinstance(extra, dict):
            raise sdk.HookError(f"annotation {V2_FIELDS_ANNOTATION} is not valid: not a JSON object")
        if not isinstance(extra.get("image", ""), (str, type(None))):
            raise sdk.HookError(f"annotation {V2_FIELDS_ANNOTATION} is not valid: image is not a string")
    spec_v1 = foo.get("spec", {})
    image = extra.get("image")
    # v1 cannot say which image: a v1 object converts to a complete v2 one.
    spec = {"image": DEFAULT_IMAGE if image is None else image}
    config = {k: spec_v1[k] for k in ("msg", "msg1") if spec_v1.get(k) is not None}
    if config:
        spec["config"] = config
    out = {"apiVersion": f"{GROUP}/v2", "kind": foo.get("kind", "Foo"),
           "metadata": metadata, "spec": spec}
    if extra.get("status") is not None:
        out["status"] = extra["status"]
    return out


def v2_to_v1(foo):
    metadata = foo.get("metadata", {})
    spec_v2 = foo.get("spec", {})
    image = spec_v2.get("image")
    extra = {}
    if image is not None and image != DEFAULT_IMAGE:
        extra["image"] = image
    if foo.get("status") is not None:
        extra["status"] = foo["status"]
    if extra:
        annotations = metadata.setdefault("annotations", {})
        annotations[V2_FIELDS_ANNOTATION] = json.dumps(extra, separators=(",", ":"), ensure_ascii=False)
    config = spec_v2.get("config") or {}
    spec = {k: config[k] for k in ("msg", "msg1") if config.get(k) is not None}
    return {"apiVersion": f"{GROUP}/v1", "kind": foo.get("kind", "Foo"),
            "metadata": metadata, "spec": spec}


def validate_v2(foo):
    """Validation of the storage version: every write, from any version, ends here."""
    errs = sdk.ErrorList()
    spec = sdk.Path("spec")
    image = sdk.get(foo, ".spec.image")
    if not image:
        errs.append(spec.child("image").required())
    elif WHITESPACE.search(image):
        errs.append(spec.child("image").invalid(image, "must not contain whitespace"))
    config = sdk.get(foo, ".spec.config") or {}
    for name in ("msg", "msg1"):
        if len((config.get(name) or "").encode()) > MAX_MSG_LEN:
            errs.append(spec.child("config").child(name).too_long(MAX_MSG_LEN))
    warnings = []
    if isinstance(image, str) and image.endswith(":latest"):
        warnings.append("spec.image: the :latest tag is not reproducible; pin a version")
    return errs.validation(warnings)


class Hello(sdk.Plugin):
    def describe(self):
        return sdk.resource(
            GROUP, "Foo", "foos",
            short_names=["fo"],
            categories=["all"],
            versions=[
                sdk.version("v2", SCHEMA_V2, storage=True, status_subresource=True, columns=[
                    sdk.column("Image", "string", ".spec.image"),
                    sdk.column("Message", "string", ".spec.config.msg"),
                    sdk.column("Phase", "string", ".status.phase", priority=1),
                ]),
                sdk.version("v1", SCHEMA_V1, columns=[
                    sdk.column("Message", "string", ".spec.msg"),
                    sdk.column("Message1", "string", ".spec.msg1", priority=1),
                ]),
            ],
            selectable_fields=[".spec.image"],
        )

    def default(self, obj):
        version = sdk.api_version(obj)
        if version == "v1":
            default_v1(obj)
        elif version == "v2":
            default_v2(obj)
        else:
            raise sdk.HookError(f"unknown version {version!r}")
        return obj

    def convert(self, obj, to_version):
        version = sdk.api_version(obj)
        if (version, to_version) == ("v1", "v2"):
            return v1_to_v2(obj)
        if (version, to_version) == ("v2", "v1"):
            return v2_to_v1(obj)
        raise sdk.HookError(f"cannot convert Foo from {version!r} to {to_version!r}")

    def validate_create(self, req, obj):
        return validate_v2(obj)

    def validate_update(self, req, new, old):
        return validate_v2(new)


Hooks = sdk.export(Hello)
