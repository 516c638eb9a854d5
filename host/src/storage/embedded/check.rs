//! Checking a store file without changing it: at every start (quick), with
//! `--store-verify-full`, and offline with `wasm-apiserver store check`.
//!
//! The file is opened through [`ReadOnlyFile`], so whatever redb writes while opening
//! (a repair after a crash) stays in memory. A damaged file can make the database
//! library panic; the check catches that and names the file, what is wrong, and how to
//! restore.
//!
//! - quick: the header and tables open; the revision counters agree; every object's
//!   key and revision are checked and its value parsed as JSON (what the watch caches
//!   read next anyway: a damaged object is named here rather than failing later);
//! - full: also every page's checksum (redb's integrity check, history and free
//!   lists included) and every history entry decoded.

use anyhow::anyhow;
use redb::{ReadableTable, ReadableTableMetadata};
use std::path::Path;
use std::time::{Duration, Instant};

use super::file::ReadOnlyFile;
use super::{Change, COMPACTED, HISTORY, META, OBJECTS, OBJECTS_BYTES, REVISION};

/// What a check found in a sound file.
#[derive(Clone, Debug)]
pub struct Report {
    pub objects: u64,
    pub history: u64,
    pub revision: u64,
    pub objects_bytes: u64,
    pub took: Duration,
}

/// Run `f`, turning a panic into `Err(its message)` without printing it.
pub fn quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    use std::sync::Mutex;
    static HOOK: Mutex<()> = Mutex::new(());
    let _one = crate::sync::lock(&HOOK);
    let previous = std::panic::take_hook();
    let message = std::sync::Arc::new(Mutex::new(String::new()));
    let m = message.clone();
    std::panic::set_hook(Box::new(move |info| {
        let what = info
            .payload()
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| info.payload().downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into());
        let at = info
            .location()
            .map(|l| format!(" at {l}"))
            .unwrap_or_default();
        *crate::sync::lock(&m) = format!("{what}{at}");
    }));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    std::panic::set_hook(previous);
    result.map_err(|_| crate::sync::lock(&message).clone())
}

/// The error for a damaged store file: where, what, and what to do.
pub fn damaged(path: &Path, what: &str) -> anyhow::Error {
    let dir = path
        .parent()
        .and_then(Path::parent)
        .map_or_else(|| ".".into(), |d| d.display().to_string());
    anyhow!(
        "the embedded store {} is damaged: {what}. The file was not changed. Restore the \
         last good snapshot with `wasm-apiserver store snapshot restore SNAPSHOT --data-dir \
         {dir} --force` (scheduled snapshots are in {dir}/snapshots unless \
         --store-snapshot-dir says otherwise), or move the file aside to start with an empty \
         store. docs/embedded-store.md has the details.",
        path.display()
    )
}

/// Check the store file at `path` (quick, or `full`), leaving it unchanged.
pub fn check(path: &Path, full: bool) -> anyhow::Result<Report> {
    let started = Instant::now();
    let file = ReadOnlyFile::open(path)?;
    let outcome = quietly(|| run(file, full)).map_err(|panic| {
        damaged(
            path,
            &format!("reading it made the database library fail ({panic})"),
        )
    })?;
    let mut report = outcome.map_err(|what| damaged(path, &what))?;
    report.took = started.elapsed();
    Ok(report)
}

fn run(file: ReadOnlyFile, full: bool) -> Result<Report, String> {
    let s = |e: &dyn std::fmt::Display| e.to_string();
    let mut db = redb::Builder::new()
        .set_cache_size(16 << 20)
        .create_with_backend(file)
        .map_err(|e| format!("it does not open as a database ({e})"))?;
    if full {
        match db.check_integrity() {
            Ok(_) => {}
            Err(e) => return Err(format!("a page checksum does not match ({e})")),
        }
    }
    let tx = db.begin_read().map_err(|e| s(&e))?;
    let meta = tx
        .open_table(META)
        .map_err(|e| format!("its meta table is missing or unreadable ({e})"))?;
    let get = |name: &str| -> Result<Option<u64>, String> {
        Ok(meta.get(name).map_err(|e| s(&e))?.map(|v| v.value()))
    };
    let revision = get(REVISION)?.ok_or("its revision counter is missing")?;
    let compacted = get(COMPACTED)?.ok_or("its compaction mark is missing")?;
    if compacted > revision {
        return Err(format!(
            "its history starts at revision {compacted}, after its current revision {revision}"
        ));
    }
    let objects = tx
        .open_table(OBJECTS)
        .map_err(|e| format!("its objects table is missing or unreadable ({e})"))?;
    let history = tx
        .open_table(HISTORY)
        .map_err(|e| format!("its history table is missing or unreadable ({e})"))?;
    let mut count = 0u64;
    let mut bytes = 0u64;
    for entry in objects.iter().map_err(|e| s(&e))? {
        let (k, v) = entry.map_err(|e| format!("an object cannot be read ({e})"))?;
        let key = k.value();
        let (rev, value) = v.value();
        if !key.starts_with('/') {
            return Err(format!(
                "object #{count} has a key that is not a path: {key:?}"
            ));
        }
        if rev > revision {
            return Err(format!(
                "{key} has revision {rev}, after the store's revision {revision}"
            ));
        }
        if value.first() != Some(&b'{') {
            return Err(format!("the value of {key} is not a JSON object"));
        }
        serde_json::from_slice::<serde::de::IgnoredAny>(value)
            .map_err(|e| format!("the value of {key} is not valid JSON ({e})"))?;
        count += 1;
        bytes += super::size(key, value);
    }
    let stated = objects.len().map_err(|e| s(&e))?;
    if stated != count {
        return Err(format!(
            "its objects table says {stated} entries but holds {count}"
        ));
    }
    if let Some(n) = get(OBJECTS_BYTES)? {
        if n != bytes {
            return Err(format!(
                "its objects take {bytes} bytes but its counter says {n}"
            ));
        }
    }
    let history_len = history.len().map_err(|e| s(&e))?;
    let newest = history.last().map_err(|e| s(&e))?.map(|(k, _)| k.value());
    if newest.is_some_and(|n| n > revision) {
        return Err(format!(
            "its history holds revision {}, after its current revision {revision}",
            newest.unwrap_or_default()
        ));
    }
    if full {
        for entry in history.iter().map_err(|e| s(&e))? {
            let (k, v) = entry.map_err(|e| format!("a history entry cannot be read ({e})"))?;
            Change::decode(v.value()).map_err(|e| {
                format!(
                    "the history entry of revision {} is damaged ({e})",
                    k.value()
                )
            })?;
        }
    }
    Ok(Report {
        objects: count,
        history: history_len,
        revision,
        objects_bytes: bytes,
        took: Duration::ZERO,
    })
}
