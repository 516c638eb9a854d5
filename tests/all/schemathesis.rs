//! schemathesis (PyPI), the OpenAPI fuzzer, against every group version's
//! `/openapi/v3` document of the example plugins: generated requests for every
//! operation, a fixed seed and a time budget, failing on any 5xx. `make test`
//! installs schemathesis into `target/tools/python` (with componentize-py).

use std::process::Command;

use crate::common::root;
use crate::common::server::Server;

/// Each document gets at most this long (schemathesis's `--max-time`).
const SECONDS_PER_DOCUMENT: &str = "25";

#[test]
fn schemathesis_finds_no_server_error_in_any_openapi_document() {
    let bin = root().join("target/tools/python/bin/schemathesis");
    assert!(
        bin.exists(),
        "{} is missing: `make test` installs it (make schemathesis)",
        bin.display()
    );
    let s = Server::start();
    let ca = s.path().join("data/certs/ca.crt");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let index: serde_json::Value = rt.block_on(async {
        let r = s
            .client()
            .get(format!("{}/openapi/v3", s.url))
            .send()
            .await
            .unwrap();
        r.json().await.unwrap()
    });
    let docs: Vec<String> = index["paths"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|p| p.starts_with("apis/") && p.matches('/').count() == 2)
        .cloned()
        .collect();
    assert!(docs.len() >= 3, "the example groups' documents: {docs:?}");
    let mut total = 0u64;
    for doc in &docs {
        let out = Command::new(&bin)
            .current_dir(s.path())
            .args(["run", &format!("{}/openapi/v3/{doc}", s.url)])
            .args([
                "--checks",
                "not_a_server_error",
                "--seed",
                "42",
                "--no-color",
            ])
            .args(["--max-examples", "20", "--max-time", SECONDS_PER_DOCUMENT])
            .arg("--tls-verify")
            .arg(&ca)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "schemathesis found a server error in {doc}:\n{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "Test cases:\n  1335 generated, 1335 passed"
        let cases = text
            .lines()
            .skip_while(|l| !l.starts_with("Test cases:"))
            .nth(1)
            .and_then(|l| l.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or_else(|| {
                panic!("no case count in schemathesis's summary for {doc}:\n{text}")
            });
        assert!(cases > 0, "{doc}: no case ran");
        println!("schemathesis {doc}: {cases} cases, no 5xx");
        total += cases;
    }
    println!("schemathesis: {total} cases over {} documents", docs.len());
}
