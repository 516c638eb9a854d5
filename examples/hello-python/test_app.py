"""The Python hello's logic, tested natively with CPython: no Wasm, no host.

    make test   # runs this, among everything else; or by hand:
    target/tools/python/bin/componentize-py -d wit -w plugin bindings target/py-bindings
    PYTHONPATH=target/py-bindings:guests/python:examples/hello-python \\
      target/tools/python/bin/python -m unittest discover -s examples/hello-python
"""

import json
import unittest

from componentize_py_types import Err
from wit_world.imports import types

import app

hooks = app.Hooks()
REQ = None  # the hooks of hello do not look at the request


def v1(msg):
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
            "metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}},
            "spec": {"msg": msg}}


def call(hook, *objs, **kw):
    out = getattr(hooks, hook)(*[json.dumps(o) for o in objs], **kw)
    return json.loads(out)


class HelloTest(unittest.TestCase):
    def test_describe(self):
        r = hooks.describe()
        self.assertEqual((r.group, r.kind, r.plural, r.list_kind), ("hello.zeng.dev", "Foo", "foos", "FooList"))
        self.assertEqual([v.name for v in r.versions], ["v2", "v1"])
        self.assertTrue(r.versions[0].storage and r.versions[0].status_subresource)

    def test_v1_defaults_msg1(self):
        self.assertEqual(call("default", v1("hi"))["spec"]["msg1"], "hello")

    def test_v2_defaults_image(self):
        out = call("default", {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "a"}, "spec": {}})
        self.assertEqual(out["spec"]["image"], "busybox")

    def test_v1_round_trips_through_v2_unchanged(self):
        orig = call("default", v1("hi"))
        [v2] = [json.loads(t) for t in hooks.convert([json.dumps(orig)], "v2")]
        self.assertEqual(v2["spec"], {"image": "busybox", "config": {"msg": "hi", "msg1": "hello"}})
        [back] = [json.loads(t) for t in hooks.convert([json.dumps(v2)], "v1")]
        self.assertEqual(back, orig)

    def test_v2_round_trips_through_v1_unchanged(self):
        orig = {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                "metadata": {"name": "a", "annotations": {"keep": "me"}},
                "spec": {"image": "nginx:1.27", "config": {"msg": "m", "msg1": "n"}},
                "status": {"phase": "Ready"}}
        [as_v1] = [json.loads(t) for t in hooks.convert([json.dumps(orig)], "v1")]
        self.assertIn("nginx:1.27", as_v1["metadata"]["annotations"][app.V2_FIELDS_ANNOTATION])
        self.assertEqual(as_v1["spec"]["msg"], "m")
        [back] = [json.loads(t) for t in hooks.convert([json.dumps(as_v1)], "v2")]
        self.assertEqual(back, orig)

    def test_a_broken_annotation_is_a_hook_error(self):
        bad = v1("hi")
        bad["metadata"]["annotations"] = {app.V2_FIELDS_ANNOTATION: "not json"}
        with self.assertRaises(Err) as e:
            hooks.convert([json.dumps(bad)], "v2")
        self.assertTrue(e.exception.value.startswith("annotation hello.zeng.dev/v2-fields is not valid: "))

    def test_validation_names_the_fields(self):
        foo = {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "a"},
               "spec": {"image": "bad image", "config": {"msg": "é" * 129}}}
        v = hooks.validate_create(REQ, json.dumps(foo))
        self.assertEqual([e.field for e in v.errors], ["spec.image", "spec.config.msg"])
        self.assertEqual([e.type for e in v.errors], [types.FieldErrorType.INVALID, types.FieldErrorType.TOO_LONG])
        self.assertEqual(v.errors[0].bad_value, '"bad image"')

    def test_latest_tag_is_a_warning_not_an_error(self):
        foo = {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "a"}, "spec": {"image": "nginx:latest"}}
        v = hooks.validate_create(REQ, json.dumps(foo))
        self.assertEqual((len(v.errors), len(v.warnings)), (0, 1))

    def test_print_uses_the_version_columns(self):
        [row] = hooks.print([json.dumps(call("default", v1("hi")))])
        self.assertEqual(row, [types.Cell_Text("hi"), types.Cell_Text("hello")])


if __name__ == "__main__":
    unittest.main()
