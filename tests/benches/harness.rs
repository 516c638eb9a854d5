//! `make bench`: the project's benchmark harness. Prints a table of medians (and p99
//! where it matters). Plugins come from `make plugins`.
//!
//! - hooks: per-hook overhead on the hello plugin (instantiate, the hooks of a create
//!   on a 1 KiB object, a batched convert of 100), against a native baseline doing the
//!   same JSON work without Wasm.
//! - rest: GET, LIST of 1,000 and CREATE over HTTPS at 1 and 32 clients, on the
//!   embedded store.
//! - watch: fan-out latency to many watchers, convert calls per event, idle watcher cost.
//! - reload: hot reload, from writing a plugin file to the first request the new build
//!   serves, with the compile cached and not.
//! - auth: GET with delegated authn/authz (cached) against `--dev`, TLS handshakes per
//!   second, server memory per idle TLS connection.
//! - langs: hello in Rust, Python and JavaScript: component size, first compile, warm
//!   start from the cache, the hooks of a CREATE and a GET (reused and fresh instances),
//!   and GET/CREATE throughput at 32 clients relative to Rust in the same run.
//! - etcd: raw etcd-client puts and gets (the limit) versus CREATE and GET through the
//!   server on the same local etcd, at 1 and 32 clients, as ratios.
//! - apply: server-side apply against a GET (an apply that changes nothing) and against a
//!   merge patch (an apply of a 1 KiB change), as ratios.
//! - safety: the upgrade gate and a storage version migration on 10,000 objects, and
//!   quarantine under a failure storm (see `safety.rs`).

#[path = "../all/common/mod.rs"]
mod common;
mod outside;
mod safety;
mod store;

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasm_apiserver::plugin::{
    Operation, Plugin, PluginEngine, RequestInfo, RuntimeLimits, UserInfo,
};

use common::root;

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[(v.len() * 99 / 100).min(v.len() - 1)])
}

fn time<T>(n: usize, mut f: impl FnMut() -> T) -> (Duration, Duration) {
    for _ in 0..n / 10 {
        std::hint::black_box(f());
    }
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    median(samples)
}

fn us(d: Duration) -> String {
    format!("{:.1} µs", d.as_secs_f64() * 1e6)
}

fn request() -> RequestInfo {
    RequestInfo {
        operation: Operation::Create,
        user: UserInfo {
            name: "bench".into(),
            uid: String::new(),
            groups: vec![],
            extra: vec![],
        },
        namespace: Some("default".into()),
        name: "a".into(),
        subresource: None,
        dry_run: false,
    }
}

fn foo_v1(i: usize) -> Value {
    // About 1 KiB with metadata.
    json!({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
           "metadata": {"name": format!("foo-{i}"), "namespace": "default",
                        "labels": {"app": "bench", "tier": "web"},
                        "annotations": {"note": "x".repeat(700)}},
           "spec": {"msg": "hello from the benchmark", "msg1": "second"}})
}

fn hooks() {
    let engine = PluginEngine::new(RuntimeLimits::default(), None).unwrap();
    let plugin = Plugin::load(&engine, &root().join("target/plugins/hello.wasm"))
        .expect("run `make plugins` first");
    let req = request();
    let obj = foo_v1(1);
    let n = 2000;
    // A call on a fresh instance: instances are checked out per call, lazily.
    let strict = PluginEngine::new(
        RuntimeLimits {
            instance_reuse: 1,
            ..RuntimeLimits::default()
        },
        None,
    )
    .unwrap();
    let fresh = Plugin::load(&strict, &root().join("target/plugins/hello.wasm")).unwrap();
    let (create, create99) = time(n, || {
        let mut i = plugin.instance().unwrap();
        let d = i.default(obj.clone()).unwrap();
        let v2 = i
            .convert(std::slice::from_ref(&d), "v2")
            .unwrap()
            .pop()
            .unwrap();
        let p = i.prepare_for_create(&req, v2).unwrap();
        i.validate_create(&req, &p).unwrap()
    });
    let mut one = plugin.instance().unwrap();
    let v2 = one
        .convert(std::slice::from_ref(&obj), "v2")
        .unwrap()
        .pop()
        .unwrap();
    let (validate, _) = time(n, || one.validate_create(&req, &v2).unwrap());
    let (validate_fresh, _) = time(n, || {
        fresh
            .instance()
            .unwrap()
            .validate_create(&req, &v2)
            .unwrap()
    });
    let batch: Vec<Value> = (0..100).map(foo_v1).collect();
    let (convert100, _) = time(200, || {
        plugin.instance().unwrap().convert(&batch, "v2").unwrap()
    });
    // Native baseline: the same JSON round trips without Wasm (what any host pays).
    let (native, _) = time(n, || {
        let mut v: Value = serde_json::from_str(&obj.to_string()).unwrap();
        v["apiVersion"] = json!("hello.zeng.dev/v2");
        serde_json::from_str::<Value>(&v.to_string()).unwrap()
    });
    println!("| hooks (hello plugin) | median | note |");
    println!("|---|---|---|");
    println!(
        "| validate-create on a fresh instance (`--plugin-instance-reuse 1`) | {} | pooling allocator, copy-on-write image |",
        us(validate_fresh)
    );
    println!("| create's hooks: default+convert+prepare+validate (reused instances), 1 KiB | {} (p99 {}) | target < 50 µs |", us(create), us(create99));
    println!(
        "| validate-create on a reused instance, 1 KiB | {} | |",
        us(validate)
    );
    println!(
        "| convert batch of 100 (v1→v2) | {} = {} per object | target < 10 µs/object |",
        us(convert100),
        us(convert100 / 100)
    );
    println!(
        "| native baseline: 2 JSON round trips, 1 KiB | {} | ratio create/native {:.1}x |",
        us(native),
        create.as_secs_f64() / native.as_secs_f64()
    );
}

