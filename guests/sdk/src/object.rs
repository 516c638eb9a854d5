//! Serde-friendly access to objects: typed structs in, JSON values out.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use serde_json::Value;

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
