//! The store file under redb: [`LiveFile`] for serving, [`ReadOnlyFile`] for checks.
//!
//! redb treats any I/O error as fatal for the open database (every later call answers
//! "previous I/O error"), so the live file is made so that running out of space can
//! only happen where it is safe: every growth of the file is allocated on disk
//! (`fallocate`) before the file is extended, so writes inside the file never meet a
//! full disk. A growth the disk cannot hold fails before anything is written; the
//! store then reopens the database (the last commit is intact) and reports the lack
//! of space. [`FileState`] tells the store what happened.
//!
//! The read-only file keeps whatever redb writes while opening or checking (a header
//! flag, a repair) in memory: a check never changes the file it checks.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt as _;
use std::os::unix::io::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// What the live file saw, shared with the store.
#[derive(Debug, Default)]
pub struct FileState {
    /// An I/O error was returned to redb: the open database is unusable.
    failed: AtomicBool,
    /// The last error, for the store's messages.
    last: Mutex<Option<FileError>>,
    /// The file's length, as last set or read.
    pub len: AtomicU64,
}

/// An I/O error the live file returned.
#[derive(Clone, Debug)]
pub struct FileError {
    /// The disk (or the file's quota) is full.
    pub no_space: bool,
    /// What was being done, and the error.
    pub message: String,
    /// For a growth: the file's length before and the length asked for.
    pub growth: Option<(u64, u64)>,
}

impl FileState {
    /// The error that made this open database unusable, if one did.
    pub fn failure(&self) -> Option<FileError> {
        if !self.failed.load(Ordering::Acquire) {
            return None;
        }
        crate::sync::lock(&self.last).clone()
    }

    fn fail(&self, e: &io::Error, what: String, growth: Option<(u64, u64)>) -> io::Error {
        let no_space = matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT));
        *crate::sync::lock(&self.last) = Some(FileError {
            no_space,
            message: format!("{what}: {e}"),
            growth,
        });
        self.failed.store(true, Ordering::Release);
        io::Error::new(e.kind(), format!("{what}: {e}"))
    }
}

/// Lock `file` for this process (`exclusive`) or for readers: a second server on the
/// same data folder, or an offline tool while a server runs, is refused. The store
/// holds its lock on a descriptor of its own for its whole life, across reopens.
pub fn lock(file: &File, path: &Path, exclusive: bool) -> anyhow::Result<()> {
    let mode = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    // SAFETY: flock on a file descriptor this function borrows; no memory is shared.
    if unsafe { libc::flock(file.as_raw_fd(), mode | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() == io::ErrorKind::WouldBlock {
            anyhow::bail!(
                "{} is in use by another process (a running wasm-apiserver?); stop it first",
                path.display()
            );
        }
        return Err(anyhow::Error::new(e).context(format!("locking {}", path.display())));
    }
    Ok(())
}

/// The store file a server writes.
#[derive(Debug)]
pub struct LiveFile {
    file: File,
    path: PathBuf,
    state: Arc<FileState>,
}

impl LiveFile {
    pub fn open(path: &Path, state: Arc<FileState>) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening the embedded store {}", path.display()))?;
        let len = file.metadata()?.len();
        state.len.store(len, Ordering::Relaxed);
        // A file written by an earlier version may have holes (it was extended without
        // allocating): fill them now, so that writes inside the file cannot meet a
        // full disk. Best effort: a full disk now only means the old behaviour.
        if len > 0 {
            if let Err(e) = allocate(&file, 0, len) {
                tracing::warn!(file = %path.display(), error = %e,
                    "could not allocate the store file's blocks; a full disk may need a reopen");
            }
        }
        Ok(LiveFile {
            file,
            path: path.to_path_buf(),
            state,
        })
    }
}

