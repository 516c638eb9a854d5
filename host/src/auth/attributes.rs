//! What a request asks to do, in authorization's terms (k8s.io/apiserver's
//! RequestInfo), and the 403 kube-apiserver words for a denial.

use serde_json::json;

use crate::api::ApiError;
use crate::plugin::UserInfo;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Attributes {
    Resource {
        verb: String,
        group: String,
        version: String,
        resource: String,
        subresource: String,
        namespace: String,
        name: String,
    },
    NonResource {
        verb: String,
        path: String,
    },
}

impl Attributes {
    /// The attributes of a request: a resource request under
    /// `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`
    /// (also the legacy `/watch/` form), anything else a non-resource request.
    pub fn of(method: &axum::http::Method, path: &str, query: Option<&str>) -> Attributes {
        let lower = method.as_str().to_ascii_lowercase();
        let non_resource = || Attributes::NonResource {
            verb: lower.clone(),
            path: path.to_string(),
        };
        let Some(rest) = path.strip_prefix("/apis/") else {
            return non_resource();
        };
        let mut segs: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        if segs.len() < 3 {
            return non_resource();
        }
        let (group, version) = (segs[0].to_string(), segs[1].to_string());
        let mut watch = false;
        if segs[2] == "watch" {
            watch = true;
            segs.remove(2);
        }
        let mut tail = &segs[2..];
        let mut namespace = String::new();
        if tail.len() >= 3 && tail[0] == "namespaces" {
            namespace = tail[1].to_string();
            tail = &tail[2..];
        }
        let (resource, name, subresource) = match tail {
            [r] => (*r, "", ""),
            [r, n] => (*r, *n, ""),
            [r, n, s] => (*r, *n, *s),
            // `/apis/g/v/namespaces/<name>`: the namespace itself.
            [] => return non_resource(),
            _ => return non_resource(),
        };
        let query_watch = query.is_some_and(|q| {
            q.split('&')
                .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
        });
        let verb = match (method.as_str(), name.is_empty()) {
            ("GET" | "HEAD", _) if watch || query_watch => "watch",
            ("GET" | "HEAD", true) => "list",
            ("GET" | "HEAD", false) => "get",
            ("POST", _) => "create",
            ("PUT", _) => "update",
            ("PATCH", _) => "patch",
            ("DELETE", true) => "deletecollection",
            ("DELETE", false) => "delete",
            _ => return non_resource(),
        };
        Attributes::Resource {
            verb: verb.into(),
            group,
            version,
            resource: resource.into(),
            subresource: subresource.into(),
            namespace,
            name: name.into(),
        }
    }

    /// The 403 kube-apiserver sends (`responsewriters.Forbidden`), with the
    /// authorizer's reason appended when there is one.
    pub fn forbidden(&self, user: &UserInfo, reason: &str) -> ApiError {
        let (msg, qualified, group, resource, name) = match self {
            Attributes::NonResource { verb, path } => (
                format!("User {:?} cannot {verb} path {path:?}", user.name),
                String::new(),
                String::new(),
                String::new(),
                String::new(),
            ),
            Attributes::Resource {
                verb,
                group,
                resource,
                subresource,
                namespace,
                name,
                ..
            } => {
                let r = match subresource.as_str() {
                    "" => resource.clone(),
                    s => format!("{resource}/{s}"),
                };
                let scope = match namespace.as_str() {
                    "" => "at the cluster scope".to_string(),
                    ns => format!("in the namespace {ns:?}"),
                };
                let qualified = match group.as_str() {
                    "" => resource.clone(),
                    g => format!("{resource}.{g}"),
                };
                (
                    format!(
                        "User {:?} cannot {verb} resource {r:?} in API group {group:?} {scope}",
                        user.name
                    ),
                    qualified,
                    group.clone(),
                    resource.clone(),
                    name.clone(),
                )
            }
        };
        let err = match reason {
            "" => msg,
            r => format!("{msg}: {r}"),
        };
        let message = match (qualified.as_str(), name.as_str()) {
            ("", _) => format!("forbidden: {err}"),
            (q, "") => format!("{q} is forbidden: {err}"),
            (q, n) => format!("{q} {n:?} is forbidden: {err}"),
        };
        ApiError::new(403, "Forbidden", message)
            .with_details(json!({"group": group, "kind": resource, "name": name}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Method;

    fn user() -> UserInfo {
        UserInfo {
            name: "x".into(),
            uid: String::new(),
            groups: vec![],
            extra: vec![],
        }
    }

    fn verb(m: Method, path: &str, q: Option<&str>) -> String {
        match Attributes::of(&m, path, q) {
            Attributes::Resource { verb, .. } => verb,
            Attributes::NonResource { verb, path } => format!("{verb} {path}"),
        }
    }

    #[test]
    fn verbs_follow_kube_request_info() {
        let foos = "/apis/hello.zeng.dev/v2/namespaces/default/foos";
        assert_eq!(verb(Method::GET, foos, None), "list");
        assert_eq!(verb(Method::GET, foos, Some("watch=true&x=1")), "watch");
        assert_eq!(
            verb(
                Method::GET,
                "/apis/hello.zeng.dev/v2/watch/namespaces/default/foos",
                None
            ),
            "watch"
        );
        assert_eq!(verb(Method::GET, &format!("{foos}/a"), None), "get");
        assert_eq!(verb(Method::POST, foos, None), "create");
        assert_eq!(
            verb(Method::PUT, &format!("{foos}/a/status"), None),
            "update"
        );
        assert_eq!(verb(Method::PATCH, &format!("{foos}/a"), None), "patch");
        assert_eq!(verb(Method::DELETE, foos, None), "deletecollection");
        assert_eq!(verb(Method::DELETE, &format!("{foos}/a"), None), "delete");
        assert_eq!(
            verb(Method::GET, "/apis/hello.zeng.dev/v2", None),
            "get /apis/hello.zeng.dev/v2"
        );
        assert_eq!(verb(Method::GET, "/openapi/v2", None), "get /openapi/v2");
    }

    #[test]
    fn forbidden_messages_are_kube_apiservers() {
        let list = Attributes::of(
            &Method::GET,
            "/apis/hello.zeng.dev/v2/namespaces/default/foos",
            None,
        );
        assert_eq!(
            list.forbidden(&user(), "").message,
            r#"foos.hello.zeng.dev is forbidden: User "x" cannot list resource "foos" in API group "hello.zeng.dev" in the namespace "default""#
        );
        let status = Attributes::of(
            &Method::PUT,
            "/apis/wardle.example.com/v1alpha1/fischers/f/status",
            None,
        );
        assert_eq!(
            status.forbidden(&user(), "no RBAC policy matched").message,
            r#"fischers.wardle.example.com "f" is forbidden: User "x" cannot update resource "fischers/status" in API group "wardle.example.com" at the cluster scope: no RBAC policy matched"#
        );
        let path = Attributes::of(&Method::GET, "/openapi/v2", None);
        assert_eq!(
            path.forbidden(&user(), "").message,
            r#"forbidden: User "x" cannot get path "/openapi/v2""#
        );
    }
}
