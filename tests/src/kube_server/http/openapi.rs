//! The OpenAPI v3 documents kubectl fetches before `apply` and `create` with
//! validation: the root (`/openapi/v3`, one entry per group/version) and, per
//! group/version, the paths of each resource with the PATCH operation's
//! `x-kubernetes-group-version-kind` and its `fieldValidation` parameter, which is what
//! tells kubectl the server validates fields itself. No schemas are served (kubectl
//! then computes strategic merge patches from its built-in types).

use serde_json::{Map, Value, json};

use crate::kube_server::errors::{ApiError, ApiResult};
use crate::kube_server::registry::Registry;

fn group_versions(registry: &Registry) -> Vec<(String, String)> {
    let mut gvs: Vec<(String, String)> = registry
        .types()
        .iter()
        .map(|t| (t.gr.group.to_owned(), t.version.to_owned()))
        .collect();
    gvs.sort();
    gvs.dedup();
    gvs
}

fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn root(registry: &Registry) -> Value {
    let mut paths = Map::new();
    for (group, version) in group_versions(registry) {
        let p = prefix(&group, &version);
        paths.insert(
            p.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash=kube-test-server")}),
        );
    }
    json!({"paths": paths})
}

fn group_version(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let mut paths = Map::new();
    for t in registry
        .types()
        .iter()
        .filter(|t| t.gr.group == group && t.version == version)
    {
        let base = if t.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                prefix(group, version),
                t.gr.resource
            )
        } else {
            format!("/{}/{}/{{name}}", prefix(group, version), t.gr.resource)
        };
        let gvk = json!({"group": group, "version": version, "kind": t.kind});
        let param = json!({"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}});
        paths.insert(
            base,
            json!({"patch": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "patch",
                "parameters": [param], "responses": {}},
                "put": {"x-kubernetes-group-version-kind": gvk, "x-kubernetes-action": "put",
                "parameters": [param], "responses": {}}}),
        );
    }
    if paths.is_empty() {
        return None;
    }
    Some(
        json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.34.0"},
        "paths": paths, "components": {"schemas": {}}}),
    )
}

/// `/openapi/v3` and `/openapi/v3/<api|apis/group>/<version>`; v2 is not served.
pub fn document(registry: &Registry, path: &str, _query: Option<&str>) -> ApiResult<Value> {
    let rest = path
        .strip_prefix("/openapi/v3")
        .ok_or_else(ApiError::no_route)?;
    let parts: Vec<&str> = rest.split('/').filter(|p| !p.is_empty()).collect();
    let doc = match parts.as_slice() {
        [] => Some(root(registry)),
        ["api", version] => group_version(registry, "", version),
        ["apis", group, version] => group_version(registry, group, version),
        _ => None,
    };
    doc.ok_or_else(ApiError::no_route)
}
