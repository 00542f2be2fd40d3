//! Discovery documents: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>/<version>`.

use serde_json::{Value, json};

fn resource(name: &str, kind: &str, namespaced: bool, verbs: &[&str], short: &[&str]) -> Value {
    let singular = kind.to_ascii_lowercase();
    json!({"name": name, "singularName": singular, "namespaced": namespaced, "kind": kind,
           "verbs": verbs, "shortNames": short})
}

const READ_WRITE: &[&str] = &["create", "delete", "get", "list", "watch"];

pub fn version() -> Value {
    json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-kube-test-server", "gitCommit": "0000000",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
           "compiler": "gc", "platform": "linux/amd64"})
}

pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

const GROUPS: [(&str, &str); 3] = [("apps", "v1"), ("events.k8s.io", "v1"), ("policy", "v1")];

pub fn groups() -> Value {
    let groups: Vec<Value> = GROUPS
        .iter()
        .map(|(g, v)| {
            let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
            json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The APIResourceList of `group/version` ("" group is core v1), or None if unknown.
pub fn resources(group: &str, version: &str) -> Option<Value> {
    if version != "v1" {
        return None;
    }
    let list = match group {
        "" => vec![
            resource(
                "namespaces",
                "Namespace",
                false,
                &["get", "list", "watch"],
                &["ns"],
            ),
            resource("pods", "Pod", true, READ_WRITE, &["po"]),
            json!({"name": "pods/eviction", "singularName": "", "namespaced": true, "group": "policy",
                   "version": "v1", "kind": "Eviction", "verbs": ["create"]}),
            resource("events", "Event", true, READ_WRITE, &["ev"]),
        ],
        "apps" => vec![
            resource("deployments", "Deployment", true, READ_WRITE, &["deploy"]),
            resource("replicasets", "ReplicaSet", true, READ_WRITE, &["rs"]),
        ],
        "events.k8s.io" => vec![resource("events", "Event", true, READ_WRITE, &["ev"])],
        "policy" => vec![resource(
            "poddisruptionbudgets",
            "PodDisruptionBudget",
            true,
            READ_WRITE,
            &["pdb"],
        )],
        _ => return None,
    };
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": list}),
    )
}