/// The server in this process (so that its figures are not a child's), serving the
/// example plugins with `flags`; returns its URL and a client trusting it.
async fn in_process(dir: &std::path::Path, flags: &[&str]) -> (String, reqwest::Client) {
    in_process_as(dir, true, flags).await
}

async fn in_process_as(
    dir: &std::path::Path,
    dev: bool,
    flags: &[&str],
) -> (String, reqwest::Client) {
    let plugins = common::server::copy_examples(dir);
    serve_in_process(dir, &plugins, dev, flags).await
}

/// The server in this process, serving `plugins` with data in `dir/data`.
async fn serve_in_process(
    dir: &std::path::Path,
    plugins: &std::path::Path,
    dev: bool,
    flags: &[&str],
) -> (String, reqwest::Client) {
    let kubeconfig = dir.join("kubeconfig");
    let mut args = vec![
        "wasm-apiserver",
        "--secure-port",
        "0",
        "--plugin-dir",
        plugins.to_str().unwrap(),
        "--data-dir",
        dir.join("data").to_str().unwrap(),
        "--write-kubeconfig",
        kubeconfig.to_str().unwrap(),
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if dev {
        args.push("--dev".into());
    }
    args.extend(flags.iter().map(|f| f.to_string()));
    let flags = <wasm_apiserver::server::Flags as clap::Parser>::parse_from(args);
    tokio::spawn(wasm_apiserver::server::run(flags));
    while !kubeconfig.exists() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let url = common::server::server_url(&kubeconfig);
    let ca = std::fs::read(dir.join("data/certs/ca.crt")).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .build()
        .unwrap();
    (url, client)
}

async fn rest() {
    let dir = tempfile::tempdir().unwrap();
    let (url, client) = in_process(dir.path(), &[]).await;
    let foos = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos");
    for i in 0..1000 {
        let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": format!("seed-{i}")}, "spec": {"image": "busybox", "config": {"msg": "hi"}}});
        assert_eq!(
            client
                .post(&foos)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
            201
        );
    }
    println!();
    println!("| REST (embedded store, HTTPS) | clients | throughput | p50 | p99 | in the plugin per request | plugin share of p50 |");
    println!("|---|---|---|---|---|---|---|");
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // Throughput per row, for the ratios to the ceiling.
    let mut rates = std::collections::HashMap::new();
    for (label, clients, secs) in [
        // The ceiling: the server's cheapest endpoint, through the same client, TLS
        // and HTTP stack (#21 reads every row as a ratio to it).
        (CEILING, 1, 3),
        (CEILING, 32, 3),
        ("GET one Foo (v2)", 1, 3),
        ("GET one Foo (v2)", 32, 3),
        ("GET one Foo as v1 (convert)", 32, 3),
        ("LIST 1,000 Foos", 1, 3),
        ("LIST 1,000 Foos", 32, 3),
        ("CREATE", 1, 3),
        ("CREATE", 32, 3),
    ] {
        let plugin_before = plugin_seconds(&client, &url).await;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        let started = Instant::now();
        for _ in 0..clients {
            let (client, foos, counter, label, url) = (
                client.clone(),
                foos.clone(),
                counter.clone(),
                label,
                url.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut lat = Vec::new();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    let r = match label {
                        "CREATE" => {
                            let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": format!("b-{n}")}, "spec": {"image": "busybox"}});
                            client.post(&foos).json(&body).send().await.unwrap()
                        }
                        "LIST 1,000 Foos" => client.get(&foos).send().await.unwrap(),
                        CEILING => client.get(format!("{url}/version")).send().await.unwrap(),
                        "GET one Foo as v1 (convert)" => client.get(foos.replace("/v2/", "/v1/") + "/seed-7").send().await.unwrap(),
                        _ => client.get(format!("{foos}/seed-7")).send().await.unwrap(),
                    };
                    assert!(r.status().is_success());
                    let _ = r.bytes().await.unwrap();
                    lat.push(t.elapsed());
                }
                lat
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        let n = all.len();
        let (p50, p99) = median(all);
        // Time inside Wasm (instantiation and hook calls), from the server's counters.
        let plugin = (plugin_seconds(&client, &url).await - plugin_before) / n as f64;
        rates.insert((label, clients), n as f64 / elapsed);
        println!(
            "| {label} | {clients} | {:.0}/s | {:.2} ms | {:.2} ms | {:.1} µs | {:.1}% |",
            n as f64 / elapsed,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            plugin * 1e6,
            plugin / p50.as_secs_f64() * 100.0
        );
    }
    println!(
        "\n| against the `/version` ceiling, same run | 1 client | 32 clients |\n|---|---|---|"
    );
    for label in [
        "GET one Foo (v2)",
        "GET one Foo as v1 (convert)",
        "LIST 1,000 Foos",
        "CREATE",
    ] {
        let ratio = |clients| {
            rates.get(&(label, clients)).map_or("—".to_string(), |r| {
                format!("{:.0}%", r / rates[&(CEILING, clients)] * 100.0)
            })
        };
        println!("| {label} | {} | {} |", ratio(1), ratio(32));
    }
    println!(
        "\n(bench process RSS after the run, server and client in one process: {} kB)",
        rss_kib()
    );
}

/// The `rest` row every other row is read against.
const CEILING: &str = "GET /version (the ceiling)";

/// Seconds spent in the hello plugin so far (instantiation + hook calls).
async fn plugin_seconds(client: &reqwest::Client, url: &str) -> f64 {
    let mut total = 0.0;
    for name in [
        "wasm_apiserver_plugin_instantiate_seconds_total",
        "wasm_apiserver_plugin_hook_seconds_total",
    ] {
        total += plugin_metric(client, url, name, "hello.wasm").await;
    }
    total
}

/// A client that speaks HTTP/2 only, so that watches multiplex as informers' do.
fn h2_client(server: &common::server::Server) -> reqwest::Client {
    let ca = std::fs::read(server.path().join("data/certs/ca.crt")).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

/// (user+system CPU seconds, RSS KiB) of a process.
fn usage(pid: u32) -> (f64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap()
        .parse()
        .unwrap();
    (ticks / 100.0, rss)
}

/// Fan-out: 1,000 watchers of one resource (half v1, half v2) over HTTP/2 while a
/// writer updates at a fixed rate. Latency is from the write's acknowledgement to a
/// watcher's receipt of the event.
async fn watch_fanout() {
    const WATCHERS: usize = 1000;
    const RATE: u64 = 500;
    const SECONDS: u64 = 5;
    // The release binary in its own process (the tests' helper), for its CPU and RSS.
    let server = common::server::Server::start();
    let base = format!("{}/apis/hello.zeng.dev", server.url);
    let writer = h2_client(&server);
    let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "hot"}, "spec": {"image": "busybox", "config": {"msg": "0"}}});
    let r = writer
        .post(format!("{base}/v2/namespaces/default/foos"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let start_rv: String = r.json::<Value>().await.unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .into();
    let (_, rss_before) = usage(server.pid());

    // 8 HTTP/2 connections, 125 watches each (informers multiplex the same way).
    let clients: Vec<reqwest::Client> = (0..8).map(|_| h2_client(&server)).collect();
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    let (ready_tx, mut ready_rx) = tokio::sync::mpsc::channel::<()>(WATCHERS);
    for i in 0..WATCHERS {
        let c = clients[i % clients.len()].clone();
        let version = if i % 2 == 0 { "v1" } else { "v2" };
        let url = format!(
            "{base}/{version}/namespaces/default/foos?watch=true&resourceVersion={start_rv}"
        );
        let ready = ready_tx.clone();
        tasks.push(tokio::spawn(async move {
            let mut resp = c.get(url).send().await.unwrap();
            assert!(resp.status().is_success());
            ready.send(()).await.unwrap();
            // (revision, when received), found without a full JSON parse.
            let mut got: Vec<(u64, Duration)> = Vec::new();
            let mut buf = Vec::new();
            while let Ok(Some(chunk)) = resp.chunk().await {
                let now = t0.elapsed();
                buf.extend_from_slice(&chunk);
                while let Some(i) = buf.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = buf.drain(..=i).collect();
                    let text = std::str::from_utf8(&line).unwrap();
                    if let Some(p) = text.find("\"resourceVersion\":\"") {
                        let rest = &text[p + 19..];
                        let rv: u64 = rest[..rest.find('"').unwrap()].parse().unwrap();
                        got.push((rv, now));
                    }
                }
            }
            got
        }));
    }
    for _ in 0..WATCHERS {
        ready_rx.recv().await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (cpu0, rss_watching) = usage(server.pid());
    let events0 = server
        .metric("wasm_apiserver_watch_cache_events_total", "foos")
        .await;
    let conv0 = server
        .metric("wasm_apiserver_watch_conversions_total", "foos")
        .await;

    // The writer: RATE updates per second, acknowledgement times by revision.
    let mut acks: Vec<(u64, Duration)> = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_micros(1_000_000 / RATE));
    let url = format!("{base}/v2/namespaces/default/foos/hot");
    for n in 0..RATE * SECONDS {
        tick.tick().await;
        // msg starts at "0": from 1 on, every patch is a real change (a no-op patch
        // writes nothing and produces no event).
        let patch = json!({"spec": {"config": {"msg": (n + 1).to_string()}}});
        let r = writer
            .patch(&url)
            .header("content-type", "application/merge-patch+json")
            .body(patch.to_string())
            .send()
            .await
            .unwrap();
        let now = t0.elapsed();
        let rv: u64 = r.json::<Value>().await.unwrap()["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse()
            .unwrap();
        acks.push((rv, now));
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu1, _) = usage(server.pid());
    let events = server
        .metric("wasm_apiserver_watch_cache_events_total", "foos")
        .await
        - events0;
    let conversions = server
        .metric("wasm_apiserver_watch_conversions_total", "foos")
        .await
        - conv0;
    // End the streams: stop the server, then collect what each watcher received.
    drop(server);
    let ack: std::collections::HashMap<u64, Duration> = acks.iter().copied().collect();
    let mut latencies = Vec::new();
    let mut delivered = 0u64;
    let mut out_of_order = 0;
    for t in tasks {
        let got = t.await.unwrap();
        delivered += got.len() as u64;
        out_of_order += got.windows(2).filter(|w| w[0].0 >= w[1].0).count();
        for (rv, at) in got {
            if let Some(a) = ack.get(&rv) {
                latencies.push(at.saturating_sub(*a));
            }
        }
    }
    let expected = acks.len() as u64 * WATCHERS as u64;
    let (p50, p99) = median(latencies);
    println!();
    println!("| watch fan-out: {WATCHERS} watchers (half v1, half v2), {RATE} updates/s for {SECONDS} s | value |");
    println!("|---|---|");
    println!(
        "| events delivered / expected | {delivered} / {expected} (out of order: {out_of_order}) |"
    );
    println!(
        "| delivery latency from write ack, p50 / p99 | {:.1} ms / {:.1} ms (goal p99 <= 100 ms) |",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3
    );
    println!(
        "| server CPU per delivered event | {:.2} µs |",
        (cpu1 - cpu0) * 1e6 / delivered.max(1) as f64
    );
    println!("| convert calls per event (2 versions watched, 1 needs converting) | {:.2} ({conversions} calls / {events} events) |", conversions as f64 / events.max(1) as f64);
    println!(
        "| server memory per idle watcher (RSS delta / watchers) | {:.1} KiB (goal <= 16 KiB) |",
        rss_watching.saturating_sub(rss_before) as f64 / WATCHERS as f64
    );
    println!(
        "| server RSS before the watchers (three example plugins loaded, one object) | {:.1} MiB (goal <= 40 MiB) |",
        rss_before as f64 / 1024.0
    );
}

/// `clients` concurrent loops of `op(n)` (n counts calls across loops) for `secs`:
/// (throughput per second, p50, p99).
async fn load<F, Fut>(clients: usize, secs: u64, op: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let counter = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(secs);
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (op, counter) = (op.clone(), counter.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let t = Instant::now();
                op(n).await;
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    let (p50, p99) = median(all);
    (n as f64 / started.elapsed().as_secs_f64(), p50, p99)
}

/// The etcd backend against its limit: raw etcd-client puts and gets on the same local
/// etcd versus CREATE and GET through the server, at 1 and 32 clients, in one run.
async fn etcd() {
    use wasm_apiserver::storage::Storage as _;
    let etcd = common::etcd::Etcd::start();
    let dir = tempfile::tempdir().unwrap();
    let (url, client) = in_process(
        dir.path(),
        &["--storage", "etcd", "--etcd-servers", &etcd.url()],
    )
    .await;
    let foos = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos");
    let body = |name: String| json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": name, "namespace": "default"}, "spec": {"image": "busybox", "config": {"msg": "hi"}}});
    let r = client
        .post(&foos)
        .json(&body("seed".into()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let raw = wasm_apiserver::storage::etcd::EtcdStore::connect(
        &wasm_apiserver::storage::etcd::EtcdOptions {
            servers: vec![etcd.url()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let raw = Arc::new(raw);
    // The raw value: the object as the server stores it.
    let value = raw
        .get("/hello.zeng.dev/foos/default/seed")
        .await
        .unwrap()
        .unwrap()
        .value;
    let mut kv = etcd_client::Client::connect([etcd.url()], None)
        .await
        .unwrap();
    kv.put("/bench/seed", value.clone(), None).await.unwrap();

    println!();
    println!("| etcd (local, one member) | clients | raw etcd-client | through wasm-apiserver | ratio | p50 raw / server |");
    println!("|---|---|---|---|---|---|");
    for clients in [1, 32] {
        let (kv2, value2) = (kv.clone(), value.clone());
        let put = load(clients, 3, move |n| {
            let (mut kv, v) = (kv2.clone(), value2.clone());
            async move {
                kv.put(format!("/bench/put-{clients}-{n}"), v, None)
                    .await
                    .unwrap();
            }
        })
        .await;
        let (c, f) = (client.clone(), foos.clone());
        let create = load(clients, 3, move |n| {
            let (c, f, b) = (c.clone(), f.clone(), body(format!("c{clients}-{n}")));
            async move {
                let r = c.post(&f).json(&b).send().await.unwrap();
                assert_eq!(r.status(), 201);
                let _ = r.bytes().await.unwrap();
            }
        })
        .await;
        print_vs("PUT vs CREATE", clients, put, create);
        let kv2 = kv.clone();
        let get = load(clients, 3, move |_| {
            let mut kv = kv2.clone();
            async move {
                let r = kv.get("/bench/seed", None).await.unwrap();
                assert_eq!(r.kvs().len(), 1);
            }
        })
        .await;
        for (label, query) in [
            (
                "GET vs GET ?resourceVersion=0 (watch cache)",
                "?resourceVersion=0",
            ),
            ("GET vs GET (quorum read from etcd)", ""),
        ] {
            let (c, u) = (client.clone(), format!("{foos}/seed{query}"));
            let served = get_load(clients, c, u).await;
            print_vs(label, clients, get, served);
        }
    }
}

/// Hot reload: time from writing hello.wasm to the first request that the new build
/// serves, alternating between two builds with different validation. "cached" swaps
/// reuse bytes compiled before (the precompiled cache answers); "compiled" swaps append
/// a unique custom section, so every swap compiles anew.
async fn reload() {
    println!();
    println!("| hot reload of hello.wasm (write → first request served by the new build) | compiler | swaps | p50 | max |");
    println!("|---|---|---|---|---|");
    for compiler in ["cranelift", "winch"] {
        reload_with(compiler).await;
    }
}

async fn reload_with(compiler: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (url, client) = in_process(dir.path(), &["--plugin-compiler", compiler]).await;
    let foos = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos?dryRun=All");
    let hello = dir.path().join("plugins/hello.wasm");
    let builds = [
        std::fs::read(common::example("hello")).unwrap(),
        std::fs::read(common::test_plugin("hello-pinned")).unwrap(),
    ];
    let pinned = |client: reqwest::Client, foos: String| async move {
        let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "probe"}, "spec": {"image": "nginx"}});
        client
            .post(&foos)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            == 422
    };
    // Both builds once, so that the cached runs find them compiled.
    for b in [1, 0] {
        std::fs::write(&hello, &builds[b]).unwrap();
        while pinned(client.clone(), foos.clone()).await != (b == 1) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    for (label, unique) in [
        ("cached compile (bytes seen before)", false),
        ("compiled on the swap (new bytes)", true),
    ] {
        let mut times = Vec::new();
        for i in 0..10 {
            let want = i % 2 == 0;
            let mut bytes = builds[want as usize].clone();
            if unique {
                // A custom section (id 0) named "bench" carrying a counter.
                let payload = format!("{label}-{i}-{:?}", Instant::now());
                let name = b"bench";
                let size = 1 + name.len() + payload.len();
                assert!(size < 128, "one-byte LEB128 sizes");
                bytes.extend_from_slice(&[0, size as u8, name.len() as u8]);
                bytes.extend_from_slice(name);
                bytes.extend_from_slice(payload.as_bytes());
            }
            let t = Instant::now();
            std::fs::write(&hello, &bytes).unwrap();
            while pinned(client.clone(), foos.clone()).await != want {
                tokio::time::sleep(Duration::from_millis(2)).await;
                assert!(
                    t.elapsed() < Duration::from_secs(30),
                    "the swap did not happen"
                );
            }
            times.push(t.elapsed());
        }
        let max = *times.iter().max().unwrap();
        let (p50, _) = median(times);
        println!(
            "| {label} | {compiler} | 10 | {:.0} ms | {:.0} ms |",
            p50.as_secs_f64() * 1e3,
            max.as_secs_f64() * 1e3
        );
    }
}

/// Delegated auth: GET latency with authentication (a client certificate) and
/// authorization (a cached SubjectAccessReview from the stand-in kube-apiserver) against
/// `--dev`, in one run; TLS handshakes per second; server memory per idle TLS
/// connection.
async fn auth() {
    use common::certs::{ca, client_cert};
    let dev_dir = tempfile::tempdir().unwrap();
    let (dev_url, dev_client) = in_process(dev_dir.path(), &[]).await;
    let dir = tempfile::tempdir().unwrap();
    let standin = common::kube_standin::start(dir.path(), Default::default()).await;
    let client_ca = ca();
    std::fs::write(dir.path().join("client-ca.crt"), &client_ca.pem).unwrap();
    let ca_file = dir
        .path()
        .join("client-ca.crt")
        .to_str()
        .unwrap()
        .to_string();
    let kc = standin.kubeconfig.to_str().unwrap().to_string();
    let secure_flags = [
        "--client-ca-file",
        &ca_file,
        "--authorization-kubeconfig",
        &kc,
    ];
    let (url, _) = in_process_as(dir.path(), false, &secure_flags).await;
    let identity = client_cert(&client_ca, "carol", &["devs"], false);
    let ca_pem = std::fs::read(dir.path().join("data/certs/ca.crt")).unwrap();
    let secure = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
        .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
        .build()
        .unwrap();
    for (u, c) in [(&dev_url, &dev_client), (&url, &secure)] {
        let foos = format!("{u}/apis/hello.zeng.dev/v2/namespaces/default/foos");
        let body = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "seed"}, "spec": {"image": "busybox"}});
        assert_eq!(
            c.post(&foos).json(&body).send().await.unwrap().status(),
            201
        );
    }
    println!();
    println!("| GET one Foo, HTTPS | clients | --dev | authn (client cert) + authz (cached SAR) | p50 --dev / auth | p50 overhead |");
    println!("|---|---|---|---|---|---|");
    for clients in [1, 32] {
        let mut results = Vec::new();
        for (u, c) in [(&dev_url, &dev_client), (&url, &secure)] {
            let (c, u) = (
                c.clone(),
                format!("{u}/apis/hello.zeng.dev/v2/namespaces/default/foos/seed"),
            );
            results.push(get_load(clients, c, u).await);
        }
        let (d, a) = (results[0], results[1]);
        println!(
            "| GET | {clients} | {:.0}/s | {:.0}/s | {:.3} / {:.3} ms | {:+.1}% |",
            d.0,
            a.0,
            d.1.as_secs_f64() * 1e3,
            a.1.as_secs_f64() * 1e3,
            (a.1.as_secs_f64() / d.1.as_secs_f64() - 1.0) * 100.0
        );
    }
    println!(
        "(SubjectAccessReviews sent: {}; TokenReviews: {})",
        standin
            .calls
            .access_reviews
            .load(std::sync::atomic::Ordering::SeqCst),
        standin
            .calls
            .token_reviews
            .load(std::sync::atomic::Ordering::SeqCst)
    );
    // A new TLS connection per request (no pooling): handshakes per second.
    println!();
    println!("| TLS handshakes (new connection per request, client certificate, GET /livez) | clients | per second | p50 |");
    println!("|---|---|---|---|");
    for clients in [1, 8] {
        let c = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem).unwrap())
            .identity(reqwest::Identity::from_pem(identity.as_bytes()).unwrap())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        let u = format!("{url}/livez");
        let r = get_load(clients, c, u).await;
        println!(
            "| | {clients} | {:.0}/s | {:.2} ms |",
            r.0,
            r.1.as_secs_f64() * 1e3
        );
    }
    // Memory per idle TLS connection, in a separate server process.
    let sdir = tempfile::tempdir().unwrap();
    common::server::copy_examples(sdir.path());
    std::fs::write(sdir.path().join("client-ca.crt"), &client_ca.pem).unwrap();
    let ca2 = sdir
        .path()
        .join("client-ca.crt")
        .to_str()
        .unwrap()
        .to_string();
    let server = common::server::Server::start_secure(
        sdir,
        &["--client-ca-file", &ca2, "--authorization-kubeconfig", &kc],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls_pemfile::certs(
        &mut &std::fs::read(server.path().join("data/certs/ca.crt")).unwrap()[..],
    ) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let addr = server.url.trim_start_matches("https://").to_string();
    let (_, before) = usage(server.pid());
    let n = 1000;
    let mut conns = Vec::new();
    for _ in 0..n {
        let tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        conns.push(connector.connect(name, tcp).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, after) = usage(server.pid());
    println!();
    println!("| idle TLS connections (handshake done, no request) | server RSS before | after | per connection |");
    println!("|---|---|---|---|");
    println!(
        "| {n} | {:.1} MiB | {:.1} MiB | {:.1} KiB |",
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after as f64 - before as f64) / n as f64
    );
    drop(conns);
}

/// [`load`] of GETs of `url` that must answer 200.
async fn get_load(clients: usize, c: reqwest::Client, url: String) -> (f64, Duration, Duration) {
    load(clients, 3, move |_| {
        let (c, u) = (c.clone(), url.clone());
        async move {
            let r = c.get(&u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await.unwrap();
        }
    })
    .await
}

fn print_vs(
    label: &str,
    clients: usize,
    raw: (f64, Duration, Duration),
    ours: (f64, Duration, Duration),
) {
    println!(
        "| {label} | {clients} | {:.0}/s | {:.0}/s | {:.0}% | {:.2} / {:.2} ms |",
        raw.0,
        ours.0,
        ours.0 / raw.0 * 100.0,
        raw.1.as_secs_f64() * 1e3,
        ours.1.as_secs_f64() * 1e3
    );
}

fn main() {
    println!(
        "wasm-apiserver benchmarks ({} cores)\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    );
    // `cargo bench -p wasm-apiserver -- hooks` runs one section.
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let run = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    if run("hooks") {
        hooks();
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if run("rest") {
        rt.block_on(rest());
    }
    if run("watch") {
        rt.block_on(watch_fanout());
    }
    if run("etcd") {
        rt.block_on(etcd());
    }
    if run("langs") {
        rt.block_on(langs());
    }
    if run("reload") {
        rt.block_on(reload());
    }
    if run("auth") {
        rt.block_on(auth());
    }
    if run("contract") {
        rt.block_on(contract());
    }
    if run("apply") {
        rt.block_on(apply());
    }
    if run("safety") {
        rt.block_on(safety::safety());
    }
    if run("store") {
        rt.block_on(store::store());
    }
    if run("outside") {
        rt.block_on(outside::outside());
    }
}

/// Server-side apply against what it replaces: an apply that changes nothing (a GitOps
/// resync) against a GET of the object, and an apply of a 1 KiB change against a merge
/// patch of the same change (both record managed fields). Each pair runs alternately,
/// three rounds, medians quoted.
async fn apply() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = common::server::copy_examples(dir.path());
    let (url, client) = serve_in_process(dir.path(), &plugins, true, &[]).await;
    let foo = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos/bench");
    // The 1 KiB change is an annotation (hello's messages are at most 256 bytes).
    let config = |blob: &str| {
        format!(
            "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata:\n  name: bench\n  annotations:\n    bench/blob: {blob}\nspec:\n  image: nginx\n  config:\n    msg: steady\n"
        )
    };
    let send_apply = |c: reqwest::Client, foo: String, body: String| async move {
        let r = c
            .patch(if foo.ends_with('&') {
                format!("{foo}fieldManager=gitops")
            } else {
                format!("{foo}?fieldManager=gitops")
            })
            .header("content-type", "application/apply-patch+yaml")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()
    };
    let created = send_apply(client.clone(), foo.clone(), config("steady")).await;
    let rv = created["metadata"]["resourceVersion"].clone();
    let kib = |n: usize| {
        format!(
            "{}{n}",
            if n.is_multiple_of(2) { "a" } else { "b" }.repeat(1024)
        )
    };
    let (c, f) = (client.clone(), foo.clone());
    let get = move |_| {
        let (c, f) = (c.clone(), f.clone());
        async move {
            let r = c.get(&f).send().await.unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let (c, f) = (client.clone(), foo.clone());
    let noop = move |_| {
        let (c, f, body) = (c.clone(), f.clone(), config("steady"));
        async move {
            send_apply(c, f, body).await;
        }
    };
    let mut rounds: Vec<[Duration; 4]> = Vec::new();
    for round in 0..3 {
        let g = load(1, 3, get.clone()).await.1;
        let n = load(1, 3, noop.clone()).await.1;
        let (c, f) = (client.clone(), foo.clone());
        let change = move |i: usize| {
            let (c, f, body) = (c.clone(), f.clone(), config(&kib(i + round)));
            async move {
                send_apply(c, f, body).await;
            }
        };
        let a = load(1, 3, change).await.1;
        let (c, f) = (client.clone(), foo.clone());
        let merge = move |i: usize| {
            let (c, f) = (c.clone(), f.clone());
            let body = json!({"metadata": {"annotations": {"bench/blob": kib(i + round + 1)}}})
                .to_string();
            async move {
                let r = c
                    .patch(format!("{f}?fieldManager=gitops"))
                    .header("content-type", "application/merge-patch+json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
            }
        };
        let m = load(1, 3, merge).await.1;
        rounds.push([g, n, a, m]);
        // Back to the steady configuration for the next round's no-op applies, taking
        // back the annotation the merge patch's (update) manager now owns.
        send_apply(
            client.clone(),
            format!("{foo}?force=true&"),
            config("steady"),
        )
        .await;
    }
    // The no-op applies wrote nothing: only the change rounds moved the version.
    let steady = send_apply(client.clone(), foo.clone(), config("steady")).await;
    let before = steady["metadata"]["resourceVersion"].clone();
    for _ in 0..20 {
        let again = send_apply(client.clone(), foo.clone(), config("steady")).await;
        assert_eq!(
            again["metadata"]["resourceVersion"], before,
            "a no-op apply wrote"
        );
    }
    assert_ne!(before, rv);
    let med = |i: usize| {
        let mut v: Vec<Duration> = rounds.iter().map(|r| r[i]).collect();
        v.sort();
        v[v.len() / 2]
    };
    let ratio = |a: usize, b: usize| {
        let mut v: Vec<f64> = rounds
            .iter()
            .map(|r| r[a].as_secs_f64() / r[b].as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!();
    println!("| Server-side apply (embedded store, 1 client, 3 rounds of 3 s) | median p50 |");
    println!("|---|---|");
    for (label, i) in [
        ("GET one Foo", 0),
        ("APPLY, no change (resync; writes nothing)", 1),
        ("APPLY, a 1 KiB change", 2),
        ("MERGE PATCH, the same 1 KiB change", 3),
    ] {
        println!("| {label} | {} |", ms(med(i)));
    }
    println!("| no-op apply / GET (goal <= 2x) | {:.2}x |", ratio(1, 0));
    println!(
        "| 1 KiB apply / merge patch (goal <= 1.5x) | {:.2}x |",
        ratio(2, 3)
    );
}

/// Contract 0.2's reads, on the examples that use them: a Flunder create whose
/// admission (BanFlunder) lists 1,000 Fischers against a Fischer create (no reads),
/// and the devops `pipelineruns` subresource paging 100 of a pipeline's 10,000 runs.
/// `BENCH_FISCHERS=n` seeds n Fischers instead of 1,000; `BENCH_CONTRACT_ADMISSION_ONLY=1`
/// stops after the creates (no 10,000 runs to seed).
async fn contract() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = common::server::copy_examples(dir.path());
    for k in ["pipelines", "pipelineruns", "pipelinesummaries"] {
        let name = format!("devops-{k}");
        std::fs::copy(common::example(&name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    let (url, client) = serve_in_process(dir.path(), &plugins, true, &[]).await;
    let post = |path: String, body: Value| {
        let (c, url) = (client.clone(), url.clone());
        async move {
            let r = c
                .post(format!("{url}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        }
    };
    let fischers = "/apis/wardle.example.com/v1alpha1/fischers".to_string();
    let flunders = "/apis/wardle.example.com/v1beta1/namespaces/default/flunders".to_string();
    let seed: usize = std::env::var("BENCH_FISCHERS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    for i in 0..seed {
        post(fischers.clone(), json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Fischer",
            "metadata": {"name": format!("seed-{i}")}, "disallowedFlunders": [format!("banned-{i}"), "x"]})).await;
    }
    let flunders_storage =
        "/apis/wardle.example.com/v1alpha1/namespaces/default/flunders".to_string();
    let create = |path: String, kind: &'static str| {
        let (c, url) = (client.clone(), url.clone());
        move |n: usize| {
            let (c, url, path) = (c.clone(), url.clone(), path.clone());
            async move {
                let body = match kind {
                    "Fischer" => {
                        json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Fischer",
                        "metadata": {"name": format!("b-{n}")}})
                    }
                    "Flunder" => {
                        json!({"apiVersion": "wardle.example.com/v1beta1", "kind": "Flunder",
                        "metadata": {"name": format!("b-{n}")}})
                    }
                    _ => json!({"apiVersion": "wardle.example.com/v1alpha1", "kind": "Flunder",
                        "metadata": {"name": format!("s-{n}")}}),
                };
                let r = c
                    .post(format!("{url}{path}"))
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 201);
            }
        }
    };
    println!();
    println!("| Contract 0.2 (embedded store, 1 client, 3 s each, in one run) | throughput | p50 | p99 |");
    println!("|---|---|---|---|");
    // Flunders first: their admission reads exactly the 1,000 seeded Fischers.
    let flunder = load(1, 3, create(flunders.clone(), "Flunder")).await;
    let stored = load(1, 3, create(flunders_storage, "FlunderStorage")).await;
    let fischer = load(1, 3, create(fischers.clone(), "Fischer")).await;
    for (label, (tput, p50, p99)) in [
        ("CREATE Fischer (no admission reads)", fischer),
        (
            "CREATE Flunder as v1beta1 (BanFlunder lists 1,000 Fischers)",
            flunder,
        ),
        (
            "CREATE Flunder as v1alpha1, the storage version (no conversion)",
            stored,
        ),
    ] {
        println!("| {label} | {tput:.0}/s | {} | {} |", ms(p50), ms(p99));
    }
    println!(
        "| Flunder (v1beta1) / Fischer create p50 (goal <= 3x) | {:.2}x | | |",
        flunder.1.as_secs_f64() / fischer.1.as_secs_f64()
    );
    println!(
        "| Flunder (v1alpha1) / Fischer create p50 | {:.2}x | | |",
        stored.1.as_secs_f64() / fischer.1.as_secs_f64()
    );
    if std::env::var_os("BENCH_CONTRACT_ADMISSION_ONLY").is_some() {
        return;
    }

    let base = "/apis/devops.example.com/v1/namespaces/default";
    post(
        format!("{base}/pipelines"),
        json!({"apiVersion": "devops.example.com/v1", "kind": "Pipeline",
        "metadata": {"name": "build"}}),
    )
    .await;
    let seeded = Instant::now();
    for i in 0..10_000 {
        post(
            format!("{base}/pipelineruns"),
            json!({"apiVersion": "devops.example.com/v1", "kind": "PipelineRun",
            "metadata": {"name": format!("build-{i:05}")}, "spec": {"pipeline": "build"}}),
        )
        .await;
    }
    let seed_secs = seeded.elapsed().as_secs_f64();
    let page_url = format!("{url}{base}/pipelines/build/pipelineruns?limit=100");
    let (c, u) = (client.clone(), page_url.clone());
    let page = load(1, 3, move |_| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let r = c.get(&u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let v: Value = r.json().await.unwrap();
            assert_eq!(v["items"].as_array().unwrap().len(), 100);
        }
    })
    .await;
    let (c, u) = (
        client.clone(),
        format!("{url}{base}/pipelineruns?limit=100"),
    );
    let plain = load(1, 3, move |_| {
        let (c, u) = (c.clone(), u.clone());
        async move {
            let r = c.get(&u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            let _ = r.bytes().await.unwrap();
        }
    })
    .await;
    println!(
        "| pipelines/build/pipelineruns?limit=100 of 10,000 runs (goal p50 <= 5 ms) | {:.0}/s | {} | {} |",
        page.0,
        ms(page.1),
        ms(page.2)
    );
    println!(
        "| baseline: LIST pipelineruns?limit=100 (storage, no plugin read) | {:.0}/s | {} | {} |",
        plain.0,
        ms(plain.1),
        ms(plain.2)
    );
    println!(
        "\n(seeding 10,000 runs, each admitted with a read of its pipeline: {seed_secs:.1} s, {:.2} ms per create)",
        seed_secs * 1e3 / 10_000.0
    );
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// The three hellos: what a language costs, and what a request pays for it.
async fn langs() {
    let foo_v2 = json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
        "metadata": {"name": "bench", "namespace": "default", "labels": {"app": "bench"},
                     "annotations": {"note": "x".repeat(700)}},
        "spec": {"image": "nginx:1.27", "config": {"msg": "hello from the benchmark"}}});
    let req = request();
    println!();
    println!("| hello in | component | first compile | warm start (cache), median of 5 | one call (default), reused / fresh instance | CREATE's 3 calls, reused / fresh instance per call | GET as v1 (convert) | GET as Table (print) |");
    println!("|---|---|---|---|---|---|---|---|");
    for (label, wasm) in common::hellos() {
        let size = std::fs::metadata(&wasm).unwrap().len();
        let cache = tempfile::tempdir().unwrap();
        let engine = |reuse: u32| {
            PluginEngine::new(
                RuntimeLimits {
                    instance_reuse: reuse,
                    ..RuntimeLimits::default()
                },
                Some(cache.path().to_path_buf()),
            )
            .unwrap()
        };
        let t = Instant::now();
        let plugin = Plugin::load(&engine(1000), &wasm).unwrap();
        let first = t.elapsed();
        assert!(!plugin.from_cache);
        let warm = median(
            (0..5)
                .map(|_| {
                    let t = Instant::now();
                    let p = Plugin::load(&engine(1000), &wasm).unwrap();
                    assert!(p.from_cache);
                    t.elapsed()
                })
                .collect(),
        )
        .0;
        let create = |p: &Plugin| {
            let mut i = p.instance().unwrap();
            let d = i.default(foo_v2.clone()).unwrap();
            let d = i.prepare_for_create(&req, d).unwrap();
            i.validate_create(&req, &d).unwrap()
        };
        let n = 500;
        let (create_reused, _) = time(n, || create(&plugin));
        let (get_v1, _) = time(n, || {
            plugin
                .instance()
                .unwrap()
                .convert(std::slice::from_ref(&foo_v2), "v1")
                .unwrap()
        });
        let (get_table, _) = time(n, || {
            plugin
                .instance()
                .unwrap()
                .print(std::slice::from_ref(&foo_v2))
                .unwrap()
        });
        let fresh = Plugin::load(&engine(1), &wasm).unwrap();
        let call = |p: &Plugin| p.instance().unwrap().default(foo_v2.clone()).unwrap();
        let (call_reused, _) = time(n, || call(&plugin));
        let (call_fresh, _) = time(n, || call(&fresh));
        let (create_fresh, _) = time(n, || create(&fresh));
        println!(
            "| {label} | {:.1} MB | {} | {} | {} / {} | {} / {} | {} | {} |",
            size as f64 / 1e6,
            ms(first),
            ms(warm),
            us(call_reused),
            us(call_fresh),
            us(create_reused),
            us(create_fresh),
            us(get_v1),
            us(get_table)
        );
    }

    println!();
    println!("| 32 clients, HTTPS, one server per hello | rust | python | javascript |");
    println!("|---|---|---|---|");
    let ops = [
        "GET one Foo (v2, no hook)",
        "GET one Foo as v1 (convert)",
        "GET one Foo as Table (print)",
        "CREATE (default, prepare, validate)",
    ];
    let mut rows: Vec<Vec<f64>> = vec![Vec::new(); ops.len()];
    let mut churn = Vec::new();
    for (label, wasm) in common::hellos() {
        let dir = tempfile::tempdir().unwrap();
        let plugins = dir.path().join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        std::fs::copy(&wasm, plugins.join(wasm.file_name().unwrap())).unwrap();
        let (url, client) = serve_in_process(dir.path(), &plugins, true, &[]).await;
        let foos = format!("{url}/apis/hello.zeng.dev/v2/namespaces/default/foos");
        let r = client.post(&foos).json(&foo_v2).send().await.unwrap();
        assert_eq!(r.status(), 201, "{label}");
        let file = wasm.file_name().unwrap().to_string_lossy().into_owned();
        let rss_before = rss_kib();
        for (i, op) in ops.iter().enumerate() {
            let created = plugin_metric(
                &client,
                &url,
                "wasm_apiserver_plugin_instances_total",
                &file,
            )
            .await;
            let (c, foos) = (client.clone(), foos.clone());
            let op = *op;
            let (rate, _, _) = load(32, 3, move |n| {
                let (c, foos) = (c.clone(), foos.clone());
                async move {
                    let r = match op {
                        "GET one Foo (v2, no hook)" => c.get(format!("{foos}/bench")),
                        "GET one Foo as v1 (convert)" => {
                            c.get(foos.replace("/v2/", "/v1/") + "/bench")
                        }
                        "GET one Foo as Table (print)" => c
                            .get(format!("{foos}/bench"))
                            .header("accept", "application/json;as=Table;v=v1;g=meta.k8s.io"),
                        _ => c
                            .post(&foos)
                            .json(&json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                            "metadata": {"name": format!("c-{n}")}, "spec": {"image": "busybox"}})),
                    }
                    .send()
                    .await
                    .unwrap();
                    assert!(r.status().is_success(), "{op}: {}", r.status());
                    let _ = r.bytes().await.unwrap();
                }
            })
            .await;
            rows[i].push(rate);
            let created = plugin_metric(
                &client,
                &url,
                "wasm_apiserver_plugin_instances_total",
                &file,
            )
            .await
                - created;
            churn.push(format!("{label} {op}: {created} instances created"));
        }
        churn.push(format!(
            "{label}: bench process RSS +{} MiB over its loads",
            (rss_kib() - rss_before) / 1024
        ));
    }
    for (op, rates) in ops.iter().zip(&rows) {
        println!(
            "| {op} | {:.0}/s | {:.0}/s ({:.0}%) | {:.0}/s ({:.0}%) |",
            rates[0],
            rates[1],
            rates[1] / rates[0] * 100.0,
            rates[2],
            rates[2] / rates[0] * 100.0
        );
    }
    println!();
    for line in churn {
        println!("- {line}");
    }
}

/// A per-plugin counter from `/metrics`.
async fn plugin_metric(client: &reqwest::Client, url: &str, name: &str, file: &str) -> f64 {
    let text = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && l.contains(&format!("plugin=\"{file}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn rss_kib() -> i64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with("VmRSS"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}
