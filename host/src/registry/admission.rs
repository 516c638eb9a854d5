//! The plugin's `admit` hook: the last word on a write, after validation and before
//! storage, with reads of other objects (kube-apiserver's validating admission, as the
//! sample apiserver's BanFlunder). It runs on dry runs too. A denial answers with the
//! plugin's code and message; a hook that traps, runs out of time or reads past its
//! budget denies as well (fails closed): nothing is stored.

use serde_json::Value;

use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::{ApiError, ApiResult};
use crate::plugin::{Admission, AdmissionRequest, PluginInstance, RequestInfo};

impl Registry {
    /// Ask the plugin to admit a write of `obj` over `old` (both in the storage
    /// version); its warnings join `warnings`.
    pub(super) fn admit_write(
        &self,
        t: &Target,
        inst: &mut PluginInstance<'_>,
        request: RequestInfo,
        obj: Option<&Value>,
        old: Option<&Value>,
        warnings: &mut Vec<String>,
    ) -> ApiResult<()> {
        let name = request.name.clone();
        let text = |o: &Value| serde_json::to_string(o).unwrap_or_default();
        let req = AdmissionRequest {
            request,
            object: obj.map(text),
            old_object: old.map(text),
        };
        match hooks(|| inst.admit(&req, &self.reads))? {
            Admission::Allowed(w) => {
                warnings.extend(w);
                Ok(())
            }
            Admission::Denied(d) => Err(ApiError::denied(t.resource(), &name, d.code, &d.message)),
        }
    }
}
