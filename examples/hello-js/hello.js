// `hello.zeng.dev` `Foo` in JavaScript: the same kind and behaviour as the Rust `hello`
// example (examples/hello/src/lib.rs), built with componentize-js.
//
// - v1: `spec.msg` (required), `spec.msg1` (defaults to `hello`).
// - v2 (storage): `spec.image` (required, defaults to `busybox`), `spec.config.msg`,
//   `spec.config.msg1`, and a `status` written through the status subresource.
//
// Conversion is lossless both ways: what v1 cannot express (`spec.image` when not the
// default, and `status`) travels in the `hello.zeng.dev/v2-fields` annotation.

import * as sdk from "../../guests/js/wasm-apiserver-sdk.js";

const GROUP = "hello.zeng.dev";
const V2_FIELDS_ANNOTATION = "hello.zeng.dev/v2-fields";
const DEFAULT_IMAGE = "busybox";
const DEFAULT_MSG1 = "hello";
const MAX_MSG_LEN = 256;
// Unicode's White_Space property, as Rust's `char::is_whitespace` (`\s` differs).
const WHITESPACE = /[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]/;

const SCHEMA_V1 = JSON.stringify({
  type: "object",
  description: "Foo is an example resource (v1).",
  properties: {
    spec: {
      type: "object",
      description: "FooSpec is the desired state of a Foo.",
      required: ["msg"],
      properties: {
        msg: { type: "string", description: "The message to say." },
        msg1: { type: "string", description: "A second message; defaults to \"hello\"." },
      },
    },
  },
});

const SCHEMA_V2 = JSON.stringify({
  type: "object",
  description: "Foo is an example resource (v2).",
  properties: {
    spec: {
      type: "object",
      description: "FooSpec is the desired state of a Foo.",
      properties: {
        image: { type: "string", description: "Container image; defaults to \"busybox\"." },
        config: {
          type: "object",
          description: "Messages to say.",
          properties: {
            msg: { type: "string", description: "The message to say." },
            msg1: { type: "string", description: "A second message; defaults to \"hello\"." },
          },
        },
      },
    },
    status: {
      type: "object",
      description: "FooStatus is the observed state of a Foo.",
      properties: {
        phase: { type: "string", description: "Processing phase." },
        observedGeneration: { type: "integer", format: "int64" },
      },
    },
  },
});

const isSet = (v) => v !== undefined && v !== null;

function defaultV1(foo) {
  foo.spec ??= {};
  if (!isSet(foo.spec.msg1)) foo.spec.msg1 = DEFAULT_MSG1;
}

function defaultV2(foo) {
  foo.spec ??= {};
  if (!foo.spec.image) foo.spec.image = DEFAULT_IMAGE;
  const config = foo.spec.config;
  if (isSet(config) && isSet(config.msg) && !isSet(config.msg1)) config.msg1 = DEFAULT_MSG1;
}

function pick(from, keys) {
  const out = {};
  for (const k of keys) if (isSet(from?.[k])) out[k] = from[k];
  return out;
}

function v1ToV2(foo) {
  const metadata = foo.metadata ?? {};
  let text;
  if (isSet(metadata.annotations)) {
    text = metadata.annotations[V2_FIELDS_ANNOTATION];
    delete metadata.annotations[V2_FIELDS_ANNOTATION];
    if (Object.keys(metadata.annotations).length === 0) delete metadata.annotations;
  }
  let extra = {};
  if (text !== undefined) {
    try {
      extra = JSON.parse(text);
    } catch (e) {
      throw new sdk.HookError(`annotation ${V2_FIELDS_ANNOTATION} is not valid: ${e.message}`);
    }
    if (extra === null || typeof extra !== "object" || Array.isArray(extra)) {
      throw new sdk.HookError(`annotation ${V2_FIELDS_ANNOTATION} is not valid: not a JSON object`);
    }
    if (isSet(extra.image) && typeof extra.image !== "string") {
      throw new sdk.HookError(`annotation ${V2_FIELDS_ANNOTATION} is not valid: image is not a string`);
    }
  }
  // v1 cannot say which image: a v1 object converts to a complete v2 one.
  const spec = { image: isSet(extra.image) ? extra.image : DEFAULT_IMAGE };
  const config = pick(foo.spec, ["msg", "msg1"]);
  if (Object.keys(config).length > 0) spec.config = config;
  const out = { apiVersion: `${GROUP}/v2`, kind: foo.kind ?? "Foo", metadata, spec };
  if (isSet(extra.status)) out.status = extra.status;
  return out;
}

