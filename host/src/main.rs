//! The `wasm-apiserver` binary: see [`wasm_apiserver::server::cli`].

fn main() -> std::process::ExitCode {
    wasm_apiserver::server::cli::main()
}
