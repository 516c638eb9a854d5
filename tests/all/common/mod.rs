//! Helpers shared by the host's integration tests.
#![allow(
    dead_code,
    reason = "the benchmarks include this module and use only part of it"
)]

use std::path::PathBuf;

pub mod certs;
pub mod etcd;
pub mod events;
pub mod kube_standin;
pub mod server;

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A component built by `make plugins`: `target/plugins/<name>.wasm` for examples,
/// `target/test-plugins/<name>.wasm` for misbehaving test guests.
pub fn wasm(dir: &str, name: &str) -> PathBuf {
    let path = root().join("target").join(dir).join(format!("{name}.wasm"));
    assert!(
        path.exists(),
        "{} is missing: run `make plugins` (make test does it) to build the guests from source",
        path.display()
    );
    path
}

pub fn example(name: &str) -> PathBuf {
    wasm("plugins", name)
}

pub fn test_plugin(name: &str) -> PathBuf {
    wasm("test-plugins", name)
}

/// The three implementations of the `hello` example, the same kind in three languages:
/// (label, component). Built by `make plugins` (Python and JavaScript into
/// `target/lang-plugins`).
pub fn hellos() -> [(&'static str, PathBuf); 3] {
    [
        ("rust", example("hello")),
        ("python", wasm("lang-plugins", "hello-python")),
        ("javascript", wasm("lang-plugins", "hello-js")),
    ]
}

/// The walk-through's two Foos, as kubectl users write them.
pub const FOO_V1: &str = "apiVersion: hello.zeng.dev/v1
kind: Foo
metadata:
  name: from-v1
  labels:
    app: demo
spec:
  msg: hello from v1
";

pub const FOO_V2: &str = "apiVersion: hello.zeng.dev/v2
kind: Foo
metadata:
  name: from-v2
  labels:
    app: other
spec:
  image: nginx:1.27
  config:
    msg: hello from v2
";

/// Send one request; the status, the body (JSON when it parses) and the headers.
pub async fn send(
    c: &reqwest::Client,
    url: &str,
    method: reqwest::Method,
    path: &str,
    ct: &str,
    body: String,
) -> (u16, serde_json::Value, reqwest::header::HeaderMap) {
    let r = c
        .request(method, format!("{url}{path}"))
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let (code, headers) = (r.status().as_u16(), r.headers().clone());
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        headers,
    )
}

/// The component at `path` with a custom section appended: a new build (another
/// digest) that behaves the same, as a rebuild with a fix elsewhere would.
pub fn rebuilt(path: &std::path::Path, tag: &str) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let name = b"rebuild";
    let body_len = 1 + name.len() + tag.len();
    assert!(body_len < 128 && name.len() < 128, "one-byte LEB128 sizes");
    bytes.extend_from_slice(&[0, body_len as u8, name.len() as u8]);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(tag.as_bytes());
    bytes
}

/// Wait until `f` holds, for at most `limit`.
pub async fn wait_for<F: std::future::Future<Output = bool>>(
    what: &str,
    limit: std::time::Duration,
    mut f: impl FnMut() -> F,
) {
    let started = std::time::Instant::now();
    while !f().await {
        assert!(started.elapsed() < limit, "timed out: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
