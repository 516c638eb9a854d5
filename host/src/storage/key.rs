//! Where a resource's objects live: `/<group>/<plural>/[<namespace>/]<name>`, as
//! kube-apiserver lays them out under its prefix. Every storage key is built here, so
//! the registry, the watch cache and the continue token agree on one layout.

/// The keys of one resource (a group and plural), for a namespaced or cluster kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceKeys {
    /// `/<group>/<plural>/`: the prefix of every object of the resource.
    root: String,
    namespaced: bool,
}

impl ResourceKeys {
    pub fn new(group: &str, plural: &str, namespaced: bool) -> Self {
        ResourceKeys {
            root: format!("/{group}/{plural}/"),
            namespaced,
        }
    }

    /// The prefix of every object of the resource, in all namespaces.
    pub fn root(&self) -> &str {
        &self.root
    }

    /// The prefix of the objects in `namespace` (all of them for `None` or a cluster kind).
    pub fn prefix(&self, namespace: Option<&str>) -> String {
        match namespace {
            Some(ns) if self.namespaced => format!("{}{ns}/", self.root),
            _ => self.root.clone(),
        }
    }

    /// The key of one object.
    pub fn object(&self, namespace: Option<&str>, name: &str) -> String {
        format!("{}{name}", self.prefix(namespace))
    }

    /// The key of an object, from its `metadata` (namespace and name); `None` when a
    /// part the key needs is missing.
    pub fn of(&self, obj: &serde_json::Value) -> Option<String> {
        let m = &obj["metadata"];
        let name = m["name"].as_str()?;
        let namespace = if self.namespaced {
            Some(m["namespace"].as_str()?)
        } else {
            None
        };
        Some(self.object(namespace, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_follow_kube_apiservers_layout() {
        let ns = ResourceKeys::new("hello.zeng.dev", "foos", true);
        assert_eq!(ns.root(), "/hello.zeng.dev/foos/");
        assert_eq!(ns.prefix(Some("a")), "/hello.zeng.dev/foos/a/");
        assert_eq!(ns.prefix(None), "/hello.zeng.dev/foos/");
        assert_eq!(ns.object(Some("a"), "x"), "/hello.zeng.dev/foos/a/x");
        let obj = json!({"metadata": {"namespace": "a", "name": "x"}});
        assert_eq!(ns.of(&obj).as_deref(), Some("/hello.zeng.dev/foos/a/x"));
        assert_eq!(ns.of(&json!({"metadata": {"name": "x"}})), None);

        let cluster = ResourceKeys::new("wardle.example.com", "fischers", false);
        assert_eq!(cluster.prefix(Some("a")), "/wardle.example.com/fischers/");
        assert_eq!(
            cluster.of(&obj).as_deref(),
            Some("/wardle.example.com/fischers/x")
        );
    }
}
