//! Strategic merge patch: cases from apimachinery's `pkg/util/strategicpatch/patch_test.go` (named by their
//! `description`), applied with its `MergeItem` test type written as an OpenAPI schema.
use serde_json::json;
use serde_json::Value;
use structured_merge::strategic::apply;
use structured_merge::Type;

/// A list merged by `name`, as `patchStrategy:"merge" patchMergeKey:"name"`.
fn keyed_list(items: Value) -> Value {
    json!({"type": "array", "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["name"], "items": items})
}

/// apimachinery's `MergeItem`, its recursive fields nested `depth` levels.
fn merge_item(depth: usize) -> Value {
    let mut s = json!({"type": "object", "properties": {
        "name": {"type": "string"},
        "value": {"type": "string"},
        "other": {"type": "string"},
        "mergingIntList": {"type": "array", "x-kubernetes-list-type": "set",
            "items": {"type": "integer"}},
        "nonMergingIntList": {"type": "array", "items": {"type": "integer"}},
        "simpleMap": {"type": "object", "additionalProperties": {"type": "string"}},
        "replacingItem": {"type": "object", "x-kubernetes-map-type": "atomic",
            "x-kubernetes-preserve-unknown-fields": true},
        "jsonItem": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
    }});
    if depth > 0 {
        let item = merge_item(depth - 1);
        let props = &mut s["properties"];
        props["mergingList"] = keyed_list(item.clone());
        props["mergeItemPtr"] = keyed_list(item.clone());
        props["retainKeysMergingList"] = keyed_list(item.clone());
        props["nonMergingList"] = json!({"type": "array", "items": item.clone()});
        props["retainKeysMap"] = item;
    }
    s
}

fn patched(original: Value, patch: Value) -> Value {
    let t = Type::from_openapi(&merge_item(2)).unwrap();
    apply(&original, &patch, &t).unwrap()
}

fn error(original: Value, patch: Value) -> String {
    let t = Type::from_openapi(&merge_item(2)).unwrap();
    apply(&original, &patch, &t).unwrap_err()
}

#[test]
fn unique_scalars_when_merging_lists() {
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2]}),
            json!({"mergingIntList": [2, 3]})
        ),
        json!({"mergingIntList": [1, 2, 3]})
    );
}

#[test]
fn delete_map_from_nested_map() {
    // Kube leaves an empty map behind when the field was there.
    assert_eq!(
        patched(
            json!({"simpleMap": {"key1": "1", "key2": "1"}}),
            json!({"simpleMap": {"$patch": "delete"}})
        ),
        json!({"simpleMap": {}})
    );
    // A deleted map that was not there is not added.
    assert_eq!(
        patched(
            json!({"name": "a"}),
            json!({"simpleMap": {"$patch": "delete"}})
        ),
        json!({"name": "a"})
    );
}

#[test]
fn delete_all_items_from_merging_list() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1}, {"name": 2}]}),
            json!({"mergingList": [{"$patch": "replace"}]})
        ),
        json!({"mergingList": []})
    );
}

#[test]
fn replace_directive_in_list_keeps_other_items() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "value": "a"}, {"name": 2}]}),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"$patch": "replace"}]})
        ),
        json!({"mergingList": [{"name": 3, "value": "c"}]})
    );
}

#[test]
fn merge_empty_merging_lists() {
    assert_eq!(
        patched(json!({"mergingList": []}), json!({"mergingList": []})),
        json!({"mergingList": []})
    );
}

#[test]
fn delete_all_keys_from_map() {
    assert_eq!(
        patched(json!({"name": 1, "value": 1}), json!({"$patch": "replace"})),
        json!({})
    );
    assert_eq!(
        patched(json!({"name": 1, "value": 1}), json!({"$patch": "delete"})),
        json!({})
    );
}

#[test]
fn add_key_and_delete_all_keys_from_map() {
    assert_eq!(
        patched(
            json!({"name": 1, "value": 1}),
            json!({"other": "a", "$patch": "replace"})
        ),
        json!({"other": "a"})
    );
}

