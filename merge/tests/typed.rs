//! Typed operations: field sets as kube-apiserver records them, compare, merge by list
//! and map semantics, removal, and the errors of list items without their keys.
use serde_json::json;
use serde_json::Value;
use structured_merge::path::PathElement;
use structured_merge::set::Set;
use structured_merge::typed::{compare, field_set, merge, remove, validate};
use structured_merge::Type;

fn schema() -> Type {
    Type::object(&json!({"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "replicas": {"type": "integer"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {
                "name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic",
            "additionalProperties": {"type": "string"}},
        "env": {"type": "object", "additionalProperties": {"type": "string"}}
    }}}}))
    .unwrap()
}

fn fields(v: Value) -> Value {
    field_set(&v, &schema()).unwrap().to_fields_v1()
}

#[test]
fn field_sets_match_what_kube_apiserver_records() {
    assert_eq!(
        fields(
            json!({"spec": {"replicas": 1, "ports": [{"name": "http", "port": 80}],
            "tags": ["a"], "args": ["x"], "selector": {"a": "b"}, "env": {"K": "V"}}})
        ),
        json!({"f:spec": {
            "f:args": {},
            "f:env": {"f:K": {}},
            "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:replicas": {},
            "f:selector": {},
            "f:tags": {"v:\"a\"": {}}
        }})
    );
    // An empty object is a leaf; so is null.
    assert_eq!(
        fields(json!({"spec": {}, "status": null})),
        json!({"f:spec": {}, "f:status": {}})
    );
}

#[test]
fn compare_reports_added_modified_removed_with_parents() {
    let t = schema();
    let c = compare(
        &json!({"spec": {"replicas": 1, "ports": [{"name": "a", "port": 1}]}}),
        &json!({"spec": {"replicas": 2, "ports": [{"name": "b", "port": 2}], "env": {"K": "V"}}}),
        &t,
    )
    .unwrap();
    assert_eq!(
        c.modified.to_fields_v1(),
        json!({"f:spec": {"f:replicas": {}}})
    );
    assert_eq!(
        c.added.to_fields_v1(),
        json!({"f:spec": {"f:env": {".": {}, "f:K": {}},
            "f:ports": {"k:{\"name\":\"b\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
    assert_eq!(
        c.removed.to_fields_v1(),
        json!({"f:spec": {"f:ports": {"k:{\"name\":\"a\"}": {".": {}, "f:name": {}, "f:port": {}}}}})
    );
    assert!(compare(
        &json!({"spec": {"replicas": 1}}),
        &json!({"spec": {"replicas": 1}}),
        &t
    )
    .unwrap()
    .is_same());
}

#[test]
fn merge_follows_list_and_map_semantics() {
    let t = schema();
    let live = json!({"spec": {"replicas": 1,
        "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}],
        "tags": ["x", "y"], "args": ["1", "2"], "selector": {"k": "v", "k2": "v2"},
        "env": {"A": "1"}}});
    let config = json!({"spec": {
        "ports": [{"name": "b", "port": 20}, {"name": "c", "port": 3}],
        "tags": ["z"], "args": ["3"], "selector": {"k": "w"}, "env": {"B": "2"}}});
    let out = merge(&live, &config, &t).unwrap();
    assert_eq!(
        out,
        json!({"spec": {"replicas": 1,
            "ports": [{"name": "a", "port": 1}, {"name": "b", "port": 20}, {"name": "c", "port": 3}],
            "tags": ["x", "y", "z"], "args": ["3"], "selector": {"k": "w"},
            "env": {"A": "1", "B": "2"}}})
    );
}

#[test]
fn merge_places_new_items_by_the_configuration_order() {
    let t = schema();
    let live = json!({"spec": {"tags": ["a", "b", "c"]}});
    let out = merge(&live, &json!({"spec": {"tags": ["x", "b", "y"]}}), &t).unwrap();
    assert_eq!(out, json!({"spec": {"tags": ["a", "x", "b", "c", "y"]}}));
}

#[test]
fn remove_drops_items_and_emptied_containers() {
    let t = schema();
    let v =
        json!({"spec": {"replicas": 1, "ports": [{"name": "a", "port": 1}], "tags": ["x", "y"]}});
    let mut s = Set::new();
    s.insert(&[
        PathElement::Field("spec".into()),
        PathElement::Field("ports".into()),
        PathElement::Key(vec![("name".into(), json!("a"))]),
    ]);
    s.insert(&[
        PathElement::Field("spec".into()),
        PathElement::Field("tags".into()),
        PathElement::Value(json!("x")),
    ]);
    assert_eq!(
        remove(&v, &s, &t).unwrap().unwrap(),
        json!({"spec": {"replicas": 1, "tags": ["y"]}})
    );
}

#[test]
fn bad_list_items_are_errors_at_their_path() {
    let t = schema();
    let e = validate(&json!({"spec": {"ports": [{"port": 1}]}}), &t).unwrap_err();
    assert_eq!(
        e.to_string(),
        ".spec.ports: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"
    );
    let e = validate(
        &json!({"spec": {"ports": [{"name": "a"}, {"name": "a"}]}}),
        &t,
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        ".spec.ports: duplicate entries for key [name=\"a\"]"
    );
    let e = validate(&json!({"spec": {"tags": [{"a": 1}]}}), &t).unwrap_err();
    assert!(e.message.contains("that's a map type"), "{e}");
}
