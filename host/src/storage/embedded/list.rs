//! A page of a list, at the current revision or an earlier one (from history).

use redb::Database;
use std::collections::BTreeMap;

use super::{history, internal, EmbeddedStore, OBJECTS};
use crate::storage::{ListPage, ListRequest, Result, Revision, StorageError, Stored};

impl EmbeddedStore {
    pub(super) fn list_blocking(db: &Database, req: &ListRequest) -> Result<ListPage> {
        let tx = db.begin_read().map_err(internal)?;
        let objects = tx.open_table(OBJECTS).map_err(internal)?;
        let current = history::revision(&tx)?;
        let at = req.revision.unwrap_or(current);
        if at > current {
            return Err(StorageError::TooLarge {
                requested: at,
                current,
            });
        }
        let start = req.start.clone().unwrap_or_else(|| req.prefix.clone());
        let in_range = |k: &str| k.starts_with(&req.prefix) && k >= start.as_str();

        // Changes after `at` in the range: each key's state as of `at` is the `prev` of
        // its first change after `at`.
        let mut as_of: BTreeMap<String, Option<(Revision, Vec<u8>)>> = BTreeMap::new();
        if at < current {
            for (_, change) in history::since(&tx, at)? {
                if in_range(&change.key) && !as_of.contains_key(&change.key) {
                    as_of.insert(change.key, change.prev);
                }
            }
        }

        let limit = req.limit.unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut overlay = as_of.into_iter().peekable();
        let mut current_items = objects
            .range(start.as_str()..)
            .map_err(internal)?
            .peekable();
        let mut more = false;
        loop {
            // Merge the current keys with the overlay, in key order.
            let next_current = match current_items.peek() {
                Some(Ok((k, _))) if k.value().starts_with(&req.prefix) => {
                    Some(k.value().to_string())
                }
                Some(Err(_)) => {
                    let e = current_items.next().unwrap().err().unwrap();
                    return Err(internal(e));
                }
                _ => None,
            };
            let next_overlay = overlay.peek().map(|(k, _)| k.clone());
            let (key, state) = match (next_current, next_overlay) {
                (None, None) => break,
                (Some(c), Some(o)) if o <= c => {
                    if o == c {
                        current_items.next();
                    }
                    let (k, s) = overlay.next().unwrap();
                    (k, s)
                }
                (Some(c), _) => {
                    let (_, v) = current_items.next().unwrap().map_err(internal)?;
                    let (rev, value) = v.value();
                    (c, Some((rev, value.to_vec())))
                }
                (None, Some(_)) => overlay.next().unwrap(),
            };
            let Some((revision, value)) = state else {
                continue;
            };
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(Stored {
                key,
                value,
                revision,
            });
        }
        Ok(ListPage {
            items,
            revision: at,
            more,
        })
    }
}