#[test]
fn delete_all_duplicate_entries_in_a_merging_list() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1}, {"name": 1}, {"name": 2, "value": "a"},
                {"name": 3}, {"name": 3}]}),
            json!({"mergingList": [{"name": 1, "$patch": "delete"},
                {"name": 3, "$patch": "delete"}]})
        ),
        json!({"mergingList": [{"name": 2, "value": "a"}]})
    );
}

#[test]
fn null_deletes_a_field() {
    // retainKeys map can delete a field when no retainKeys directive present
    assert_eq!(
        patched(
            json!({"retainKeysMap": {"name": "foo", "value": "a"}}),
            json!({"retainKeysMap": {"value": null}})
        ),
        json!({"retainKeysMap": {"name": "foo"}})
    );
    // retainKeys list can delete a field when no retainKeys directive present
    assert_eq!(
        patched(
            json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]}),
            json!({"retainKeysMergingList": [{"name": "foo", "value": null}]})
        ),
        json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}]})
    );
}

#[test]
fn preserve_the_order_from_the_patch_in_a_merging_list() {
    let original = json!({"mergingList": [{"name": 1}, {"name": 2, "value": "b"}, {"name": 3}]});
    assert_eq!(
        patched(
            original.clone(),
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"},
                {"name": 2, "other": "x"}]})
        ),
        json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"},
            {"name": 2, "value": "b", "other": "x"}]})
    );
    // ... 2: the item the patch leaves out keeps its place before the patched ones.
    assert_eq!(
        patched(
            original,
            json!({"mergingList": [{"name": 3, "value": "c"}, {"name": 1, "value": "a"}]})
        ),
        json!({"mergingList": [{"name": 2, "value": "b"}, {"name": 3, "value": "c"},
            {"name": 1, "value": "a"}]})
    );
}

#[test]
fn preserve_the_order_from_the_patch_in_a_merging_int_list() {
    let original = json!({"mergingIntList": [1, 2, 3]});
    assert_eq!(
        patched(original.clone(), json!({"mergingIntList": [3, 1, 2]})),
        json!({"mergingIntList": [3, 1, 2]})
    );
    assert_eq!(
        patched(original, json!({"mergingIntList": [3, 1]})),
        json!({"mergingIntList": [2, 3, 1]})
    );
}

#[test]
fn set_element_order_names_an_item_not_in_the_list() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1}, {"name": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 3}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
        ),
        json!({"mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
    );
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 3]}),
            json!({"$setElementOrder/mergingIntList": [3, 2, 1]})
        ),
        json!({"mergingIntList": [3, 1]})
    );
}

#[test]
fn delete_from_primitive_list() {
    // ... should delete item from a list with merge patch strategy
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [2]})
        ),
        json!({"mergingIntList": [1, 3]})
    );
    // ... should delete item from a list without merge patch strategy
    assert_eq!(
        patched(
            json!({"nonMergingIntList": [1, 2, 3]}),
            json!({"$deleteFromPrimitiveList/nonMergingIntList": [2]})
        ),
        json!({"nonMergingIntList": [1, 3]})
    );
    // ... of nonexistent item in primitive list should not add the item to the list
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]})
        ),
        json!({"mergingIntList": [1, 2]})
    );
    // ... on nonexistent primitive list should not add the primitive list
    assert_eq!(
        patched(
            json!({"foo": ["bar"]}),
            json!({"$deleteFromPrimitiveList/mergingIntList": [3]})
        ),
        json!({"foo": ["bar"]})
    );
}

#[test]
fn nested_patch_merge_with_empty_list() {
    assert_eq!(
        patched(
            json!({"name": "hi"}),
            json!({"mergingList": [{"name": "hello"},
                {"$patch": "delete", "name": "doesntexist"}]})
        ),
        json!({"name": "hi", "mergingList": [{"name": "hello"}]})
    );
    assert_eq!(
        patched(
            json!({"name": "hi", "mergingList": [{"name": "hello2"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "hello"}, {"name": "doesntexist"}],
                "mergingList": [{"name": "hello"}]})
        ),
        json!({"name": "hi", "mergingList": [{"name": "hello"}, {"name": "hello2"}]})
    );
}

