// A JavaScript plugin that misbehaves on request (`spec.mode`), for the host's tests:
//
// - `throw`: `default` throws a TypeError (a hook that may fail: the SDK reports it).
// - `throw-in-validate`: `validateCreate` throws (cannot fail by contract: it traps).
// - `notobject`: `default` returns an array instead of an object.
// - `wrongtype`: `validateCreate` returns a string instead of a validation.
// - `loop`: `default` never returns.
// - `print`: `default` writes a line with console.log (it must reach the server log).
// Otherwise it behaves.

import * as sdk from "../../js/wasm-apiserver-sdk.js";

const SCHEMA = JSON.stringify({ type: "object", properties: { spec: {
  type: "object", properties: { mode: { type: "string" } } } } });

class Misbehave extends sdk.Plugin {
  describe() {
    return sdk.resource("test.wasm-apiserver.dev", "JsMisbehaver", "jsmisbehavers", {
      versions: [sdk.version("v1", SCHEMA, { storage: true })],
    });
  }

  default(obj) {
    const mode = sdk.get(obj, ".spec.mode");
    if (mode === "throw") throw new TypeError("asked to throw");
    if (mode === "notobject") return [1, 2, 3];
    if (mode === "loop") for (;;) {}
    if (mode === "print") console.log(`defaulting ${obj.metadata.name}`);
    return obj;
  }

  validateCreate(req, obj) {
    const mode = sdk.get(obj, ".spec.mode");
    if (mode === "throw-in-validate") throw new Error("asked to throw in validate");
    if (mode === "wrongtype") return "not a validation";
    return sdk.validation();
  }
}

export const hooks = sdk.exportHooks(new Misbehave());
