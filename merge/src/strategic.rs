//! Strategic merge patch (`application/strategic-merge-patch+json`), applied as
//! k8s.io/apimachinery's `strategicpatch.StrategicMergePatch` applies it, with each
//! field's patch strategy read from a [`Type`] rather than from Go struct tags:
//!
//! - a [`ListKind::Map`] list merges items by its first key (`patchMergeKey`), a
//!   [`ListKind::Set`] list merges as a union of primitives, an atomic list is replaced;
//! - a granular map merges key by key (`null` deletes a key), an atomic map is replaced;
//! - an untyped value merges like a JSON merge patch (objects merge, arrays are replaced).
//!
//! The directives are kube's: `$patch` (`replace` or `delete`, in a map or as an item of
//! a keyed list), `$retainKeys`, `$setElementOrder/<list>` and
//! `$deleteFromPrimitiveList/<list>`. Merged lists are ordered as kube orders them, and
//! errors use kube's wording. Patch content taken without merging (new fields, replaced
//! values, appended items) loses its `null` fields and its directives, so no directive
//! reaches the result.

use serde_json::{Map, Value};

use crate::schema::{ListKind, Type};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ORDER: &str = "$setElementOrder";
const DELETE_FROM: &str = "$deleteFromPrimitiveList";

/// Go's names for the types kube decodes JSON into, as its errors print them.
const GO_MAP: &str = "map[string]interface {}";
const GO_LIST: &str = "[]interface {}";

/// The type of fields a schema does not describe.
static UNTYPED: Type = Type::Untyped;

type Object = Map<String, Value>;

/// Apply a strategic merge patch `patch` to `original`, whose type is `t`.
pub fn apply(original: &Value, patch: &Value, t: &Type) -> Result<Value, String> {
    // As kube decodes them: a JSON `null` document is an empty object.
    let object = |v: &Value| match v {
        Value::Object(m) => Ok(m.clone()),
        Value::Null => Ok(Object::new()),
        _ => Err("invalid JSON document".to_string()),
    };
    merge_map(object(original)?, object(patch)?, t).map(Value::Object)
}

/// Merge the object `patch` into `original`, an object of type `t` (kube's `mergeMap`).
fn merge_map(mut original: Object, mut patch: Object, t: &Type) -> Result<Object, String> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(PATCH);
                Ok(clean_map(patch))
            }
            Some("delete") => Ok(Object::new()),
            _ => Err(bad_patch_type(directive, &patch)),
        };
    }
    retain_keys(&mut original, &mut patch)?;
    set_element_orders(&mut original, &mut patch, t)?;
    for (key, value) in patch {
        let delete_list = key.starts_with(DELETE_FROM);
        let name = if delete_list {
            directive_field(&key, DELETE_FROM, "invalid patch format of primitive list")?
        } else {
            key.as_str()
        };
        if value.is_null() {
            original.shift_remove(name);
            continue;
        }
        let Some(current) = original.get_mut(name) else {
            if let (false, Some(value)) = (delete_list, clean(value)) {
                original.insert(name.to_string(), value);
            }
            continue;
        };
        if delete_list {
            if let (Value::Array(list), Value::Array(gone)) = (current, &value) {
                list.retain(|item| !gone.contains(item));
            }
            continue;
        }
        let t = t.field(name).map_or(&UNTYPED, |t| t);
        match merge_value(std::mem::take(current), value, t, name)? {
            Some(merged) => *current = merged,
            None => {
                original.shift_remove(name);
            }
        }
    }
    Ok(original)
}

/// Merge a patch value into the present value of field `name`, of type `t`; `None`
/// removes the field.
fn merge_value(
    original: Value,
    patch: Value,
    t: &Type,
    name: &str,
) -> Result<Option<Value>, String> {
    let granular = matches!(t, Type::Untyped | Type::Map { atomic: false, .. });
    match (original, patch) {
        (Value::Object(o), Value::Object(p)) if granular => {
            Ok(Some(Value::Object(merge_map(o, p, t)?)))
        }
        (Value::Array(o), Value::Array(p)) => Ok(Some(Value::Array(merge_list(o, p, t, name)?))),
        (_, p) => Ok(clean(p)),
    }
}