#[test]
fn delete_items_in_lists_of_scalars() {
    let patch = json!({"$setElementOrder/mergingIntList": [1, 2],
        "$deleteFromPrimitiveList/mergingIntList": [3]});
    assert_eq!(
        patched(json!({"mergingIntList": [1, 2, 3, 4]}), patch.clone()),
        json!({"mergingIntList": [1, 2, 4]})
    );
    // delete all duplicate items in lists of scalars
    assert_eq!(
        patched(json!({"mergingIntList": [1, 2, 3, 3, 4]}), patch),
        json!({"mergingIntList": [1, 2, 4]})
    );
}

#[test]
fn merge_lists_of_scalars() {
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3]})
        ),
        json!({"mergingIntList": [1, 2, 3, 4]})
    );
}

#[test]
fn merge_lists_of_maps() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 1}, {"name": 2},
                    {"name": 3}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "value": 3}]})
        ),
        json!({"mergingList": [{"name": 4, "value": 4}, {"name": 1, "other": "a"},
            {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]})
    );
}

#[test]
fn add_field_to_map_in_merging_list_nested_in_merging_list() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a", "mergingList": [{"name": 1},
                {"name": 2, "value": 2}]}, {"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                    "name": 1, "mergingList": [{"name": 1, "value": 1}]}]})
        ),
        json!({"mergingList": [{"name": 1, "other": "a", "mergingList": [
            {"name": 1, "value": 1}, {"name": 2, "value": 2}]}, {"name": 2, "other": "b"}]})
    );
}

#[test]
fn add_an_item_in_a_list_of_primitives_and_preserve_order() {
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 4, 2]}),
            json!({"$setElementOrder/mergingIntList": [3, 1, 2], "mergingIntList": [3]})
        ),
        json!({"mergingIntList": [3, 1, 4, 2]})
    );
}

#[test]
fn delete_an_item_in_a_list_and_preserve_order() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 2}, {"name": 1}],
                "mergingList": [{"name": 3, "$patch": "delete"}]})
        ),
        json!({"mergingList": [{"name": 2, "value": 2, "other": "b"},
            {"name": 1, "other": "a"}]})
    );
}

#[test]
fn add_and_delete_an_item_in_a_list_and_preserve_order() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a"},
                {"name": 2, "value": 2, "other": "b"}, {"name": 3, "value": 3}]}),
            json!({"$setElementOrder/mergingList": [{"name": 4}, {"name": 2}, {"name": 1}],
                "mergingList": [{"name": 4, "value": 4}, {"name": 3, "$patch": "delete"}]})
        ),
        json!({"mergingList": [{"name": 4, "value": 4},
            {"name": 2, "value": 2, "other": "b"}, {"name": 1, "other": "a"}]})
    );
}

#[test]
fn set_elements_order_in_a_list_with_server_only_items() {
    let order = json!([{"name": 2}, {"name": 1}, {"name": 4}, {"name": 3}]);
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a"}, {"name": 2, "value": 2},
                {"name": 7}, {"name": 9}, {"name": 8}, {"name": 3, "value": 3},
                {"name": 4, "value": 4}]}),
            json!({"$setElementOrder/mergingList": order})
        ),
        json!({"mergingList": [{"name": 2, "value": 2}, {"name": 1, "other": "a"},
            {"name": 7}, {"name": 9}, {"name": 8}, {"name": 4, "value": 4},
            {"name": 3, "value": 3}]})
    );
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2, 9, 3, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3]})
        ),
        json!({"mergingIntList": [2, 1, 9, 4, 3]})
    );
}

#[test]
fn behavior_of_set_element_order_for_a_merging_int_list_with_duplicate() {
    assert_eq!(
        patched(
            json!({"mergingIntList": [1, 2, 3, 2, 4]}),
            json!({"$setElementOrder/mergingIntList": [2, 1, 4, 3, 2]})
        ),
        json!({"mergingIntList": [2, 2, 1, 4, 3]})
    );
}

#[test]
fn delete_and_reorder_in_one_list_reorder_in_another() {
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": "a", "value": "a"}, {"name": "b", "value": "b"}],
                "mergeItemPtr": [{"name": "c", "value": "c"}, {"name": "d", "value": "d"}]}),
            json!({"$setElementOrder/mergingList": [{"name": "b"}],
                "$setElementOrder/mergeItemPtr": [{"name": "d"}, {"name": "c"}],
                "mergingList": [{"$patch": "delete", "name": "a"}]})
        ),
        json!({"mergingList": [{"name": "b", "value": "b"}],
            "mergeItemPtr": [{"name": "d", "value": "d"}, {"name": "c", "value": "c"}]})
    );
}

