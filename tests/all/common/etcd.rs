//! A real etcd (Debian's `etcd-server`) on free loopback ports with its data in a
//! temporary folder; stopped when dropped. `make test` installs it when missing.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Etcd {
    child: Option<Child>,
    pub dir: tempfile::TempDir,
    client_port: u16,
    peer_port: u16,
    /// Plain-HTTP `/health` and `/metrics`, whatever the client URL's scheme.
    metrics_port: u16,
    tls: bool,
    /// More flags for etcd.
    extra: Vec<String>,
}

/// Files of an etcd that serves TLS and requires client certificates.
pub struct EtcdTls {
    pub ca: std::path::PathBuf,
    pub client_cert: std::path::PathBuf,
    pub client_key: std::path::PathBuf,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// Start a one-member cluster and wait until it answers.
    pub fn start() -> Etcd {
        Self::start_with(&[])
    }

    /// [`Etcd::start`] with more flags (`--quota-backend-bytes=...`).
    pub fn start_with(flags: &[&str]) -> Etcd {
        let mut etcd = Self::new(false);
        etcd.extra = flags.iter().map(|f| f.to_string()).collect();
        etcd.resume();
        etcd
    }

    /// [`Etcd::start`] serving TLS with a certificate from a fresh CA and requiring
    /// client certificates from that CA.
    pub fn start_tls() -> (Etcd, EtcdTls) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let mut etcd = Self::new(true);
        let d = etcd.dir.path().to_path_buf();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        std::fs::write(d.join("ca.crt"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        for (name, sans) in [
            ("server", vec!["127.0.0.1".to_string(), "localhost".into()]),
            ("client", vec!["wasm-apiserver".into()]),
        ] {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(sans)
                .unwrap()
                .signed_by(&key, &issuer)
                .unwrap();
            std::fs::write(d.join(format!("{name}.crt")), cert.pem()).unwrap();
            std::fs::write(d.join(format!("{name}.key")), key.serialize_pem()).unwrap();
        }
        etcd.resume();
        let files = EtcdTls {
            ca: d.join("ca.crt"),
            client_cert: d.join("client.crt"),
            client_key: d.join("client.key"),
        };
        (etcd, files)
    }

    fn new(tls: bool) -> Etcd {
        Etcd {
            child: None,
            dir: tempfile::tempdir().unwrap(),
            client_port: free_port(),
            peer_port: free_port(),
            metrics_port: free_port(),
            tls,
            extra: Vec::new(),
        }
    }

    /// The client URL, for `--etcd-servers`.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://127.0.0.1:{}", self.client_port)
    }

    /// Start (again) on the same ports and data.
    pub fn resume(&mut self) {
        assert!(self.child.is_none(), "etcd is already running");
        let peer = format!("http://127.0.0.1:{}", self.peer_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("etcd.log"))
            .unwrap();
        let d = self.dir.path();
        let mut cmd = Command::new("etcd");
        if self.tls {
            cmd.arg(format!("--cert-file={}", d.join("server.crt").display()))
                .arg(format!("--key-file={}", d.join("server.key").display()))
                .arg(format!("--trusted-ca-file={}", d.join("ca.crt").display()))
                .arg("--client-cert-auth");
        }
        let child = cmd
            .arg("--name=test")
            .arg(format!(
                "--data-dir={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--listen-client-urls={}", self.url()))
            .arg(format!("--advertise-client-urls={}", self.url()))
            .arg(format!("--listen-peer-urls={peer}"))
            .arg(format!("--initial-advertise-peer-urls={peer}"))
            .arg(format!("--initial-cluster=test={peer}"))
            .arg(format!(
                "--listen-metrics-urls=http://127.0.0.1:{}",
                self.metrics_port
            ))
            .arg("--log-level=warn")
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("etcd is installed (make test installs Debian's etcd-server)");
        self.child = Some(child);
        self.wait_ready(self.dir.path());
    }

    /// Freeze the server (SIGSTOP): connections stay open and nothing answers, as a
    /// hung member looks to clients. [`Etcd::unpause`] thaws it.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    pub fn unpause(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self
            .child
            .as_ref()
            .expect("etcd is running")
            .id()
            .to_string();
        let ok = Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {pid}");
    }

    /// Whether etcd's `/health` says so.
    pub fn healthy(&self) -> bool {
        use std::io::{Read, Write};
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.metrics_port)) else {
            return false;
        };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
        let req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
        let mut body = String::new();
        conn.write_all(req.as_bytes()).is_ok()
            && conn.read_to_string(&mut body).is_ok()
            && body.contains("\"health\":\"true\"")
    }

    fn wait_ready(&self, dir: &Path) {
        let started = Instant::now();
        while !self.healthy() {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "etcd did not start: {}",
                std::fs::read_to_string(dir.join("etcd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the server (SIGKILL: as a crash or a partition looks to clients); the data
    /// stays for [`Etcd::resume`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}
