//! The `wasm-apiserver` binary: the server, and `wasm-apiserver manifests`.

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
    flags: wasm_apiserver::server::Flags,
}

#[derive(Subcommand)]
enum Command {
    /// Print the Kubernetes manifests that run this server, with the plugins in
    /// --plugin-dir, behind kube-apiserver (kubectl apply -f -).
    Manifests {
        #[arg(long, default_value = "plugins")]
        plugin_dir: PathBuf,
        #[command(flatten)]
        options: wasm_apiserver::server::manifests::ManifestOptions,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Manifests {
            plugin_dir,
            options,
        }) => wasm_apiserver::server::manifests::for_plugin_dir(&plugin_dir, &options)
            .map(|yaml| print!("{yaml}")),
        None => wasm_apiserver::server::run(cli.flags).await,
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("wasm-apiserver: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
