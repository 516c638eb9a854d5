//! `wasm-apiserver store`: check the embedded store, take snapshots of a running
//! server over its API, restore them offline; and the server's scheduled snapshots.

use anyhow::{bail, Context as _};
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::storage::embedded::{check, snapshot, EmbeddedStore, FILE_NAME};

/// The path a running server serves snapshots on (authorized as a non-resource URL:
/// `get` on `/store/snapshot`).
pub const SNAPSHOT_PATH: &str = "/store/snapshot";

#[derive(Subcommand, Debug)]
pub enum StoreCommand {
    /// Check DATA_DIR/store/objects.redb without changing it (the server must be
    /// stopped): the quick check the server runs at every start, or --full.
    Check {
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Also every page checksum, every value parsed, every history entry.
        #[arg(long)]
        full: bool,
    },
    /// Snapshots: save (from a running server), restore (offline), status.
    Snapshot {
        #[command(subcommand)]
        command: SnapshotCommand,
    },
}

#[derive(Subcommand, Debug)]
pub enum SnapshotCommand {
    /// Save a consistent snapshot of a running server's objects into FILE.
    Save {
        file: PathBuf,
        /// kubeconfig whose server is this wasm-apiserver itself (not kube-apiserver,
        /// which forwards only its API groups); its user needs `get` on the
        /// non-resource URL /store/snapshot.
        #[arg(long)]
        kubeconfig: PathBuf,
    },
    /// Restore FILE into DATA_DIR/store (the server must be stopped).
    Restore {
        file: PathBuf,
        #[arg(long, default_value = "data")]
        data_dir: PathBuf,
        /// Replace an existing store.
        #[arg(long)]
        force: bool,
        /// How far past the snapshot's revision the restored store's revision starts,
        /// so that clients holding a newer resourceVersion get 410 Gone and relist.
        #[arg(long, default_value_t = 1_000_000_000)]
        bump_revision: u64,
    },
    /// Verify FILE and print what it holds.
    Status { file: PathBuf },
}

pub async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Check { data_dir, full } => {
            let path = data_dir.join("store").join(FILE_NAME);
            if !path.exists() {
                bail!("there is no embedded store at {}", path.display());
            }
            let r = tokio::task::block_in_place(|| check::check(&path, full))?;
            println!(
                "{}: sound ({} check): {} objects ({} bytes), revision {}, {} history entries; checked in {:.2?}",
                path.display(),
                if full { "full" } else { "quick" },
                r.objects,
                r.objects_bytes,
                r.revision,
                r.history,
                r.took
            );
            Ok(())
        }
        StoreCommand::Snapshot { command } => match command {
            SnapshotCommand::Save { file, kubeconfig } => save(&file, kubeconfig).await,
            SnapshotCommand::Restore {
                file,
                data_dir,
                force,
                bump_revision,
            } => {
                let dir = data_dir.join("store");
                let started = std::time::Instant::now();
                let s = tokio::task::block_in_place(|| {
                    snapshot::restore(&file, &dir, force, bump_revision)
                })?;
                println!(
                    "restored {} objects at revision {} into {} in {:.2?}; the store's revision is now {} (clients with a newer resourceVersion relist)",
                    s.header.objects,
                    s.header.revision,
                    dir.join(FILE_NAME).display(),
                    started.elapsed(),
                    s.header.revision + bump_revision
                );
                Ok(())
            }
            SnapshotCommand::Status { file } => {
                let s = tokio::task::block_in_place(|| snapshot::verify(&file))?;
                print_summary(&file, &s);
                Ok(())
            }
        },
    }
}

fn print_summary(file: &std::path::Path, s: &snapshot::Summary) {
    println!(
        "{}: revision {}, {} objects, {} bytes, taken {}, sha256 {}",
        file.display(),
        s.header.revision,
        s.header.objects,
        s.bytes,
        s.header.created_at,
        s.sha256
    );
}

/// Stream a snapshot from the server into `file` (through `FILE.partial`, verified
/// before it is renamed into place).
async fn save(file: &std::path::Path, kubeconfig: PathBuf) -> anyhow::Result<()> {
    use http_body_util::BodyExt as _;
    use tokio::io::AsyncWriteExt as _;
    // A backup yields the CPU to the server it copies, when they share a machine.
    // SAFETY: setpriority on this process; no memory is passed.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, 10) };
    let client = crate::auth::setup::cluster_client(Some(&kubeconfig), "--kubeconfig")
        .await?
        .context("no server to take the snapshot from: pass --kubeconfig")?;
    let request = hyper::Request::get(SNAPSHOT_PATH).body(kube::client::Body::empty())?;
    let response = client
        .send(request)
        .await
        .context("asking the server for a snapshot")?;
    let status = response.status();
    let mut body = response.into_body();
    if !status.is_success() {
        let bytes = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let message = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|s| s["message"].as_str().map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        bail!("the server refused the snapshot ({status}): {message}");
    }
    let partial = file.with_extension("partial");
    let mut out = tokio::fs::File::create(&partial)
        .await
        .with_context(|| format!("creating {}", partial.display()))?;
    while let Some(frame) = body.frame().await {
        let frame = frame.context("the snapshot stream broke off")?;
        if let Ok(data) = frame.into_data() {
            out.write_all(&data).await?;
        }
    }
    out.sync_all().await?;
    drop(out);
    let summary = tokio::task::block_in_place(|| snapshot::verify(&partial)).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        e.context("the snapshot received is incomplete (did the server stop?)")
    })?;
    std::fs::rename(&partial, file).with_context(|| format!("writing {}", file.display()))?;
    print_summary(file, &summary);
    Ok(())
}

/// Take a snapshot every `interval` into `dir`, keeping the newest `keep`.
pub fn schedule_snapshots(
    store: Arc<EmbeddedStore>,
    interval: Duration,
    dir: PathBuf,
    keep: usize,
) {
    tracing::info!(?interval, dir = %dir.display(), keep, "scheduled snapshots of the embedded store");
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        loop {
            tick.tick().await;
            match store.save_snapshot(dir.clone(), keep).await {
                Ok((path, s)) => {
                    tracing::info!(file = %path.display(), revision = s.header.revision,
                    objects = s.header.objects, bytes = s.bytes, "snapshot saved")
                }
                Err(e) => tracing::error!(error = %format!("{e:#}"), dir = %dir.display(),
                    "the scheduled snapshot failed"),
            }
        }
    });
}
