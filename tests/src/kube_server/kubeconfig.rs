//! Kubeconfig files for the server: its URL, its CA inline
//! (`certificate-authority-data`), and a user with a bearer token or a client certificate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::json;

/// How the kubeconfig's user authenticates.
#[derive(Debug, Clone)]
pub enum Credentials {
    Token(String),
    ClientCertificate { cert_pem: String, key_pem: String },
}

/// A kubeconfig with one cluster, one user and one context (the current one).
pub fn render(
    server: &str,
    ca_pem: &str,
    namespace: &str,
    user: &str,
    credentials: &Credentials,
) -> String {
    let user_entry = match credentials {
        Credentials::Token(token) => json!({"token": token}),
        Credentials::ClientCertificate { cert_pem, key_pem } => json!({
            "client-certificate-data": STANDARD.encode(cert_pem),
            "client-key-data": STANDARD.encode(key_pem),
        }),
    };
    let doc = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "kube-test-server", "cluster": {
            "server": server, "certificate-authority-data": STANDARD.encode(ca_pem)}}],
        "users": [{"name": user, "user": user_entry}],
        "contexts": [{"name": "kube-test-server", "context": {
            "cluster": "kube-test-server", "user": user, "namespace": namespace}}],
        "current-context": "kube-test-server",
        "preferences": {},
    });
    // A serde_json::Value always serializes to YAML.
    serde_norway::to_string(&doc).unwrap_or_default()
}
