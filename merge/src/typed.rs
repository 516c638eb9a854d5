//! Operations on a JSON value of a known [`Type`], as structured-merge-diff's `typed`
//! package does them: the set of fields a value sets, how two values differ, the merge
//! of a configuration into a live object, and the removal of a set of fields.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::path::{display, Path, PathElement};
use crate::schema::{ListKind, Type};
use crate::set::Set;

/// A value that does not fit its type, at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub path: String,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

impl std::error::Error for Error {}

fn err(path: &[PathElement], message: String) -> Error {
    Error {
        path: display(path),
        message,
    }
}

/// The step that names item `i` of an associative list.
pub fn item_element(
    kind: &ListKind,
    item: &Value,
    i: usize,
    at: &[PathElement],
) -> Result<PathElement, Error> {
    match kind {
        ListKind::Atomic => Ok(PathElement::Index(i)),
        ListKind::Set => match item {
            Value::Object(_) => Err(err(
                at,
                format!(
                    "element {i}: associative list without keys has an element that's a map type"
                ),
            )),
            Value::Array(_) => Err(err(
                at,
                format!(
                    "element {i}: associative list without keys has an element that's a list type"
                ),
            )),
            v => Ok(PathElement::Value(v.clone())),
        },
        ListKind::Map(keys) => {
            let Value::Object(m) = item else {
                return Err(err(
                    at,
                    format!("element {i}: associative list with keys has an element that's not a map type"),
                ));
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                match m.get(k) {
                    Some(v) => fields.push((k.clone(), v.clone())),
                    None => {
                        return Err(err(
                            at,
                            format!("element {i}: associative list with keys has an element that omits key field {k:?} (and doesn't have default value)"),
                        ))
                    }
                }
            }
            fields.sort_by(|a, b| a.0.cmp(&b.0));
            Ok(PathElement::Key(fields))
        }
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

/// The fields `v` sets: every leaf, every item of an associative list, every key of a
/// map that is not a declared field, and every null or empty object.
pub fn field_set(v: &Value, t: &Type) -> Result<Set, Error> {
    let mut set = Set::new();
    to_set(v, t, &mut Vec::new(), &mut set)?;
    Ok(set)
}

fn to_set(v: &Value, t: &Type, path: &mut Path, set: &mut Set) -> Result<(), Error> {
    match &*t.resolve(v) {
        Type::Scalar | Type::Untyped => set.insert(path),
        Type::List {
            kind: ListKind::Atomic,
            ..
        } => set.insert(path),
        Type::Map { atomic: true, .. } => set.insert(path),
        Type::List { items, kind } => {
            let Value::Array(list) = v else {
                return Ok(());
            };
            let mut seen = BTreeSet::new();
            let mut dups = BTreeSet::new();
            let mut pes = Vec::with_capacity(list.len());
            for (i, item) in list.iter().enumerate() {
                let pe = item_element(kind, item, i, path)?;
                if !seen.insert(pe.clone()) {
                    dups.insert(pe.clone());
                }
                pes.push(pe);
            }
            for (item, pe) in list.iter().zip(pes) {
                path.push(pe.clone());
                if !dups.contains(&pe) {
                    to_set(item, items, path, set)?;
                }
                set.insert(path);
                path.pop();
            }
        }
        t @ Type::Map { .. } => {
            let Value::Object(m) = v else {
                return Ok(());
            };
            for (k, val) in m {
                let ft = t.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
                path.push(PathElement::Field(k.clone()));
                to_set(val, &ft, path, set)?;
                if val.is_null() || (val.is_object() && is_empty_container(val)) || !t.declares(k) {
                    set.insert(path);
                }
                path.pop();
            }
        }
    }
    Ok(())
}

/// How `rhs` differs from `lhs`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    pub added: Set,
    pub modified: Set,
    pub removed: Set,
}

impl Comparison {
    pub fn is_same(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.removed.is_empty()
    }

    /// Drop the fields of `ignored` (and everything under them).
    pub fn exclude(&mut self, ignored: &Set) {
        for s in [&mut self.added, &mut self.modified, &mut self.removed] {
            *s = remove_prefixes(s, ignored);
        }
    }
}

/// `s` without the members of `ignored` and without anything under them.
pub fn remove_prefixes(s: &Set, ignored: &Set) -> Set {
    let mut out = Set::new();
    for p in s.paths() {
        let covered = (1..=p.len()).any(|n| ignored.has(&p[..n]));
        if !covered {
            out.insert(&p);
        }
    }
    out
}

/// Compare `lhs` (old) with `rhs` (new).
pub fn compare(lhs: &Value, rhs: &Value, t: &Type) -> Result<Comparison, Error> {
    let mut c = Comparison::default();
    cmp(Some(lhs), Some(rhs), t, &mut Vec::new(), &mut c)?;
    Ok(c)
}

fn leaf(l: Option<&Value>, r: Option<&Value>, path: &Path, c: &mut Comparison) {
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        (Some(a), Some(b)) if a != b => c.modified.insert(path),
        _ => {}
    }
}