/// Allocate `[offset, offset+len)` on disk (extending the file when past its end).
fn allocate(file: &File, offset: u64, len: u64) -> io::Result<()> {
    // SAFETY: fallocate on a borrowed descriptor; it takes no pointers.
    let r = unsafe { libc::fallocate(file.as_raw_fd(), 0, offset as i64, len as i64) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // A filesystem without fallocate: extend without allocating, as before.
        Some(libc::EOPNOTSUPP) => file.set_len(file.metadata()?.len().max(offset + len)),
        _ => Err(e),
    }
}

impl redb::StorageBackend for LiveFile {
    fn len(&self) -> io::Result<u64> {
        self.file.metadata().map(|m| m.len()).map_err(|e| {
            self.state.fail(
                &e,
                format!("reading the length of {}", self.path.display()),
                None,
            )
        })
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut buf = vec![0; len];
        self.file.read_exact_at(&mut buf, offset).map_err(|e| {
            self.state.fail(
                &e,
                format!("reading {} at {offset}", self.path.display()),
                None,
            )
        })?;
        Ok(buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let current = self.state.len.load(Ordering::Relaxed);
        let result = if len > current {
            allocate(&self.file, current, len - current).map_err(|e| {
                self.state.fail(
                    &e,
                    format!(
                        "growing {} from {current} to {len} bytes",
                        self.path.display()
                    ),
                    Some((current, len)),
                )
            })
        } else {
            self.file.set_len(len).map_err(|e| {
                self.state
                    .fail(&e, format!("shrinking {}", self.path.display()), None)
            })
        };
        if result.is_ok() {
            self.state.len.store(len, Ordering::Relaxed);
        }
        result
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        self.file.sync_data().map_err(|e| {
            self.state
                .fail(&e, format!("syncing {}", self.path.display()), None)
        })
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.file.write_all_at(data, offset).map_err(|e| {
            self.state.fail(
                &e,
                format!("writing {} at {offset}", self.path.display()),
                None,
            )
        })
    }
}

/// A store file opened for reading only: redb's writes go to memory.
#[derive(Debug)]
pub struct ReadOnlyFile {
    file: File,
    /// Writes redb made, oldest first (few: a header, a repair's pages).
    overlay: Mutex<Vec<(u64, Vec<u8>)>>,
    len: AtomicU64,
}

impl ReadOnlyFile {
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context as _;
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        lock(&file, path, false)?;
        let len = file.metadata()?.len();
        Ok(ReadOnlyFile {
            file,
            overlay: Mutex::new(Vec::new()),
            len: AtomicU64::new(len),
        })
    }
}

impl redb::StorageBackend for ReadOnlyFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.len.load(Ordering::Relaxed))
    }

    fn read(&self, offset: u64, len: usize) -> io::Result<Vec<u8>> {
        let end = offset + len as u64;
        if end > self.len.load(Ordering::Relaxed) {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("read of {len} bytes at {offset} is past the end of the file"),
            ));
        }
        let mut buf = vec![0; len];
        let on_disk = self.file.metadata()?.len();
        if offset < on_disk {
            let n = (on_disk - offset).min(len as u64) as usize;
            self.file.read_exact_at(&mut buf[..n], offset)?;
        }
        for (at, data) in crate::sync::lock(&self.overlay).iter() {
            let (from, to) = (*at.max(&offset), (at + data.len() as u64).min(end));
            if from < to {
                buf[(from - offset) as usize..(to - offset) as usize]
                    .copy_from_slice(&data[(from - at) as usize..(to - at) as usize]);
            }
        }
        Ok(buf)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.len.store(len, Ordering::Relaxed);
        Ok(())
    }

    fn sync_data(&self, _eventual: bool) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        crate::sync::lock(&self.overlay).push((offset, data.to_vec()));
        Ok(())
    }
}

impl Drop for ReadOnlyFile {
    fn drop(&mut self) {
        // SAFETY: as in `lock`.
        unsafe { libc::flock(self.file.as_raw_fd(), libc::LOCK_UN) };
    }
}
