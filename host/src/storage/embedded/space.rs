//! Space: the store's quota and the full-disk condition.
//!
//! The quota counts the stored objects' bytes (keys and values), kept exact in the
//! store's `meta` table, so a delete frees quota at once. A write that would pass it is
//! refused before anything is written. History (the last
//! [`super::HISTORY_REVISIONS`] writes, for watch resume and paging) comes on top.
//!
//! A full disk is learned from a growth of the file that failed. From then on, writes
//! other than deletes are refused at once, without touching the file, except one
//! probe a second once something changed (objects deleted, space freed on the disk);
//! the first write that succeeds ends the condition. While the condition lasts, writes
//! keep no history (it holds a copy of every recent value), so that deletes give
//! space back; watchers resuming from before get 410 and relist.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::storage::StorageError;

/// The default quota: etcd's default backend quota.
pub const DEFAULT_QUOTA_BYTES: u64 = 2 << 30;

/// How often a refused write may probe whether space came back.
const PROBE_INTERVAL: Duration = Duration::from_secs(1);

/// What kind of write asks for space.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// A create or update: refused when space is short.
    Grow,
    /// A delete: always tried.
    Delete,
}

#[derive(Debug)]
pub struct Space {
    pub quota: u64,
    /// The stored objects' bytes (mirror of the `meta` table's counter).
    pub objects_bytes: AtomicU64,
    dir: PathBuf,
    file: PathBuf,
    full: Mutex<Option<DiskFull>>,
    /// The last write refused for the quota, until one that adds bytes commits.
    quota_refused: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Clone)]
struct DiskFull {
    since: jiff::Timestamp,
    message: String,
    /// Free bytes on the disk when the condition began.
    free_then: u64,
    deletes_since: u64,
    last_probe: Instant,
}

impl Space {
    pub fn new(quota: u64, dir: &Path, file: &Path) -> Self {
        Space {
            quota,
            objects_bytes: AtomicU64::new(0),
            dir: dir.to_path_buf(),
            file: file.to_path_buf(),
            full: Mutex::new(None),
            quota_refused: Default::default(),
        }
    }

    /// Whether a write of this kind may go ahead; `Err` (NoSpace) when it may not.
    pub fn admit(&self, kind: WriteKind) -> Result<(), StorageError> {
        if kind == WriteKind::Delete {
            return Ok(());
        }
        let mut full = crate::sync::lock(&self.full);
        let Some(f) = full.as_mut() else {
            return Ok(());
        };
        let freed = free_bytes(&self.dir).is_some_and(|n| n > f.free_then);
        if (freed || f.deletes_since > 0) && f.last_probe.elapsed() >= PROBE_INTERVAL {
            f.last_probe = Instant::now();
            f.deletes_since = 0;
            return Ok(());
        }
        Err(self.no_space_error(&f.message))
    }

    /// Whether the disk is known to be full: writes then trim history harder.
    pub fn disk_full(&self) -> bool {
        crate::sync::lock(&self.full).is_some()
    }

    /// A write of this kind committed.
    pub fn committed(&self, kind: WriteKind) {
        if kind == WriteKind::Grow {
            self.quota_refused.store(false, Ordering::Relaxed);
        }
        let mut full = crate::sync::lock(&self.full);
        match (kind, full.as_mut()) {
            (WriteKind::Delete, Some(f)) => f.deletes_since += 1,
            (WriteKind::Grow, Some(f)) => {
                tracing::info!(file = %self.file.display(), since = %f.since,
                    "the embedded store can write again: disk space is available");
                *full = None;
            }
            (_, None) => {}
        }
    }

    /// A write failed for lack of disk space: `cause` says what.
    pub fn out_of_disk(&self, cause: &super::file::FileError) -> StorageError {
        let free = free_bytes(&self.dir).unwrap_or(0);
        let mut full = crate::sync::lock(&self.full);
        let message = match cause.growth {
            Some((from, to)) => format!(
                "it needs to grow from {} to {} and its disk has {} free",
                human(from),
                human(to),
                human(free)
            ),
            None => format!("{}; {} free", cause.message, human(free)),
        };
        if full.is_none() {
            tracing::error!(file = %self.file.display(), %message,
                "the embedded store is out of disk space: writes are refused, reads and deletes are served");
        }
        let since = full.as_ref().map_or_else(jiff::Timestamp::now, |f| f.since);
        *full = Some(DiskFull {
            since,
            message: message.clone(),
            free_then: free,
            deletes_since: 0,
            last_probe: Instant::now(),
        });
        self.no_space_error(&message)
    }

    fn no_space_error(&self, cause: &str) -> StorageError {
        StorageError::NoSpace(format!(
            "no space left on device: the embedded store {} is full ({cause}); free disk space \
             or delete objects (reads and deletes are still served)",
            self.file.display()
        ))
    }

    /// The quota error for a write that would make the objects `after` bytes.
    pub fn over_quota(&self, after: u64) -> StorageError {
        self.quota_refused.store(true, Ordering::Relaxed);
        StorageError::NoSpace(format!(
            "database space exceeded: this write would make the stored objects {after} bytes, \
             over the embedded store's quota of {} bytes (--store-quota-bytes); delete objects \
             or raise the quota (reads and deletes are still served)",
            self.quota
        ))
    }

    /// What limits writes now, for `/readyz`.
    pub fn condition(&self) -> Option<String> {
        if let Some(f) = crate::sync::lock(&self.full).as_ref() {
            return Some(format!(
                "out of disk space since {}: writes are refused, reads and deletes are served ({})",
                f.since, f.message
            ));
        }
        let used = self.objects_bytes.load(Ordering::Relaxed);
        // Named from the first refusal until a write that adds bytes commits.
        self.quota_refused.load(Ordering::Relaxed).then(|| {
            format!(
                "database space exceeded: objects take {used} of the {}-byte quota \
                 (--store-quota-bytes); writes that add bytes are refused, reads and deletes \
                 are served",
                self.quota
            )
        })
    }
}

/// Free bytes for unprivileged users on the filesystem of `dir`.
pub fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt as _;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs writes into the zeroed struct we pass; the path is a valid C
    // string for the duration of the call.
    unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut s) == 0).then(|| s.f_bavail as u64 * s.f_frsize as u64)
    }
}

/// Bytes for people: `12.3 MiB`.
pub fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}