fn cmp(
    l: Option<&Value>,
    r: Option<&Value>,
    t: &Type,
    path: &mut Path,
    c: &mut Comparison,
) -> Result<(), Error> {
    let probe = r.or(l).unwrap_or(&Value::Null);
    let ty = t.resolve(probe);
    // Values of different shapes (an object replaced by a string) differ as leaves.
    let shape = |v: &Value| match v {
        Value::Object(_) => 0,
        Value::Array(_) => 1,
        _ => 2,
    };
    if let (Some(a), Some(b)) = (l, r) {
        if shape(a) != shape(b) || (matches!(t, Type::Untyped) && a.is_object() != b.is_object()) {
            leaf(l, r, path, c);
            return Ok(());
        }
    }
    let empty = |v: Option<&Value>| v.is_none_or(|v| is_empty_container(v) || v.is_null());
    let is_leaf = match &*ty {
        Type::Scalar | Type::Untyped => true,
        Type::List { kind, .. } => *kind == ListKind::Atomic || (empty(l) && empty(r)),
        Type::Map { atomic, .. } => *atomic || (empty(l) && empty(r)),
    };
    if is_leaf {
        leaf(l, r, path, c);
        return Ok(());
    }
    match &*ty {
        Type::List { items, kind } => {
            let (lorder, lby) = index_items(kind, l, path)?;
            let (rorder, rby) = index_items(kind, r, path)?;
            let mut all = lorder;
            all.extend(rorder.into_iter().filter(|pe| !lby.contains_key(pe)));
            for pe in all {
                let ll = lby.get(&pe).map(Vec::as_slice).unwrap_or_default();
                let rl = rby.get(&pe).map(Vec::as_slice).unwrap_or_default();
                path.push(pe);
                if ll.len() <= 1 && rl.len() <= 1 {
                    cmp(ll.first().copied(), rl.first().copied(), items, path, c)?;
                } else if ll.len() >= 2 && rl.len() >= 2 {
                    if ll != rl {
                        c.modified.insert(path);
                    }
                } else if ll.len() >= 2 {
                    c.removed.insert(path);
                } else {
                    c.added.insert(path);
                }
                path.pop();
            }
        }
        t @ Type::Map { .. } => {
            let lm = l.and_then(Value::as_object);
            let rm = r.and_then(Value::as_object);
            let mut keys: Vec<&String> = lm.map(|m| m.keys().collect()).unwrap_or_default();
            if let Some(rm) = rm {
                keys.extend(rm.keys().filter(|k| lm.is_none_or(|m| !m.contains_key(*k))));
            }
            for k in keys {
                let ft = t.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
                path.push(PathElement::Field(k.clone()));
                cmp(
                    lm.and_then(|m| m.get(k)),
                    rm.and_then(|m| m.get(k)),
                    &ft,
                    path,
                    c,
                )?;
                path.pop();
            }
        }
        _ => unreachable!("leaves are handled above"),
    }
    match (l, r) {
        (None, _) => c.added.insert(path),
        (_, None) => c.removed.insert(path),
        _ => {}
    }
    Ok(())
}

/// The items of a list by their path elements, in first-seen order.
type Indexed<'v> = (Vec<PathElement>, BTreeMap<PathElement, Vec<&'v Value>>);

