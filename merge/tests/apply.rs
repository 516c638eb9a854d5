//! Server-side apply scenarios, as the Kubernetes documentation on server-side apply
//! and structured-merge-diff's merge tests describe them: conflicts, shared ownership,
//! removal of fields a manager stops applying, force, list maps, the move from
//! client-side apply, and managers in two versions.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{json, Value};
use structured_merge::field_manager::{FieldManager, LAST_APPLIED};
use structured_merge::managed::{Managed, ManagerId, Operation};
use structured_merge::updater::{ApplyError, Versions};
use structured_merge::Type;

/// `g/v1` has `spec.replicas`; `g/v2` calls it `spec.size`. Both have `spec.ports`, a
/// list map keyed by name, and `spec.tags`, a set.
struct TwoVersions;

fn schema(count: &str) -> Value {
    json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
        count: {"type": "integer"},
        "color": {"type": "string"},
        "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
            "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
    }}, "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}})
}

impl Versions for TwoVersions {
    fn convert(&mut self, obj: &Value, version: &str) -> Result<Option<Value>, String> {
        let mut o = obj.clone();
        if o["apiVersion"] == version {
            return Ok(Some(o));
        }
        let (from, to) = match version {
            "g/v1" => ("size", "replicas"),
            "g/v2" => ("replicas", "size"),
            _ => return Ok(None),
        };
        o["apiVersion"] = json!(version);
        if let Some(spec) = o.get_mut("spec").and_then(Value::as_object_mut) {
            if let Some(v) = spec.remove(from) {
                spec.insert(to.into(), v);
            }
        }
        Ok(Some(o))
    }
    fn type_of(&self, version: &str) -> Option<Arc<Type>> {
        let count = match version {
            "g/v1" => "replicas",
            "g/v2" => "size",
            _ => return None,
        };
        Some(Arc::new(Type::object(&schema(count)).unwrap()))
    }
}

fn fm<'a>(v: &'a mut TwoVersions, version: &str) -> FieldManager<'a, TwoVersions> {
    FieldManager {
        versions: v,
        api_version: version.into(),
        subresource: String::new(),
        ignored: BTreeMap::new(),
        now: "2026-12-07T00:00:00Z".into(),
    }
}

fn obj(version: &str, spec: Value) -> Value {
    json!({"apiVersion": version, "kind": "Thing", "metadata": {"name": "a", "uid": "u1"}, "spec": spec})
}

fn empty() -> Value {
    json!({"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": "a"}})
}

fn apply(
    live: &Value,
    version: &str,
    spec: Value,
    manager: &str,
    force: bool,
) -> Result<Value, ApplyError> {
    let mut v = TwoVersions;
    let config =
        json!({"apiVersion": version, "kind": "Thing", "metadata": {"name": "a"}, "spec": spec});
    let mut out = fm(&mut v, version).apply(live, &config, manager, force)?;
    out["metadata"]["uid"] = json!("u1");
    Ok(out)
}

fn owners(o: &Value) -> Vec<(String, String, Value)> {
    o["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["manager"].as_str().unwrap().to_string(),
                e["operation"].as_str().unwrap().to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

fn conflicts(e: ApplyError) -> Vec<(String, String)> {
    match e {
        ApplyError::Conflicts(c) => c
            .iter()
            .map(|c| {
                (
                    c.manager.manager.clone(),
                    structured_merge::path::display(&c.path),
                )
            })
            .collect(),
        other => panic!("expected conflicts, got {other:?}"),
    }
}

#[test]
fn apply_creates_and_records_the_applied_fields() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "ports": [{"name": "http", "port": 80}]}),
        "a",
        false,
    )
    .unwrap();
    assert_eq!(
        o["spec"],
        json!({"replicas": 1, "ports": [{"name": "http", "port": 80}]})
    );
    assert_eq!(
        owners(&o),
        vec![(
            "a".into(),
            "Apply".into(),
            json!({"f:spec": {
            "f:ports": {"k:{\"name\":\"http\"}": {".": {}, "f:name": {}, "f:port": {}}},
            "f:replicas": {}}})
        )]
    );
    assert_eq!(o["metadata"]["managedFields"][0]["apiVersion"], "g/v1");
    assert_eq!(
        o["metadata"]["managedFields"][0]["time"],
        "2026-12-07T00:00:00Z"
    );
}

