// `wardle.example.com` `Flunder` in JavaScript, with the sample apiserver's BanFlunder
// admission: the same kind as the Rust `wardle-flunder` example, built with
// componentize-js. Admission reads every Fischer through the host and refuses a new
// Flunder that any of them lists in `disallowedFlunders`.

import * as sdk from "../../guests/js/wasm-apiserver-sdk.js";

const GROUP = "wardle.example.com";
const REFERENCE_TYPES = ["Flunder", "Fischer"];
export const FISCHERS = sdk.resourceRef(GROUP, "v1alpha1", "fischers");
const SCHEMA = JSON.stringify({
  type: "object",
  description: "Flunder is an example type with a reference to a Flunder or a Fischer.",
  properties: {
    spec: {
      type: "object",
      properties: { reference: { type: "string" }, referenceType: { type: "string", enum: REFERENCE_TYPES } },
    },
    status: { type: "object" },
  },
});

/** Whether any Fischer lists `name` in its `disallowedFlunders`. */
export function banned(name, fischers) {
  return fischers.some((f) => (f.disallowedFlunders ?? []).includes(name));
}

export class Flunder extends sdk.Plugin {
  describe() {
    const version = (name, storage = false) =>
      sdk.version(name, SCHEMA, {
        storage, statusSubresource: true,
        columns: [sdk.column("Reference", "string", ".spec.reference"), sdk.column("Type", "string", ".spec.referenceType")],
      });
    return sdk.resource(GROUP, "Flunder", "flunders", {
      versions: [version("v1beta1"), version("v1alpha1", true)],
      preferredVersion: "v1beta1",
      selectableFields: [".spec.referenceType"],
      reads: [FISCHERS],
    });
  }

  admit(req, obj, old) {
    if (req.operation !== "create" || obj === undefined) return [];
    let fischers;
    try {
      fischers = sdk.readList(FISCHERS);
    } catch (e) {
      throw new sdk.Denied("not yet ready to handle request");
    }
    if (banned(obj.metadata?.name ?? "", fischers)) {
      throw new sdk.Denied("this name may not be used, please change the resource name");
    }
    return [];
  }
}

export const hooks = sdk.exportHooks(new Flunder());
