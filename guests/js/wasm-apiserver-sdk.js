// The JavaScript SDK for wasm-apiserver plugins: the counterpart of the Rust
// `wasm-apiserver-sdk` crate, for plugins built with componentize-js.
//
// Write a class with the hooks your kind needs, working on plain objects, and export
// its hooks:
//
//   import * as sdk from "../../guests/js/wasm-apiserver-sdk.js";
//
//   class Hello extends sdk.Plugin {
//     describe() { return sdk.resource("hello.example.com", "Foo", "foos", { versions: [...] }); }
//     default(obj) { obj.spec ??= {}; obj.spec.msg ??= "hi"; return obj; }
//   }
//
//   export const hooks = sdk.exportHooks(new Hello());
//
// Every hook but `describe` has the default the WIT contract documents (see
// wit/world.wit). Objects arrive parsed from the JSON text the host sends, in the
// version their `apiVersion` names; return objects. Throw `HookError` to fail a request
// on purpose (the client gets a 500 naming the plugin and your message); any other
// exception in a hook that may fail is reported the same way, with its name.

import { log as hostLog } from "wasm-apiserver:plugin/host@0.2.0";
import { get as readGet, list as readListImport } from "wasm-apiserver:plugin/reads@0.2.0";

/** A deliberate failure: the request gets a 500 naming the plugin and this message. */
export class HookError extends Error {
  constructor(message) {
    super(message);
    this.name = "HookError";
  }
}

/** `log.info("...")` etc. write to the server log with the plugin's name. */
export const log = {
  trace: (m) => hostLog("trace", String(m)),
  debug: (m) => hostLog("debug", String(m)),
  info: (m) => hostLog("info", String(m)),
  warn: (m) => hostLog("warn", String(m)),
  error: (m) => hostLog("error", String(m)),
};

// --- Describing the kind ------------------------------------------------------------

/** A printer column; `priority` 0 shows by default, 1 only in `-o wide`. */
export function column(name, type, jsonPath, { priority = 0, format = "", description = "" } = {}) {
  return { name, type, format, description, priority, jsonPath };
}

/** One version of the kind; `schema` is the OpenAPI v3 schema as JSON text. */
export function version(name, schema, {
  storage = false, served = true, deprecationWarning = undefined, columns = [],
  statusSubresource = false, scale = undefined, subresources = [],
} = {}) {
  return {
    name, served, storage, deprecationWarning, schema, printerColumns: columns,
    statusSubresource, scale, subresources,
  };
}

/** A resource the plugin reads: `resourceRef("wardle.example.com", "v1alpha1", "fischers")`. */
export function resourceRef(group, version, resource) {
  return { group, version, resource };
}

/** The description of the kind; versions in order of preference. */
export function resource(group, kind, plural, {
  versions, singular = kind.toLowerCase(), listKind = `${kind}List`, shortNames = [],
  categories = [], clusterScoped = false, preferredVersion = undefined, selectableFields = [],
  reads = [], defaultPropagation = undefined,
}) {
  return {
    group, kind, listKind, plural, singular, shortNames, categories,
    scope: clusterScoped ? "cluster" : "namespaced",
    versions, preferredVersion, selectableFields, reads, computed: undefined,
    defaultPropagation,
  };
}

// --- Reads of other objects (in admit, serveSubresource and compute) -------------------

/** A failed read: `kind` is undeclared, not-found, invalid, unavailable or not-allowed. */
export class ReadFailed extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

function readFailed(e) {
  const err = e?.payload ?? e;
  return new ReadFailed(err?.tag ?? "unavailable", String(err?.val ?? err));
}

/** The object `name` (in `namespace`, or undefined for cluster-scoped); throws ReadFailed. */
export function read(ref, namespace, name) {
  try {
    return JSON.parse(readGet(ref, namespace, name));
  } catch (e) {
    throw readFailed(e);
  }
}

/** Every object in `namespace` (all when undefined), page by page; throws ReadFailed. */
export function readList(ref, namespace = undefined, { labelSelector = "", fieldSelector = "" } = {}) {
  const out = [];
  let cont = "";
  for (;;) {
    let page;
    try {
      page = readListImport(ref, namespace, { labelSelector, fieldSelector, limit: 0, continue: cont });
    } catch (e) {
      throw readFailed(e);
    }
    for (const t of page.items) out.push(JSON.parse(t));
    cont = page.continue;
    if (!cont) return out;
  }
}