/// How a list of type `t` is patched: `None` to replace it, else merged by this key
/// (none for primitives), with items of this type.
fn merging(t: &Type) -> Option<(Option<&str>, &Type)> {
    match t {
        Type::List {
            items,
            kind: ListKind::Set,
        } => Some((None, items)),
        Type::List {
            items,
            kind: ListKind::Map(keys),
        } => Some((keys.first().map(String::as_str), items)),
        _ => None,
    }
}

/// Merge the list `patch` into `original`, the list field `name` of type `t` (kube's
/// `mergeSliceHandler` and `mergeSlice`).
fn merge_list(
    original: Vec<Value>,
    patch: Vec<Value>,
    t: &Type,
    name: &str,
) -> Result<Vec<Value>, String> {
    let Some((key, items)) = merging(t) else {
        return Ok(clean_list(patch));
    };
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    check_elements(&original, &patch)?;
    let (original, patch, merged) = match key {
        None => {
            if original.iter().chain(&patch).any(Value::is_object) {
                return Err(format!("cannot merge lists without merge key for {name}"));
            }
            let mut merged: Vec<Value> = Vec::new();
            for item in original.iter().chain(&patch) {
                if !merged.contains(item) {
                    merged.push(item.clone());
                }
            }
            (original, patch, merged)
        }
        Some(key) => {
            let (original, patch) = list_directives(original, patch, key)?;
            let merged = merge_items(original.clone(), &patch, key, items)?;
            (original, patch, merged)
        }
    };
    order(merged, &patch, &original, key)
}

/// Kube's `sliceElementType`: the items of a merged list are all of one type, not lists.
fn check_elements(original: &[Value], patch: &[Value]) -> Result<(), String> {
    let mut items = original.iter().chain(patch);
    let Some(first) = items.next() else {
        return Ok(());
    };
    if first.is_array() {
        return Err("lists of lists are not supported".into());
    }
    if items.any(|item| go_type(item) != go_type(first)) {
        return Err(format!(
            "list element types are not identical: [{} {}]",
            go_list(original),
            go_list(patch)
        ));
    }
    Ok(())
}

/// Apply the `$patch` items of a keyed list patch (kube's
/// `mergeSliceWithSpecialElements`): `delete` drops the items with that key, `replace`
/// makes the other patch items the whole list. Returns the list and the other items.
fn list_directives(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), String> {
    let mut rest = Vec::new();
    let mut replace = false;
    for item in patch {
        let Value::Object(m) = &item else {
            return Err(bad_arg_type(GO_MAP, &item));
        };
        let Some(directive) = m.get(PATCH) else {
            rest.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let (_, id) = keyed(&item, key)?;
                original.retain(|o| o.get(key) != Some(id));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err("merging lists cannot yet be specified in the patch".into())
            }
            _ => return Err(bad_patch_type(directive, m)),
        }
    }
    if replace {
        return Ok((clean_list(rest), Vec::new()));
    }
    Ok((original, rest))
}

/// Merge each patch item into the item with its key, or append it (kube's
/// `mergeSliceWithoutSpecialElements`); items are of type `t`.
fn merge_items(
    mut merged: Vec<Value>,
    patch: &[Value],
    key: &str,
    t: &Type,
) -> Result<Vec<Value>, String> {
    for item in patch {
        let (p, id) = keyed(item, key)?;
        let found = merged.iter_mut().find_map(|o| match o {
            Value::Object(m) if m.get(key) == Some(id) => Some(m),
            _ => None,
        });
        match found {
            Some(m) => *m = merge_map(std::mem::take(m), p.clone(), t)?,
            None => merged.extend(clean(item.clone())),
        }
    }
    Ok(merged)
}

