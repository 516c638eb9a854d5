//! Ownership of fields through updates and applies.
//!
//! [`Updater`] is structured-merge-diff's `merge.Updater`: an update gives its manager
//! the fields it changed and takes them from everyone else; an apply merges a
//! configuration, fails on fields another manager owns with a different value (unless
//! forced), and removes the fields its manager applied last time and no longer applies
//! when no one else owns them. Managers that recorded their fields in another version
//! are compared in theirs, through [`Versions`].
//!
//! [`crate::field_manager::FieldManager`] wraps it as k8s.io/apimachinery's default
//! field manager does.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::managed::{ManagerId, VersionedSet};
use crate::path::{display, Path};
use crate::schema::Type;
use crate::set::Set;
use crate::typed::{self, remove_prefixes, Comparison};

/// The versions of one kind: how objects convert between them, and their types.
pub trait Versions {
    /// `obj` converted to `version` (`group/version`); `Ok(None)` when that version is
    /// no longer served (its managers are then dropped, as kube-apiserver drops them).
    fn convert(&mut self, obj: &Value, version: &str) -> Result<Option<Value>, String>;
    /// The type of an object in `version`.
    fn type_of(&self, version: &str) -> Option<Arc<Type>>;
}

/// A field owned by another manager that an apply would change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    pub manager: ManagerId,
    pub path: Path,
}

/// Why an apply failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// Fields owned by other managers (409).
    Conflicts(Vec<Conflict>),
    /// The configuration cannot be applied as sent (400).
    BadRequest(String),
    /// The configuration does not fit its type: a list map item without its key, a
    /// duplicate item (400).
    Invalid(typed::Error),
    /// Conversion or stored managed fields failed (500).
    Internal(String),
}

impl ApplyError {
    /// kube-apiserver's message for conflicts (`getConflictMessage`).
    pub fn conflict_message(conflicts: &[Conflict]) -> String {
        if let [one] = conflicts {
            return format!(
                "Apply failed with 1 conflict: conflict with {}: {}",
                one.manager.describe(None),
                display(&one.path)
            );
        }
        let mut by: BTreeMap<(&String, &ManagerId), Vec<&Path>> = BTreeMap::new();
        for c in conflicts {
            by.entry((&c.manager.manager, &c.manager))
                .or_default()
                .push(&c.path);
        }
        let mut lines = Vec::new();
        for ((_, m), paths) in by {
            lines.push(format!("conflicts with {}:", m.describe(None)));
            lines.extend(paths.into_iter().map(|p| format!("- {}", display(p))));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    }
}

type Fields = BTreeMap<ManagerId, VersionedSet>;

pub(crate) fn internal(e: impl std::fmt::Display) -> ApplyError {
    ApplyError::Internal(e.to_string())
}

/// structured-merge-diff's `Updater`.
pub struct Updater<'a, V: Versions> {
    pub versions: &'a mut V,
    /// Fields no manager owns in each version (a kind's reset fields: status for the
    /// main resource, spec for the status subresource).
    pub ignored: BTreeMap<String, Set>,
}

