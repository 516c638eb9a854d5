//! Snapshots: every object of the store at one revision, in one file, with a checksum.
//!
//! The format (all integers big-endian):
//!
//! ```text
//! "WASNAP01"                                      magic
//! u32 n, n bytes of JSON                          header: revision, objects, createdAt
//! per object: 0x01, u32 klen, key, u64 revision, u32 vlen, value
//! 0x00, u64 count                                 end of objects
//! 32 bytes                                        SHA-256 of everything before
//! ```
//!
//! A snapshot is read from a redb read transaction: a consistent view that does not
//! stop writers (they go on committing while it streams). Restoring verifies the
//! checksum and the count while it writes a new store file beside the old one, and
//! only then puts it in place.

use anyhow::{bail, Context as _};
use redb::{Database, Durability, ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use super::{
    internal, size, COMPACTED, FILE_NAME, HISTORY, META, OBJECTS, OBJECTS_BYTES, REVISION,
};
use crate::storage::{Result, Revision, StorageError};

const MAGIC: &[u8; 8] = b"WASNAP01";
const OBJECT: u8 = 1;
const END: u8 = 0;
/// Larger keys or values than this are not objects of ours: the file is damaged.
const MAX_FIELD: u32 = 64 << 20;

/// What a snapshot's header says.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Header {
    /// The store's revision when the snapshot was taken: every write up to it is in
    /// the snapshot, none after it.
    pub revision: Revision,
    pub objects: u64,
    pub created_at: String,
}

/// A verified snapshot's summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub header: Header,
    pub bytes: u64,
    pub sha256: String,
}

/// A writer that also hashes.
struct Hashing<W: Write> {
    out: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.out.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// Write a snapshot of `db` to `out`.
pub fn write(db: &Database, out: impl Write) -> Result<Summary> {
    let tx = db.begin_read().map_err(internal)?;
    let objects = tx.open_table(OBJECTS).map_err(internal)?;
    let revision = super::history::revision(&tx)?;
    let count = objects.len().map_err(internal)?;
    let mut failed = None;
    let entries = objects
        .iter()
        .map_err(internal)?
        .map_while(|entry| match entry {
            Ok((k, v)) => {
                let (revision, value) = v.value();
                Some((k.value().to_string(), revision, value.to_vec()))
            }
            Err(e) => {
                failed = Some(internal(e));
                None
            }
        });
    let summary = write_objects(out, revision, count, entries)?;
    match failed {
        Some(e) => Err(e),
        None => Ok(summary),
    }
}

/// Write a snapshot at `revision` of `count` objects (key, revision, value) to `out`.
pub fn write_objects(
    out: impl Write,
    revision: Revision,
    count: u64,
    objects: impl Iterator<Item = (String, Revision, Vec<u8>)>,
) -> Result<Summary> {
    let io = |e: std::io::Error| StorageError::Internal(format!("writing the snapshot: {e}"));
    let header = Header {
        revision,
        objects: count,
        created_at: jiff::Timestamp::now().to_string(),
    };
    let mut w = Hashing {
        out: std::io::BufWriter::with_capacity(256 << 10, out),
        hash: Sha256::new(),
        bytes: 0,
    };
    let json = serde_json::to_vec(&header).map_err(internal)?;
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&(json.len() as u32).to_be_bytes())
        .map_err(io)?;
    w.write_all(&json).map_err(io)?;
    let mut written = 0u64;
    for (key, revision, value) in objects {
        w.write_all(&[OBJECT]).map_err(io)?;
        w.write_all(&(key.len() as u32).to_be_bytes()).map_err(io)?;
        w.write_all(key.as_bytes()).map_err(io)?;
        w.write_all(&revision.to_be_bytes()).map_err(io)?;
        w.write_all(&(value.len() as u32).to_be_bytes())
            .map_err(io)?;
        w.write_all(&value).map_err(io)?;
        written += 1;
    }
    w.write_all(&[END]).map_err(io)?;
    w.write_all(&written.to_be_bytes()).map_err(io)?;
    let digest = w.hash.clone().finalize();
    let bytes = w.bytes + 32;
    let mut out = w.out;
    out.write_all(&digest).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(Summary {
        header,
        bytes,
        sha256: hex::encode(digest),
    })
}

