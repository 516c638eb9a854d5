//! `hello.zeng.dev` `Foo`: the example from zeng.dev's apiserver series, as a plugin.
//!
//! - v1: `spec.msg` (required), `spec.msg1` (defaults to `hello`).
//! - v2 (storage): `spec.image` (required, defaults to `busybox`), `spec.config.msg`,
//!   `spec.config.msg1`, and a `status` written through the status subresource.
//!
//! Conversion is lossless both ways: what v1 cannot express (`spec.image` when not the
//! default, and `status`) travels in the `hello.zeng.dev/v2-fields` annotation.

use std::collections::BTreeMap;
use wasm_apiserver_sdk::prelude::*;

pub const GROUP: &str = "hello.zeng.dev";
/// Holds the v2-only fields of an object while it is written as v1.
pub const V2_FIELDS_ANNOTATION: &str = "hello.zeng.dev/v2-fields";
pub const DEFAULT_IMAGE: &str = "busybox";
pub const DEFAULT_MSG1: &str = "hello";
pub const MAX_MSG_LEN: usize = 256;

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FooV1 {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: SpecV1,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpecV1 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg1: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FooV2 {
    pub api_version: String,
    pub kind: String,
    #[serde(default)]
    pub metadata: ObjectMeta,
    #[serde(default)]
    pub spec: SpecV2,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SpecV2 {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<Config>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Config {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msg1: Option<String>,
}

/// What a v1 object carries in [`V2_FIELDS_ANNOTATION`].
#[derive(Debug, Default, Serialize, Deserialize)]
struct V2Fields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    image: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<Value>,
}

const SCHEMA_V1: &str = r#"{
  "type": "object",
  "description": "Foo is an example resource (v1).",
  "properties": {
    "spec": {
      "type": "object",
      "description": "FooSpec is the desired state of a Foo.",
      "required": ["msg"],
      "properties": {
        "msg": {"type": "string", "description": "The message to say."},
        "msg1": {"type": "string", "description": "A second message; defaults to \"hello\"."}
      }
    }
  }
}"#;

const SCHEMA_V2: &str = r#"{
  "type": "object",
  "description": "Foo is an example resource (v2).",
  "properties": {
    "spec": {
      "type": "object",
      "description": "FooSpec is the desired state of a Foo.",
      "properties": {
        "image": {"type": "string", "description": "Container image; defaults to \"busybox\"."},
        "config": {
          "type": "object",
          "description": "Messages to say.",
          "properties": {
            "msg": {"type": "string", "description": "The message to say."},
            "msg1": {"type": "string", "description": "A second message; defaults to \"hello\"."}
          }
        }
      }
    },
    "status": {
      "type": "object",
      "description": "FooStatus is the observed state of a Foo.",
      "properties": {
        "phase": {"type": "string", "description": "Processing phase."},
        "observedGeneration": {"type": "integer", "format": "int64"}
      }
    }
  }
}"#;

pub struct Hello;

impl Plugin for Hello {
    fn describe() -> Resource {
        ResourceBuilder::new(GROUP, "Foo", "foos")
            .short_name("fo")
            .category("all")
            .version(
                VersionBuilder::new("v2")
                    .storage()
                    .schema(SCHEMA_V2)
                    .status_subresource()
                    .column("Image", "string", ".spec.image", 0)
                    .column("Message", "string", ".spec.config.msg", 0)
                    .column("Phase", "string", ".status.phase", 1),
            )
            .version(
                VersionBuilder::new("v1")
                    .schema(SCHEMA_V1)
                    .column("Message", "string", ".spec.msg", 0)
                    .column("Message1", "string", ".spec.msg1", 1),
            )
            .selectable_field(".spec.image")
            .build()
    }

    fn default(obj: Object) -> Result<Object, String> {
        // Typed all the way: decode straight from the JSON text, encode straight back.
        match obj.version().as_deref() {
            Some("v1") => {
                let mut foo: FooV1 = obj.decode()?;
                default_v1(&mut foo);
                Object::encode(&foo)
            }
            Some("v2") => {
                let mut foo: FooV2 = obj.decode()?;
                default_v2(&mut foo);
                Object::encode(&foo)
            }
            other => Err(format!("unknown version {other:?}")),
        }
    }

