//! The command line: the server, `wasm-apiserver manifests` and `wasm-apiserver store`.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "wasm-apiserver",
    version,
    about = "A Kubernetes aggregated apiserver whose resources are WebAssembly components",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    flags: crate::server::Flags,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Kubernetes manifests that run this server, with the plugins in
    /// --plugin-dir, behind kube-apiserver (kubectl apply -f -).
    Manifests {
        #[arg(long, default_value = "plugins")]
        plugin_dir: PathBuf,
        #[command(flatten)]
        options: crate::server::manifests::ManifestOptions,
    },
    /// The embedded store: check it, take and restore snapshots.
    Store {
        #[command(subcommand)]
        command: crate::server::store_cli::StoreCommand,
    },
}

/// Parse the command line and run it; what `wasm-apiserver`'s `main` does (the test
/// suite's copy of the binary calls it too).
pub fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::Error::new(e).context("starting the async runtime"))
        .and_then(|rt| {
            rt.block_on(async {
                match cli.command {
                    Some(Command::Manifests {
                        plugin_dir,
                        options,
                    }) => crate::server::manifests::for_plugin_dir(&plugin_dir, &options)
                        .map(|yaml| print!("{yaml}")),
                    Some(Command::Store { command }) => {
                        crate::server::store_cli::run(command).await
                    }
                    None => crate::server::run(cli.flags).await,
                }
            })
        });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-apiserver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