#[test]
fn a_second_applier_conflicts_on_a_different_value_and_shares_an_equal_one() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "color": "red"}),
        "a",
        false,
    )
    .unwrap();
    let e = apply(&o, "g/v1", json!({"replicas": 2}), "b", false).unwrap_err();
    assert_eq!(
        ApplyError::conflict_message(match &e {
            ApplyError::Conflicts(c) => c,
            _ => unreachable!(),
        }),
        "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas"
    );
    assert_eq!(conflicts(e), vec![("a".into(), ".spec.replicas".into())]);
    // The same value: shared ownership, no conflict.
    let o2 = apply(&o, "g/v1", json!({"replicas": 1}), "b", false).unwrap();
    assert_eq!(o2["spec"]["replicas"], 1);
    let own = owners(&o2);
    assert_eq!(own.len(), 2);
    assert!(own
        .iter()
        .all(|(_, _, f)| f["f:spec"]["f:replicas"] == json!({})));
    // Now a stops applying replicas: b still owns it, so it stays.
    let o3 = apply(&o2, "g/v1", json!({"color": "red"}), "a", false).unwrap();
    assert_eq!(o3["spec"]["replicas"], 1);
}

#[test]
fn force_takes_ownership() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "color": "red"}),
        "a",
        false,
    )
    .unwrap();
    let o2 = apply(&o, "g/v1", json!({"replicas": 3}), "b", true).unwrap();
    assert_eq!(o2["spec"]["replicas"], 3);
    let own = owners(&o2);
    let a = own.iter().find(|o| o.0 == "a").unwrap();
    assert_eq!(a.2, json!({"f:spec": {"f:color": {}}}));
    let b = own.iter().find(|o| o.0 == "b").unwrap();
    assert_eq!(b.2, json!({"f:spec": {"f:replicas": {}}}));
}

#[test]
fn a_field_dropped_from_the_configuration_is_removed_when_no_one_else_owns_it() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "color": "red", "tags": ["x", "y"]}),
        "a",
        false,
    )
    .unwrap();
    let o2 = apply(
        &o,
        "g/v1",
        json!({"replicas": 1, "tags": ["x"]}),
        "a",
        false,
    )
    .unwrap();
    assert_eq!(o2["spec"], json!({"replicas": 1, "tags": ["x"]}));
}

#[test]
fn list_map_items_merge_by_key_and_each_manager_keeps_its_own() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"ports": [{"name": "http", "port": 80}]}),
        "a",
        false,
    )
    .unwrap();
    let o2 = apply(
        &o,
        "g/v1",
        json!({"ports": [{"name": "metrics", "port": 9090}]}),
        "b",
        false,
    )
    .unwrap();
    assert_eq!(
        o2["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])
    );
    // b changing a's port conflicts on that one field.
    let e = apply(
        &o2,
        "g/v1",
        json!({"ports": [{"name": "http", "port": 81}]}),
        "b",
        false,
    )
    .unwrap_err();
    assert_eq!(
        conflicts(e),
        vec![("a".into(), ".spec.ports[name=\"http\"].port".into())]
    );
    // a drops http: removed; b's item stays.
    let o3 = apply(&o2, "g/v1", json!({}), "a", false).unwrap();
    assert_eq!(
        o3["spec"]["ports"],
        json!([{"name": "metrics", "port": 9090}])
    );
}