    fn convert(obj: Object, to_version: &str) -> Result<Object, String> {
        match (obj.version().as_deref(), to_version) {
            (Some("v1"), "v2") => Object::encode(&v1_to_v2(obj.decode()?)?),
            (Some("v2"), "v1") => Object::encode(&v2_to_v1(obj.decode()?)?),
            (from, to) => Err(format!("cannot convert Foo from {from:?} to {to:?}")),
        }
    }

    fn validate_create(_req: &Request, obj: &Object) -> Validation {
        match obj.decode::<FooV2>() {
            Ok(foo) => validate_v2(&foo),
            Err(e) => Validation::from_errors(vec![Path::new("spec").invalid(obj.value(), &e)]),
        }
    }

    fn validate_update(req: &Request, new: &Object, _old: &Object) -> Validation {
        Self::validate_create(req, new)
    }
}

wasm_apiserver_sdk::export_plugin!(Hello);

pub fn default_v1(foo: &mut FooV1) {
    if foo.spec.msg1.is_none() {
        foo.spec.msg1 = Some(DEFAULT_MSG1.into());
    }
}

pub fn default_v2(foo: &mut FooV2) {
    if foo.spec.image.as_deref().unwrap_or_default().is_empty() {
        foo.spec.image = Some(DEFAULT_IMAGE.into());
    }
    if let Some(config) = foo.spec.config.as_mut() {
        if config.msg.is_some() && config.msg1.is_none() {
            config.msg1 = Some(DEFAULT_MSG1.into());
        }
    }
}

/// Validation of the storage version: every write, from any version, ends here.
pub fn validate_v2(foo: &FooV2) -> Validation {
    let mut errs = ErrorList::new();
    let spec = Path::new("spec");
    match foo.spec.image.as_deref() {
        None | Some("") => errs.push(spec.child("image").required("")),
        Some(image) if image.chars().any(char::is_whitespace) => errs.push(
            spec.child("image")
                .invalid(image, "must not contain whitespace"),
        ),
        // A stricter build, the other side of the hot-reload tests and benchmark.
        #[cfg(feature = "pinned-images")]
        Some(image) if !image.contains(':') => errs.push(
            spec.child("image")
                .invalid(image, "must name a tag (this build requires pinned images)"),
        ),
        Some(_) => {}
    }
    if let Some(config) = &foo.spec.config {
        for (name, value) in [("msg", &config.msg), ("msg1", &config.msg1)] {
            if value.as_deref().unwrap_or_default().len() > MAX_MSG_LEN {
                errs.push(spec.child("config").child(name).too_long(MAX_MSG_LEN));
            }
        }
    }
    let mut v = errs.into_validation();
    if foo
        .spec
        .image
        .as_deref()
        .is_some_and(|i| i.ends_with(":latest"))
    {
        v = v.warn("spec.image: the :latest tag is not reproducible; pin a version");
    }
    v
}

pub fn v1_to_v2(foo: FooV1) -> Result<FooV2, String> {
    let mut metadata = foo.metadata;
    let extra: V2Fields = match take_annotation(&mut metadata, V2_FIELDS_ANNOTATION) {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| format!("annotation {V2_FIELDS_ANNOTATION} is not valid: {e}"))?,
        None => V2Fields::default(),
    };
    let config = (foo.spec.msg.is_some() || foo.spec.msg1.is_some()).then(|| Config {
        msg: foo.spec.msg,
        msg1: foo.spec.msg1,
    });
    let mut out = FooV2 {
        api_version: format!("{GROUP}/v2"),
        kind: foo.kind,
        metadata,
        spec: SpecV2 {
            image: extra.image,
            config,
        },
        status: extra.status,
    };
    // v1 cannot say which image: a v1 object converts to a complete v2 one.
    if out.spec.image.is_none() {
        out.spec.image = Some(DEFAULT_IMAGE.into());
    }
    Ok(out)
}

