//! docs/rbac.yaml grants exactly what pod-killer uses: every kind of kill runs under
//! the ServiceAccount's token, and the (verb, resource, namespace) the server authorized
//! for it must equal the Role's rules, no more (an unused grant) and no less (a 403).

use std::collections::BTreeSet;

use serde_json::Value;

use super::{SA_USER, kills, resource_of, setup};

type Grant = (String, String, String, String);

/// (verb, group, resource, namespace) of every rule of pod-killer's Role in docs/rbac.yaml
/// (the file also holds the remote mode's Role, tested in remote_rbac.rs).
fn granted() -> BTreeSet<Grant> {
    let text = std::fs::read_to_string(chaos_tests::kube_lab::rbac_yaml()).unwrap();
    let mut grants = BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let object: Value = serde::Deserialize::deserialize(doc).unwrap();
        if object["kind"] != "Role" || object["metadata"]["name"] != "pod-killer" {
            continue;
        }
        let namespace = object["metadata"]["namespace"].as_str().unwrap().to_owned();
        for rule in object["rules"].as_array().unwrap() {
            let strings = |field: &str| -> Vec<String> {
                rule[field]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_owned())
                    .collect()
            };
            for verb in strings("verbs") {
                for group in strings("apiGroups") {
                    for resource in strings("resources") {
                        grants.insert((verb.clone(), group.clone(), resource, namespace.clone()));
                    }
                }
            }
        }
    }
    grants
}

#[test]
fn docs_rbac_yaml_grants_exactly_what_pod_killer_uses() {
    let s = setup(None);
    for args in [
        &["--deployment", "product-service", "-c", "1"][..],
        &["-s", "auth-service", "--evict", "-c", "1"][..],
        &["-s", "redis", "-c", "1", "--min-ready", "0"][..],
        &["--statefulset", "redis", "--dry-run", "--min-ready", "0"][..],
        &["-l", "app=api-gateway", "--dry-run"][..],
        &["--dry-run"][..],
    ] {
        let (exit, report, stderr) = s.run(args);
        assert_eq!(exit, 0, "{args:?}: {stderr}\n{report:#}");
        assert!(
            kills(&report).iter().all(|k| k["outcome"] == "recovered"),
            "{args:?}: {report:#}"
        );
    }
    let accesses: Vec<_> = s
        .lab
        .control()
        .accesses()
        .into_iter()
        .filter(|a| a.user == SA_USER && a.path.is_none())
        .collect();
    let denied: Vec<_> = accesses.iter().filter(|a| !a.allowed).collect();
    assert!(
        denied.is_empty(),
        "pod-killer needs more than docs/rbac.yaml grants: {denied:#?}"
    );
    let used: BTreeSet<Grant> = accesses
        .iter()
        .filter(|a| a.resource != "selfsubjectaccessreviews")
        .map(|a| {
            (
                a.verb.clone(),
                a.group.clone(),
                resource_of(a),
                a.namespace.clone(),
            )
        })
        .collect();
    let granted = granted();
    let unused: Vec<_> = granted.difference(&used).collect();
    assert!(
        unused.is_empty(),
        "docs/rbac.yaml grants what pod-killer never uses: {unused:?}"
    );
    assert_eq!(used, granted);
}
