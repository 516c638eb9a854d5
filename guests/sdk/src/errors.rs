//! Field errors as k8s.io/apimachinery's `field.Error`, with paths built like
//! `field.NewPath("spec").Child("config").Index(2)`.

use crate::{FieldError, FieldErrorType, Validation};
use serde::Serialize;

/// A field path such as `spec.config.msg` or `spec.items[2]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn new(root: &str) -> Self {
        Path(root.into())
    }

    pub fn child(&self, name: &str) -> Self {
        Path(format!("{}.{name}", self.0))
    }

    pub fn index(&self, i: usize) -> Self {
        Path(format!("{}[{i}]", self.0))
    }

    pub fn key(&self, k: &str) -> Self {
        Path(format!("{}[{k}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn error(&self, type_: FieldErrorType, bad: Option<String>, detail: &str) -> FieldError {
        FieldError {
            type_,
            field: self.0.clone(),
            bad_value: bad,
            detail: detail.into(),
            supported_values: Vec::new(),
        }
    }

    pub fn required(&self, detail: &str) -> FieldError {
        self.error(FieldErrorType::Required, None, detail)
    }

    pub fn invalid(&self, value: impl Serialize, detail: &str) -> FieldError {
        self.error(FieldErrorType::Invalid, Some(json(value)), detail)
    }

    pub fn forbidden(&self, detail: &str) -> FieldError {
        self.error(FieldErrorType::Forbidden, None, detail)
    }

    pub fn duplicate(&self, value: impl Serialize) -> FieldError {
        self.error(FieldErrorType::Duplicate, Some(json(value)), "")
    }

    pub fn not_found(&self, value: impl Serialize) -> FieldError {
        self.error(FieldErrorType::NotFound, Some(json(value)), "")
    }

    pub fn not_supported(&self, value: impl Serialize, supported: &[&str]) -> FieldError {
        let mut e = self.error(FieldErrorType::NotSupported, Some(json(value)), "");
        e.supported_values = supported.iter().map(|s| s.to_string()).collect();
        e
    }

    pub fn too_long(&self, max: usize) -> FieldError {
        self.error(
            FieldErrorType::TooLong,
            None,
            &format!("may not be more than {max} bytes"),
        )
    }

    pub fn too_many(&self, actual: usize, max: usize) -> FieldError {
        self.error(
            FieldErrorType::TooMany,
            Some(actual.to_string()),
            &format!("must have at most {max} items"),
        )
    }
}

fn json(value: impl Serialize) -> String {
    serde_json::to_string(&value).unwrap_or_else(|_| "null".into())
}

/// An accumulating list of field errors, as `field.ErrorList`.
#[derive(Default, Debug)]
pub struct ErrorList(pub Vec<FieldError>);

impl ErrorList {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, e: FieldError) {
        self.0.push(e);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn into_validation(self) -> Validation {
        Validation::from_errors(self.0)
    }
}
