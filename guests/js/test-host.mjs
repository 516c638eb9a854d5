// Run a JavaScript plugin's module in Node for unit tests: the host's imports
// (`wasm-apiserver:plugin/host@0.1.0`) resolve to a stand-in that prints log lines.
//   node --import ./guests/js/test-host.mjs --test examples/hello-js/*.test.mjs
import { register } from "node:module";

register(
  "data:text/javascript," +
    encodeURIComponent(`
      export async function resolve(specifier, context, next) {
        if (specifier === "wasm-apiserver:plugin/host@0.1.0") {
          return {
            shortCircuit: true,
            url: "data:text/javascript," + encodeURIComponent(
              "export function log(level, message) { console.error('[plugin ' + level + '] ' + message); }"),
          };
        }
        return next(specifier, context);
      }`),
);
