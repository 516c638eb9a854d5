"""A Python plugin that misbehaves on request (`spec.mode`), for the host's tests:

- `raise`: `default` raises ValueError (a hook that may fail: the SDK reports it).
- `raise-in-validate`: `validate_create` raises (cannot fail by contract: it traps).
- `notobject`: `default` returns a list instead of an object.
- `wrongtype`: `validate_create` returns a string instead of a validation.
- `loop`: `default` never returns.
- `print`: `default` prints a line to stdout (it must reach the server log).
Otherwise it behaves.
"""

import json

import wasm_apiserver_sdk as sdk

SCHEMA = json.dumps({"type": "object", "properties": {"spec": {
    "type": "object", "properties": {"mode": {"type": "string"}}}}})


class Misbehave(sdk.Plugin):
    def describe(self):
        return sdk.resource("test.wasm-apiserver.dev", "PyMisbehaver", "pymisbehavers",
                            versions=[sdk.version("v1", SCHEMA, storage=True)])

    def default(self, obj):
        mode = sdk.get(obj, ".spec.mode")
        if mode == "raise":
            raise ValueError("asked to raise")
        if mode == "notobject":
            return [1, 2, 3]
        if mode == "loop":
            while True:
                pass
        if mode == "print":
            print(f"defaulting {obj['metadata']['name']}")
        return obj

    def validate_create(self, req, obj):
        mode = sdk.get(obj, ".spec.mode")
        if mode == "raise-in-validate":
            raise RuntimeError("asked to raise in validate")
        if mode == "wrongtype":
            return "not a validation"
        return sdk.valid()


Hooks = sdk.export(Misbehave)
