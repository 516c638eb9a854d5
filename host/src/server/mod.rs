//! Start-up: flags, plugins, storage, TLS, the listener and graceful shutdown.

pub mod cli;
pub mod manifests;
pub mod reload;
pub mod store_cli;
pub mod tls;

use anyhow::Context as _;
use clap::Parser;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::http::{router, AppState};
use crate::plugin::{PluginEngine, PluginRegistry, RuntimeLimits};
use crate::registry::Registry;
use crate::storage::embedded::EmbeddedStore;
use crate::storage::etcd::{EtcdOptions, EtcdStore};
use crate::storage::Storage;
use crate::watch::WatchSettings;

/// Command-line flags; names follow k8s.io/apiserver's where one exists.
/// Where objects are kept (`--storage`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageBackend {
    /// A local database in `--data-dir`: the default, for one replica.
    #[default]
    Embedded,
    /// The etcd cluster of `--etcd-servers`, shared by replicas.
    Etcd,
}

#[derive(Parser, Debug, Clone)]
#[command(
    name = "wasm-apiserver",
    version,
    about = "A Kubernetes aggregated apiserver whose resources are WebAssembly components",
    // A flag given twice takes its last value, as kube-apiserver's flags do.
    args_override_self = true
)]
pub struct Flags {
    /// Folder of plugin components (*.wasm).
    #[arg(long, default_value = "plugins")]
    pub plugin_dir: PathBuf,
    /// Storage backend: `embedded` (a local database in --data-dir) or `etcd`.
    #[arg(long, value_enum, default_value_t = StorageBackend::Embedded)]
    pub storage: StorageBackend,
    /// etcd servers to connect to, comma-separated (`--storage etcd`).
    #[arg(long, value_delimiter = ',', default_value = "http://127.0.0.1:2379")]
    pub etcd_servers: Vec<String>,
    /// Prefix of every key in etcd.
    #[arg(long, default_value = "/registry")]
    pub etcd_prefix: String,
    /// CA bundle that signs etcd's serving certificate (https servers).
    #[arg(long)]
    pub etcd_cafile: Option<PathBuf>,
    /// Client certificate for etcd (with --etcd-keyfile).
    #[arg(long)]
    pub etcd_certfile: Option<PathBuf>,
    #[arg(long)]
    pub etcd_keyfile: Option<PathBuf>,
    /// Deadline of one etcd request: past it the request fails with 503.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub etcd_request_timeout: Duration,
    /// Compact etcd's history at this interval (e.g. 5m); 0 never does, the default,
    /// for an etcd that kube-apiserver or another replica already compacts.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub etcd_compaction_interval: Duration,
    /// Folder for the embedded store and the precompiled plugin cache.
    #[arg(long, default_value = "data")]
    pub data_dir: PathBuf,
    /// Bytes the embedded store's objects may take (keys and values); past it, writes
    /// that add bytes are refused ("database space exceeded"), reads and deletes are
    /// served. etcd's default backend quota.
    #[arg(long, default_value_t = crate::storage::embedded::space::DEFAULT_QUOTA_BYTES)]
    pub store_quota_bytes: u64,
    /// Check every page and value of the embedded store at start (the quick check of
    /// its structure always runs).
    #[arg(long)]
    pub store_verify_full: bool,
    /// Take a snapshot of the embedded store at this interval (e.g. 1h); 0, the
    /// default, never does.
    #[arg(long, default_value = "0", value_parser = parse_duration)]
    pub store_snapshot_interval: Duration,
    /// Where scheduled snapshots go (default: DATA_DIR/snapshots).
    #[arg(long)]
    pub store_snapshot_dir: Option<PathBuf>,
    /// Scheduled snapshots kept; older ones are removed.
    #[arg(long, default_value_t = 5)]
    pub store_snapshot_retention: usize,
    /// Bytes a second snapshots are written at, scheduled or over the API, so that
    /// requests keep most of the machine (0: no limit).
    #[arg(long, default_value_t = crate::storage::embedded::snapshot::DEFAULT_RATE)]
    pub store_snapshot_rate: u64,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind_address: String,
    /// HTTPS port.
    #[arg(long, default_value_t = 6443)]
    pub secure_port: u16,
    /// Where a self-signed certificate is generated when none is given.
    #[arg(long)]
    pub cert_dir: Option<PathBuf>,
    #[arg(long)]
    pub tls_cert_file: Option<PathBuf>,
    #[arg(long)]
    pub tls_private_key_file: Option<PathBuf>,
    /// Development mode: no authentication or authorization; hot reload on.
    #[arg(long)]
    pub dev: bool,
    /// CA bundle for client certificates: user = CN, groups = O.
    #[arg(long)]
    pub client_ca_file: Option<PathBuf>,
    /// CA bundle of the front proxy (kube-apiserver's --proxy-client-cert-file): only
    /// connections with a certificate from it may name the user in request headers.
    #[arg(long)]
    pub requestheader_client_ca_file: Option<PathBuf>,
    /// Common names the front proxy's certificate may have (empty: any from the CA).
    #[arg(long, value_delimiter = ',')]
    pub requestheader_allowed_names: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-User")]
    pub requestheader_username_headers: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Group")]
    pub requestheader_group_headers: Vec<String>,
    #[arg(long, value_delimiter = ',', default_value = "X-Remote-Extra-")]
    pub requestheader_extra_headers_prefix: Vec<String>,
    /// kubeconfig of the cluster this server is aggregated into, for plugins' reads of
    /// its kinds (pods, configmaps, CRD objects): the server follows each kind that a
    /// plugin declares in `reads` and no plugin here serves. In a pod, the in-cluster
    /// configuration is used when this is not given.
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// The kind whose objects are the cluster's namespaces, for NamespaceLifecycle
    /// admission (with an upstream cluster): `[group/]version/resource`.
    #[arg(long, default_value = "v1/namespaces", value_parser = parse_resource_ref)]
    pub namespace_source: crate::api::resource::ResourceRef,
    /// Admission plugins to turn off, as kube-apiserver's flag: `NamespaceLifecycle`
    /// (on whenever there is an upstream cluster) is the one the host runs itself.
    #[arg(long, value_delimiter = ',', value_parser = ["NamespaceLifecycle"])]
    pub disable_admission_plugins: Vec<String>,
    /// kubeconfig of the cluster that reviews bearer tokens (TokenReview); in a pod,
    /// the in-cluster configuration is used when this is not given.
    #[arg(long)]
    pub authentication_kubeconfig: Option<PathBuf>,
    /// kubeconfig of the cluster that authorizes requests (SubjectAccessReview).
    #[arg(long)]
    pub authorization_kubeconfig: Option<PathBuf>,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authentication_token_webhook_cache_ttl: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_authorized_ttl: Duration,
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub authorization_webhook_cache_unauthorized_ttl: Duration,
    /// Deadline of one TokenReview or SubjectAccessReview; past it the request fails
    /// closed (401 or 500), never hangs.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub delegation_timeout: Duration,
    /// Reload plugins when files in --plugin-dir are added, changed or removed (on with
    /// --dev).
    #[arg(long)]
    pub watch_plugins: bool,
    /// Write a kubeconfig for this server here once it listens.
    #[arg(long)]
    pub write_kubeconfig: Option<PathBuf>,
    /// Per-hook deadline in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub plugin_deadline_ms: u64,
    /// Code generator for plugins: cranelift (optimized) or winch (compiles ~4-5x
    /// faster, runs slower; for a fast edit-and-reload loop).
    #[arg(long, value_enum, default_value_t = crate::plugin::Compiler::Cranelift)]
    pub plugin_compiler: crate::plugin::Compiler,
    /// Hook calls one plugin instance may serve before it is dropped; 1 gives every
    /// call a fresh instance (strict isolation, at the cost BENCHMARKS.md measures for
    /// big guests). An instance is never reused after a trap, a missed deadline or a
    /// malformed result.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    pub plugin_instance_reuse: u32,
    /// Idle instances each plugin keeps for reuse (default: twice the CPUs, 4 to
    /// 16). Each holds the memory its guest touched (BENCHMARKS.md has the figures).
    #[arg(long)]
    pub plugin_pool_size: Option<usize>,
    /// Linear memory cap per plugin instance, in MiB (a plugin's settings file may
    /// lower it for that plugin).
    #[arg(long, default_value_t = 64)]
    pub plugin_memory_mib: usize,
    /// Hook calls of one plugin running at once; more wait up to the hook deadline,
    /// then answer 429 (a plugin's settings file may change it).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..))]
    pub plugin_max_concurrent: u32,
    /// Log lines per second one plugin may write; the rest are dropped and counted
    /// (0: no limit).
    #[arg(long, default_value_t = 100)]
    pub plugin_log_lines_per_second: u32,
    /// Hook failures (traps, missed deadlines, out of memory) within
    /// --quarantine-window that quarantine a plugin build: its kind then serves only
    /// reads in the storage version and deletes until a new build is loaded (0: never).
    #[arg(long, default_value_t = 5)]
    pub quarantine_threshold: u32,
    /// The window --quarantine-threshold counts failures in.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub quarantine_window: Duration,
    /// Whether a new plugin build must pass the upgrade gate (stored objects replayed
    /// through it) before it replaces the serving one: enforce, or skip for a
    /// deliberate break.
    #[arg(long, value_enum, default_value_t = crate::plugin::GateMode::Enforce)]
    pub upgrade_gate: crate::plugin::GateMode,
    /// How long the upgrade gate may replay objects; past it, the objects checked so
    /// far are the sample.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub upgrade_gate_budget: Duration,
    /// Events kept per resource for watchers resuming from a resourceVersion; older
    /// ones get 410 Expired and relist.
    #[arg(long, default_value_t = 1000)]
    pub watch_cache_window: usize,
    /// Events queued for one watcher before it is closed as too slow.
    #[arg(long, default_value_t = 1000)]
    pub watch_queue: usize,
    /// Seconds between BOOKMARK events for watchers that allow them.
    #[arg(long, default_value_t = 60)]
    pub watch_bookmark_seconds: u64,
    /// A watch without timeoutSeconds lasts between this and twice this many seconds
    /// (drawn at random, as kube-apiserver does, so that watches spread over replicas).
    #[arg(long, default_value_t = 1800)]
    pub min_request_timeout: u64,
    /// Longest time a non-watch request may take before it is answered 504 Timeout; a
    /// request's `timeout` query parameter may only shorten it.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub request_timeout: Duration,
}