/// A writer that keeps to `rate` bytes a second (0: no limit): a snapshot spreads its
/// cost (TLS, hashing, the disk) so that requests keep most of the machine.
pub struct Throttled<W: Write> {
    out: W,
    rate: u64,
    started: std::time::Instant,
    written: u64,
    /// Whether to go on: false once the database under the snapshot failed (its
    /// reopen waits for the snapshot to let go).
    pub alive: Box<dyn Fn() -> bool + Send>,
}

impl<W: Write> Throttled<W> {
    pub fn new(out: W, rate: u64) -> Self {
        Throttled {
            out,
            rate,
            started: std::time::Instant::now(),
            written: 0,
            alive: Box::new(|| true),
        }
    }
}

impl<W: Write> Write for Throttled<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if !(self.alive)() {
            return Err(std::io::Error::other(
                "the store met an I/O error and was reopened; take the snapshot again",
            ));
        }
        let n = self.out.write(buf)?;
        self.written += n as u64;
        if self.rate > 0 {
            let due = std::time::Duration::from_secs_f64(self.written as f64 / self.rate as f64);
            if let Some(wait) = due.checked_sub(self.started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

/// The default rate of snapshots: a 1 GiB store in 32 s.
pub const DEFAULT_RATE: u64 = 32 << 20;

/// Lower the calling thread's CPU priority (nice 10): a snapshot yields to requests.
pub fn yield_to_requests() {
    // SAFETY: setpriority on the calling thread's id; no memory is passed.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

/// An unnamed file in `dir` (gone when closed), to spool a snapshot into.
fn spool_file(dir: &Path) -> Option<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(dir)
        .ok()
}

/// A snapshot of `db` as a stream of chunks (for the API), made by a thread of its
/// own at a low CPU priority (so that writers keep theirs); dropping the stream
/// stops it. With a `spool` folder, the snapshot is first copied there at full speed,
/// so that its read transaction (which keeps writers from reusing freed pages) is
/// short, then streamed at `rate`; without one, it streams from the transaction.
pub(super) fn stream(
    db: Arc<super::Open>,
    rate: u64,
    alive: Box<dyn Fn() -> bool + Send>,
    spool: Option<std::path::PathBuf>,
) -> futures::stream::BoxStream<'static, Result<bytes::Bytes>> {
    use futures::StreamExt as _;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes>>(8);
    let spawned = std::thread::Builder::new()
        .name("snapshot".into())
        .spawn(move || {
            yield_to_requests();
            struct Chunks(tokio::sync::mpsc::Sender<Result<bytes::Bytes>>);
            impl Write for Chunks {
                fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                    self.0
                        .blocking_send(Ok(bytes::Bytes::copy_from_slice(buf)))
                        .map_err(|_| std::io::Error::other("the client went away"))?;
                    Ok(buf.len())
                }
                fn flush(&mut self) -> std::io::Result<()> {
                    Ok(())
                }
            }
            let mut out = Throttled::new(Chunks(tx.clone()), rate);
            let result = match spool.as_deref().and_then(spool_file) {
                Some(mut file) => {
                    let mut spooled = Throttled::new(&file, 0);
                    spooled.alive = alive;
                    let written = write(&db, spooled);
                    drop(db);
                    written.and_then(|summary| {
                        use std::io::Seek as _;
                        let io = |e: std::io::Error| {
                            StorageError::Internal(format!("streaming the snapshot: {e}"))
                        };
                        file.rewind().map_err(io)?;
                        std::io::copy(&mut std::io::BufReader::new(file), &mut out).map_err(io)?;
                        Ok(summary)
                    })
                }
                None => {
                    out.alive = alive;
                    let written = write(&db, out);
                    drop(db);
                    written
                }
            };
            match result {
                Ok(s) => tracing::info!(
                    revision = s.header.revision,
                    objects = s.header.objects,
                    bytes = s.bytes,
                    "snapshot streamed"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "snapshot stopped");
                    let _ = tx.blocking_send(Err(e));
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "could not start a snapshot thread");
    }
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) }).boxed()
}

/// A reader that also hashes, and knows how far it got.
struct Verifying<R: Read> {
    input: R,
    hash: Sha256,
    offset: u64,
}