pub fn v2_to_v1(foo: FooV2) -> Result<FooV1, String> {
    let mut metadata = foo.metadata;
    let image = foo.spec.image.filter(|i| i != DEFAULT_IMAGE);
    if image.is_some() || foo.status.is_some() {
        let extra = V2Fields {
            image,
            status: foo.status,
        };
        let text = serde_json::to_string(&extra).map_err(|e| e.to_string())?;
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(V2_FIELDS_ANNOTATION.into(), text);
    }
    #[allow(unused_mut, reason = "only the lossy test build changes it")]
    let mut config = foo.spec.config.unwrap_or_default();
    // The broken build the upgrade gate must refuse.
    #[cfg(feature = "lossy-convert")]
    {
        config.msg1 = None;
    }
    Ok(FooV1 {
        api_version: format!("{GROUP}/v1"),
        kind: foo.kind,
        metadata,
        spec: SpecV1 {
            msg: config.msg,
            msg1: config.msg1,
        },
    })
}

fn take_annotation(metadata: &mut ObjectMeta, key: &str) -> Option<String> {
    let annotations = metadata.annotations.as_mut()?;
    let value = annotations.remove(key);
    if annotations.is_empty() {
        metadata.annotations = None;
    }
    value
}

#[cfg(test)]
mod tests {
    //! The plugin's logic, tested natively: no Wasm, no host.
    use super::*;

    fn v1(msg: &str) -> Object {
        Object::from_value(json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
               "metadata": {"name": "a", "namespace": "default", "labels": {"x": "y"}},
               "spec": {"msg": msg}}))
    }

    #[test]
    fn v1_defaults_msg1() {
        let out = Hello::default(v1("hi")).unwrap();
        assert_eq!(out["spec"]["msg1"], "hello");
    }

    #[test]
    fn v2_defaults_image() {
        let out = Hello::default(Object::from_json(
            r#"{"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "a"}, "spec": {}}"#,
        ))
        .unwrap();
        assert_eq!(out["spec"]["image"], "busybox");
    }

    #[test]
    fn v1_round_trips_through_v2_unchanged() {
        let orig = Hello::default(v1("hi")).unwrap();
        let v2 = Hello::convert(orig.clone(), "v2").unwrap();
        assert_eq!(v2["spec"]["config"]["msg"], "hi");
        assert_eq!(v2["spec"]["image"], "busybox");
        assert_eq!(Hello::convert(v2, "v1").unwrap(), orig);
    }

    #[test]
    fn v2_round_trips_through_v1_unchanged() {
        let orig = Object::from_value(json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
            "metadata": {"name": "a", "annotations": {"keep": "me"}},
            "spec": {"image": "nginx:1.27", "config": {"msg": "m", "msg1": "n"}},
            "status": {"phase": "Ready"}}));
        let v1 = Hello::convert(orig.clone(), "v1").unwrap();
        assert!(v1["metadata"]["annotations"][V2_FIELDS_ANNOTATION]
            .as_str()
            .unwrap()
            .contains("nginx:1.27"));
        assert_eq!(v1["spec"]["msg"], "m");
        assert_eq!(Hello::convert(v1, "v2").unwrap(), orig);
    }

    #[test]
    fn validation_names_the_field() {
        let foo = FooV2 {
            spec: SpecV2 {
                image: Some("bad image".into()),
                config: Some(Config {
                    msg: Some("x".repeat(300)),
                    msg1: None,
                }),
            },
            ..Default::default()
        };
        let v = validate_v2(&foo);
        let fields: Vec<_> = v.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["spec.image", "spec.config.msg"]);
        assert!(matches!(v.errors[1].type_, FieldErrorType::TooLong));
    }

    #[test]
    fn latest_tag_is_a_warning_not_an_error() {
        let foo = FooV2 {
            spec: SpecV2 {
                image: Some("nginx:latest".into()),
                config: None,
            },
            ..Default::default()
        };
        let v = validate_v2(&foo);
        assert!(v.errors.is_empty());
        assert_eq!(v.warnings.len(), 1);
    }

    #[test]
    fn print_uses_the_version_columns() {
        let row = Hello::print(&Hello::default(v1("hi")).unwrap()).unwrap();
        assert!(matches!(&row[..], [Cell::Text(m), Cell::Text(m1)] if m == "hi" && m1 == "hello"));
    }
}
