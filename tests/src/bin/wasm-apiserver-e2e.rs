//! The server, built as part of the test suite so that `CARGO_BIN_EXE_wasm-apiserver-e2e`
//! names a binary built from the current sources (Cargo gives integration tests the
//! paths of their own package's binaries only). It is `wasm-apiserver`, unchanged.

fn main() -> std::process::ExitCode {
    wasm_apiserver::server::cli::main()
}
