//! Objects as hooks see them: JSON text from the host, parsed only when a hook looks.
//!
//! Every hook call moves an object across the Wasm boundary as JSON text. Parsing it
//! into a `serde_json::Value`, then into a typed struct, then back, costs several
//! passes over the object; [`Object`] keeps the text and offers the shortest path for
//! each use: [`Object::decode`] parses the text straight into a typed struct,
//! [`Object::encode`] serializes one straight to text, and an object a hook returns
//! untouched goes back as the very text that came in (the host then skips parsing it).
//! `Object` dereferences to `serde_json::Value` for code that prefers a `Value`.

use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::cell::OnceCell;

/// `apiVersion` and `kind`. Prefer two plain fields in typed objects
/// (`#[serde(rename_all = "camelCase")] api_version: String, kind: String`) to
/// `#[serde(flatten)]` of this: flatten makes serde buffer the whole object first,
/// which made the hello plugin's conversion several times slower.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TypeMeta {
    pub api_version: String,
    pub kind: String,
}

/// A Kubernetes object in a hook: JSON text, parsed lazily.
pub struct Object {
    /// The JSON text, while it still says what `value` says.
    text: Option<String>,
    value: OnceCell<Value>,
}

impl Object {
    /// An object from JSON text (as the host sends it: always a valid JSON object).
    pub fn from_json(text: impl Into<String>) -> Self {
        Object {
            text: Some(text.into()),
            value: OnceCell::new(),
        }
    }

    /// An object from a `serde_json::Value`.
    pub fn from_value(value: Value) -> Self {
        Object {
            text: None,
            value: OnceCell::from(value),
        }
    }

    /// Serialize a typed object straight to JSON text.
    pub fn encode<T: Serialize>(typed: &T) -> Result<Self, String> {
        serde_json::to_string(typed)
            .map(Self::from_json)
            .map_err(|e| format!("cannot encode object: {e}"))
    }

    /// Decode into a typed object, straight from the text when it is unchanged.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, String> {
        let decoded = match (&self.text, self.value.get()) {
            (Some(text), _) => serde_json::from_str(text),
            (None, Some(value)) => T::deserialize(value),
            (None, None) => unreachable!("an object has text or a value"),
        };
        decoded.map_err(|e| format!("cannot decode object: {e}"))
    }

    /// The object as a `Value` (parsed on first use).
    pub fn value(&self) -> &Value {
        self.value.get_or_init(|| {
            let text = self.text.as_deref().expect("an object has text or a value");
            serde_json::from_str(text).unwrap_or(Value::Null)
        })
    }

    /// The object as a mutable `Value`; the text is dropped and rendered again when
    /// the object goes back to the host.
    pub fn value_mut(&mut self) -> &mut Value {
        self.value();
        self.text = None;
        self.value.get_mut().expect("parsed above")
    }

    pub fn into_value(mut self) -> Value {
        self.value();
        self.value.take().expect("parsed above")
    }

    /// The JSON text to return to the host: the original text when unchanged.
    pub fn into_json(self) -> String {
        match self.text {
            Some(text) => text,
            // Not `Value::to_string()`: `Display` goes through `fmt`, several times slower.
            None => serde_json::to_string(self.value.get().expect("an object has text or a value"))
                .expect("JSON values serialize"),
        }
    }

    /// A top-level field, without parsing the rest of the object into values.
    /// Whether the object's JSON text contains `needle`: a cheap test before parsing
    /// many objects to find few (a name, which JSON never escapes, in `"quotes"`).
    /// Reports `true` for an object built from a value (it has no text to search).
    pub fn text_contains(&self, needle: &str) -> bool {
        self.text.as_deref().is_none_or(|t| t.contains(needle))
    }

    pub fn field(&self, key: &str) -> Option<Value> {
        match (&self.text, self.value.get()) {
            (_, Some(v)) => v.get(key).cloned(),
            (Some(text), None) => {
                let mut de = serde_json::Deserializer::from_str(text);
                de.deserialize_map(FieldFinder(key)).ok().flatten()
            }
            (None, None) => None,
        }
    }

    /// `apiVersion`, e.g. `hello.zeng.dev/v1`.
    pub fn api_version(&self) -> Option<String> {
        match self.field("apiVersion") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }

    /// The version part of `apiVersion`, e.g. `v1`.
    pub fn version(&self) -> Option<String> {
        self.api_version()
            .map(|av| av.rsplit('/').next().unwrap_or(&av).to_string())
    }
}

/// Finds one top-level key in a JSON object, skipping every other value unparsed.
struct FieldFinder<'k>(&'k str);

impl<'de> Visitor<'de> for FieldFinder<'_> {
    type Value = Option<Value>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if found.is_none() && key == self.0 {
                found = Some(map.next_value::<Value>()?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

impl std::ops::Deref for Object {
    type Target = Value;
    fn deref(&self) -> &Value {
        self.value()
    }
}

impl From<Value> for Object {
    fn from(value: Value) -> Self {
        Object::from_value(value)
    }
}

impl Clone for Object {
    fn clone(&self) -> Self {
        Object {
            text: self.text.clone(),
            value: self.value.clone(),
        }
    }
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.value() == other.value()
    }
}

impl std::fmt::Debug for Object {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.value().fmt(f)
    }
}

/// The object's `apiVersion`, e.g. `hello.zeng.dev/v1`.
pub fn api_version_of(obj: &Value) -> Option<&str> {
    obj.get("apiVersion")?.as_str()
}

/// The version part of the object's `apiVersion`, e.g. `v1`.
pub fn version_of(obj: &Value) -> Option<String> {
    api_version_of(obj).map(|av| av.rsplit('/').next().unwrap_or(av).to_string())
}

/// Decode a JSON value into a typed object; the error is worded for a hook's `Err`.
pub fn from_value<T: DeserializeOwned>(obj: Value) -> Result<T, String> {
    serde_json::from_value(obj).map_err(|e| format!("cannot decode object: {e}"))
}

/// Encode a typed object as a JSON value.
pub fn to_value<T: Serialize>(obj: &T) -> Result<Value, String> {
    serde_json::to_value(obj).map_err(|e| format!("cannot encode object: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn untouched_objects_keep_their_text() {
        let text = r#"{"apiVersion":"g/v1","kind":"K","spec":{"a":1}}"#;
        let o = Object::from_json(text);
        assert_eq!(o.version().as_deref(), Some("v1"));
        assert_eq!(o["spec"]["a"], 1);
        assert_eq!(o.into_json(), text);
    }

    #[test]
    fn changed_objects_render_again() {
        let mut o = Object::from_json(r#"{"kind":"K","status":{"x":1}}"#);
        assert_eq!(o.field("status"), Some(json!({"x": 1})));
        assert_eq!(o.field("missing"), None);
        o.value_mut().as_object_mut().unwrap().remove("status");
        assert_eq!(o.into_json(), r#"{"kind":"K"}"#);
    }

    #[test]
    fn typed_round_trip_skips_values() {
        let o = Object::from_json(r#"{"apiVersion":"g/v1","kind":"K"}"#);
        let t: TypeMeta = o.decode().unwrap();
        assert_eq!(t.kind, "K");
        let back = Object::encode(&t).unwrap();
        assert_eq!(back.into_json(), r#"{"apiVersion":"g/v1","kind":"K"}"#);
        let e = Object::from_json(r#"{"apiVersion":3}"#)
            .decode::<TypeMeta>()
            .unwrap_err();
        assert!(e.starts_with("cannot decode object"), "{e}");
    }
}
