//! Start the real `wasm-apiserver` binary on a free loopback port, for tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The server binary under test, built by Cargo from the current sources.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_wasm-apiserver-e2e")
}

/// Copy the example plugins into `dir/plugins`; returns that folder.
pub fn copy_examples(dir: &Path) -> PathBuf {
    let plugins = dir.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for p in ["hello", "wardle-flunder", "wardle-fischer"] {
        std::fs::copy(super::example(p), plugins.join(format!("{p}.wasm"))).unwrap();
    }
    plugins
}

/// A fresh folder whose `plugins` holds these components, each as `<name>.wasm`:
/// what `Server::start_in` serves.
pub fn with_plugins(files: &[(PathBuf, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for (path, name) in files {
        std::fs::copy(path, plugins.join(format!("{name}.wasm"))).unwrap();
    }
    dir
}

/// The server URL in a kubeconfig the server wrote.
pub fn server_url(kubeconfig: &Path) -> String {
    std::fs::read_to_string(kubeconfig)
        .unwrap()
        .lines()
        .find_map(|l| l.trim().strip_prefix("server: "))
        .unwrap()
        .to_string()
}

pub struct Server {
    child: Child,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
}

impl Server {
    /// Serve the example plugins from a fresh data folder.
    pub fn start() -> Server {
        Self::start_with(&[])
    }

    /// [`Server::start`] with extra flags.
    pub fn start_with(flags: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        copy_examples(dir.path());
        Self::start_in_with(dir, flags)
    }

    /// Serve `dir/plugins` with data in `dir/data` (reusing what is there).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Self::start_in_with(dir, &[])
    }

    pub fn start_in_with(dir: tempfile::TempDir, flags: &[&str]) -> Server {
        Self::launch(dir, true, flags)
    }

    /// Serve `dir/plugins` without `--dev`: authentication and authorization on, as
    /// `flags` configure them.
    pub fn start_secure(dir: tempfile::TempDir, flags: &[&str]) -> Server {
        Self::launch(dir, false, flags)
    }

    fn launch(dir: tempfile::TempDir, dev: bool, flags: &[&str]) -> Server {
        let kubeconfig = dir.path().join("kubeconfig");
        let _ = std::fs::remove_file(&kubeconfig);
        let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
        let child = Command::new(binary())
            .args(dev.then_some("--dev"))
            .args(["--secure-port", "0", "--bind-address", "127.0.0.1"])
            // Relative folders, as `make run` passes them.
            .current_dir(dir.path())
            .args(["--plugin-dir", "plugins", "--data-dir", "data"])
            .arg("--write-kubeconfig")
            .arg(&kubeconfig)
            .args(flags)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start wasm-apiserver");
        let started = Instant::now();
        let mut child = child;
        while !kubeconfig.exists() {
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the server exited ({status}): {}",
                    std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(180),
                "server did not start: {}",
                std::fs::read_to_string(dir.path().join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(50));
        let url = server_url(&kubeconfig);
        Server {
            child,
            dir,
            kubeconfig,
            url,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Run kubectl against this server; returns (success, stdout, stderr).
    pub fn kubectl(&self, args: &[&str]) -> (bool, String, String) {
        self.kubectl_stdin(args, None)
    }

    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
        use std::io::Write;
        let mut cmd = Command::new("kubectl");
        cmd.arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl is installed");
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// kubectl that must succeed; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let (ok, out, err) = self.kubectl(args);
        assert!(ok, "kubectl {args:?} failed: {err}\n{out}");
        out
    }

    /// A reqwest client trusting the server's CA.
    pub fn client(&self) -> reqwest::Client {
        let ca = std::fs::read(self.path().join("data/certs/ca.crt")).unwrap();
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
            .build()
            .unwrap()
    }

    /// A kube-rs client from the kubeconfig the server wrote.
    pub async fn kube_client(&self) -> kube::Client {
        let kubeconfig = kube::config::Kubeconfig::read_from(&self.kubeconfig).unwrap();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .unwrap();
        kube::Client::try_from(config).unwrap()
    }

    /// The body of a GET of `path` (e.g. `/readyz?verbose`), whatever its status.
    pub async fn text(&self, path: &str) -> String {
        self.client()
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The sample of `/metrics` whose line starts with `series` (a name and labels,
    /// e.g. `x{plugin="a.wasm"`), if any.
    pub async fn sample(&self, series: &str) -> Option<f64> {
        let text = self.text("/metrics").await;
        text.lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
    }

    /// A counter or gauge from `/metrics` for one resource.
    pub async fn metric(&self, name: &str, resource: &str) -> u64 {
        let text = self.text("/metrics").await;
        let prefix = format!("{name}{{");
        text.lines()
            .filter(|l| l.starts_with(&prefix) && l.contains(&format!("resource=\"{resource}\"")))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    }

    pub fn stop(mut self) -> tempfile::TempDir {
        unsafe { libc_kill(self.child.id() as i32, 15) };
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }

    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