impl<R: Read> Verifying<R> {
    fn exact(&mut self, n: usize, what: &str) -> anyhow::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        self.input
            .read_exact(&mut buf)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => anyhow::anyhow!(
                    "the snapshot ends at byte {} inside {what}: it is truncated",
                    self.offset
                ),
                _ => anyhow::Error::new(e).context(format!("reading {what}")),
            })?;
        self.hash.update(&buf);
        self.offset += n as u64;
        Ok(buf)
    }
    fn u32(&mut self, what: &str) -> anyhow::Result<u32> {
        Ok(u32::from_be_bytes(
            self.exact(4, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn u64(&mut self, what: &str) -> anyhow::Result<u64> {
        Ok(u64::from_be_bytes(
            self.exact(8, what)?.try_into().unwrap_or_default(),
        ))
    }
    fn field(&mut self, what: &str) -> anyhow::Result<Vec<u8>> {
        let n = self.u32(what)?;
        if n > MAX_FIELD {
            bail!(
                "{what} at byte {} claims {n} bytes: the snapshot is damaged",
                self.offset
            );
        }
        self.exact(n as usize, what)
    }
}

/// Read a snapshot, handing each object to `each`, and verify it: magic, count and
/// checksum. `each` sees objects before the checksum is known: a caller that writes
/// them keeps them aside until this returns `Ok`.
pub fn read(
    input: impl Read,
    mut each: impl FnMut(String, Revision, Vec<u8>) -> anyhow::Result<()>,
) -> anyhow::Result<Summary> {
    let mut r = Verifying {
        input: std::io::BufReader::with_capacity(256 << 10, input),
        hash: Sha256::new(),
        offset: 0,
    };
    if r.exact(8, "the magic number")? != MAGIC {
        bail!("this is not a wasm-apiserver store snapshot (no WASNAP01 at its start)");
    }
    let header: Header =
        serde_json::from_slice(&r.field("the header")?).context("the snapshot's header")?;
    let mut count = 0u64;
    let mut last_key = String::new();
    loop {
        match r.exact(1, "a record tag")?[0] {
            OBJECT => {
                let key = String::from_utf8(r.field("a key")?)
                    .map_err(|_| anyhow::anyhow!("a key at byte {} is not UTF-8", r.offset))?;
                if count > 0 && key <= last_key {
                    bail!(
                        "{key} follows {last_key}: keys are not in order, the snapshot is \
                         damaged"
                    );
                }
                last_key.clone_from(&key);
                let revision = r.u64("a revision")?;
                if revision > header.revision {
                    bail!(
                        "{key} has revision {revision}, after the snapshot's {}: the snapshot \
                         is damaged",
                        header.revision
                    );
                }
                let value = r.field("a value")?;
                each(key, revision, value)?;
                count += 1;
            }
            END => break,
            t => bail!(
                "unknown record tag {t} at byte {}: the snapshot is damaged",
                r.offset
            ),
        }
    }
    let stated = r.u64("the object count")?;
    let digest = r.hash.clone().finalize();
    let mut stored = [0u8; 32];
    r.input
        .read_exact(&mut stored)
        .map_err(|_| anyhow::anyhow!("the snapshot ends before its checksum: it is truncated"))?;
    if stored[..] != digest[..] {
        bail!(
            "the snapshot's checksum does not match its content (sha256 {} stated, {} \
             computed): it was changed or damaged",
            hex::encode(stored),
            hex::encode(digest)
        );
    }
    if stated != count || count != header.objects {
        bail!(
            "the snapshot holds {count} objects, but says {stated} (header: {})",
            header.objects
        );
    }
    let mut extra = [0u8; 1];
    if r.input.read(&mut extra)? != 0 {
        bail!("the snapshot has bytes after its checksum: it is damaged");
    }
    Ok(Summary {
        header,
        bytes: r.offset + 32,
        sha256: hex::encode(digest),
    })
}

/// Restore `snapshot` into the store folder `dir` (`DATA/store`): a new store file
/// with exactly the snapshot's objects, its revision moved `bump` past the
/// snapshot's and its history empty, so that clients holding a later
/// resourceVersion get 410 Expired and relist (as after `etcdutl snapshot restore
/// --bump-revision --mark-compacted`). Refuses an existing store unless `force`.
pub fn restore(snapshot: &Path, dir: &Path, force: bool, bump: u64) -> anyhow::Result<Summary> {
    let target = dir.join(FILE_NAME);
    // Held until the restored file is in place: a running server holds it too.
    let _lock = match target.exists() {
        false => None,
        true if !force => bail!(
            "{} already holds a store; pass --force to replace it (the server must be stopped)",
            target.display()
        ),
        true => {
            let f = std::fs::File::open(&target)
                .with_context(|| format!("opening {}", target.display()))?;
            super::file::lock(&f, &target, true)?;
            Some(f)
        }
    };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let input = std::fs::File::open(snapshot)
        .with_context(|| format!("opening the snapshot {}", snapshot.display()))?;
    let partial = dir.join(format!("{FILE_NAME}.restoring"));
    let _ = std::fs::remove_file(&partial);
    let result = (|| -> anyhow::Result<Summary> {
        let db = Database::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        let mut bytes = 0u64;
        let mut batch: Vec<(String, Revision, Vec<u8>)> = Vec::new();
        let flush = |batch: &mut Vec<(String, Revision, Vec<u8>)>| -> anyhow::Result<()> {
            let mut tx = db.begin_write()?;
            tx.set_durability(Durability::None);
            {
                let mut objects = tx.open_table(OBJECTS)?;
                for (k, rev, v) in batch.drain(..) {
                    objects.insert(k.as_str(), (rev, v.as_slice()))?;
                }
            }
            tx.commit()?;
            Ok(())
        };
        let summary = read(input, |key, rev, value| {
            bytes += size(&key, &value);
            batch.push((key, rev, value));
            if batch.len() == 4096 {
                flush(&mut batch)?;
            }
            Ok(())
        })
        .with_context(|| format!("the snapshot {}", snapshot.display()))?;
        flush(&mut batch)?;
        let revision = summary
            .header
            .revision
            .checked_add(bump)
            .context("--bump-revision takes the revision past 2^64")?;
        let mut tx = db.begin_write()?;
        tx.set_durability(Durability::Immediate);
        {
            tx.open_table(OBJECTS)?;
            tx.open_table(HISTORY)?;
            let mut meta = tx.open_table(META)?;
            meta.insert(REVISION, revision)?;
            meta.insert(COMPACTED, revision)?;
            meta.insert(OBJECTS_BYTES, bytes)?;
        }
        tx.commit()?;
        Ok(summary)
    })();
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, &target)
                .with_context(|| format!("putting the restored store at {}", target.display()))?;
            std::fs::File::open(dir).and_then(|d| d.sync_all())?;
            Ok(summary)
        }
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            Err(e)
        }
    }
}