/** Throw from admit, serveSubresource or compute to refuse; 403 answers
 * `<plural>.<group> "<name>" is forbidden: <message>`. */
export class Denied extends Error {
  constructor(message, code = 403) {
    super(message);
    this.code = code;
  }
  denial() { return { code: this.code, message: this.message }; }
}

// --- Object access ------------------------------------------------------------------

/** The version part of `apiVersion` (`v2` for `hello.zeng.dev/v2`), or "". */
export function apiVersion(obj) {
  const av = String(obj?.apiVersion ?? "");
  return av.slice(av.lastIndexOf("/") + 1);
}

/** The value at a simple JSONPath (`.spec.config.msg`, `.spec.items[0].name`). */
export function get(obj, path, fallback = undefined) {
  let cur = obj;
  for (const seg of path.replace(/^\./, "").split(".")) {
    if (!seg) continue;
    const [name, index] = seg.split("[");
    if (name) {
      if (cur === null || typeof cur !== "object" || !(name in cur)) return fallback;
      cur = cur[name];
    }
    if (index !== undefined) {
      cur = Array.isArray(cur) ? cur[Number(index.replace("]", ""))] : undefined;
      if (cur === undefined) return fallback;
    }
  }
  return cur;
}

function cell(value, type) {
  if (value === undefined || value === null) return { tag: "none" };
  if (typeof value === "boolean") return { tag: "boolean", val: value };
  if (typeof value === "number" && type === "integer" && Number.isInteger(value)) {
    return { tag: "integer", val: BigInt(value) };
  }
  if (typeof value === "number" && (type === "integer" || type === "number")) {
    return { tag: "number", val: value };
  }
  if (typeof value === "string") return { tag: "text", val: value };
  return { tag: "text", val: JSON.stringify(value) };
}

// --- Validation: field errors as k8s.io/apimachinery's field.Error --------------------

/** A field path built like `field.NewPath("spec").Child("config").Index(2)`. */
export class Path {
  constructor(root) { this.path = root; }
  child(name) { return new Path(`${this.path}.${name}`); }
  index(i) { return new Path(`${this.path}[${i}]`); }
  key(k) { return new Path(`${this.path}[${k}]`); }
  toString() { return this.path; }