#[test]
fn retain_keys_map_should_clear_defaulted_field() {
    assert_eq!(
        patched(
            json!({"retainKeysMap": {"name": "type1", "value": "foo"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name", "other"], "name": "type2",
                "other": "bar"}})
        ),
        json!({"retainKeysMap": {"name": "type2", "other": "bar"}})
    );
}

#[test]
fn retain_keys_map_adds_an_item_and_deletes_an_item_in_nested_merging_int_list() {
    assert_eq!(
        patched(
            json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 2, 3, 4]}}),
            json!({"retainKeysMap": {"$retainKeys": ["mergingIntList", "name"],
                "mergingIntList": [5],
                "$deleteFromPrimitiveList/mergingIntList": [2],
                "$setElementOrder/mergingIntList": [1, 3, 5]}})
        ),
        json!({"retainKeysMap": {"name": "foo", "mergingIntList": [1, 3, 5, 4]}})
    );
}

#[test]
fn retain_keys_map_deletes_an_item_in_nested_merging_list() {
    assert_eq!(
        patched(
            json!({"retainKeysMap": {"name": "foo", "other": "x",
                "mergingList": [{"name": "a"}, {"name": "b"}, {"name": "x"}]}}),
            json!({"retainKeysMap": {"$retainKeys": ["mergingList", "name"],
                "$setElementOrder/mergingList": [{"name": "a"}],
                "mergingList": [{"name": "b", "$patch": "delete"}]}})
        ),
        json!({"retainKeysMap": {"name": "foo",
            "mergingList": [{"name": "a"}, {"name": "x"}]}})
    );
}

#[test]
fn retain_keys_list_of_maps_clears_a_field() {
    assert_eq!(
        patched(
            json!({"retainKeysMergingList": [{"name": "bar"},
                {"name": "foo", "value": "a", "other": "x"}]}),
            json!({"$setElementOrder/retainKeysMergingList": [{"name": "bar"}, {"name": "foo"}],
                "retainKeysMergingList": [{"$retainKeys": ["name", "value"], "name": "foo"}]})
        ),
        json!({"retainKeysMergingList": [{"name": "bar"}, {"name": "foo", "value": "a"}]})
    );
}

#[test]
fn replace_non_merging_list_and_atomic_map() {
    // replace non merging list nested in merging list
    assert_eq!(
        patched(
            json!({"mergingList": [{"name": 1, "other": "a", "nonMergingList": [{"name": 1},
                {"name": 2, "value": 2}]}, {"name": 2, "other": "b"}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}],
                "mergingList": [{"name": 1, "nonMergingList": [{"name": 1, "value": 1}]}]})
        ),
        json!({"mergingList": [{"name": 1, "other": "a",
            "nonMergingList": [{"name": 1, "value": 1}]}, {"name": 2, "other": "b"}]})
    );
    // replace RawExtension field, rest unchanched
    assert_eq!(
        patched(
            json!({"name": "my-object", "replacingItem": {"Some": "Generic", "Yaml": "Inside"}}),
            json!({"replacingItem": {"Newly": "Modified", "Yaml": "Inside"}})
        ),
        json!({"name": "my-object", "replacingItem": {"Newly": "Modified", "Yaml": "Inside"}})
    );
}