/// A duration as kube's flags take it (`500ms`, `2s`, `1m0s`, Go's syntax), or a bare
/// number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let secs = match s.parse::<f64>() {
        Ok(n) => n,
        Err(_) => crate::api::duration::parse_go_duration(s)?,
    };
    Duration::try_from_secs_f64(secs).map_err(|_| format!("{s:?} is not a duration of 0 or more"))
}

/// `[group/]version/resource`, e.g. `v1/namespaces` or `example.com/v1/widgets`.
fn parse_resource_ref(s: &str) -> Result<crate::api::resource::ResourceRef, String> {
    let parts: Vec<&str> = s.split('/').collect();
    let (group, version, resource) = match parts.as_slice() {
        [v, r] => ("", *v, *r),
        [g, v, r] => (*g, *v, *r),
        _ => return Err(format!("{s:?} is not [group/]version/resource")),
    };
    Ok(crate::api::resource::ResourceRef {
        group: group.into(),
        version: version.into(),
        resource: resource.into(),
    })
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let defaults = RuntimeLimits::default();
    let limits = RuntimeLimits {
        call_deadline: Duration::from_millis(flags.plugin_deadline_ms),
        memory_bytes: flags.plugin_memory_mib << 20,
        compiler: flags.plugin_compiler,
        instance_reuse: flags.plugin_instance_reuse,
        pool_size: flags.plugin_pool_size.unwrap_or(defaults.pool_size).max(1),
        max_concurrent: flags.plugin_max_concurrent as usize,
        log_lines_per_second: flags.plugin_log_lines_per_second,
        quarantine: crate::plugin::QuarantinePolicy {
            threshold: flags.quarantine_threshold,
            window: flags.quarantine_window,
        },
        upgrade_gate: flags.upgrade_gate,
        ..defaults
    };
    let engine = PluginEngine::new(limits, Some(flags.data_dir.join("plugin-cache")))?;
    let plugins = Arc::new(PluginRegistry::new(engine));
    let catalog = tokio::task::block_in_place(|| plugins.load_dir(&flags.plugin_dir))?;
    // Compiling plugins (a first start, or a changed file) leaves cranelift's working
    // memory in malloc's free lists: hand it back to the OS (idle RSS halves; the
    // figure is in BENCHMARKS.md).
    // SAFETY: malloc_trim only releases free memory; it has no preconditions.
    #[cfg(target_os = "linux")]
    unsafe {
        libc::malloc_trim(0);
    }
    let storage: Arc<dyn Storage> = match flags.storage {
        StorageBackend::Etcd => Arc::new(
            EtcdStore::connect(&EtcdOptions {
                servers: flags.etcd_servers.clone(),
                prefix: flags.etcd_prefix.clone(),
                ca_file: flags.etcd_cafile.clone(),
                cert_file: flags.etcd_certfile.clone(),
                key_file: flags.etcd_keyfile.clone(),
                request_timeout: flags.etcd_request_timeout,
                compaction_interval: Some(flags.etcd_compaction_interval).filter(|d| !d.is_zero()),
            })
            .await?,
        ),
        StorageBackend::Embedded => {
            let options = crate::storage::embedded::Options {
                quota_bytes: flags.store_quota_bytes,
                verify_full: flags.store_verify_full,
                snapshot_rate: flags.store_snapshot_rate,
            };
            let dir = flags.data_dir.join("store");
            let store = Arc::new(tokio::task::block_in_place(|| {
                EmbeddedStore::open_with(&dir, &options)
            })?);
            if !flags.store_snapshot_interval.is_zero() {
                store_cli::schedule_snapshots(
                    store.clone(),
                    flags.store_snapshot_interval,
                    flags
                        .store_snapshot_dir
                        .clone()
                        .unwrap_or_else(|| flags.data_dir.join("snapshots")),
                    flags.store_snapshot_retention,
                );
            }
            store
        }
    };
    let watch = WatchSettings {
        window: flags.watch_cache_window.max(1),
        watcher_queue: flags.watch_queue.max(1),
        bookmark_interval: Duration::from_secs(flags.watch_bookmark_seconds.max(1)),
        ..WatchSettings::default()
    };
    let upstream = crate::auth::setup::cluster_client(flags.kubeconfig.as_deref(), "--kubeconfig")
        .await?
        .map(|client| Arc::new(crate::registry::Upstream::new(client)));
    if let Some(u) = &upstream {
        u.follow(&catalog);
    }
    let namespaces = upstream
        .as_ref()
        .filter(|_| {
            !flags
                .disable_admission_plugins
                .iter()
                .any(|p| p == "NamespaceLifecycle")
        })
        .map(|u| {
            u.follow_namespaces(&flags.namespace_source);
            flags.namespace_source.clone()
        });
    let registry = Registry::new(plugins, storage, watch, upstream, namespaces);
    registry.set_upgrade_gate_budget(flags.upgrade_gate_budget);
    // Start every resource's watch cache now, as kube-apiserver does: a client that
    // lists and then watches from the list's resourceVersion must find it inside the
    // cache's window, which begins when the cache loads.
    for plugin in catalog.plugins.iter().filter(|p| !p.resource.is_computed()) {
        // The upgrade gate for a file changed while the server was down, and a
        // storage version migration when the version changed (in the background).
        registry.reconcile_build(plugin, true).await;
        registry.watch.get(plugin, &registry.storage);
    }
    let _hot_reload = match flags.dev || flags.watch_plugins {
        true => Some(reload::watch_plugins(&flags.plugin_dir, registry.clone())?),
        false => None,
    };
    let auth = match flags.dev {
        true => None,
        false => Some(Arc::new(
            crate::auth::setup::setup(&crate::auth::setup::AuthOptions {
                client_ca_file: flags.client_ca_file.clone(),
                requestheader_client_ca_file: flags.requestheader_client_ca_file.clone(),
                requestheader_allowed_names: flags.requestheader_allowed_names.clone(),
                requestheader_username_headers: flags.requestheader_username_headers.clone(),
                requestheader_group_headers: flags.requestheader_group_headers.clone(),
                requestheader_extra_headers_prefix: flags
                    .requestheader_extra_headers_prefix
                    .clone(),
                authentication_kubeconfig: flags.authentication_kubeconfig.clone(),
                authorization_kubeconfig: flags.authorization_kubeconfig.clone(),
                token_cache_ttl: flags.authentication_token_webhook_cache_ttl,
                authorized_ttl: flags.authorization_webhook_cache_authorized_ttl,
                unauthorized_ttl: flags.authorization_webhook_cache_unauthorized_ttl,
                timeout: flags.delegation_timeout,
            })
            .await?,
        )),
    };
    let client_auth = auth.is_some();
    // kube-apiserver's NamespaceLifecycle admission needs the cluster's namespaces:
    // without an upstream cluster the server says so rather than seeming to check.
    match &registry.namespaces {
        _ if flags
            .disable_admission_plugins
            .iter()
            .any(|p| p == "NamespaceLifecycle") =>
        {
            tracing::info!("NamespaceLifecycle admission is off (--disable-admission-plugins)")
        }
        Some(source) => tracing::info!(
            namespaces = %source,
            "NamespaceLifecycle admission is on: creates in missing or terminating namespaces are refused"
        ),
        None => tracing::warn!(
            "NamespaceLifecycle admission is off: no source of the cluster's namespaces, so a \
             create in a namespace that does not exist (or is terminating) is accepted; \
             namespace names must still be RFC 1123 labels"
        ),
    }
    let state = AppState::new(
        registry,
        auth,
        Duration::from_secs(flags.min_request_timeout.max(1)),
        flags.request_timeout,
    );
    let app = router(state);

    let cert_dir = flags
        .cert_dir
        .clone()
        .unwrap_or_else(|| flags.data_dir.join("certs"));
    let hosts = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        flags.bind_address.clone(),
    ];
    let cert = tls::serving_cert(
        flags.tls_cert_file.as_deref(),
        flags.tls_private_key_file.as_deref(),
        &cert_dir,
        &hosts,
    )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls::server_config(&cert, client_auth)?);
    let addr: SocketAddr = format!("{}:{}", flags.bind_address, flags.secure_port)
        .parse()
        .context("--bind-address/--secure-port")?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, plugins = catalog.plugins.len(), failed = catalog.errors.len(), "serving");
    if let Some(path) = &flags.write_kubeconfig {
        write_kubeconfig(path, &local, &cert.ca_pem)?;
        println!("kubectl --kubeconfig {} api-resources", path.display());
    }

    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown_signal());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => { tracing::warn!(error = %e, "accept failed"); continue; }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        // kube-apiserver's --http2-max-streams-per-connection default: informers
        // multiplex many watches over one connection.
        builder.http2().max_concurrent_streams(1000);
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match acceptor.accept(stream).await {
                Ok(t) => t,
                Err(e) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
            };
            // The client's certificate chain, for authentication (checked once per
            // connection, on its first request).
            let certs = tls.get_ref().1.peer_certificates().map(|chain| {
                Arc::new(crate::auth::PeerCerts::new(
                    chain.iter().map(|c| c.clone().into_owned()).collect(),
                ))
            });
            let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                app,
                move |mut req: hyper::Request<hyper::body::Incoming>| {
                    if let Some(p) = &certs {
                        req.extensions_mut().insert(p.clone());
                    }
                    req
                },
            ));
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::info!("shutting down: draining connections (up to 10 s)");
    tokio::select! {
        _ = graceful.shutdown() => {},
        _ = tokio::time::sleep(Duration::from_secs(10)) => tracing::warn!("connections still open after 10 s"),
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = term.recv() => {},
    }
}

/// A kubeconfig that trusts the server's CA; in `--dev` any credentials are accepted.
fn write_kubeconfig(path: &std::path::Path, addr: &SocketAddr, ca_pem: &str) -> anyhow::Result<()> {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: wasm-apiserver\n  cluster:\n    server: https://{addr}\n    certificate-authority-data: {ca}\ncontexts:\n- name: wasm-apiserver\n  context:\n    cluster: wasm-apiserver\n    user: dev\n    namespace: default\ncurrent-context: wasm-apiserver\nusers:\n- name: dev\n  user:\n    token: dev\n"
    );
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, text).with_context(|| format!("writing the kubeconfig {}", path.display()))
}
