// Build a JavaScript plugin: `node guests/js/build.mjs <source.js> <out.wasm>`.
// componentize-js (from npm) embeds the source and the modules it imports in
// StarlingMonkey and targets the project's WIT world. Ahead-of-time compilation
// (weval) stays off: it downloads a native tool at build time, and the host's
// precompiled cache already makes restarts cheap.
import { componentize } from "@bytecodealliance/componentize-js";
import { writeFile, rename } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { dirname, join, resolve } from "node:path";

const [source, out] = process.argv.slice(2);
if (!source || !out) {
  console.error("usage: node guests/js/build.mjs <source.js> <out.wasm>");
  process.exit(2);
}
const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const { component } = await componentize({
  sourcePath: resolve(source),
  witPath: join(root, "wit"),
  worldName: "plugin",
  // stdio stays: console.log and uncaught errors reach the server log. Hooks must not
  // depend on time, randomness or the network, so those features are left out.
  disableFeatures: ["random", "clocks", "http", "fetch-event"],
});
await writeFile(`${out}.tmp`, component);
await rename(`${out}.tmp`, out);
console.log(`${out}: ${component.length} bytes`);
