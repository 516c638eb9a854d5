//! `wasm-apiserver manifests`: everything a cluster needs to serve the loaded plugins
//! behind kube-apiserver, as one multi-document YAML stream.
//!
//! Namespace, ServiceAccount, the two delegation bindings (`system:auth-delegator`, and
//! `extension-apiserver-authentication-reader` in kube-system), a serving certificate
//! (a fresh CA and a certificate for the Service's DNS names, in a TLS Secret), the
//! Deployment (plugins on a volume, filled from the image by an init container; replace
//! the volume to ship your own), the Service, and one APIService per group/version with
//! the CA as `caBundle`. Apply the whole output together: each run makes a new CA.

use anyhow::Context as _;
use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use serde_json::json;

use crate::plugin::PluginCatalog;

/// What the manifests are for.
#[derive(Clone, Debug, clap::Args)]
pub struct ManifestOptions {
    /// Namespace to run in.
    #[arg(long, default_value = "wasm-apiserver")]
    pub namespace: String,
    /// Name of the Deployment, Service, ServiceAccount and bindings.
    #[arg(long, default_value = "wasm-apiserver")]
    pub name: String,
    /// Container image (built from the repository's Dockerfile).
    #[arg(long, default_value = "wasm-apiserver:latest")]
    pub image: String,
    /// Store objects in this etcd (comma-separated client URLs) and run two replicas;
    /// without it, one replica keeps them in the embedded store on an emptyDir.
    #[arg(long)]
    pub etcd_servers: Option<String>,
}

/// Load the plugins in `dir` and render their manifests.
pub fn for_plugin_dir(dir: &std::path::Path, o: &ManifestOptions) -> anyhow::Result<String> {
    let engine = crate::plugin::PluginEngine::new(crate::plugin::RuntimeLimits::default(), None)?;
    let registry = crate::plugin::PluginRegistry::new(engine);
    let catalog = registry.load_dir(dir)?;
    if let Some(e) = catalog.errors.first() {
        anyhow::bail!("cannot load a plugin: {e}");
    }
    anyhow::ensure!(
        !catalog.plugins.is_empty(),
        "no plugin in {}",
        dir.display()
    );
    render(&catalog, o)
}

/// get, list and watch on the cluster's namespaces and on every kind the plugins read
/// that none of them serves, one rule per group.
fn read_rules(catalog: &PluginCatalog) -> Vec<serde_json::Value> {
    let mut by_group: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    by_group.entry("").or_default().push("namespaces");
    for r in catalog.plugins.iter().flat_map(|p| &p.resource.reads) {
        if catalog.find(&r.group, &r.resource).is_none() {
            let resources = by_group.entry(&r.group).or_default();
            if !resources.contains(&r.resource.as_str()) {
                resources.push(&r.resource);
            }
        }
    }
    by_group
        .into_iter()
        .map(|(group, resources)| {
            json!({"apiGroups": [group], "resources": resources, "verbs": ["get", "list", "watch"]})
        })
        .collect()
}

/// The manifests for the resources in `catalog`.
pub fn render(catalog: &PluginCatalog, o: &ManifestOptions) -> anyhow::Result<String> {
    let (ns, name) = (o.namespace.as_str(), o.name.as_str());
    let (ca_pem, cert_pem, key_pem) = serving_cert(name, ns)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let labels = json!({"app.kubernetes.io/name": name});
    let mut args = vec![
        "--bind-address=0.0.0.0".to_string(),
        "--secure-port=6443".into(),
        "--plugin-dir=/plugins".into(),
        "--data-dir=/data".into(),
        "--tls-cert-file=/var/run/serving-cert/tls.crt".into(),
        "--tls-private-key-file=/var/run/serving-cert/tls.key".into(),
    ];
    let replicas = match &o.etcd_servers {
        Some(servers) => {
            args.push("--storage=etcd".into());
            args.push(format!("--etcd-servers={servers}"));
            2
        }
        None => 1,
    };
    let probe = |path: &str| json!({"httpGet": {"path": path, "port": 6443, "scheme": "HTTPS"}, "periodSeconds": 10});
    let mut docs = vec![
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": ns}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": format!("{name}:system:auth-delegator")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        // What the server reads of the cluster: namespaces (NamespaceLifecycle) and the
        // kinds its plugins declare in `reads` that no plugin here serves.
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
               "metadata": {"name": format!("{name}:reader")},
               "rules": read_rules(catalog)}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": format!("{name}:reader")},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{name}:reader")},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": format!("{name}-auth-reader"), "namespace": "kube-system"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "extension-apiserver-authentication-reader"},
               "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]}),
        json!({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
               "metadata": {"name": format!("{name}-serving-cert"), "namespace": ns},
               "data": {"tls.crt": b64(&cert_pem), "tls.key": b64(&key_pem), "ca.crt": b64(&ca_pem)}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": name, "namespace": ns, "labels": labels},
               "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                   "serviceAccountName": name,
                   "initContainers": [{"name": "plugins", "image": o.image,
                     "command": ["sh", "-c", "cp /opt/wasm-apiserver/plugins/*.wasm /plugins/"],
                     "volumeMounts": [{"name": "plugins", "mountPath": "/plugins"}]}],
                   "containers": [{"name": "apiserver", "image": o.image, "args": args,
                     "ports": [{"containerPort": 6443, "name": "https"}],
                     "readinessProbe": probe("/readyz"), "livenessProbe": probe("/livez"),
                     "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "512Mi"}},
                     "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true},
                     "volumeMounts": [
                       {"name": "plugins", "mountPath": "/plugins"},
                       {"name": "data", "mountPath": "/data"},
                       {"name": "serving-cert", "mountPath": "/var/run/serving-cert", "readOnly": true}]}],
                   "volumes": [
                     {"name": "plugins", "emptyDir": {}},
                     {"name": "data", "emptyDir": {}},
                     {"name": "serving-cert", "secret": {"secretName": format!("{name}-serving-cert")}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
               "spec": {"selector": labels, "ports": [{"port": 443, "targetPort": 6443, "name": "https"}]}}),
    ];
    // One APIService per served group/version; the preferred version ranks first.
    let mut seen = std::collections::BTreeSet::new();
    for (group, plugins) in catalog.groups() {
        let infos: Vec<_> = plugins.iter().map(|p| &p.resource).collect();
        let (versions, preferred) = crate::http::discovery::group_versions(&infos);
        for v in versions {
            if !seen.insert((group.to_string(), v.clone())) {
                continue;
            }
            let priority = if v == preferred { 100 } else { 50 };
            docs.push(json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                "metadata": {"name": format!("{v}.{group}")},
                "spec": {"group": group, "version": v,
                  "service": {"name": name, "namespace": ns, "port": 443},
                  "caBundle": b64(&ca_pem), "groupPriorityMinimum": 1000, "versionPriority": priority}}));
        }
    }
    let mut out = String::new();
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(&d).context("rendering YAML")?);
    }
    Ok(out)
}

/// A CA, and a serving certificate for the Service's DNS names signed by it (PEMs).
fn serving_cert(name: &str, ns: &str) -> anyhow::Result<(String, String, String)> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name
        .push(DnType::CommonName, format!("{name}-ca"));
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(vec![
        name.to_string(),
        format!("{name}.{ns}"),
        format!("{name}.{ns}.svc"),
        format!("{name}.{ns}.svc.cluster.local"),
    ])?;
    p.distinguished_name
        .push(DnType::CommonName, format!("{name}.{ns}.svc"));
    let cert = p.signed_by(&key, &issuer)?;
    Ok((ca_cert.pem(), cert.pem(), key.serialize_pem()))
}
