//! Discovery documents built from the [`Registry`]: `/version`, `/api`, `/apis`,
//! `/api/v1` and `/apis/<group>/<version>` (APIResourceLists with subresources).

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::registry::{Registry, ResourceType, Subresource};

impl Registry {
    fn groups(&self) -> Vec<(&'static str, &'static str)> {
        let set: BTreeSet<(&str, &str)> = self
            .types()
            .iter()
            .filter(|t| !t.gr.group.is_empty())
            .map(|t| (t.gr.group, t.version))
            .collect();
        set.into_iter().collect()
    }

    /// `/apis`: an APIGroupList.
    pub fn group_list(&self) -> Value {
        let groups: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(g, v)| {
                let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
            })
            .collect();
        json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
    }

    /// `/api/v1` or `/apis/<group>/<version>`: an APIResourceList, None if not served.
    pub fn resource_list(&self, group: &str, version: &str) -> Option<Value> {
        let mine: Vec<&ResourceType> = self
            .types()
            .iter()
            .filter(|t| t.gr.group == group && t.version == version)
            .collect();
        if mine.is_empty() {
            return None;
        }
        let mut list = Vec::new();
        for t in mine {
            list.push(resource_entry(t));
            for sub in t.subresources {
                list.push(subresource_entry(t, sub));
            }
        }
        let group_version = if group.is_empty() {
            version.to_owned()
        } else {
            format!("{group}/{version}")
        };
        Some(json!({"kind": "APIResourceList", "apiVersion": "v1",
                    "groupVersion": group_version, "resources": list}))
    }
}

fn resource_entry(t: &ResourceType) -> Value {
    let mut entry = json!({"name": t.gr.resource, "singularName": t.kind.to_ascii_lowercase(),
        "namespaced": t.namespaced, "kind": t.kind, "verbs": t.verbs});
    if !t.short_names.is_empty() {
        entry["shortNames"] = json!(t.short_names);
    }
    if t.in_all {
        entry["categories"] = json!(["all"]);
    }
    entry
}

fn subresource_entry(t: &ResourceType, sub: &Subresource) -> Value {
    let mut entry = json!({"name": format!("{}/{}", t.gr.resource, sub.name), "singularName": "",
        "namespaced": t.namespaced,
        "kind": if sub.kind.is_empty() { t.kind } else { sub.kind }, "verbs": sub.verbs});
    if let Some((group, version)) = sub.group_version {
        entry["group"] = group.into();
        entry["version"] = version.into();
    }
    entry
}

/// `/version`.
pub fn version() -> Value {
    json!({"major": "1", "minor": "34", "gitVersion": "v1.34.0-kube-test-server", "gitCommit": "0000000",
           "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.24",
           "compiler": "gc", "platform": "linux/amd64"})
}

/// `/api`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"],
           "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kube_server::registry::GroupResource;

    #[test]
    fn discovery_lists_subresources_with_their_own_group() {
        let registry = Registry::default();
        let core = registry.resource_list("", "v1").unwrap_or_default();
        let eviction = core["resources"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["name"] == "pods/eviction"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(eviction["group"], "policy");
        assert_eq!(eviction["kind"], "Eviction");
        let apps = registry.resource_list("apps", "v1").unwrap_or_default();
        assert!(apps.to_string().contains("statefulsets/scale"));
        assert!(registry.resource_list("apps", "v2").is_none());
        assert_eq!(
            GroupResource::new("apps", "deployments").to_string(),
            "deployments.apps"
        );
    }
}