fn index_items<'v>(
    kind: &ListKind,
    v: Option<&'v Value>,
    path: &Path,
) -> Result<Indexed<'v>, Error> {
    let mut order: Vec<PathElement> = Vec::new();
    let mut by: BTreeMap<PathElement, Vec<&Value>> = BTreeMap::new();
    if let Some(Value::Array(a)) = v {
        for (i, item) in a.iter().enumerate() {
            let pe = item_element(kind, item, i, path)?;
            let e = by.entry(pe.clone()).or_default();
            if e.is_empty() {
                order.push(pe);
            }
            e.push(item);
        }
    }
    Ok((order, by))
}

/// Merge `rhs` (a configuration) into `lhs` (the live object): rhs wins at every leaf,
/// maps merge by key, associative lists by item, keeping the live order and placing new
/// items where the configuration puts them (structured-merge-diff's ordering).
pub fn merge(lhs: &Value, rhs: &Value, t: &Type) -> Result<Value, Error> {
    Ok(merge_at(Some(lhs), Some(rhs), t, &mut Vec::new())?.unwrap_or(Value::Null))
}

fn merge_at(
    l: Option<&Value>,
    r: Option<&Value>,
    t: &Type,
    path: &mut Path,
) -> Result<Option<Value>, Error> {
    let Some(rv) = r else {
        return Ok(l.cloned());
    };
    let Some(lv) = l else {
        return Ok(Some(rv.clone()));
    };
    let ty = t.resolve(rv);
    match (&*ty, lv, rv) {
        (Type::Map { atomic: false, .. }, Value::Object(lm), Value::Object(rm)) => {
            let mut out = Map::new();
            for (k, v) in lm {
                let ft = ty.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
                path.push(PathElement::Field(k.clone()));
                if let Some(m) = merge_at(Some(v), rm.get(k), &ft, path)? {
                    out.insert(k.clone(), m);
                }
                path.pop();
            }
            for (k, v) in rm {
                if !lm.contains_key(k) {
                    out.insert(k.clone(), v.clone());
                }
            }
            Ok(Some(Value::Object(out)))
        }
        (Type::List { items, kind }, Value::Array(la), Value::Array(ra))
            if *kind != ListKind::Atomic =>
        {
            merge_lists(la, ra, items, kind, path).map(|v| Some(Value::Array(v)))
        }
        _ => Ok(Some(rv.clone())),
    }
}

fn merge_lists(
    la: &[Value],
    ra: &[Value],
    items: &Type,
    kind: &ListKind,
    path: &mut Path,
) -> Result<Vec<Value>, Error> {
    let index = |a: &[Value], allow_dups: bool, path: &Path| -> Result<_, Error> {
        let mut pes = Vec::with_capacity(a.len());
        let mut seen: BTreeMap<PathElement, usize> = BTreeMap::new();
        for (i, item) in a.iter().enumerate() {
            let pe = item_element(kind, item, i, path)?;
            if seen.contains_key(&pe) && !allow_dups {
                return Err(err(path, format!("duplicate entries for key {pe}")));
            }
            seen.entry(pe.clone()).or_insert(i);
            pes.push(pe);
        }
        Ok((pes, seen))
    };
    let (rpes, rseen) = index(ra, false, path)?;
    let (lpes, lseen) = index(la, true, path)?;
    let mut shared = rpes.iter().filter(|pe| lseen.contains_key(*pe));
    let mut next_shared = shared.next();
    let mut merged_rhs: BTreeSet<&PathElement> = BTreeSet::new();
    let mut out = Vec::with_capacity(la.len().max(ra.len()));
    let (mut li, mut ri) = (0, 0);
    let push = |out: &mut Vec<Value>,
                pe: &PathElement,
                l: Option<&Value>,
                r: Option<&Value>,
                path: &mut Path|
     -> Result<(), Error> {
        path.push(pe.clone());
        let m = merge_at(l, r, items, path)?;
        path.pop();
        out.extend(m);
        Ok(())
    };
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_rhs.insert(pe);
                push(&mut out, pe, Some(&la[li]), Some(&ra[rseen[pe]]), path)?;
                li += 1;
                ri += 1;
                next_shared = shared.next();
                continue;
            }
            if rseen.contains_key(pe) && next_shared.is_some_and(|n| n != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !rseen.contains_key(pe) {
                push(&mut out, pe, Some(&la[li]), None, path)?;
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_rhs.insert(pe);
            let l = lseen.get(pe).map(|&i| &la[i]);
            push(&mut out, pe, l, Some(&ra[ri]), path)?;
            ri += 1;
            if next_shared == Some(pe) {
                next_shared = shared.next();
            }
        }
    }
    Ok(out)
}