impl<V: Versions> Updater<'_, V> {
    fn type_of(&self, version: &str) -> Result<Arc<Type>, ApplyError> {
        self.versions
            .type_of(version)
            .ok_or_else(|| internal(format!("no type for version {version}")))
    }

    fn filtered(&self, mut c: Comparison, version: &str) -> Comparison {
        if let Some(ig) = self.ignored.get(version) {
            c.exclude(ig);
        }
        c
    }

    fn update_owners(
        &mut self,
        old: &Value,
        new: &Value,
        version: &str,
        managers: &mut Fields,
        workflow: &ManagerId,
        force: bool,
    ) -> Result<Comparison, ApplyError> {
        let t = self.type_of(version)?;
        let compare = self.filtered(typed::compare(old, new, &t).map_err(internal)?, version);
        let mut by_version: BTreeMap<String, Comparison> = BTreeMap::new();
        by_version.insert(version.to_string(), compare.clone());
        let mut conflicts: Vec<(ManagerId, Set)> = Vec::new();
        let mut removed: Vec<(ManagerId, Set)> = Vec::new();
        let ids: Vec<ManagerId> = managers.keys().cloned().collect();
        for id in ids {
            if &id == workflow {
                continue;
            }
            let v = managers[&id].api_version.clone();
            if !by_version.contains_key(&v) {
                let (Some(o), Some(n)) = (
                    self.versions.convert(old, &v).map_err(internal)?,
                    self.versions.convert(new, &v).map_err(internal)?,
                ) else {
                    managers.remove(&id);
                    continue;
                };
                let Some(tv) = self.versions.type_of(&v) else {
                    managers.remove(&id);
                    continue;
                };
                let c = self.filtered(typed::compare(&o, &n, &tv).map_err(internal)?, &v);
                by_version.insert(v.clone(), c);
            }
            let c = &by_version[&v];
            let set = &managers[&id].set;
            let conflict = set.intersection(&c.modified.union(&c.added));
            if !conflict.is_empty() {
                conflicts.push((id.clone(), conflict));
            }
            if !c.removed.is_empty() {
                removed.push((id, c.removed.clone()));
            }
        }
        if !force && !conflicts.is_empty() {
            let mut out = Vec::new();
            for (m, s) in conflicts {
                out.extend(s.paths().into_iter().map(|path| Conflict {
                    manager: m.clone(),
                    path,
                }));
            }
            return Err(ApplyError::Conflicts(out));
        }
        for (id, s) in conflicts.into_iter().chain(removed) {
            if let Some(vs) = managers.get_mut(&id) {
                vs.set = vs.set.difference(&s);
            }
        }
        managers.retain(|_, vs| !vs.set.is_empty());
        Ok(compare)
    }

    /// `manager` changed `live` into `new` (both in `version`).
    pub fn update(
        &mut self,
        live: &Value,
        new: &Value,
        version: &str,
        managers: &mut Fields,
        manager: &ManagerId,
    ) -> Result<(), ApplyError> {
        let c = self.update_owners(live, new, version, managers, manager, true)?;
        let prev = managers
            .remove(manager)
            .map(|vs| vs.set)
            .unwrap_or_default();
        let mut set = prev
            .difference(&c.removed)
            .union(&c.modified)
            .union(&c.added);
        if let Some(ig) = self.ignored.get(version) {
            set = remove_prefixes(&set, ig);
        }
        if !set.is_empty() {
            managers.insert(
                manager.clone(),
                VersionedSet {
                    set,
                    api_version: version.to_string(),
                    applied: false,
                },
            );
        }
        Ok(())
    }

    /// `manager` applies `config` (in `version`) to `live`: the merged object, or
    /// `None` when it equals `live`.
    pub fn apply(
        &mut self,
        live: &Value,
        config: &Value,
        version: &str,
        managers: &mut Fields,
        manager: &ManagerId,
        force: bool,
    ) -> Result<Option<Value>, ApplyError> {
        let t = self.type_of(version)?;
        typed::validate(config, &t).map_err(ApplyError::Invalid)?;
        let merged = typed::merge(live, config, &t).map_err(ApplyError::Invalid)?;
        let last = managers.get(manager).cloned();
        let mut set = typed::field_set(config, &t).map_err(ApplyError::Invalid)?;
        if let Some(ig) = self.ignored.get(version) {
            set = remove_prefixes(&set, ig);
        }
        managers.insert(
            manager.clone(),
            VersionedSet {
                set,
                api_version: version.to_string(),
                applied: true,
            },
        );
        let new = self.prune(merged, managers, manager, last.as_ref())?;
        self.update_owners(live, &new, version, managers, manager, force)?;
        Ok((new != *live).then_some(new))
    }

    fn convert(&mut self, v: &Value, version: &str) -> Result<Option<Value>, ApplyError> {
        self.versions.convert(v, version).map_err(internal)
    }

    fn remove(v: &Value, s: &Set, t: &Type) -> Result<Value, ApplyError> {
        Ok(typed::remove(v, s, t)
            .map_err(internal)?
            .unwrap_or_else(|| Value::Object(Map::new())))
    }

    fn field_set(v: &Value, t: &Type) -> Result<Set, ApplyError> {
        typed::field_set(v, t).map_err(internal)
    }

    /// Remove what `manager` applied last time and no longer applies, unless another
    /// manager owns it.
    fn prune(
        &mut self,
        merged: Value,
        managers: &Fields,
        manager: &ManagerId,
        last: Option<&VersionedSet>,
    ) -> Result<Value, ApplyError> {
        let Some(last) = last.filter(|l| !l.set.is_empty()) else {
            return Ok(merged);
        };
        // Only fields applied last time and not this time can go: none (a resync, or
        // an apply that adds fields) means nothing to prune.
        let now = &managers[manager];
        if now.api_version == last.api_version && last.set.difference(&now.set).is_empty() {
            return Ok(merged);
        }
        let lv = last.api_version.clone();
        let Some(converted) = self.convert(&merged, &lv)? else {
            return Ok(merged);
        };
        let t = self.type_of(&lv)?;
        let pruned = Self::remove(&converted, &last.set, &t)?;
        // Add back what any manager owns, version by version (the pruned one first).
        let mut at_version: BTreeMap<String, Set> = BTreeMap::new();
        for vs in managers.values() {
            let e = at_version.entry(vs.api_version.clone()).or_default();
            *e = e.union(&vs.set);
        }
        let mut order: Vec<String> = at_version.keys().cloned().collect();
        order.sort_by_key(|v| *v != lv);
        let (mut m, mut p) = (converted.clone(), pruned);
        for v in order {
            let (Some(mv), Some(pv)) = (self.convert(&m, &v)?, self.convert(&p, &v)?) else {
                continue;
            };
            let Some(tv) = self.versions.type_of(&v) else {
                continue;
            };
            let ms = Self::field_set(&mv, &tv)?;
            let ps = Self::field_set(&pv, &tv)?;
            p = Self::remove(&mv, &ms.difference(&ps.union(&at_version[&v])), &tv)?;
            m = mv;
        }
        // Add back items that are not owned but were not applied last time either.
        let Some(pc) = self.convert(&p, &lv)? else {
            return Ok(m);
        };
        let ps = Self::field_set(&pc, &t)?;
        let ms = Self::field_set(&converted, &t)?;
        let out = Self::remove(&converted, &ms.difference(&ps).intersection(&last.set), &t)?;
        let target = managers[manager].api_version.clone();
        Ok(self.convert(&out, &target)?.unwrap_or(out))
    }
}
