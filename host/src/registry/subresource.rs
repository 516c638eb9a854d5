//! Custom subresources (`/apis/G/V/[namespaces/NS/]PLURAL/NAME/SUB`): the host reads the
//! parent object (404 when there is none), and the plugin's `serve-subresource`
//! answers with reads of whatever it needs. What it returns is sent as it is; a Status
//! it returns keeps its code; a denial becomes the matching Status.

use serde_json::Value;

use super::store::{hooks, Registry};
use super::target::Target;
use crate::api::resource::{SubresourceInfo, SubresourceVerb};
use crate::api::{ApiError, ApiResult};
use crate::plugin::{wit, SubresourceRequest};

/// A request to a custom subresource, as the HTTP layer decoded it.
pub struct SubresourceCall {
    pub verb: SubresourceVerb,
    pub query: Vec<(String, String)>,
    pub body: Option<String>,
    pub dry_run: bool,
}

impl Registry {
    /// Serve `sub` of the object `name`: the plugin's answer and the HTTP code to send.
    pub async fn serve_subresource(
        &self,
        t: &Target,
        name: &str,
        sub: &SubresourceInfo,
        call: SubresourceCall,
    ) -> ApiResult<(u16, Value)> {
        if !sub.verbs.contains(&call.verb) {
            return Err(ApiError::method_not_allowed(
                call.verb.as_str(),
                &format!("{}/{}", t.resource().kind, sub.name),
            ));
        }
        let parent = self.get(t, name, None).await?;
        let req = SubresourceRequest {
            user: t.user.clone(),
            namespace: t.namespace.clone().filter(|_| t.resource().namespaced()),
            name: name.to_string(),
            subresource: sub.name.clone(),
            verb: match call.verb {
                SubresourceVerb::Get => wit::SubresourceVerb::Get,
                SubresourceVerb::Create => wit::SubresourceVerb::Create,
                SubresourceVerb::Update => wit::SubresourceVerb::Update,
            },
            parent: serde_json::to_string(&parent).unwrap_or_default(),
            version: t.version.clone(),
            query: call.query,
            body: call.body,
            dry_run: call.dry_run,
        };
        let answer = hooks(|| {
            let mut inst = t.plugin.instance()?;
            inst.serve_subresource(&req, &self.reads)
        })?;
        match answer {
            Ok(obj) if obj["kind"] == "Status" => {
                let code = obj["code"]
                    .as_u64()
                    .filter(|c| (200..600).contains(c))
                    .unwrap_or(500) as u16;
                Ok((code, obj))
            }
            Ok(obj) => Ok((200, obj)),
            Err(d) => Err(ApiError::denied(t.resource(), name, d.code, &d.message)),
        }
    }
}