#[test]
fn an_update_takes_fields_from_appliers_and_conflicts_later() {
    let mut v = TwoVersions;
    let o = apply(&empty(), "g/v1", json!({"replicas": 1}), "a", false).unwrap();
    let mut edited = o.clone();
    edited["spec"]["replicas"] = json!(5);
    fm(&mut v, "g/v1").update(&o, &mut edited, "kubectl-edit");
    let own = owners(&edited);
    assert_eq!(own.len(), 1, "{own:?}");
    assert_eq!(own[0].0, "kubectl-edit");
    assert_eq!(own[0].1, "Update");
    edited["metadata"]["uid"] = json!("u1");
    let e = apply(&edited, "g/v1", json!({"replicas": 1}), "b", false).unwrap_err();
    match e {
        ApplyError::Conflicts(c) => assert_eq!(
            ApplyError::conflict_message(&c),
            "Apply failed with 1 conflict: conflict with \"kubectl-edit\" using g/v1: .spec.replicas"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn two_conflicts_are_listed_by_manager() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "color": "red"}),
        "a",
        false,
    )
    .unwrap();
    let e = apply(
        &o,
        "g/v1",
        json!({"replicas": 2, "color": "blue"}),
        "b",
        false,
    )
    .unwrap_err();
    match e {
        ApplyError::Conflicts(c) => assert_eq!(
            ApplyError::conflict_message(&c),
            "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.color\n- .spec.replicas"
        ),
        other => panic!("{other:?}"),
    }
}