/// Verify a snapshot file without restoring it.
pub fn verify(path: &Path) -> anyhow::Result<Summary> {
    let input = std::fs::File::open(path)
        .with_context(|| format!("opening the snapshot {}", path.display()))?;
    read(input, |_, _, _| Ok(())).with_context(|| format!("the snapshot {}", path.display()))
}

/// Write a snapshot of `db` into `dir` (scheduled snapshots): a temporary file
/// renamed into place once complete, then the oldest beyond `keep` removed.
pub fn save_in(
    db: &Database,
    dir: &Path,
    keep: usize,
    rate: u64,
    alive: Box<dyn Fn() -> bool + Send>,
) -> anyhow::Result<(std::path::PathBuf, Summary)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = dir.join(".snapshot.partial");
    let file = std::fs::File::create(&partial)
        .with_context(|| format!("creating {}", partial.display()))?;
    let mut out = Throttled::new(&file, rate);
    out.alive = alive;
    let written = write(db, out)
        .map_err(|e| anyhow::anyhow!("{e}"))
        .and_then(|s| Ok(file.sync_all().map(|_| s)?));
    let summary = match written {
        Ok(s) => s,
        Err(e) => {
            // A partial file must not keep a full disk full.
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let stamp = jiff::Timestamp::now().strftime("%Y%m%dT%H%M%SZ");
    let path = dir.join(format!(
        "snapshot-{stamp}-rv{}.wasnap",
        summary.header.revision
    ));
    std::fs::rename(&partial, &path)?;
    let mut all: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("snapshot-") && n.ends_with(".wasnap"))
        })
        .collect();
    all.sort();
    for old in all.iter().take(all.len().saturating_sub(keep.max(1))) {
        let _ = std::fs::remove_file(old);
    }
    Ok((path, summary))
}
