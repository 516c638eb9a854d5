//! `wardle.example.com` `Flunder`, as kubernetes/sample-apiserver defines it: namespaced,
//! `spec.reference` names another Flunder or a Fischer and `spec.referenceType` says
//! which; both set or both empty. Served as v1beta1 (preferred) and v1alpha1 (storage);
//! the versions share one schema, so the SDK's default conversion is exact.
//!
//! Admission is the sample apiserver's BanFlunder: a Flunder may not be created with a
//! name that any Fischer lists in `disallowedFlunders`. The plugin reads the Fischers
//! through the host (`reads`), which answers from its watch cache.

use wasm_apiserver_sdk::prelude::*;

pub const REFERENCE_TYPES: [&str; 2] = ["Flunder", "Fischer"];

const SCHEMA: &str = r#"{
  "type": "object",
  "description": "Flunder is an example type with a reference to a Flunder or a Fischer.",
  "properties": {
    "spec": {
      "type": "object",
      "properties": {
        "reference": {"type": "string", "description": "The name of the referenced Flunder or Fischer."},
        "referenceType": {"type": "string", "description": "Flunder or Fischer.", "enum": ["Flunder", "Fischer"]}
      }
    },
    "status": {"type": "object"}
  }
}"#;

pub struct Flunder;

impl Plugin for Flunder {
    fn describe() -> Resource {
        let version = |name: &str| {
            VersionBuilder::new(name)
                .schema(SCHEMA)
                .status_subresource()
                .column("Reference", "string", ".spec.reference", 0)
                .column("Type", "string", ".spec.referenceType", 0)
        };
        ResourceBuilder::new("wardle.example.com", "Flunder", "flunders")
            .version(version("v1beta1"))
            .version(version("v1alpha1").storage())
            .preferred_version("v1beta1")
            .selectable_field(".spec.referenceType")
            .reads("wardle.example.com", "v1alpha1", "fischers")
            .build()
    }

    /// BanFlunder, on create only (as the sample apiserver registers it).
    fn admit(
        req: &Request,
        obj: Option<&Object>,
        _old: Option<&Object>,
    ) -> Result<Vec<String>, Denial> {
        let (Operation::Create, Some(obj)) = (req.operation, obj) else {
            return Ok(Vec::new());
        };
        let fischers = ResourceRef::new("wardle.example.com", "v1alpha1", "fischers");
        let fischers = reads::list_all(&fischers, None, "")
            .map_err(|_| Denial::forbidden("not yet ready to handle request"))?;
        let name = obj["metadata"]["name"].as_str().unwrap_or_default();
        // Only Fischers whose text names the Flunder are parsed, and only the one field:
        // with thousands of Fischers this is most of the cost of admission.
        let quoted = format!("\"{name}\"");
        let lists: Vec<Value> = fischers
            .iter()
            .filter(|f| f.text_contains(&quoted))
            .map(|f| json!({"disallowedFlunders": f.field("disallowedFlunders")}))
            .collect();
        match banned(name, lists.iter()) {
            true => Err(Denial::forbidden(
                "this name may not be used, please change the resource name",
            )),
            false => Ok(Vec::new()),
        }
    }

    fn validate_create(_req: &Request, obj: &Object) -> Validation {
        validate(obj)
    }

    fn validate_update(_req: &Request, new: &Object, _old: &Object) -> Validation {
        validate(new)
    }
}

wasm_apiserver_sdk::export_plugin!(Flunder);

/// Whether any Fischer lists `name` in its `disallowedFlunders`.
pub fn banned<'a>(name: &str, mut fischers: impl Iterator<Item = &'a Value>) -> bool {
    fischers.any(|f| {
        f["disallowedFlunders"]
            .as_array()
            .is_some_and(|names| names.iter().any(|n| n == name))
    })
}

pub fn validate(obj: &Value) -> Validation {
    let spec = Path::new("spec");
    let reference = obj["spec"]["reference"].as_str().unwrap_or_default();
    let ref_type = obj["spec"]["referenceType"].as_str().unwrap_or_default();
    let mut errs = ErrorList::new();
    match (reference.is_empty(), ref_type.is_empty()) {
        (true, true) => {}
        (false, true) => errs.push(
            spec.child("referenceType")
                .required("must be set when spec.reference is set"),
        ),
        (true, false) => errs.push(
            spec.child("reference")
                .required("must be set when spec.referenceType is set"),
        ),
        (false, false) => {
            if !REFERENCE_TYPES.contains(&ref_type) {
                errs.push(
                    spec.child("referenceType")
                        .not_supported(ref_type, &REFERENCE_TYPES),
                );
            }
        }
    }
    errs.into_validation()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flunder(spec: Value) -> Value {
        json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Flunder",
               "metadata": {"name": "f"}, "spec": spec})
    }

    #[test]
    fn both_or_neither() {
        assert!(validate(&flunder(json!({}))).is_valid());
        assert!(validate(&flunder(
            json!({"reference": "x", "referenceType": "Fischer"})
        ))
        .is_valid());
        let v = validate(&flunder(json!({"reference": "x"})));
        assert_eq!(v.errors[0].field, "spec.referenceType");
        let v = validate(&flunder(json!({"referenceType": "Flunder"})));
        assert_eq!(v.errors[0].field, "spec.reference");
    }

    #[test]
    fn a_name_a_fischer_disallows_is_banned() {
        let fischers = [
            json!({"metadata": {"name": "a"}, "disallowedFlunders": ["x", "y"]}),
            json!({"metadata": {"name": "b"}}),
        ];
        assert!(banned("y", fischers.iter()));
        assert!(!banned("z", fischers.iter()));
        assert!(!banned("y", [].iter()));
    }

    #[test]
    fn reference_type_is_an_enum() {
        let v = validate(&flunder(
            json!({"reference": "x", "referenceType": "Gadget"}),
        ));
        assert!(matches!(v.errors[0].type_, FieldErrorType::NotSupported));
        assert_eq!(v.errors[0].supported_values, ["Flunder", "Fischer"]);
    }

    #[test]
    fn versions_convert_by_renaming() {
        let out = Flunder::convert(flunder(json!({"reference": "x"})).into(), "v1beta1").unwrap();
        assert_eq!(out["apiVersion"], "wardle.example.com/v1beta1");
        assert_eq!(out["spec"]["reference"], "x");
    }
}