  #error(type, badValue, detail, supportedValues = []) {
    return { type, field: this.path, badValue, detail, supportedValues };
  }
  required(detail = "") { return this.#error("required", undefined, detail); }
  invalid(value, detail) { return this.#error("invalid", JSON.stringify(value), detail); }
  forbidden(detail) { return this.#error("forbidden", undefined, detail); }
  duplicate(value) { return this.#error("duplicate", JSON.stringify(value), ""); }
  notFound(value) { return this.#error("not-found", JSON.stringify(value), ""); }
  notSupported(value, supported) {
    return this.#error("not-supported", JSON.stringify(value), "", supported);
  }
  tooLong(maxBytes) {
    return this.#error("too-long", undefined, `may not be more than ${maxBytes} bytes`);
  }
  tooMany(actual, maxItems) {
    return this.#error("too-many", String(actual), `must have at most ${maxItems} items`);
  }
}

/** A validation result: field errors (empty means valid) and warnings for the client. */
export function validation(errors = [], warnings = []) {
  return { errors, warnings };
}

// --- The plugin and its defaults ------------------------------------------------------

/** Extend and override the hooks your kind needs; `describe` is required. */
export class Plugin {
  describe() { throw new Error("a plugin must describe its kind"); }

  /** Set defaults on an object of any served version. Must be idempotent. */
  default(obj) { return obj; }

  /** Convert one object to `toVersion` (called only when versions differ). Default:
   * rewrite `apiVersion`, right when versions share one schema. */
  convert(obj, toVersion) {
    obj.apiVersion = `${this.described().group}/${toVersion}`;
    return obj;
  }

  /** Default: drop `status` when the version has a status subresource. */
  prepareForCreate(req, obj) {
    if (this.hasStatus(obj)) delete obj.status;
    return obj;
  }

  /** Default with a status subresource: a main-resource update keeps the stored status;
   * a status update keeps everything but status. */
  prepareForUpdate(req, next, old) {
    if (!this.hasStatus(next)) return next;
    if (req.subresource === "status") {
      const kept = { ...old };
      setOrRemove(kept, "status", next.status);
      return kept;
    }
    setOrRemove(next, "status", old.status);
    return next;
  }

  validateCreate(req, obj) { return validation(); }
  validateUpdate(req, next, old) { return validation(); }
  validateDelete(req, obj) { return validation(); }

  /** Admission after validation (reads allowed): return warnings, or throw Denied.
   * Default: allowed. */
  admit(req, obj, old) { return []; }

  /** A custom subresource (reads allowed). Default: 404. */
  serveSubresource(req, parent) {
    throw new Denied("the server could not find the requested resource", 404);
  }

  /** The objects of a computed kind (reads allowed). Default: none. */
  compute(req) { return []; }

  /** One row: a cell per printer column of the object's version. Default: evaluate each
   * column's JSONPath. */
  print(obj) {
    return this.columns(obj).map((c) => cell(get(obj, c.jsonPath), c.type));
  }

  /** `describe()`, computed once. */
  described() {
    this._described ??= this.describe();
    return this._described;
  }

  versionOf(obj) {
    const name = apiVersion(obj);
    return this.described().versions.find((v) => v.name === name);
  }

  hasStatus(obj) { return this.versionOf(obj)?.statusSubresource === true; }

  columns(obj) { return this.versionOf(obj)?.printerColumns ?? []; }
}

function setOrRemove(obj, key, value) {
  if (value === undefined || value === null) delete obj[key];
  else obj[key] = value;
}

// --- The adapter between the WIT exports (JSON text) and a Plugin (objects) ------------

// A hook that returns `result<_, hook-error>` fails by throwing: componentize-js turns
// the thrown value into the error string.
function failing(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof HookError) throw e.message;
    throw `${e?.name ?? "Error"}: ${e?.message ?? e}`;
  }
}

// A hook that returns `result<_, denial>`: a Denied becomes the error value.
function denying(f) {
  try {
    return f();
  } catch (e) {
    if (e instanceof Denied) throw e.denial();
    throw e;
  }
}

/** The `hooks` export componentize-js needs, calling `plugin` (a Plugin instance). */
export function exportHooks(plugin) {
  const text = JSON.stringify;
  const parse = JSON.parse;
  return {
    describe: () => plugin.described(),
    default: (obj) => failing(() => text(plugin.default(parse(obj)))),
    convert: (objs, toVersion) => failing(() => objs.map((t) => {
      const o = parse(t);
      return apiVersion(o) === toVersion ? t : text(plugin.convert(o, toVersion));
    })),
    prepareForCreate: (req, obj) => failing(() => text(plugin.prepareForCreate(req, parse(obj)))),
    prepareForUpdate: (req, next, old) =>
      failing(() => text(plugin.prepareForUpdate(req, parse(next), parse(old)))),
    // Validation hooks cannot fail by contract: an exception traps, and the host's 500
    // carries what the engine wrote to stderr.
    validateCreate: (req, obj) => plugin.validateCreate(req, parse(obj)),
    validateUpdate: (req, next, old) => plugin.validateUpdate(req, parse(next), parse(old)),
    validateDelete: (req, obj) => plugin.validateDelete(req, parse(obj)),
    print: (objs) => failing(() => objs.map((t) => plugin.print(parse(t)))),
    // An exception other than Denied traps: the host denies the write (fails closed).
    admit: (req) => {
      const obj = req.object === undefined ? undefined : parse(req.object);
      const old = req.oldObject === undefined ? undefined : parse(req.oldObject);
      try {
        return { tag: "allowed", val: plugin.admit(req.request, obj, old) };
      } catch (e) {
        if (e instanceof Denied) return { tag: "denied", val: e.denial() };
        throw e;
      }
    },
    serveSubresource: (req) => denying(() => text(plugin.serveSubresource(req, parse(req.parent)))),
    compute: (req) => denying(() => plugin.compute(req).map((o) => text(o))),
  };
}
