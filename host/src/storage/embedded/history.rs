//! History entries: one write each, with the value before and after it.

use serde::{Deserialize, Serialize};

use redb::ReadTransaction;

use super::{internal, COMPACTED, HISTORY, META, REVISION};
use crate::storage::{Result, Revision, StorageError};

/// The store's current revision, as of `tx`.
pub(super) fn revision(tx: &ReadTransaction) -> Result<Revision> {
    counter(tx, REVISION)
}

/// A counter of the `meta` table (1, the first revision, when absent).
fn counter(tx: &ReadTransaction, name: &str) -> Result<u64> {
    let meta = tx.open_table(META).map_err(internal)?;
    Ok(meta.get(name).map_err(internal)?.map_or(1, |v| v.value()))
}

/// The changes after `from` (exclusive), oldest first, as of `tx`; `Expired` when
/// history no longer reaches back to `from`.
pub(super) fn since(tx: &ReadTransaction, from: Revision) -> Result<Vec<(Revision, Change)>> {
    let compacted = counter(tx, COMPACTED)?;
    if from < compacted {
        return Err(StorageError::Expired {
            requested: from,
            oldest: compacted,
        });
    }
    let history = tx.open_table(HISTORY).map_err(internal)?;
    let mut out = Vec::new();
    for entry in history.range(from + 1..).map_err(internal)? {
        let (k, v) = entry.map_err(internal)?;
        out.push((k.value(), Change::decode(v.value())?));
    }
    Ok(out)
}

/// One write, as kept in history.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Change {
    pub key: String,
    /// The value before the write, with its revision; `None` for a create.
    pub prev: Option<(Revision, Vec<u8>)>,
    /// The value after the write; `None` for a delete.
    pub value: Option<Vec<u8>>,
}

/// The first byte of a history entry in the binary encoding. Entries written before
/// it are JSON (and start with `{`); both are read.
pub(super) const CHANGE_V1: u8 = 1;

impl Change {
    /// Binary: tag, u32 key length, key, then the previous value (flag, u64 revision,
    /// u32 length, bytes) and the new value (flag, u32 length, bytes), big-endian.
    /// JSON wrote every byte of a value as a number: four times the size.
    pub fn encode(&self) -> Vec<u8> {
        let value_len = |v: &Option<Vec<u8>>| v.as_ref().map_or(0, Vec::len);
        let prev_len = self.prev.as_ref().map_or(0, |(_, v)| v.len());
        let mut out = Vec::with_capacity(32 + self.key.len() + prev_len + value_len(&self.value));
        out.push(CHANGE_V1);
        out.extend_from_slice(&(self.key.len() as u32).to_be_bytes());
        out.extend_from_slice(self.key.as_bytes());
        match &self.prev {
            Some((rev, v)) => {
                out.push(1);
                out.extend_from_slice(&rev.to_be_bytes());
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
        match &self.value {
            Some(v) => {
                out.push(1);
                out.extend_from_slice(&(v.len() as u32).to_be_bytes());
                out.extend_from_slice(v);
            }
            None => out.push(0),
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Change> {
        if bytes.first() != Some(&CHANGE_V1) {
            return serde_json::from_slice(bytes).map_err(internal);
        }
        let bad = || StorageError::Internal("a history entry is damaged".into());
        let mut at = 1;
        let mut take = |n: usize| -> Result<&[u8]> {
            let s = bytes.get(at..at + n).ok_or_else(bad)?;
            at += n;
            Ok(s)
        };
        let u32_at = |s: &[u8]| u32::from_be_bytes(s.try_into().unwrap_or_default()) as usize;
        let n = u32_at(take(4)?);
        let key = String::from_utf8(take(n)?.to_vec()).map_err(|_| bad())?;
        let prev = match take(1)?[0] {
            0 => None,
            _ => {
                let rev = u64::from_be_bytes(take(8)?.try_into().unwrap_or_default());
                let n = u32_at(take(4)?);
                Some((rev, take(n)?.to_vec()))
            }
        };
        let value = match take(1)?[0] {
            0 => None,
            _ => {
                let n = u32_at(take(4)?);
                Some(take(n)?.to_vec())
            }
        };
        Ok(Change { key, prev, value })
    }
}