/// Kube's `normalizeElementOrder`: the items of `merged` named in `patch_order` come in
/// that order, the others in their order in `server_order`, and a server-only item goes
/// before the patch items that came after it on the server.
fn order(
    merged: Vec<Value>,
    patch_order: &[Value],
    server_order: &[Value],
    key: Option<&str>,
) -> Result<Vec<Value>, String> {
    let ids = |list: &[Value]| -> Result<Vec<Value>, String> {
        list.iter().map(|v| identity(v, key).cloned()).collect()
    };
    let (patch_ids, server_ids) = (ids(patch_order)?, ids(server_order)?);
    let at = |ids: &[Value], id: &Value| ids.iter().position(|i| i == id);
    // (sort position, position on the server, item)
    let (mut patched, mut server_only) = (Vec::new(), Vec::new());
    for item in merged {
        let id = identity(&item, key)?;
        let server = at(&server_ids, id);
        match at(&patch_ids, id) {
            Some(p) => patched.push((p, server, item)),
            None => server_only.push((server.unwrap_or(usize::MAX), server, item)),
        }
    }
    patched.sort_by_key(|e| e.0);
    server_only.sort_by_key(|e| e.0);
    let mut out = Vec::with_capacity(patched.len() + server_only.len());
    let mut left = server_only.into_iter().peekable();
    let mut right = patched.into_iter().peekable();
    while let (Some(l), Some(r)) = (left.peek(), right.peek()) {
        let next = match (l.1, r.1) {
            (Some(a), Some(b)) if a < b => left.next(),
            _ => right.next(),
        };
        out.extend(next.map(|e| e.2));
    }
    out.extend(left.chain(right).map(|e| e.2));
    Ok(out)
}

/// What tells a list item apart: its merge key's value, or with no key the item itself.
fn identity<'a>(item: &'a Value, key: Option<&str>) -> Result<&'a Value, String> {
    match key {
        None => Ok(item),
        Some(key) => keyed(item, key).map(|(_, id)| id),
    }
}

/// A keyed list item and its merge key's value.
fn keyed<'a>(item: &'a Value, key: &str) -> Result<(&'a Object, &'a Value), String> {
    let Value::Object(m) = item else {
        return Err(bad_arg_type(GO_MAP, item));
    };
    match m.get(key) {
        Some(id) => Ok((m, id)),
        None => Err(format!(
            "map: {} does not contain declared merge key: {key}",
            go_map(m)
        )),
    }
}

/// Kube's `applyRetainKeysDirective`: drop the keys of `original` that `$retainKeys`
/// does not list; every key the patch sets must be listed.
fn retain_keys(original: &mut Object, patch: &mut Object) -> Result<(), String> {
    let Some(retained) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let bad = || "invalid patch format of retainKeys".to_string();
    let Value::Array(retained) = retained else {
        return Err(bad());
    };
    let kept = |k: &str| retained.iter().any(|r| r.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !v.is_null() && !k.starts_with(DELETE_FROM) && !k.starts_with(SET_ORDER) && !kept(k)
    });
    if unlisted {
        return Err(bad());
    }
    original.retain(|k, _| kept(k));
    Ok(())
}

/// Kube's `mergePatchIntoOriginal`: merge each list with a `$setElementOrder/<list>`
/// directive, then put it in the directive's order (items it does not name keep their
/// place among the others, as [`order`] does).
fn set_element_orders(original: &mut Object, patch: &mut Object, t: &Type) -> Result<(), String> {
    let directives: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ORDER))
        .cloned()
        .collect();
    for directive in directives {
        let wanted = match patch.shift_remove(&directive) {
            Some(Value::Array(wanted)) => wanted,
            other => return Err(bad_arg_type(GO_LIST, &other.unwrap_or_default())),
        };
        let name = directive_field(
            &directive,
            SET_ORDER,
            "invalid patch format of setElementOrder list",
        )?;
        let t = t.field(name).map_or(&UNTYPED, |t| t);
        let key = merging(t).and_then(|(key, _)| key);
        let server = match original.get(name) {
            None => Vec::new(),
            Some(Value::Array(list)) => list.clone(),
            Some(other) => return Err(bad_arg_type(GO_LIST, other)),
        };
        let merged = match patch.shift_remove(name) {
            Some(Value::Array(list)) => {
                check_order(&list, &wanted, key)?;
                if original.contains_key(name) {
                    merge_list(server.clone(), list, t, name)?
                } else {
                    clean_list(list)
                }
            }
            None if original.contains_key(name) => server.clone(),
            None => continue,
            Some(other) => return Err(bad_arg_type(GO_LIST, &other)),
        };
        let ordered = order(merged, &wanted, &server, key)?;
        original.insert(name.to_string(), Value::Array(ordered));
    }
    Ok(())
}

