//! RBAC, evaluated from the Role, ClusterRole, RoleBinding and ClusterRoleBinding objects
//! in the store (created with `kubectl apply` like on a cluster), with the matching rules
//! of the real authorizer: verbs, API groups, resources (`*`, `pods/eviction`,
//! `*/scale`), resourceNames, non-resource URLs; members of `system:masters` are allowed
//! everything. The reason of an allow names the binding, as the real server's does.

use serde_json::Value;

use super::authn::UserInfo;
use crate::kube_server::meta;
use crate::kube_server::registry::{CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, ROLE_BINDINGS, ROLES};
use crate::kube_server::store::Store;

/// What a request wants to do (the authorizer's `Attributes`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub verb: String,
    pub namespace: String,
    pub group: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// Set for non-resource requests (`/version`, `/apis`).
    pub path: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed; the reason names the binding (empty for system:masters).
    Allow(String),
    Deny,
}

fn strings(value: &Value, field: &str) -> Vec<String> {
    value
        .get(field)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn resource_matches(rule: &Value, request: &Request) -> bool {
    let combined = if request.subresource.is_empty() {
        request.resource.clone()
    } else {
        format!("{}/{}", request.resource, request.subresource)
    };
    strings(rule, "resources").iter().any(|r| {
        r == "*"
            || *r == combined
            || (!request.subresource.is_empty()
                && r.strip_prefix("*/") == Some(request.subresource.as_str()))
    })
}

fn url_matches(rule: &Value, path: &str) -> bool {
    strings(rule, "nonResourceURLs").iter().any(|u| {
        u == "*"
            || u == path
            || u.strip_suffix('*')
                .is_some_and(|prefix| path.starts_with(prefix))
    })
}

/// Whether one PolicyRule allows `request`.
pub fn rule_allows(rule: &Value, request: &Request) -> bool {
    let verbs = strings(rule, "verbs");
    if !verbs.iter().any(|v| v == "*" || *v == request.verb) {
        return false;
    }
    if let Some(path) = &request.path {
        return url_matches(rule, path);
    }
    let groups = strings(rule, "apiGroups");
    if !groups.iter().any(|g| g == "*" || *g == request.group) {
        return false;
    }
    if !resource_matches(rule, request) {
        return false;
    }
    let names = strings(rule, "resourceNames");
    names.is_empty() || names.contains(&request.name)
}

/// The subject of `binding` that names `user`, described as the real server does.
fn matching_subject(binding: &Value, user: &UserInfo) -> Option<String> {
    let binding_ns = meta::namespace(binding);
    binding
        .get("subjects")
        .and_then(Value::as_array)?
        .iter()
        .find_map(|s| {
            let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
            let name = s.get("name").and_then(Value::as_str).unwrap_or("");
            let ns = s
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(binding_ns);
            let matches = match kind {
                "User" => user.name == name,
                "Group" => user.groups.iter().any(|g| g == name),
                "ServiceAccount" => user.name == format!("system:serviceaccount:{ns}:{name}"),
                _ => false,
            };
            let described = match kind {
                "ServiceAccount" => format!("{kind} \"{name}/{ns}\""),
                _ => format!("{kind} \"{name}\""),
            };
            matches.then_some(described)
        })
}

/// The rules a binding's roleRef points at (a missing role grants nothing).
fn role_rules(store: &Store, binding: &Value) -> Vec<Value> {
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let name = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let role = match kind {
        "ClusterRole" => store.get(CLUSTER_ROLES, "", name),
        "Role" => store.get(ROLES, meta::namespace(binding), name),
        _ => None,
    };
    role.and_then(|r| r.get("rules"))
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn allowed_by(
    store: &Store,
    binding: &Value,
    user: &UserInfo,
    request: &Request,
) -> Option<String> {
    let subject = matching_subject(binding, user)?;
    if !role_rules(store, binding)
        .iter()
        .any(|rule| rule_allows(rule, request))
    {
        return None;
    }
    let kind = binding
        .pointer("/roleRef/kind")
        .and_then(Value::as_str)
        .unwrap_or("");
    let role = binding
        .pointer("/roleRef/name")
        .and_then(Value::as_str)
        .unwrap_or("");
    let binding_name = match meta::namespace(binding) {
        "" => format!("ClusterRoleBinding \"{}\"", meta::name(binding)),
        ns => format!("RoleBinding \"{}/{ns}\"", meta::name(binding)),
    };
    Some(format!(
        "RBAC: allowed by {binding_name} of {kind} \"{role}\" to {subject}"
    ))
}

pub fn authorize(store: &Store, user: &UserInfo, request: &Request) -> Decision {
    if user.is_master() {
        return Decision::Allow(String::new());
    }
    let cluster_wide = store.list(CLUSTER_ROLE_BINDINGS, None);
    let local = if request.namespace.is_empty() || request.path.is_some() {
        Vec::new()
    } else {
        store.list(ROLE_BINDINGS, Some(&request.namespace))
    };
    cluster_wide
        .into_iter()
        .chain(local)
        .find_map(|binding| allowed_by(store, binding, user, request))
        .map_or(Decision::Deny, Decision::Allow)
}

/// The Forbidden message (`forbiddenMessage` + `NewForbidden`).
pub fn forbidden_message(user: &UserInfo, request: &Request) -> String {
    if let Some(path) = &request.path {
        return format!(
            "forbidden: User \"{}\" cannot {} path \"{path}\"",
            user.name, request.verb
        );
    }
    let resource = if request.subresource.is_empty() {
        request.resource.clone()
    } else {
        format!("{}/{}", request.resource, request.subresource)
    };
    let scope = if request.namespace.is_empty() {
        "at the cluster scope".to_owned()
    } else {
        format!("in the namespace \"{}\"", request.namespace)
    };
    let why = format!(
        "User \"{}\" cannot {} resource \"{resource}\" in API group \"{}\" {scope}",
        user.name, request.verb, request.group
    );
    let qualified = if request.group.is_empty() {
        request.resource.clone()
    } else {
        format!("{}.{}", request.resource, request.group)
    };
    if request.name.is_empty() {
        format!("{qualified} is forbidden: {why}")
    } else {
        format!("{qualified} \"{}\" is forbidden: {why}", request.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(verb: &str, resource: &str, sub: &str) -> Request {
        Request {
            verb: verb.into(),
            namespace: "ns".into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: "x".into(),
            ..Default::default()
        }
    }

    #[test]
    fn rules_match_as_the_rbac_authorizer_does() {
        let rule = json!({"apiGroups": [""], "resources": ["pods", "pods/eviction"], "verbs": ["delete", "create"]});
        assert!(rule_allows(&rule, &request("delete", "pods", "")));
        assert!(rule_allows(&rule, &request("create", "pods", "eviction")));
        assert!(!rule_allows(&rule, &request("create", "pods", "exec")));
        assert!(!rule_allows(&rule, &request("get", "pods", "")));
        let scale = json!({"apiGroups": ["*"], "resources": ["*/scale"], "verbs": ["*"]});
        assert!(rule_allows(
            &scale,
            &request("patch", "deployments", "scale")
        ));
        let named = json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["get"], "resourceNames": ["y"]});
        assert!(!rule_allows(&named, &request("get", "pods", "")));
    }

    #[test]
    fn a_role_binding_allows_its_service_account_only_in_its_namespace() {
        let mut s = Store::new(10);
        let role = json!({"metadata": {"name": "pk", "namespace": "ns"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["delete"]}]});
        let binding = json!({"metadata": {"name": "pk", "namespace": "ns"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pk"},
            "subjects": [{"kind": "ServiceAccount", "name": "pk", "namespace": "ns"}]});
        s.insert(ROLES, role).unwrap_or_default();
        s.insert(ROLE_BINDINGS, binding).unwrap_or_default();
        let user = UserInfo::service_account("ns", "pk", "u");
        assert_eq!(
            authorize(&s, &user, &request("delete", "pods", "")),
            Decision::Allow(
                "RBAC: allowed by RoleBinding \"pk/ns\" of Role \"pk\" to ServiceAccount \"pk/ns\""
                    .into()
            )
        );
        let mut elsewhere = request("delete", "pods", "");
        elsewhere.namespace = "other".into();
        assert_eq!(authorize(&s, &user, &elsewhere), Decision::Deny);
        assert_eq!(
            forbidden_message(&user, &elsewhere),
            "pods \"x\" is forbidden: User \"system:serviceaccount:ns:pk\" cannot delete resource \"pods\" in API group \"\" in the namespace \"other\""
        );
    }
}