/// `v` without the fields of `set`: a removed map key or list item is gone, and a map or
/// list emptied by the removal goes with it.
pub fn remove(v: &Value, set: &Set, t: &Type) -> Result<Option<Value>, Error> {
    remove_at(v, set, t, &mut Vec::new())
}

fn remove_at(v: &Value, set: &Set, t: &Type, path: &mut Path) -> Result<Option<Value>, Error> {
    let ty = t.resolve(v);
    match (&*ty, v) {
        (Type::Map { atomic: false, .. }, Value::Object(m)) if !m.is_empty() => {
            let mut out = Map::new();
            for (k, val) in m {
                let pe = PathElement::Field(k.clone());
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        let ft = ty.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
                        path.push(pe);
                        let r = remove_at(val, sub, &ft, path)?;
                        path.pop();
                        if let Some(r) = r {
                            out.insert(k.clone(), r);
                        }
                    }
                    None => {
                        out.insert(k.clone(), val.clone());
                    }
                }
            }
            Ok((!out.is_empty()).then_some(Value::Object(out)))
        }
        (Type::List { items, kind }, Value::Array(a))
            if *kind != ListKind::Atomic && !a.is_empty() =>
        {
            let mut out = Vec::with_capacity(a.len());
            for (i, item) in a.iter().enumerate() {
                let pe = item_element(kind, item, i, path)?;
                if set.has(std::slice::from_ref(&pe)) {
                    continue;
                }
                match set.with_prefix(&pe) {
                    Some(sub) => {
                        path.push(pe);
                        let r = remove_at(item, sub, items, path)?;
                        path.pop();
                        out.extend(r);
                    }
                    None => out.push(item.clone()),
                }
            }
            Ok((!out.is_empty()).then_some(Value::Array(out)))
        }
        _ => Ok(Some(v.clone())),
    }
}

/// Check that every associative list in `v` can be indexed (keys present, no
/// duplicates), as structured-merge-diff does before it merges an applied
/// configuration.
pub fn validate(v: &Value, t: &Type) -> Result<(), Error> {
    validate_at(v, t, &mut Vec::new())
}

/// [`validate`] for the fields of an object other than `skip` (say, `metadata`, which
/// its owner validates with its own wording).
pub fn validate_except(v: &Value, t: &Type, skip: &[&str]) -> Result<(), Error> {
    let Value::Object(m) = v else {
        return validate(v, t);
    };
    for (k, val) in m.iter().filter(|(k, _)| !skip.contains(&k.as_str())) {
        let ft = t.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
        validate_at(val, &ft, &mut vec![PathElement::Field(k.clone())])?;
    }
    Ok(())
}

fn validate_at(v: &Value, t: &Type, path: &mut Path) -> Result<(), Error> {
    let ty = t.resolve(v);
    match (&*ty, v) {
        (Type::List { items, kind }, Value::Array(a)) if *kind != ListKind::Atomic => {
            let mut seen = BTreeSet::new();
            for (i, item) in a.iter().enumerate() {
                let pe = item_element(kind, item, i, path)?;
                if !seen.insert(pe.clone()) {
                    return Err(err(path, format!("duplicate entries for key {pe}")));
                }
                path.push(pe);
                validate_at(item, items, path)?;
                path.pop();
            }
        }
        (Type::Map { .. }, Value::Object(m)) => {
            for (k, val) in m {
                let ft = ty.field(k).cloned().unwrap_or_else(|| Type::Untyped.into());
                path.push(PathElement::Field(k.clone()));
                validate_at(val, &ft, path)?;
                path.pop();
            }
        }
        _ => {}
    }
    Ok(())
}
