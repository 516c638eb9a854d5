//! Field errors, worded as k8s.io/apimachinery's `field.Error`.

use serde_json::{json, Value};

/// The kinds of `field.Error`, as k8s.io/apimachinery names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldErrorType {
    Required,
    Invalid,
    Forbidden,
    Duplicate,
    NotSupported,
    TooLong,
    TooMany,
    NotFound,
}

/// A field error on the host side (from the schema, ObjectMeta checks or a plugin).
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub type_: FieldErrorType,
    pub field: String,
    /// The offending value as JSON text, when meaningful.
    pub bad_value: Option<String>,
    pub detail: String,
    pub supported_values: Vec<String>,
}

impl FieldError {
    pub fn new(
        type_: FieldErrorType,
        field: impl Into<String>,
        bad_value: Option<&Value>,
        detail: impl Into<String>,
    ) -> Self {
        FieldError {
            type_,
            field: field.into(),
            bad_value: bad_value.map(|v| v.to_string()),
            detail: detail.into(),
            supported_values: Vec::new(),
        }
    }

    pub fn required(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Required, field, None, detail)
    }

    pub fn invalid(field: impl Into<String>, value: &Value, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Invalid, field, Some(value), detail)
    }

    pub fn forbidden(field: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::new(FieldErrorType::Forbidden, field, None, detail)
    }

    /// `FieldValueRequired`, ... as in `metav1.CauseType`.
    pub fn cause_type(&self) -> &'static str {
        match self.type_ {
            FieldErrorType::Required => "FieldValueRequired",
            FieldErrorType::Invalid => "FieldValueInvalid",
            FieldErrorType::Forbidden => "FieldValueForbidden",
            FieldErrorType::Duplicate => "FieldValueDuplicate",
            FieldErrorType::NotSupported => "FieldValueNotSupported",
            FieldErrorType::TooLong => "FieldValueTooLong",
            FieldErrorType::TooMany => "FieldValueTooMany",
            FieldErrorType::NotFound => "FieldValueNotFound",
        }
    }

    fn type_text(&self) -> &'static str {
        match self.type_ {
            FieldErrorType::Required => "Required value",
            FieldErrorType::Invalid => "Invalid value",
            FieldErrorType::Forbidden => "Forbidden",
            FieldErrorType::Duplicate => "Duplicate value",
            FieldErrorType::NotSupported => "Unsupported value",
            FieldErrorType::TooLong => "Too long",
            FieldErrorType::TooMany => "Too many",
            FieldErrorType::NotFound => "Not found",
        }
    }

    /// `field.Error.ErrorBody()`: e.g. `Invalid value: "x": must be lowercase`.
    pub fn body(&self) -> String {
        let mut s = self.type_text().to_string();
        let omit_value = matches!(
            self.type_,
            FieldErrorType::Required | FieldErrorType::Forbidden | FieldErrorType::TooLong
        );
        if let (false, Some(v)) = (omit_value, &self.bad_value) {
            s.push_str(": ");
            s.push_str(&render_value(v));
        }
        let mut detail = self.detail.clone();
        if self.type_ == FieldErrorType::NotSupported && !self.supported_values.is_empty() {
            let quoted: Vec<String> = self
                .supported_values
                .iter()
                .map(|v| format!("{v:?}"))
                .collect();
            detail = format!("supported values: {}", quoted.join(", "));
        }
        if !detail.is_empty() {
            s.push_str(": ");
            s.push_str(&detail);
        }
        s
    }

    /// `field.Error.Error()`: `spec.msg: Required value`.
    pub fn message(&self) -> String {
        if self.field.is_empty() {
            self.body()
        } else {
            format!("{}: {}", self.field, self.body())
        }
    }

    pub fn cause(&self) -> Value {
        json!({"reason": self.cause_type(), "message": self.body(), "field": self.field})
    }
}

/// Values print as Go's `%#v`-ish `field.Error` does: strings quoted, numbers bare.
fn render_value(json_text: &str) -> String {
    match serde_json::from_str::<Value>(json_text) {
        Ok(Value::String(s)) => format!("{s:?}"),
        Ok(Value::Null) => "null".into(),
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v.to_string(),
        Ok(v) => v.to_string(),
        Err(_) => json_text.to_string(),
    }
}

/// `ErrorList.ToAggregate()` as text: one error bare, several in brackets.
pub fn aggregate(errors: &[FieldError]) -> String {
    match errors {
        [one] => one.message(),
        many => format!(
            "[{}]",
            many.iter()
                .map(FieldError::message)
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worded_as_apimachinery() {
        assert_eq!(
            FieldError::required("spec.msg", "").message(),
            "spec.msg: Required value"
        );
        assert_eq!(
            FieldError::invalid("metadata.name", &json!("A_b"), "must be lowercase").message(),
            "metadata.name: Invalid value: \"A_b\": must be lowercase"
        );
        let mut ns = FieldError::new(
            FieldErrorType::NotSupported,
            "spec.t",
            Some(&json!("x")),
            "",
        );
        ns.supported_values = vec!["A".into(), "B".into()];
        assert_eq!(
            ns.message(),
            "spec.t: Unsupported value: \"x\": supported values: \"A\", \"B\""
        );
        assert_eq!(
            aggregate(&[
                FieldError::required("a", ""),
                FieldError::forbidden("b", "no")
            ]),
            "[a: Required value, b: Forbidden: no]"
        );
    }
}
