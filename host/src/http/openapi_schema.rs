//! The OpenAPI of one resource version, as kube-apiserver publishes it for CRDs: its
//! v3 paths (every verb, subresources, scale), its object and list schemas (with the
//! patch strategies and ObjectMeta/ListMeta references), the shared meta schemas, and
//! the v3-to-v2 reference rewrite. [`super::discovery`] assembles the documents.

use serde_json::{json, Map, Value};

use crate::plugin::{ResourceInfo, Scope};

/// OpenAPI v3 paths for a resource: kubectl reads them to learn that the server
/// validates fields itself (`fieldValidation` on PATCH), and the aggregator merges them.
pub(super) fn resource_paths(r: &ResourceInfo, version: &str) -> Map<String, Value> {
    let gvk = json!({"group": r.group, "version": version, "kind": r.kind});
    let obj_ref = json!({"$ref": format!("#/components/schemas/{}", definition_name(&r.group, version, &r.kind))});
    let list_ref = json!({"$ref": format!("#/components/schemas/{}", definition_name(&r.group, version, &r.list_kind))});
    let query = |name: &str, desc: &str| json!({"name": name, "in": "query", "description": desc, "schema": {"type": "string", "uniqueItems": true}});
    let write_params = vec![
        query("dryRun", "When present, indicates that modifications should not be persisted. Valid value: All"),
        query("fieldManager", "fieldManager is a name associated with the actor or entity that is making these changes."),
        query("fieldValidation", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore, Warn, Strict (the default)."),
    ];
    let list_params = vec![
        query("labelSelector", "A selector to restrict the list of returned objects by their labels."),
        query("fieldSelector", "A selector to restrict the list of returned objects by their fields."),
        query("limit", "limit is a maximum number of responses to return for a list call."),
        query("continue", "The continue option should be set when retrieving more results from the server."),
        query("resourceVersion", "resourceVersion sets a constraint on what resource versions a request may be served from."),
        query("resourceVersionMatch", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
        query("watch", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
        query("allowWatchBookmarks", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
        query("sendInitialEvents", "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for the current state, then a BOOKMARK annotated \"k8s.io/initial-events-end\"."),
        query("timeoutSeconds", "Timeout for the list/watch call."),
    ];
    let op = |action: &str, id: &str, schema: &Value, params: &Vec<Value>, ok: &str| {
        json!({
            "operationId": format!("{id}{}{}", r.kind, version), "tags": [format!("{}_{version}", r.group)],
            "parameters": params,
            "responses": {ok: {"description": "OK", "content": {"application/json": {"schema": schema}, "application/yaml": {"schema": schema}}}},
            "x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
        })
    };
    let body = |schema: &Value| json!({"content": {"*/*": {"schema": schema}}, "required": true});
    let base = match r.scope {
        Scope::Namespaced => format!(
            "/apis/{}/{version}/namespaces/{{namespace}}/{}",
            r.group, r.plural
        ),
        Scope::Cluster => format!("/apis/{}/{version}/{}", r.group, r.plural),
    };
    let mut path_params = vec![];
    if r.namespaced() {
        path_params.push(json!({"name": "namespace", "in": "path", "required": true, "schema": {"type": "string"}}));
    }
    let mut collection = json!({
        "get": op("list", "list", &list_ref, &list_params, "200"),
        "post": op("post", "create", &obj_ref, &write_params, "201"),
        "delete": op("deletecollection", "deletecollection", &list_ref, &list_params, "200"),
        "parameters": path_params,
    });
    collection["post"]["requestBody"] = body(&obj_ref);
    let mut item_params = path_params.clone();
    item_params.push(
        json!({"name": "name", "in": "path", "required": true, "schema": {"type": "string"}}),
    );
    // Every patch type: kubectl computes strategic merge patches for a kind whose PATCH
    // accepts them.
    let patch_body = json!({"content": super::params::PATCH_TYPES.iter()
        .map(|t| (t.to_string(), json!({"schema": {"type": "object"}})))
        .collect::<serde_json::Map<_, _>>(), "required": true});
    let item = |prefix: &str| {
        let mut i = json!({
            "get": op("get", &format!("read{prefix}"), &obj_ref, &vec![], "200"),
            "put": op("put", &format!("replace{prefix}"), &obj_ref, &write_params, "200"),
            "patch": op("patch", &format!("patch{prefix}"), &obj_ref, &write_params, "200"),
            "parameters": item_params,
        });
        i["put"]["requestBody"] = body(&obj_ref);
        i["patch"]["requestBody"] = patch_body.clone();
        i
    };
    let mut main = item("");
    main["delete"] = op(
        "delete",
        "delete",
        &obj_ref,
        &vec![query(
            "dryRun",
            "When present, indicates that modifications should not be persisted.",
        )],
        "200",
    );
    let mut paths = Map::new();
    if r.is_computed() {
        // Read-only: list and get.
        for op in ["post", "delete"] {
            collection.as_object_mut().expect("object").remove(op);
        }
        for op in ["put", "patch", "delete"] {
            main.as_object_mut().expect("object").remove(op);
        }
    }
    paths.insert(base.clone(), collection);
    paths.insert(format!("{base}/{{name}}"), main);
    let Some(ver) = r.version(version) else {
        return paths;
    };
    if ver.status_subresource {
        paths.insert(format!("{base}/{{name}}/status"), item("Status"));
    }
    if ver.scale.is_some() {
        let scale_ref = json!({"$ref": format!("#/components/schemas/{SCALE}")});
        let scale_gvk = json!({"group": "autoscaling", "version": "v1", "kind": "Scale"});
        let mut s = item("Scale");
        for (op, id) in [("get", "read"), ("put", "replace"), ("patch", "patch")] {
            s[op]["responses"]["200"]["content"] = json!({"application/json": {"schema": scale_ref}, "application/yaml": {"schema": scale_ref}});
            s[op]["x-kubernetes-group-version-kind"] = scale_gvk.clone();
            s[op]["operationId"] = json!(format!("{id}{}{version}Scale", r.kind));
        }
        s["put"]["requestBody"] = body(&scale_ref);
        paths.insert(format!("{base}/{{name}}/scale"), s);
    }
    for sub in &ver.subresources {
        let any = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
        let mut p = json!({"parameters": item_params});
        for verb in &sub.verbs {
            let (method, action, id) = match verb {
                crate::api::resource::SubresourceVerb::Get => ("get", "get", "read"),
                crate::api::resource::SubresourceVerb::Create => ("post", "post", "create"),
                crate::api::resource::SubresourceVerb::Update => ("put", "put", "replace"),
            };
            let mut o = op(action, id, &any, &vec![], "200");
            o["operationId"] = json!(format!("{id}{}{version}{}", r.kind, upper_first(&sub.name)));
            o["description"] = json!(format!(
                "{} of {} (answered by its plugin); the response is a {}",
                sub.name, r.kind, sub.kind
            ));
            if method != "get" {
                o["requestBody"] = body(&any);
            }
            p[method] = o;
        }
        paths.insert(format!("{base}/{{name}}/{}", sub.name), p);
    }
    paths
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
}

/// `dev.zeng.hello.v2.Foo`: the reversed-group naming kube-apiserver uses for CRDs.
pub(super) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let rev: Vec<&str> = group.split('.').rev().collect();
    format!("{}.{version}.{kind}", rev.join("."))
}

const OBJECT_META_REF: &str =
    "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const LIST_META_REF: &str = "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// The patch strategy kubectl's strategic merge reads, from the list markers: a list
/// map merges by its first key, a set merges (`x-kubernetes-patch-strategy`,
/// `x-kubernetes-patch-merge-key`).
pub(super) fn with_patch_strategies(s: &mut Value) {
    match s {
        Value::Object(m) => {
            let keys = m
                .get("x-kubernetes-list-map-keys")
                .and_then(|k| k.get(0))
                .cloned();
            match m.get("x-kubernetes-list-type").and_then(Value::as_str) {
                Some("map") if keys.is_some() => {
                    m.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                    m.insert(
                        "x-kubernetes-patch-merge-key".into(),
                        keys.unwrap_or_default(),
                    );
                }
                Some("set") => {
                    m.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
                }
                _ => {}
            }
            for v in m.values_mut() {
                with_patch_strategies(v);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(with_patch_strategies),
        _ => {}
    }
}

pub(super) fn object_schema(r: &ResourceInfo, version: &str, schema: &Value) -> (String, Value) {
    let mut s = schema.clone();
    with_patch_strategies(&mut s);
    if !s["properties"].is_object() {
        s["properties"] = json!({});
    }
    let props = s["properties"].as_object_mut().expect("object");
    props.entry("apiVersion").or_insert(json!({"type": "string", "description": "APIVersion defines the versioned schema of this representation of an object. Servers should convert recognized schemas to the latest internal value, and may reject unrecognized values. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#resources"}));
    props.entry("kind").or_insert(json!({"type": "string", "description": "Kind is a string value representing the REST resource this object represents. Servers may infer this from the endpoint the client submits requests to. Cannot be updated. In CamelCase. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds"}));
    props.insert("metadata".into(), json!({"allOf": [{"$ref": OBJECT_META_REF}], "description": "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"}));
    s["type"] = json!("object");
    s["x-kubernetes-group-version-kind"] =
        json!([{"group": r.group, "version": version, "kind": r.kind}]);
    (definition_name(&r.group, version, &r.kind), s)
}

pub(super) fn list_schema(r: &ResourceInfo, version: &str) -> (String, Value) {
    let item_ref = format!(
        "#/components/schemas/{}",
        definition_name(&r.group, version, &r.kind)
    );
    let s = json!({
        "type": "object", "required": ["items"],
        "description": format!("{} is a list of {}", r.list_kind, r.kind),
        "properties": {
            "apiVersion": {"type": "string"}, "kind": {"type": "string"},
            "items": {"type": "array", "items": {"$ref": item_ref}},
            "metadata": {"allOf": [{"$ref": LIST_META_REF}]},
        },
        "x-kubernetes-group-version-kind": [{"group": r.group, "version": version, "kind": r.list_kind}],
    });
    (definition_name(&r.group, version, &r.list_kind), s)
}

/// The metav1 schemas the documents refer to.
pub(super) fn meta_schemas() -> Vec<(String, Value)> {
    let string = |d: &str| json!({"type": "string", "description": d});
    let map = |d: &str| json!({"type": "object", "additionalProperties": {"type": "string", "default": ""}, "description": d});
    vec![
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta".into(),
            json!({
                "type": "object",
                "description": "ObjectMeta is metadata that all persisted resources must have, which includes all objects users must create.",
                "properties": {
                    "name": string("Name must be unique within a namespace."),
                    "generateName": string("GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the Name field has not been provided."),
                    "namespace": string("Namespace defines the space within which each name must be unique."),
                    "uid": string("UID is the unique in time and space value for this object. Populated by the system. Read-only."),
                    "resourceVersion": string("An opaque value that represents the internal version of this object. Populated by the system. Read-only."),
                    "generation": {"type": "integer", "format": "int64", "description": "A sequence number representing a specific generation of the desired state. Populated by the system. Read-only."},
                    "creationTimestamp": {"type": "string", "format": "date-time", "description": "CreationTimestamp is a timestamp representing the server time when this object was created."},
                    "deletionTimestamp": {"type": "string", "format": "date-time", "description": "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted."},
                    "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
                    "labels": map("Map of string keys and values that can be used to organize and categorize (scope and select) objects."),
                    "annotations": map("Annotations is an unstructured key value map stored with a resource that may be set by external tools to store and retrieve arbitrary metadata."),
                    "finalizers": {"type": "array", "items": {"type": "string", "default": ""}, "description": "Must be empty before the object is deleted from the registry.",
                        "x-kubernetes-list-type": "set", "x-kubernetes-patch-strategy": "merge"},
                    "ownerReferences": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["uid"],
                        "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "uid"},
                    "managedFields": {"type": "array", "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                },
            }),
        ),
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta".into(),
            json!({
                "type": "object",
                "description": "ListMeta describes metadata that synthetic resources must have, including lists and various status objects.",
                "properties": {
                    "continue": string("continue may be set if the user set a limit on the number of items returned."),
                    "remainingItemCount": {"type": "integer", "format": "int64"},
                    "resourceVersion": string("String that identifies the server's internal version of this object."),
                    "selfLink": string("Deprecated."),
                },
            }),
        ),
        (
            SCALE.into(),
            json!({
                "type": "object",
                "description": "Scale represents a scaling request for a resource.",
                "properties": {
                    "apiVersion": string("APIVersion defines the versioned schema of this representation of an object."),
                    "kind": string("Kind is a string value representing the REST resource this object represents."),
                    "metadata": {"allOf": [{"$ref": OBJECT_META_REF}], "description": "Standard object metadata."},
                    "spec": {"type": "object", "description": "ScaleSpec describes the attributes of a scale subresource.",
                             "properties": {"replicas": {"type": "integer", "format": "int32", "description": "replicas is the desired number of instances for the scaled object."}}},
                    "status": {"type": "object", "description": "ScaleStatus represents the current status of a scale subresource.",
                               "required": ["replicas"],
                               "properties": {
                                   "replicas": {"type": "integer", "format": "int32", "default": 0, "description": "replicas is the actual number of observed instances of the scaled object."},
                                   "selector": string("selector is the label query over pods that should match the replicas count, in its string form."),
                               }},
                },
                "x-kubernetes-group-version-kind": [{"group": "autoscaling", "kind": "Scale", "version": "v1"}],
            }),
        ),
    ]
}

const SCALE: &str = "io.k8s.api.autoscaling.v1.Scale";

/// OpenAPI v2 references live under `#/definitions/`.
pub(super) fn to_v2_refs(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(k, _)| k != "nullable")
                .map(|(k, v)| match (k.as_str(), v) {
                    ("$ref", Value::String(s)) => (
                        k,
                        Value::String(s.replace("#/components/schemas/", "#/definitions/")),
                    ),
                    (_, v) => (k, to_v2_refs(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(to_v2_refs).collect()),
        other => other,
    }
}
