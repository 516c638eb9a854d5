//! The Kubernetes API vocabulary the host speaks, independent of any kind: `Status`
//! errors, field errors, selectors, ObjectMeta and schema validation, Table output.

pub mod duplicates;
pub mod duration;
pub mod fields;
pub mod resource;
pub mod schema;
pub mod selectors;
pub mod status;
pub mod table;

pub use fields::{FieldError, FieldErrorType};
pub use resource::{decode_stored, PrinterColumn, ResourceInfo, Scope, VersionInfo};
pub use status::{ApiError, ApiResult};
pub use table::Cell;

/// `metav1.Time` as kube-apiserver writes it: RFC 3339, seconds, UTC.
pub fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}