/// Kube's `validatePatchWithSetOrderList`: the items of a patch list (but deletions)
/// appear in its `$setElementOrder` list, in the same order.
fn check_order(patch: &[Value], wanted: &[Value], key: Option<&str>) -> Result<(), String> {
    if patch.is_empty() || wanted.is_empty() {
        return Ok(());
    }
    let mut items = Vec::new();
    for item in patch {
        match (key, item) {
            (Some(_), Value::Object(m)) if m.get(PATCH).is_some_and(|d| d == "delete") => {}
            (Some(_), Value::Object(_)) | (None, _) => items.push(item),
            (Some(_), _) => return Err(bad_arg_type(GO_MAP, item)),
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < items.len() && j < wanted.len() {
        if items[i].get(PATCH).is_some() {
            i += 1;
            continue;
        }
        if identity(items[i], key)? == identity(&wanted[j], key)? {
            i += 1;
        }
        j += 1;
    }
    if i < items.len() {
        return Err(format!(
            "The order in patch list:\n{}\n doesn't match {SET_ORDER} list:\n{}\n",
            go_list(patch),
            go_list(wanted)
        ));
    }
    Ok(())
}

/// The field a `<prefix>/<field>` directive key names.
fn directive_field<'a>(key: &'a str, prefix: &str, error: &str) -> Result<&'a str, String> {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix('/'))
        .ok_or_else(|| error.to_string())
}

/// Patch content taken as it is: without `null` fields, directive keys, and maps that
/// carry `$patch` (kube's `removeDirectives` and `discardNullValuesFromPatch`).
fn clean(v: Value) -> Option<Value> {
    match v {
        Value::Object(m) if m.contains_key(PATCH) => None,
        Value::Object(m) => Some(Value::Object(clean_map(m))),
        Value::Array(list) => Some(Value::Array(clean_list(list))),
        v => Some(v),
    }
}

fn clean_map(m: Object) -> Object {
    m.into_iter()
        .filter(|(k, v)| {
            !v.is_null()
                && k != RETAIN_KEYS
                && !k.starts_with(SET_ORDER)
                && !k.starts_with(DELETE_FROM)
        })
        .filter_map(|(k, v)| Some((k, clean(v)?)))
        .collect()
}

fn clean_list(list: Vec<Value>) -> Vec<Value> {
    list.into_iter().filter_map(clean).collect()
}

fn bad_patch_type(directive: &Value, m: &Object) -> String {
    // Go's `%s` of a value that is not a string.
    let directive = match directive {
        Value::String(s) => s.clone(),
        Value::Null => "%!s(<nil>)".into(),
        v => format!("%!s({}={})", go_type(v), go_fmt(v)),
    };
    format!("unknown patch type: {directive} in map: {}", go_map(m))
}

fn bad_arg_type(expected: &str, actual: &Value) -> String {
    format!("expected a {expected}, but received a {}", go_type(actual))
}

/// The Go type kube decodes a JSON value into (integers as `int64`).
fn go_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() => "int64",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => GO_LIST,
        Value::Object(_) => GO_MAP,
    }
}

/// A value as Go's `%v` prints it.
fn go_fmt(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::String(s) => s.clone(),
        Value::Array(list) => go_list(list),
        Value::Object(m) => go_map(m),
        v => v.to_string(),
    }
}

fn go_list(list: &[Value]) -> String {
    let items: Vec<String> = list.iter().map(go_fmt).collect();
    format!("[{}]", items.join(" "))
}

fn go_map(m: &Object) -> String {
    let mut entries: Vec<(&String, &Value)> = m.iter().collect();
    entries.sort_by_key(|(k, _)| *k);
    let entries: Vec<String> = entries
        .into_iter()
        .map(|(k, v)| format!("{k}:{}", go_fmt(v)))
        .collect();
    format!("map[{}]", entries.join(" "))
}
