// Unit tests of the JavaScript Flunder, run natively by Node (no Wasm); the host's
// reads are the stand-in of guests/js/test-host.mjs, fed through globalThis:
//   node --import ./guests/js/test-host.mjs --test examples/wardle-flunder-js/*.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";

import { banned, hooks } from "./flunder.js";

const create = (name) => ({
  request: { operation: "create", user: { name: "u", uid: "", groups: [], extra: [] }, name, dryRun: false },
  object: JSON.stringify({ apiVersion: "wardle.example.com/v1alpha1", kind: "Flunder", metadata: { name } }),
});

test("a name a Fischer disallows is banned", () => {
  const fischers = [{ metadata: { name: "a" }, disallowedFlunders: ["x", "y"] }, { metadata: { name: "b" } }];
  assert.equal(banned("y", fischers), true);
  assert.equal(banned("z", fischers), false);
});

test("admit reads the Fischers and denies a banned name", () => {
  globalThis.wasmApiserverReads = {
    "wardle.example.com/v1alpha1/fischers": [{ metadata: { name: "f" }, disallowedFlunders: ["bad"] }],
  };
  assert.deepEqual(hooks.admit(create("fine")), { tag: "allowed", val: [] });
  assert.deepEqual(hooks.admit(create("bad")), {
    tag: "denied",
    val: { code: 403, message: "this name may not be used, please change the resource name" },
  });
});

test("an undeclared or unavailable read denies as the sample apiserver does", () => {
  globalThis.wasmApiserverReads = undefined;
  assert.deepEqual(hooks.admit(create("any")), {
    tag: "denied",
    val: { code: 403, message: "not yet ready to handle request" },
  });
});
