//! Who may do what: authentication ([`authn`]), RBAC from stored objects ([`rbac`]),
//! the bootstrap ClusterRoles every cluster has, and the record of every authorization
//! decision ([`Audit`]), which tests compare with the RBAC a tool documents.

pub mod authn;
pub mod rbac;

use std::sync::Mutex;

use serde_json::{Value, json};

pub use authn::{Authenticator, UserInfo};
pub use rbac::{Decision, Request};

/// One authorization decision.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Access {
    pub user: String,
    pub verb: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    /// Non-resource requests (`/version`).
    pub path: Option<String>,
    pub allowed: bool,
}

/// Every authorization decision since the server started.
#[derive(Debug, Default)]
pub struct Audit {
    records: Mutex<Vec<Access>>,
}

/// Keeps memory bounded on long runs (a bench); tests stay far below it.
const AUDIT_LIMIT: usize = 200_000;

impl Audit {
    pub fn record(&self, user: &UserInfo, request: &Request, allowed: bool) {
        let mut records = self
            .records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if records.len() >= AUDIT_LIMIT {
            return;
        }
        records.push(Access {
            user: user.name.clone(),
            verb: request.verb.clone(),
            group: request.group.clone(),
            resource: request.resource.clone(),
            subresource: request.subresource.clone(),
            namespace: request.namespace.clone(),
            name: request.name.clone(),
            path: request.path.clone(),
            allowed,
        });
    }

    pub fn records(&self) -> Vec<Access> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

fn cluster_role(name: &str, rules: Value) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
           "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
           "rules": rules})
}

fn cluster_binding(name: &str, role: &str, group: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
           "metadata": {"name": name, "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"}},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
           "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": group}]})
}

/// The bootstrap policy a real cluster starts with (the part clients rely on):
/// discovery and `/version` for everyone authenticated, SelfSubjectAccessReview for
/// everyone (system:basic-user), and cluster-admin for system:masters.
pub fn bootstrap_policy() -> Vec<(&'static str, Value)> {
    let discovery = json!([{"nonResourceURLs": ["/api", "/api/*", "/apis", "/apis/*", "/healthz",
        "/livez", "/openapi", "/openapi/*", "/readyz", "/version", "/version/"], "verbs": ["get"]}]);
    let basic = json!([{"apiGroups": ["authorization.k8s.io"],
        "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
        {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]}]);
    let public = json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"],
        "verbs": ["get"]}]);
    let admin = json!([{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
        {"nonResourceURLs": ["*"], "verbs": ["*"]}]);
    vec![
        ("roles", cluster_role("system:discovery", discovery)),
        ("roles", cluster_role("system:basic-user", basic)),
        ("roles", cluster_role("system:public-info-viewer", public)),
        ("roles", cluster_role("cluster-admin", admin)),
        (
            "bindings",
            cluster_binding(
                "system:discovery",
                "system:discovery",
                "system:authenticated",
            ),
        ),
        (
            "bindings",
            cluster_binding(
                "system:basic-user",
                "system:basic-user",
                "system:authenticated",
            ),
        ),
        (
            "bindings",
            cluster_binding(
                "system:public-info-viewer",
                "system:public-info-viewer",
                "system:authenticated",
            ),
        ),
        (
            "bindings",
            cluster_binding("cluster-admin", "cluster-admin", "system:masters"),
        ),
    ]
}
