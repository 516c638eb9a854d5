//! `-- outside`: REST measured from outside the server's process, as #21 asks. The
//! server is the release binary, alone in its process; the load generator is `h2load`
//! (Debian's nghttp2-client: HTTP/2 over TLS, as client-go speaks it), pinned to the
//! last core. Every row reports throughput, h2load's mean latency and the server's CPU
//! time per request (utime + stime from `/proc/PID/stat`, before and after), and its
//! ratio to the ceiling: the same client on `/version`.

use super::common::server::Server;
use serde_json::json;
use std::process::Command;

const FOOS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";

/// The server's CPU seconds so far (user + system).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command name (which may hold spaces) start at the last ')'.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 here.
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / clock_ticks()
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// One h2load run: (requests per second, mean latency in ms, succeeded requests).
fn h2load(url: &str, clients: usize, secs: u64, accept: &str) -> (f64, f64, u64) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let out = Command::new("taskset")
        .args(["-c", &(cores - 1).to_string(), "h2load"])
        .args(["-c", &clients.to_string(), "-m", "1", "-t", "1"])
        .args(["-D", &secs.to_string()])
        .args(["-H", &format!("accept: {accept}")])
        .arg(url)
        .output()
        .expect("h2load (make bench installs Debian's nghttp2-client)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str, word: usize| -> f64 {
        text.lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .and_then(|l| l.split_whitespace().nth(word))
            .and_then(|w| {
                w.trim_end_matches(|c: char| c.is_alphabetic() || c == ',')
                    .parse()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no {prefix:?} in h2load's output:\n{text}"))
    };
    // "finished in 5.00s, 1234.50 req/s, 1.2MB/s"
    let rps = field("finished in", 3);
    // "requests: 100 total, 100 started, 100 done, 98 succeeded, 2 failed, ..."
    let ok = field("requests:", 7) as u64;
    // "time for request:  min  max  mean  sd  +/- sd": mean in us or ms.
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("time for request:"))
        .unwrap();
    let mean = line.split_whitespace().nth(5).unwrap();
    let ms = if let Some(us) = mean.strip_suffix("us") {
        us.parse::<f64>().unwrap() / 1000.0
    } else if let Some(ms) = mean.strip_suffix("ms") {
        ms.parse().unwrap()
    } else {
        mean.trim_end_matches('s').parse::<f64>().unwrap() * 1000.0
    };
    (rps, ms, ok)
}

pub async fn outside() {
    println!("\n### REST from outside the process (`-- outside`: h2load, HTTP/2, TLS)\n");
    let s = Server::start();
    let client = s.client();
    for i in 0..1000 {
        let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
            "metadata": {"name": format!("seed-{i}")},
            "spec": {"image": "busybox", "config": {"msg": "hi"}}});
        let r = client
            .post(format!("{}{FOOS}", s.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let json = "application/json";
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let rows: [(&str, String, usize, &str); 8] = [
        ("`GET /version` (ceiling)", "/version".into(), 1, json),
        ("`GET /version` (ceiling)", "/version".into(), 32, json),
        ("GET one Foo", format!("{FOOS}/seed-1"), 1, json),
        ("GET one Foo", format!("{FOOS}/seed-1"), 32, json),
        ("LIST 1,000 Foos", FOOS.into(), 1, json),
        ("LIST 1,000 Foos", FOOS.into(), 32, json),
        ("LIST 1,000 Foos as a Table", FOOS.into(), 1, table),
        ("LIST 1,000 Foos as a Table", FOOS.into(), 32, table),
    ];
    println!("| request | clients | req/s | mean latency | server CPU per request | ratio to the ceiling |");
    println!("|---|---|---|---|---|---|");
    let mut ceiling = [0.0f64; 2];
    for (label, path, clients, accept) in rows {
        let before = cpu_seconds(s.pid());
        let (rps, ms, ok) = h2load(&format!("{}{path}", s.url), clients, 5, accept);
        let cpu = cpu_seconds(s.pid()) - before;
        let slot = usize::from(clients > 1);
        if path == "/version" {
            ceiling[slot] = rps;
        }
        println!(
            "| {label} | {clients} | {rps:.0} | {ms:.2} ms | {:.0} µs | {:.0}% |",
            cpu / ok.max(1) as f64 * 1e6,
            rps / ceiling[slot] * 100.0
        );
    }
}