#[test]
fn managers_in_two_versions_conflict_where_their_fields_overlap() {
    let o = apply(
        &empty(),
        "g/v1",
        json!({"replicas": 1, "color": "red"}),
        "a",
        false,
    )
    .unwrap();
    // In v2, replicas is size: b applying size 2 conflicts with a's replicas.
    let live_v2 = {
        let mut v = TwoVersions;
        v.convert(&o, "g/v2").unwrap().unwrap()
    };
    let e = apply(&live_v2, "g/v2", json!({"size": 2}), "b", false).unwrap_err();
    assert_eq!(conflicts(e), vec![("a".into(), ".spec.replicas".into())]);
    // A field only b sets does not conflict, and b's fields are recorded in v2.
    let o2 = apply(&live_v2, "g/v2", json!({"tags": ["t"]}), "b", false).unwrap();
    let b = o2["metadata"]["managedFields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["manager"] == "b")
        .unwrap()
        .clone();
    assert_eq!(b["apiVersion"], "g/v2");
    assert_eq!(
        b["fieldsV1"],
        json!({"f:spec": {"f:tags": {"v:\"t\"": {}}}})
    );
}

#[test]
fn an_apply_that_changes_nothing_keeps_the_object_and_its_managed_fields() {
    let o = apply(&empty(), "g/v1", json!({"replicas": 1}), "a", false).unwrap();
    let mut v = TwoVersions;
    let config = json!({"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": {"replicas": 1}});
    let mut f = fm(&mut v, "g/v1");
    f.now = "2027-01-01T00:00:00Z".into();
    let again = f.apply(&o, &config, "a", false).unwrap();
    assert_eq!(again, o);
}

#[test]
fn fields_set_before_the_first_apply_belong_to_before_first_apply() {
    let live = obj("g/v1", json!({"replicas": 1}));
    let e = apply(&live, "g/v1", json!({"replicas": 2}), "a", false).unwrap_err();
    assert_eq!(
        conflicts(e),
        vec![("before-first-apply".into(), ".spec.replicas".into())]
    );
}

#[test]
fn kubectl_takes_over_what_its_client_side_apply_set() {
    let last = json!({"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": {"replicas": 1}});
    let mut live = obj("g/v1", json!({"replicas": 1, "color": "red"}));
    live["metadata"]["annotations"] = json!({LAST_APPLIED: last.to_string()});
    let mut v = TwoVersions;
    let mut created = live.clone();
    // Recorded as kubectl-client-side-apply's update.
    fm(&mut v, "g/v1").update(&empty(), &mut created, "kubectl-client-side-apply");
    created["metadata"]["uid"] = json!("u1");
    // A different manager conflicts; kubectl does not, for the fields it applied.
    assert!(apply(&created, "g/v1", json!({"replicas": 2}), "other", false).is_err());
    let o = apply(&created, "g/v1", json!({"replicas": 2}), "kubectl", false).unwrap();
    assert_eq!(o["spec"]["replicas"], 2);
    let la: Value =
        serde_json::from_str(o["metadata"]["annotations"][LAST_APPLIED].as_str().unwrap()).unwrap();
    assert_eq!(la["spec"], json!({"replicas": 2}));
    // But not for color, which its last-applied configuration never set.
    let e = apply(&created, "g/v1", json!({"color": "blue"}), "kubectl", false).unwrap_err();
    assert_eq!(
        conflicts(e),
        vec![("kubectl-client-side-apply".into(), ".spec.color".into())]
    );
}

#[test]
fn bad_configurations_are_bad_requests() {
    let mut v = TwoVersions;
    let mut f = fm(&mut v, "g/v1");
    let e = f
        .apply(
            &empty(),
            &json!({"apiVersion": "g/v2", "kind": "Thing", "metadata": {"name": "a"}}),
            "a",
            false,
        )
        .unwrap_err();
    assert_eq!(e, ApplyError::BadRequest("Incorrect version specified in apply patch. Specified patch version: g/v2, expected: g/v1".into()));
    let e = f
        .apply(&empty(), &json!({"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": "a", "managedFields": []}}), "a", false)
        .unwrap_err();
    assert_eq!(
        e,
        ApplyError::BadRequest("metadata.managedFields must be nil".into())
    );
    let e = f
        .apply(&empty(), &json!({"apiVersion": "g/v1", "kind": "Thing", "metadata": {"name": "a"}, "spec": {"ports": [{"port": 1}]}}), "a", false)
        .unwrap_err();
    match e {
        ApplyError::Invalid(e) => assert_eq!(e.to_string(), ".spec.ports: element 0: associative list with keys has an element that omits key field \"name\" (and doesn't have default value)"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn updates_without_tracking_stay_untracked_and_client_managed_fields_are_reset_or_ignored() {
    let mut v = TwoVersions;
    // An existing object that never had managed fields: an update does not start them.
    let live = obj("g/v1", json!({"replicas": 1}));
    let mut new = live.clone();
    new["spec"]["replicas"] = json!(2);
    fm(&mut v, "g/v1").update(&live, &mut new, "m");
    assert!(new["metadata"].get("managedFields").is_none());
    // Malformed managedFields from a client: the live ones are kept, never an error.
    let created = apply(&empty(), "g/v1", json!({"replicas": 1}), "a", false).unwrap();
    let mut new = created.clone();
    new["metadata"]["managedFields"] = json!([{"manager": 1, "operation": "Bogus"}]);
    new["spec"]["color"] = json!("red");
    fm(&mut v, "g/v1").update(&created, &mut new, "m");
    let m = Managed::decode(new["metadata"].get("managedFields")).unwrap();
    assert!(m
        .fields
        .contains_key(&ManagerId::new("a", Operation::Apply, "", "")));
    assert!(m
        .fields
        .contains_key(&ManagerId::new("m", Operation::Update, "g/v1", "")));
    // An empty list resets them: the object is untracked until its next apply.
    let mut new = created.clone();
    new["metadata"]["managedFields"] = json!([]);
    new["spec"]["color"] = json!("blue");
    fm(&mut v, "g/v1").update(&created, &mut new, "m");
    assert!(new["metadata"].get("managedFields").is_none());
}

#[test]
fn more_than_ten_update_managers_merge_the_oldest_into_ancient_changes() {
    let mut v = TwoVersions;
    let mut live = empty();
    for i in 0..12 {
        let mut new = live.clone();
        new["spec"] = json!({"color": format!("c{i}")});
        new["metadata"]["labels"] = live["metadata"]["labels"].clone();
        new["metadata"]["labels"][format!("l{i}")] = json!("x");
        let mut f = fm(&mut v, "g/v1");
        f.now = format!("2026-12-07T00:00:{i:02}Z");
        f.update(&live, &mut new, &format!("m{i}"));
        new["metadata"]["uid"] = json!("u1");
        live = new;
    }
    let m = Managed::decode(live["metadata"].get("managedFields")).unwrap();
    assert_eq!(
        m.fields.len(),
        10,
        "{:?}",
        m.fields.keys().collect::<Vec<_>>()
    );
    assert!(m.fields.keys().any(|k| k.manager == "ancient-changes"));
}
