// The JavaScript hello's logic, tested natively in Node: no Wasm, no host.
//   node --import ./guests/js/test-host.mjs --test examples/hello-js/*.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { hooks } from "./hello.js";

const v1 = (msg) => ({
  apiVersion: "hello.zeng.dev/v1", kind: "Foo",
  metadata: { name: "a", namespace: "default", labels: { x: "y" } },
  spec: { msg },
});
const call = (hook, ...objs) => JSON.parse(hooks[hook](...objs.map((o) => JSON.stringify(o))));
const convert = (obj, to) => JSON.parse(hooks.convert([JSON.stringify(obj)], to)[0]);

test("describe", () => {
  const r = hooks.describe();
  assert.deepEqual([r.group, r.kind, r.plural, r.listKind], ["hello.zeng.dev", "Foo", "foos", "FooList"]);
  assert.deepEqual(r.versions.map((v) => v.name), ["v2", "v1"]);
  assert.ok(r.versions[0].storage && r.versions[0].statusSubresource);
});

test("v1 defaults msg1; v2 defaults image", () => {
  assert.equal(call("default", v1("hi")).spec.msg1, "hello");
  const v2 = call("default", { apiVersion: "hello.zeng.dev/v2", kind: "Foo", metadata: { name: "a" }, spec: {} });
  assert.equal(v2.spec.image, "busybox");
});

test("v1 round trips through v2 unchanged", () => {
  const orig = call("default", v1("hi"));
  const v2 = convert(orig, "v2");
  assert.deepEqual(v2.spec, { image: "busybox", config: { msg: "hi", msg1: "hello" } });
  assert.deepEqual(convert(v2, "v1"), orig);
});

test("v2 round trips through v1 unchanged", () => {
  const orig = {
    apiVersion: "hello.zeng.dev/v2", kind: "Foo",
    metadata: { name: "a", annotations: { keep: "me" } },
    spec: { image: "nginx:1.27", config: { msg: "m", msg1: "n" } },
    status: { phase: "Ready" },
  };
  const asV1 = convert(structuredClone(orig), "v1");
  assert.match(asV1.metadata.annotations["hello.zeng.dev/v2-fields"], /nginx:1\.27/);
  assert.deepEqual(convert(asV1, "v2"), orig);
});

test("a broken annotation is a hook error", () => {
  const bad = v1("hi");
  bad.metadata.annotations = { "hello.zeng.dev/v2-fields": "not json" };
  assert.throws(() => hooks.convert([JSON.stringify(bad)], "v2"),
    (e) => typeof e === "string" && e.startsWith("annotation hello.zeng.dev/v2-fields is not valid: "));
});

test("validation names the fields", () => {
  const foo = { apiVersion: "hello.zeng.dev/v2", kind: "Foo", metadata: { name: "a" },
    spec: { image: "bad image", config: { msg: "é".repeat(129) } } };
  const v = hooks.validateCreate(null, JSON.stringify(foo));
  assert.deepEqual(v.errors.map((e) => e.field), ["spec.image", "spec.config.msg"]);
  assert.deepEqual(v.errors.map((e) => e.type), ["invalid", "too-long"]);
  assert.equal(v.errors[0].badValue, '"bad image"');
});

test("a :latest tag is a warning, not an error", () => {
  const foo = { apiVersion: "hello.zeng.dev/v2", kind: "Foo", metadata: { name: "a" }, spec: { image: "nginx:latest" } };
  const v = hooks.validateCreate(null, JSON.stringify(foo));
  assert.deepEqual([v.errors.length, v.warnings.length], [0, 1]);
});

test("print uses the version's columns", () => {
  const [row] = hooks.print([JSON.stringify(call("default", v1("hi")))]);
  assert.deepEqual(row, [{ tag: "text", val: "hi" }, { tag: "text", val: "hello" }]);
});
