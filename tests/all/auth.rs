//! Delegated authentication and authorization against the real binary, with this test
//! acting as the aggregator (front-proxy client certificates from rcgen) and a stand-in
//! kube-apiserver for TokenReview and SubjectAccessReview (tests/common/kube_standin.rs).

use crate::common::certs::{ca, client_cert, Ca};
use crate::common::kube_standin::{self, write_kubeconfig};
use crate::common::server::Server;
use rcgen::{CertificateParams, KeyPair};
use reqwest::StatusCode;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

const FOOS: &str = "/apis/hello.zeng.dev/v2/namespaces/default/foos";

fn client(s: &Server, identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(s.path().join("data/certs/ca.crt")).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(20));
    if let Some(pem) = identity {
        b = b.identity(reqwest::Identity::from_pem(pem.as_bytes()).unwrap());
    }
    b.build().unwrap()
}

async fn send(req: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = req.send().await.unwrap();
    let code = r.status();
    let text = r.text().await.unwrap();
    (
        code,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

fn foo(name: &str) -> Value {
    json!({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": name}, "spec": {"image": "nginx"}})
}

struct Setup {
    s: Server,
    standin: kube_standin::StandIn,
    front: String,
    wrong_ca_front: String,
    intruder: String,
    carol: String,
    expired: String,
}

/// The server with a request-header CA (allowed name `front-proxy-client`), a client
/// CA, and the stand-in for reviews.
async fn setup(extra: &[&str]) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    crate::common::server::copy_examples(dir.path());
    let (rh, client_ca, other) = (ca(), ca(), ca());
    let standin = kube_standin::start(dir.path(), BTreeMap::new()).await;
    let write = |name: &str, pem: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, pem).unwrap();
        p.to_str().unwrap().to_string()
    };
    let rh_file = write("rh-ca.crt", &rh.pem);
    let client_file = write("client-ca.crt", &client_ca.pem);
    let kc = standin.kubeconfig.to_str().unwrap().to_string();
    let mut flags = vec![
        "--requestheader-client-ca-file",
        &rh_file,
        "--requestheader-allowed-names",
        "front-proxy-client",
        "--client-ca-file",
        &client_file,
        "--authentication-kubeconfig",
        &kc,
        "--authorization-kubeconfig",
        &kc,
        "--delegation-timeout",
        "1s",
    ];
    flags.extend_from_slice(extra);
    let s = Server::start_secure(dir, &flags);
    Setup {
        s,
        standin,
        front: client_cert(&rh, "front-proxy-client", &[], false),
        wrong_ca_front: client_cert(&other, "front-proxy-client", &[], false),
        intruder: client_cert(&rh, "intruder", &[], false),
        carol: client_cert(&client_ca, "carol", &["devs"], false),
        expired: client_cert(&client_ca, "dave", &["devs"], true),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn front_proxy_client_certificates_and_tokens_with_kube_statuses() {
    let t = setup(&[]).await;
    let s = &t.s;
    let url = format!("{}{FOOS}", s.url);

    // The aggregator: headers trusted on its certificate.
    let front = client(s, Some(&t.front));
    let as_alice = |r: reqwest::RequestBuilder| {
        r.header("X-Remote-User", "alice")
            .header("X-Remote-Group", "viewers")
            .header("X-Remote-Extra-Scopes", "read")
    };
    let (code, list) = send(as_alice(front.get(&url))).await;
    assert_eq!(code, StatusCode::OK, "{list}");
    let review = t.standin.calls.last_review.lock().unwrap().clone().unwrap();
    let attrs = review.spec.resource_attributes.clone().unwrap();
    assert_eq!(
        (
            attrs.verb.as_deref(),
            attrs.group.as_deref(),
            attrs.version.as_deref(),
            attrs.resource.as_deref(),
            attrs.namespace.as_deref()
        ),
        (
            Some("list"),
            Some("hello.zeng.dev"),
            Some("v2"),
            Some("foos"),
            Some("default")
        )
    );
    assert_eq!(review.spec.user.as_deref(), Some("alice"));
    assert_eq!(review.spec.groups, Some(vec!["viewers".to_string()]));
    assert_eq!(
        review.spec.extra.unwrap()["scopes"],
        vec!["read".to_string()]
    );
    let (code, st) = send(as_alice(front.post(&url)).json(&foo("a"))).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    assert_eq!(st["reason"], "Forbidden");
    assert_eq!(
        st["message"],
        r#"foos.hello.zeng.dev is forbidden: User "alice" cannot create resource "foos" in API group "hello.zeng.dev" in the namespace "default": no RBAC policy matched"#
    );
    assert_eq!(
        st["details"],
        json!({"group": "hello.zeng.dev", "kind": "foos", "name": ""})
    );
    // Allow and deny are cached: the same request asks the cluster once.
    let before = t.standin.calls.access_reviews.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(send(as_alice(front.get(&url))).await.0, StatusCode::OK);
        assert_eq!(
            send(as_alice(front.post(&url)).json(&foo("a"))).await.0,
            StatusCode::FORBIDDEN
        );
    }
    assert_eq!(
        t.standin.calls.access_reviews.load(Ordering::SeqCst),
        before
    );
    // system:masters needs no review.
    let (code, _) = send(
        front
            .post(&url)
            .header("X-Remote-User", "root")
            .header("X-Remote-Group", "system:masters")
            .json(&foo("by-root")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    assert_eq!(
        t.standin.calls.access_reviews.load(Ordering::SeqCst),
        before
    );

    // Spoofed headers are ignored: without a certificate, with one from another CA,
    // with a name not allowed. Nothing else identifies the request: 401.
    for who in [
        None,
        Some(&t.wrong_ca_front),
        Some(&t.intruder),
        Some(&t.expired),
    ] {
        let c = client(s, who.map(String::as_str));
        let (code, st) = send(
            c.get(&url)
                .header("X-Remote-User", "alice")
                .header("X-Remote-Group", "system:masters"),
        )
        .await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "{st}");
        assert_eq!(
            (st["reason"].as_str(), st["message"].as_str()),
            (Some("Unauthorized"), Some("Unauthorized"))
        );
    }

    // A client certificate from the client CA: carol, group devs.
    let carol = client(s, Some(&t.carol));
    let (code, created) = send(carol.post(&url).json(&foo("by-carol"))).await;
    assert_eq!(code, StatusCode::CREATED, "{created}");
    let review = t.standin.calls.last_review.lock().unwrap().clone().unwrap();
    assert_eq!(review.spec.user.as_deref(), Some("carol"));
    assert_eq!(review.spec.groups, Some(vec!["devs".to_string()]));

    // Bearer tokens, reviewed once per TTL.
    let anon = client(s, None);
    let (code, _) = send(anon.get(&url).bearer_auth("alice-token")).await;
    assert_eq!(code, StatusCode::OK);
    let reviews = t.standin.calls.token_reviews.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert_eq!(
            send(anon.get(&url).bearer_auth("alice-token")).await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        t.standin.calls.token_reviews.load(Ordering::SeqCst),
        reviews,
        "cached"
    );
    assert_eq!(
        send(anon.get(&url).bearer_auth("garbage")).await.0,
        StatusCode::UNAUTHORIZED
    );
    // A TokenReview that does not answer in time fails closed, after the timeout.
    let started = Instant::now();
    assert_eq!(
        send(anon.get(&url).bearer_auth("slow-token")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );

    // Health needs nothing; discovery needs an identity.
    assert_eq!(
        send(anon.get(format!("{}/readyz", s.url))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(anon.get(format!("{}/livez", s.url))).await.0,
        StatusCode::OK
    );
    assert_eq!(
        send(anon.get(format!("{}/apis", s.url))).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        send(
            anon.get(format!("{}/apis", s.url))
                .bearer_auth("alice-token")
        )
        .await
        .0,
        StatusCode::OK
    );

    // Malformed TLS handshakes are dropped; the server keeps serving.
    for junk in [
        &b"GET / HTTP/1.1\r\n\r\n"[..],
        &[0x16, 0x03, 0x01, 0xff, 0xff, 0, 0, 0][..],
        &[0u8; 64][..],
    ] {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let addr = s.url.trim_start_matches("https://").to_string();
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(junk).await.unwrap();
        let mut buf = [0u8; 64];
        let _ = tokio::time::timeout(Duration::from_secs(2), conn.read(&mut buf)).await;
    }
    // A client "certificate" that is not one: the handshake is refused.
    {
        let garbage = rustls::pki_types::CertificateDer::from(vec![0x30, 0x03, 0x02, 0x01, 0x00]);
        let key = KeyPair::generate().unwrap();
        let key = rustls::pki_types::PrivateKeyDer::try_from(key.serialize_der()).unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(
            &mut &std::fs::read(s.path().join("data/certs/ca.crt")).unwrap()[..],
        ) {
            roots.add(c.unwrap()).unwrap();
        }
        let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(std::sync::Arc::new(Garbage(std::sync::Arc::new(
            rustls::sign::CertifiedKey::new(
                vec![garbage],
                rustls::crypto::ring::sign::any_supported_type(&key).unwrap(),
            ),
        ))));
        let tcp = tokio::net::TcpStream::connect(s.url.trim_start_matches("https://"))
            .await
            .unwrap();
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        // Refused in the handshake, or (TLS 1.3) by an alert after it.
        if let Ok(mut tls) = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
            .connect(name, tcp)
            .await
        {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let _ = tls
                .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
                .await;
            let mut buf = Vec::new();
            let read = tokio::time::timeout(Duration::from_secs(5), tls.read_to_end(&mut buf))
                .await
                .unwrap();
            assert!(
                read.is_err() || buf.is_empty(),
                "a garbage certificate was accepted: {}",
                String::from_utf8_lossy(&buf)
            );
        }
    }
    assert_eq!(send(carol.get(&url)).await.0, StatusCode::OK);

    // The real kubectl, with a client certificate and with a token.
    let ca = std::fs::read_to_string(s.path().join("data/certs/ca.crt")).unwrap();
    let (cert, key) = t
        .carol
        .split_at(t.carol.find("-----BEGIN PRIVATE KEY").unwrap());
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let carol_kc = s.path().join("carol.kubeconfig");
    write_kubeconfig(
        &carol_kc,
        &s.url,
        &ca,
        &format!(
            "user:\n    client-certificate-data: {}\n    client-key-data: {}",
            b64(cert),
            b64(key)
        ),
    );
    let alice_kc = s.path().join("alice.kubeconfig");
    write_kubeconfig(&alice_kc, &s.url, &ca, "user:\n    token: alice-token");
    let kubectl = |kc: &Path, args: &[&str], stdin: Option<&str>| {
        use std::io::Write;
        let mut child = std::process::Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(kc)
            .args(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = kubectl(&carol_kc, &["get", "foos", "-o", "name"], None);
    assert!(ok, "{err}");
    assert!(out.contains("foo.hello.zeng.dev/by-carol"), "{out}");
    let yaml = "apiVersion: hello.zeng.dev/v2\nkind: Foo\nmetadata: {name: by-alice}\nspec: {image: nginx}\n";
    let (ok, _, err) = kubectl(&alice_kc, &["create", "-f", "-"], Some(yaml));
    assert!(!ok);
    assert!(
        err.contains(r#"Error from server (Forbidden): error when creating "STDIN": foos.hello.zeng.dev is forbidden: User "alice" cannot create resource "foos" in API group "hello.zeng.dev" in the namespace "default""#),
        "{err}"
    );
    let (ok, out, err) = kubectl(&alice_kc, &["get", "foos"], None);
    assert!(ok && out.contains("by-carol"), "{err}");
    let (ok, _, err) = kubectl(&alice_kc, &["delete", "foo", "by-carol"], None);
    assert!(
        !ok && err.contains("cannot delete resource \"foos\""),
        "{err}"
    );
}

/// A cluster that is down: tokens fail closed within the timeout (401), and an
/// authorization that cannot be asked is a 500 that says so, not a hang.
#[tokio::test(flavor = "multi_thread")]
async fn reviews_fail_closed_when_the_cluster_is_down() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::server::copy_examples(dir.path());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let kdir = tempfile::tempdir().unwrap();
    let standin = kube_standin::start(kdir.path(), BTreeMap::new()).await;
    let down = kdir.path().join("down.kubeconfig");
    let ca = {
        let text = std::fs::read_to_string(&standin.kubeconfig).unwrap();
        let b64 = text
            .lines()
            .find_map(|l| l.trim().strip_prefix("certificate-authority-data: "))
            .unwrap()
            .to_string();
        use base64::Engine as _;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap(),
        )
        .unwrap()
    };
    write_kubeconfig(
        &down,
        &format!("https://{closed}"),
        &ca,
        "user:\n    token: x",
    );
    let (down_s, up_s) = (
        down.to_str().unwrap().to_string(),
        standin.kubeconfig.to_str().unwrap().to_string(),
    );
    let s = Server::start_secure(
        dir,
        &[
            "--authentication-kubeconfig",
            &down_s,
            "--authorization-kubeconfig",
            &down_s,
            "--delegation-timeout",
            "1s",
        ],
    );
    let c = client(&s, None);
    let started = Instant::now();
    let (code, st) = send(c.get(format!("{}{FOOS}", s.url)).bearer_auth("alice-token")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "{st}");
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(s);

    // Tokens reviewed, authorization down: 500 naming the failed review.
    let dir = tempfile::tempdir().unwrap();
    crate::common::server::copy_examples(dir.path());
    let s = Server::start_secure(
        dir,
        &[
            "--authentication-kubeconfig",
            &up_s,
            "--authorization-kubeconfig",
            &down_s,
            "--delegation-timeout",
            "1s",
        ],
    );
    let c = client(&s, None);
    let started = Instant::now();
    let (code, st) = send(c.get(format!("{}{FOOS}", s.url)).bearer_auth("alice-token")).await;
    assert_eq!(code, StatusCode::INTERNAL_SERVER_ERROR, "{st}");
    assert!(
        st["message"]
            .as_str()
            .unwrap()
            .starts_with("Internal error occurred: the SubjectAccessReview failed"),
        "{st}"
    );
    assert!(started.elapsed() < Duration::from_secs(3));
}

/// No CA files: the CAs, allowed names and header names come from the cluster's
/// `kube-system/extension-apiserver-authentication` ConfigMap.
#[tokio::test(flavor = "multi_thread")]
async fn settings_come_from_the_extension_apiserver_authentication_configmap() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::server::copy_examples(dir.path());
    let rh = ca();
    let data = BTreeMap::from([
        ("requestheader-client-ca-file".to_string(), rh.pem.clone()),
        (
            "requestheader-allowed-names".to_string(),
            r#"["aggregator"]"#.to_string(),
        ),
        (
            "requestheader-username-headers".to_string(),
            r#"["X-Who"]"#.to_string(),
        ),
        (
            "requestheader-group-headers".to_string(),
            r#"["X-Groups"]"#.to_string(),
        ),
        (
            "requestheader-extra-headers-prefix".to_string(),
            r#"["X-Extra-"]"#.to_string(),
        ),
    ]);
    let standin = kube_standin::start(dir.path(), data).await;
    let kc = standin.kubeconfig.to_str().unwrap().to_string();
    let s = Server::start_secure(
        dir,
        &[
            "--authentication-kubeconfig",
            &kc,
            "--authorization-kubeconfig",
            &kc,
        ],
    );
    let agg = client(&s, Some(&client_cert(&rh, "aggregator", &[], false)));
    let url = format!("{}{FOOS}", s.url);
    let (code, _) = send(
        agg.post(&url)
            .header("X-Who", "erin")
            .header("X-Groups", "devs")
            .json(&foo("by-erin")),
    )
    .await;
    assert_eq!(code, StatusCode::CREATED);
    let review = standin.calls.last_review.lock().unwrap().clone().unwrap();
    assert_eq!(review.spec.user.as_deref(), Some("erin"));
    // The default header name is not the one configured.
    let (code, _) = send(agg.get(&url).header("X-Remote-User", "erin")).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED);
    let other = client(
        &s,
        Some(&client_cert(&rh, "front-proxy-client", &[], false)),
    );
    assert_eq!(
        send(other.get(&url).header("X-Who", "erin")).await.0,
        StatusCode::UNAUTHORIZED
    );
}

/// The serving certificate files are re-read when they change: new connections get
/// the new certificate; a half-written pair keeps the old one.
#[tokio::test(flavor = "multi_thread")]
async fn serving_certificate_files_are_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::server::copy_examples(dir.path());
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    let issue = |ca: &Ca| {
        let k = KeyPair::generate().unwrap();
        let c = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&k, &ca.issuer)
            .unwrap();
        (c.pem(), k.serialize_pem())
    };
    let (one, two) = (ca(), ca());
    let (c1, k1) = issue(&one);
    std::fs::write(&cert, &c1).unwrap();
    std::fs::write(&key, &k1).unwrap();
    let (cs, ks) = (
        cert.to_str().unwrap().to_string(),
        key.to_str().unwrap().to_string(),
    );
    let s = Server::start_in_with(
        dir,
        &["--tls-cert-file", &cs, "--tls-private-key-file", &ks],
    );
    let trusting = |ca: &Ca| {
        reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    };
    let ready = format!("{}/readyz", s.url);
    assert!(trusting(&one).get(&ready).send().await.is_ok());
    assert!(trusting(&two).get(&ready).send().await.is_err());
    // Half a pair (a new certificate, the old key): refused, the old pair serves.
    let (c2, k2) = issue(&two);
    std::fs::write(&cert, &c2).unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert!(
        trusting(&one).get(&ready).send().await.is_ok(),
        "still the old certificate"
    );
    std::fs::write(&key, &k2).unwrap();
    let started = Instant::now();
    while trusting(&two).get(&ready).send().await.is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the new certificate was not picked up"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(trusting(&one).get(&ready).send().await.is_err());
}

/// `wasm-apiserver manifests` prints what a cluster needs for the loaded plugins.
#[test]
fn manifests_cover_rbac_deployment_service_and_one_apiservice_per_group_version() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = crate::common::server::copy_examples(dir.path());
    let out = std::process::Command::new(crate::common::server::binary())
        .args([
            "manifests",
            "--namespace",
            "demo",
            "--image",
            "example/wasm-apiserver:1",
            "--plugin-dir",
        ])
        .arg(&plugins)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let docs: Vec<Value> = text
        .split("---\n")
        .filter(|d| !d.trim().is_empty())
        .map(|d| serde_yaml::from_str(d).unwrap())
        .collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            format!(
                "{}/{}",
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect();
    for want in [
        "Namespace/demo",
        "ServiceAccount/wasm-apiserver",
        "ClusterRoleBinding/wasm-apiserver:system:auth-delegator",
        "RoleBinding/wasm-apiserver-auth-reader",
        "Secret/wasm-apiserver-serving-cert",
        "Deployment/wasm-apiserver",
        "Service/wasm-apiserver",
        "APIService/v2.hello.zeng.dev",
        "APIService/v1.hello.zeng.dev",
        "APIService/v1alpha1.wardle.example.com",
        "ClusterRole/wasm-apiserver:reader",
        "ClusterRoleBinding/wasm-apiserver:reader",
    ] {
        assert!(
            kinds.iter().any(|k| k == want),
            "{want} missing from {kinds:?}"
        );
    }
    // The server reads the cluster's namespaces (NamespaceLifecycle); the examples'
    // own reads (Fischers, by BanFlunder) are served here and need no permission.
    let reader = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "wasm-apiserver:reader")
        .unwrap();
    assert_eq!(
        reader["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]}])
    );
    let find = |k: &str| {
        docs.iter()
            .find(|d| {
                format!(
                    "{}/{}",
                    d["kind"].as_str().unwrap(),
                    d["metadata"]["name"].as_str().unwrap()
                ) == k
            })
            .unwrap()
    };
    let rb = find("RoleBinding/wasm-apiserver-auth-reader");
    assert_eq!(rb["metadata"]["namespace"], "kube-system");
    assert_eq!(
        rb["roleRef"]["name"],
        "extension-apiserver-authentication-reader"
    );
    let v2 = find("APIService/v2.hello.zeng.dev");
    let v1 = find("APIService/v1.hello.zeng.dev");
    assert!(
        v2["spec"]["versionPriority"].as_i64() > v1["spec"]["versionPriority"].as_i64(),
        "the preferred version ranks first"
    );
    assert_eq!(
        v2["spec"]["service"],
        json!({"name": "wasm-apiserver", "namespace": "demo", "port": 443})
    );
    // The caBundle is the CA that signed the serving certificate in the Secret.
    use base64::Engine as _;
    let b64 = |v: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let ca_pem = b64(&v2["spec"]["caBundle"]);
    let secret = find("Secret/wasm-apiserver-serving-cert");
    let cert_pem = b64(&secret["data"]["tls.crt"]);
    let der = |pem: &[u8]| {
        rustls_pemfile::certs(&mut &pem[..])
            .next()
            .unwrap()
            .unwrap()
    };
    let (ca_der, cert_der) = (der(&ca_pem), der(&cert_pem));
    let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).unwrap();
    let (_, cert) = x509_parser::parse_x509_certificate(&cert_der).unwrap();
    cert.verify_signature(Some(ca.public_key()))
        .expect("signed by the caBundle CA");
    let sans = format!(
        "{:?}",
        cert.subject_alternative_name().unwrap().unwrap().value
    );
    assert!(sans.contains("wasm-apiserver.demo.svc"), "{sans}");
    let deploy = find("Deployment/wasm-apiserver");
    let container = &deploy["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "example/wasm-apiserver:1");
    assert!(container["args"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a == "--tls-cert-file=/var/run/serving-cert/tls.crt"));

    // A folder without plugins is an error that says so.
    let empty = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::common::server::binary())
        .args(["manifests", "--plugin-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no plugin in"));
}

/// Presents a certificate that does not parse (rustls would refuse to configure it).
#[derive(Debug)]
struct Garbage(std::sync::Arc<rustls::sign::CertifiedKey>);

impl rustls::client::ResolvesClientCert for Garbage {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<std::sync::Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// `/store/snapshot` is a non-resource URL: the SubjectAccessReview names its path and
/// verb, a user without a rule for it gets kube's 403, one with it gets a snapshot.
#[tokio::test(flavor = "multi_thread")]
async fn store_snapshots_are_authorized_as_a_non_resource_url() {
    let t = setup(&[]).await;
    let url = format!("{}/store/snapshot", t.s.url);
    let front = client(&t.s, Some(&t.front));
    let (code, st) = send(
        front
            .get(&url)
            .header("X-Remote-User", "alice")
            .header("X-Remote-Group", "viewers"),
    )
    .await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{st}");
    assert_eq!(
        st["message"],
        r#"forbidden: User "alice" cannot get path "/store/snapshot": no RBAC policy matched"#
    );
    let review = t.standin.calls.last_review.lock().unwrap().clone().unwrap();
    let attrs = review.spec.non_resource_attributes.unwrap();
    assert_eq!(
        (attrs.path.as_deref(), attrs.verb.as_deref()),
        (Some("/store/snapshot"), Some("get"))
    );
    let carol = client(&t.s, Some(&t.carol));
    let r = carol.get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let bytes = r.bytes().await.unwrap();
    assert!(bytes.starts_with(b"WASNAP01"), "not a snapshot");
}
