// Run a JavaScript plugin's module in Node for unit tests: the host's imports resolve
// to stand-ins. `wasm-apiserver:plugin/host@0.2.0` prints log lines;
// `wasm-apiserver:plugin/reads@0.2.0` answers from `globalThis.wasmApiserverReads`, an
// object of arrays keyed `group/version/resource` (unset: every read is unavailable).
//   node --import ./guests/js/test-host.mjs --test examples/hello-js/*.test.mjs
import { register } from "node:module";

const HOST = "export function log(level, message) { console.error('[plugin ' + level + '] ' + message); }";
const READS = `
  function objects(ref) {
    const all = globalThis.wasmApiserverReads;
    if (all === undefined) throw { tag: "unavailable", val: "no reads in this test" };
    return all[ref.group + "/" + ref.version + "/" + ref.resource] ?? [];
  }
  export function get(ref, namespace, name) {
    const o = objects(ref).find((o) => o.metadata?.name === name && o.metadata?.namespace === namespace);
    if (o === undefined) throw { tag: "not-found", val: name + " not found" };
    return JSON.stringify(o);
  }
  export function list(ref, namespace, options) {
    const items = objects(ref).filter((o) => namespace === undefined || o.metadata?.namespace === namespace);
    return { items: items.map((o) => JSON.stringify(o)), continue: "", resourceVersion: "1" };
  }`;

register(
  "data:text/javascript," +
    encodeURIComponent(`
      const stand_ins = {
        "wasm-apiserver:plugin/host@0.2.0": ${JSON.stringify(HOST)},
        "wasm-apiserver:plugin/reads@0.2.0": ${JSON.stringify(READS)},
      };
      export async function resolve(specifier, context, next) {
        if (specifier in stand_ins) {
          return { shortCircuit: true, url: "data:text/javascript," + encodeURIComponent(stand_ins[specifier]) };
        }
        return next(specifier, context);
      }`),
);