#[test]
fn untyped_fields_merge_as_json_merge_patch() {
    // TestUnknownField: discard nulls in nested and adds not nulls
    let original = json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo"});
    assert_eq!(
        patched(
            original.clone(),
            json!({"complex_nullable": {"key": {"keynotnull": "value", "keynull": null}}})
        ),
        json!({"array": [1, 2, 3], "complex": {"nested": true}, "name": "foo",
            "complex_nullable": {"key": {"keynotnull": "value"}}})
    );
    // not filter nulls from non-associative slice; filter nulls from nested slices
    assert_eq!(
        patched(
            json!({}),
            json!({"a": ["key1", null, "key2"],
                "b": [{"inner_one": {"key_one": "foo", "key_two": null}}]})
        ),
        json!({"a": ["key1", null, "key2"], "b": [{"inner_one": {"key_one": "foo"}}]})
    );
    // Untyped objects merge, untyped arrays are replaced.
    assert_eq!(
        patched(
            json!({"jsonItem": {"a": {"b": 1, "c": 2}, "l": [1, 2]}}),
            json!({"jsonItem": {"a": {"c": null, "d": 3}, "l": [3]}})
        ),
        json!({"jsonItem": {"a": {"b": 1, "d": 3}, "l": [3]}})
    );
}

#[test]
fn key_order_is_kept_and_new_keys_appended() {
    let out = patched(
        json!({"value": "v", "name": "n", "other": "o"}),
        json!({"simpleMap": {"k": "v"}, "name": "m", "other": null}),
    );
    assert_eq!(
        out.to_string(),
        r#"{"value":"v","name":"m","simpleMap":{"k":"v"}}"#
    );
}

#[test]
fn directives_never_reach_the_result() {
    assert_eq!(
        patched(
            json!({}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "name": "a",
                "$setElementOrder/mergingList": [{"name": 1}],
                "$deleteFromPrimitiveList/mergingIntList": [1]}})
        ),
        json!({"retainKeysMap": {"name": "a"}})
    );
}

#[test]
fn unknown_patch_type_is_an_error() {
    assert_eq!(
        error(
            json!({"simpleMap": {"a": "1"}}),
            json!({"simpleMap": {"$patch": "bogus", "a": "2"}})
        ),
        "unknown patch type: bogus in map: map[$patch:bogus a:2]"
    );
    assert_eq!(
        error(
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"name": 1, "$patch": "bogus"}]})
        ),
        "unknown patch type: bogus in map: map[$patch:bogus name:1]"
    );
    // Kube accepts `merge` in neither place.
    assert_eq!(
        error(json!({}), json!({"$patch": "merge"})),
        "unknown patch type: merge in map: map[$patch:merge]"
    );
    assert_eq!(
        error(
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "merge"}]})
        ),
        "merging lists cannot yet be specified in the patch"
    );
}

#[test]
fn missing_merge_key_is_an_error() {
    assert_eq!(
        error(
            json!({"mergingList": [{"name": 1, "value": "a"}]}),
            json!({"mergingList": [{"value": "b"}]})
        ),
        "map: map[value:b] does not contain declared merge key: name"
    );
    assert_eq!(
        error(
            json!({"mergingList": [{"name": 1}]}),
            json!({"mergingList": [{"$patch": "delete", "value": "b"}]})
        ),
        "map: map[$patch:delete value:b] does not contain declared merge key: name"
    );
}

#[test]
fn non_object_patch_is_an_error() {
    assert_eq!(error(json!({}), json!([1])), "invalid JSON document");
    assert_eq!(error(json!({}), json!("x")), "invalid JSON document");
}

#[test]
fn set_element_order_must_match_the_patch_list() {
    assert_eq!(
        error(
            json!({"mergingList": [{"name": 1}, {"name": 3}, {"name": 2}]}),
            json!({"$setElementOrder/mergingList": [{"name": 1}, {"name": 2}, {"name": 3}],
                "mergingList": [{"name": 3, "value": 3}, {"name": 1, "value": 1}]})
        ),
        "The order in patch list:\n[map[name:3 value:3] map[name:1 value:1]]\n \
         doesn't match $setElementOrder list:\n[map[name:1] map[name:2] map[name:3]]\n"
    );
    let e = error(
        json!({"mergingIntList": [1, 3, 2]}),
        json!({"$setElementOrder/mergingIntList": [1, 2, 3], "mergingIntList": [3, 1]}),
    );
    assert!(e.contains("doesn't match"), "{e}");
}

#[test]
fn retain_keys_must_list_the_patched_keys() {
    assert_eq!(
        error(
            json!({"retainKeysMap": {"name": "a"}}),
            json!({"retainKeysMap": {"$retainKeys": ["name"], "value": "b"}})
        ),
        "invalid patch format of retainKeys"
    );
}