function v2ToV1(foo) {
  const metadata = foo.metadata ?? {};
  const image = foo.spec?.image;
  const extra = {};
  if (isSet(image) && image !== DEFAULT_IMAGE) extra.image = image;
  if (isSet(foo.status)) extra.status = foo.status;
  if (Object.keys(extra).length > 0) {
    metadata.annotations ??= {};
    metadata.annotations[V2_FIELDS_ANNOTATION] = JSON.stringify(extra);
  }
  const spec = pick(foo.spec?.config, ["msg", "msg1"]);
  return { apiVersion: `${GROUP}/v1`, kind: foo.kind ?? "Foo", metadata, spec };
}

const utf8Length = (s) => new TextEncoder().encode(s).length;

/** Validation of the storage version: every write, from any version, ends here. */
function validateV2(foo) {
  const errors = [];
  const spec = new sdk.Path("spec");
  const image = sdk.get(foo, ".spec.image");
  if (!image) {
    errors.push(spec.child("image").required());
  } else if (WHITESPACE.test(image)) {
    errors.push(spec.child("image").invalid(image, "must not contain whitespace"));
  }
  const config = sdk.get(foo, ".spec.config") ?? {};
  for (const name of ["msg", "msg1"]) {
    if (utf8Length(config[name] ?? "") > MAX_MSG_LEN) {
      errors.push(spec.child("config").child(name).tooLong(MAX_MSG_LEN));
    }
  }
  const warnings = [];
  if (typeof image === "string" && image.endsWith(":latest")) {
    warnings.push("spec.image: the :latest tag is not reproducible; pin a version");
  }
  return sdk.validation(errors, warnings);
}

class Hello extends sdk.Plugin {
  describe() {
    return sdk.resource(GROUP, "Foo", "foos", {
      shortNames: ["fo"],
      categories: ["all"],
      versions: [
        sdk.version("v2", SCHEMA_V2, {
          storage: true,
          statusSubresource: true,
          columns: [
            sdk.column("Image", "string", ".spec.image"),
            sdk.column("Message", "string", ".spec.config.msg"),
            sdk.column("Phase", "string", ".status.phase", { priority: 1 }),
          ],
        }),
        sdk.version("v1", SCHEMA_V1, {
          columns: [
            sdk.column("Message", "string", ".spec.msg"),
            sdk.column("Message1", "string", ".spec.msg1", { priority: 1 }),
          ],
        }),
      ],
      selectableFields: [".spec.image"],
    });
  }

  default(obj) {
    const version = sdk.apiVersion(obj);
    if (version === "v1") defaultV1(obj);
    else if (version === "v2") defaultV2(obj);
    else throw new sdk.HookError(`unknown version ${JSON.stringify(version)}`);
    return obj;
  }

  convert(obj, toVersion) {
    const version = sdk.apiVersion(obj);
    if (version === "v1" && toVersion === "v2") return v1ToV2(obj);
    if (version === "v2" && toVersion === "v1") return v2ToV1(obj);
    throw new sdk.HookError(`cannot convert Foo from ${JSON.stringify(version)} to ${JSON.stringify(toVersion)}`);
  }

  validateCreate(req, obj) { return validateV2(obj); }
  validateUpdate(req, next, old) { return validateV2(next); }
}

export const hooks = sdk.exportHooks(new Hello());
