//! Serving certificates: given files, or a self-signed CA and serving certificate
//! generated into `--cert-dir` (kept across restarts, as k8s.io/apiserver does).

use anyhow::Context as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Where the serving certificate came from, and the CA clients should trust.
#[derive(Clone, Debug)]
pub struct ServingCert {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    /// PEM of the CA that signed the serving certificate (for kubeconfig and APIService).
    pub ca_pem: String,
}

/// Use `cert`/`key` when given; otherwise generate into `cert_dir` once.
pub fn serving_cert(
    cert: Option<&Path>,
    key: Option<&Path>,
    cert_dir: &Path,
    hosts: &[String],
) -> anyhow::Result<ServingCert> {
    if let (Some(cert), Some(key)) = (cert, key) {
        let ca_pem =
            std::fs::read_to_string(cert).with_context(|| format!("reading {}", cert.display()))?;
        return Ok(ServingCert {
            cert_file: cert.into(),
            key_file: key.into(),
            ca_pem,
        });
    }
    let cert_file = cert_dir.join("apiserver.crt");
    let key_file = cert_dir.join("apiserver.key");
    let ca_file = cert_dir.join("ca.crt");
    if !(cert_file.exists() && key_file.exists() && ca_file.exists()) {
        std::fs::create_dir_all(cert_dir)
            .with_context(|| format!("creating {}", cert_dir.display()))?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "wasm-apiserver-ca");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(hosts.to_vec())?;
        params
            .distinguished_name
            .push(DnType::CommonName, "wasm-apiserver");
        let cert = params.signed_by(&key, &issuer)?;
        std::fs::write(&ca_file, ca_cert.pem())?;
        std::fs::write(&cert_file, format!("{}{}", cert.pem(), ca_cert.pem()))?;
        write_private(&key_file, &key.serialize_pem())?;
        tracing::info!(dir = %cert_dir.display(), "generated a self-signed serving certificate");
    }
    Ok(ServingCert {
        cert_file,
        key_file,
        ca_pem: std::fs::read_to_string(&ca_file)?,
    })
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())
}

/// A rustls server config offering HTTP/2 and HTTP/1.1, serving the certificate files
/// (reloaded when they change), and asking for client certificates when
/// authentication is on.
pub fn server_config(
    cert: &ServingCert,
    client_auth: bool,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let resolver = ReloadingCert::new(cert, provider.clone())?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match client_auth {
        true => builder.with_client_cert_verifier(crate::auth::tls_verifier(provider)),
        false => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn load_certified_key(
    cert: &ServingCert,
    provider: &rustls::crypto::CryptoProvider,
) -> anyhow::Result<Arc<rustls::sign::CertifiedKey>> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut std::io::BufReader::new(
        std::fs::File::open(&cert.cert_file)
            .with_context(|| format!("opening {}", cert.cert_file.display()))?,
    ))
    .collect::<Result<_, _>>()
    .with_context(|| format!("reading certificates from {}", cert.cert_file.display()))?;
    anyhow::ensure!(
        !certs.is_empty(),
        "no certificate in {}",
        cert.cert_file.display()
    );
    let key: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut std::io::BufReader::new(
        std::fs::File::open(&cert.key_file)
            .with_context(|| format!("opening {}", cert.key_file.display()))?,
    ))?
    .with_context(|| format!("no private key in {}", cert.key_file.display()))?;
    let key = rustls::sign::CertifiedKey::from_der(certs, key, provider)
        .context("the serving certificate and key do not match")?;
    Ok(Arc::new(key))
}

/// The serving certificate, re-read when its files change (checked every
/// [`RELOAD_EVERY`]); a pair that does not load keeps the previous one serving.
#[derive(Debug)]
struct ReloadingCert {
    current: std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>,
}

/// How often the certificate files are checked for changes.
pub const RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

impl ReloadingCert {
    fn new(
        cert: &ServingCert,
        provider: Arc<rustls::crypto::CryptoProvider>,
    ) -> anyhow::Result<Arc<Self>> {
        let this = Arc::new(ReloadingCert {
            current: std::sync::RwLock::new(load_certified_key(cert, &provider)?),
        });
        let stamp = |c: &ServingCert| {
            [&c.cert_file, &c.key_file]
                .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        };
        let (weak, files) = (Arc::downgrade(&this), cert.clone());
        let mut seen = stamp(&files);
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                loop {
                    tokio::time::sleep(RELOAD_EVERY).await;
                    let Some(this) = weak.upgrade() else { return };
                    let now = stamp(&files);
                    if now == seen {
                        continue;
                    }
                    match load_certified_key(&files, &provider) {
                        Ok(k) => {
                            *crate::sync::write(&this.current) = k;
                            seen = now;
                            tracing::info!(cert = %files.cert_file.display(), "reloaded the serving certificate");
                        }
                        // Perhaps half-written: try again on the next tick.
                        Err(e) => tracing::warn!(error = %format!("{e:#}"), "the serving certificate files changed but do not load; still serving the previous one"),
                    }
                }
            });
        }
        Ok(this)
    }
}

impl rustls::server::ResolvesServerCert for ReloadingCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}
