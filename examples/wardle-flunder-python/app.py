"""`wardle.example.com` `Flunder` in Python, with the sample apiserver's BanFlunder
admission: the same kind as the Rust `wardle-flunder` example, built with
componentize-py. Admission reads every Fischer through the host and refuses a new
Flunder that any of them lists in `disallowedFlunders`.
"""

import json

import wasm_apiserver_sdk as sdk

GROUP = "wardle.example.com"
REFERENCE_TYPES = ["Flunder", "Fischer"]
FISCHERS = sdk.resource_ref(GROUP, "v1alpha1", "fischers")
SCHEMA = json.dumps({
    "type": "object",
    "description": "Flunder is an example type with a reference to a Flunder or a Fischer.",
    "properties": {
        "spec": {"type": "object", "properties": {
            "reference": {"type": "string"},
            "referenceType": {"type": "string", "enum": REFERENCE_TYPES}}},
        "status": {"type": "object"},
    },
})


def banned(name, fischers):
    """Whether any Fischer lists `name` in its `disallowedFlunders`."""
    return any(name in (f.get("disallowedFlunders") or []) for f in fischers)


class Flunder(sdk.Plugin):
    def describe(self):
        def version(name, storage=False):
            return sdk.version(name, SCHEMA, storage=storage, status_subresource=True, columns=[
                sdk.column("Reference", "string", ".spec.reference"),
                sdk.column("Type", "string", ".spec.referenceType")])
        return sdk.resource(GROUP, "Flunder", "flunders",
                            versions=[version("v1beta1"), version("v1alpha1", storage=True)],
                            preferred_version="v1beta1",
                            selectable_fields=[".spec.referenceType"],
                            reads=[FISCHERS])

    def admit(self, req, obj, old):
        if req.operation != sdk.types.Operation.CREATE or obj is None:
            return []
        try:
            fischers = sdk.read_list(FISCHERS)
        except sdk.ReadFailed:
            raise sdk.Denied("not yet ready to handle request")
        if banned(obj["metadata"].get("name", ""), fischers):
            raise sdk.Denied("this name may not be used, please change the resource name")
        return []


Hooks = sdk.export(Flunder)
