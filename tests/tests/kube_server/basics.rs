//! Reads and the ReplicaSet controller as kubectl sees them: lists, tables, a deleted
//! pod's replacement, `kubectl wait`, paged lists and versioned reads, error bodies.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{condition, lab, lab_from, ok, stderr};
use chaos_tests::kube_lab::KubeLab;

const SERVICES: [&str; 9] = [
    "api-gateway",
    "auth-service",
    "product-service",
    "order-payment-service",
    "appointment-service",
    "content-service",
    "customer-service",
    "notification-service",
    "analytics-service",
];

#[test]
fn kubectl_get_pods_json_lists_two_ready_pods_per_service() {
    let lab = lab();
    let pods = lab.kubectl_json(&[
        "get",
        "pods",
        "-n",
        "lomash-wood",
        "-l",
        "!statefulset.kubernetes.io/pod-name",
    ]);
    let items = pods["items"].as_array().cloned().unwrap_or_default();
    assert_eq!(items.len(), 2 * SERVICES.len(), "{pods:#}");
    for service in SERVICES {
        let mine: Vec<&Value> = items
            .iter()
            .filter(|p| p["metadata"]["labels"]["app"] == service)
            .collect();
        assert_eq!(mine.len(), 2, "{service}");
        for pod in mine {
            assert_eq!(pod["status"]["phase"], "Running");
            assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
            assert!(pod["spec"]["nodeName"].is_string());
            assert_eq!(condition(pod, "Ready").as_deref(), Some("True"));
        }
    }
    let running = lab.kubectl_json(&[
        "get",
        "pods",
        "-l",
        "app=api-gateway",
        "--field-selector",
        "status.phase=Running",
    ]);
    assert_eq!(running["items"].as_array().map(Vec::len), Some(2));
    let pending = lab.kubectl_json(&["get", "pods", "--field-selector", "status.phase=Pending"]);
    assert_eq!(pending["items"].as_array().map(Vec::len), Some(0));
    let out = lab.kubectl(&["get", "pods", "--field-selector", "spec.image=x"]);
    assert!(
        stderr(&out).contains("field label not supported: spec.image"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn kubectl_get_deploy_and_sts_show_every_workload_with_its_ready_count() {
    let lab = lab();
    let table = ok(&lab.kubectl(&["get", "deploy", "-n", "lomash-wood"]));
    assert!(
        table.starts_with("NAME") && table.contains("READY") && table.contains("AVAILABLE"),
        "{table}"
    );
    for service in SERVICES {
        let row = table
            .lines()
            .find(|l| l.starts_with(service))
            .unwrap_or_default();
        assert!(
            row.contains("2/2"),
            "{service} is not 2/2 Ready in:\n{table}"
        );
    }
    let sts = ok(&lab.kubectl(&["get", "statefulset", "redis"]));
    assert!(
        sts.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("redis") && l.contains("1/1")),
        "{sts}"
    );
    let pods = ok(&lab.kubectl(&["get", "pods", "-l", "app=auth-service"]));
    assert!(
        pods.contains("STATUS") && pods.matches("1/1     Running").count() == 2,
        "{pods}"
    );
    let deploy = lab.kubectl_json(&["get", "deploy", "product-service"]);
    assert_eq!(deploy["status"]["readyReplicas"], 2);
    assert_eq!(
        deploy["spec"]["selector"]["matchLabels"]["app"],
        "product-service"
    );
    assert_eq!(
        deploy["spec"]["strategy"]["type"], "RollingUpdate",
        "defaulted as on a real server"
    );
}

#[test]
fn kubectl_delete_pod_gets_a_replacement_that_becomes_ready() {
    let lab = lab();
    let before = lab.pod_names("app=product-service");
    let victim = before[0].clone();
    let started = Instant::now();
    ok(&lab.kubectl(&["delete", "pod", &victim, "--grace-period=1"]));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "kubectl must wait for the grace period"
    );
    ok(&lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=product-service",
        "--timeout=15s",
    ]));
    let after = lab.pod_names("app=product-service");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(!after.contains(&victim), "{victim} still listed: {after:?}");
    let replacement = after
        .iter()
        .find(|n| !before.contains(n))
        .cloned()
        .unwrap_or_default();
    assert!(replacement.starts_with("product-service-"), "{replacement}");
    let pod = lab.kubectl_json(&["get", "pod", &replacement]);
    for wanted in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert_eq!(
            condition(&pod, wanted).as_deref(),
            Some("True"),
            "{wanted}: {pod:#}"
        );
    }
    let deploy = lab.kubectl_json(&["get", "deploy", "product-service"]);
    assert_eq!(deploy["status"]["readyReplicas"], 2);
}

#[test]
fn kubectl_wait_sees_a_slow_pod_become_ready_through_the_watch() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: slow\n    replicas: 1\n    readyDelayMs: 4000\n",
    );
    let victim = lab.pod_names("app=slow").remove(0);
    ok(&lab.kubectl(&["delete", "pod", &victim, "--grace-period=0", "--force"]));
    let replacement =
        chaos_tests::kube_lab::wait_until("a replacement", Duration::from_secs(10), || {
            lab.pod_names("app=slow").into_iter().find(|n| *n != victim)
        });
    let pod = lab.kubectl_json(&["get", "pod", &replacement]);
    assert_ne!(
        condition(&pod, "Ready").as_deref(),
        Some("True"),
        "Ready before kubectl wait started (machine too slow?)"
    );
    let out = ok(&lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{replacement}"),
        "--timeout=15s",
    ]));
    assert!(out.contains("condition met"), "{out}");
}

#[test]
fn kubectl_wait_times_out_on_a_replacement_that_never_becomes_ready() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: broken\n    replicas: 1\n    neverReady: true\n",
    );
    let victim = lab.pod_names("app=broken").remove(0);
    ok(&lab.kubectl(&["delete", "pod", &victim, "--grace-period=0", "--force"]));
    ok(&lab.kubectl(&[
        "wait",
        "--for=jsonpath={.status.phase}=Running",
        "pod",
        "-l",
        "app=broken",
        "--timeout=10s",
    ]));
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=broken",
        "--timeout=1s",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        lab.kubectl_json(&["get", "deploy", "broken"])["status"]["readyReplicas"],
        0
    );
}

#[test]
fn errors_are_status_objects_with_the_api_servers_codes() {
    let lab = lab();
    let out = lab.kubectl(&["get", "pod", "no-such-pod"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Error from server (NotFound): pods \"no-such-pod\" not found"),
        "{}",
        stderr(&out)
    );
    let out = lab.kubectl(&["get", "deployment", "nope"]);
    assert!(
        stderr(&out).contains("deployments.apps \"nope\" not found"),
        "{}",
        stderr(&out)
    );
    let out = lab.kubectl(&["get", "pods", "-l", "app in a,b"]);
    assert!(
        stderr(&out).contains("unable to parse requirement"),
        "{}",
        stderr(&out)
    );
}

fn raw(lab: &KubeLab, path: &str) -> Value {
    let out = ok(&lab.kubectl(&["get", "--raw", path]));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{path}: {e}: {out}"))
}

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|i| {
            i.iter()
                .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn pages_of_a_list_are_one_consistent_snapshot_until_the_history_forgets_it() {
    let lab = lab();
    // kubectl follows `continue` itself.
    let all = ok(&lab.kubectl(&["get", "pods", "--chunk-size=4", "-o", "name"]));
    assert_eq!(all.lines().count(), 2 * SERVICES.len() + 1, "{all}");
    let first = raw(&lab, "/api/v1/namespaces/lomash-wood/pods?limit=4");
    assert_eq!(names(&first).len(), 4);
    assert_eq!(
        first["metadata"]["remainingItemCount"],
        2 * SERVICES.len() + 1 - 4
    );
    let token = first["metadata"]["continue"].as_str().unwrap().to_owned();
    // A pod deleted after the first page still shows on the next ones.
    let doomed = names(&first).last().cloned().unwrap();
    let later = lab.pod_names("app=notification-service").remove(0);
    ok(&lab.kubectl(&["delete", "pod", &later, "--grace-period=0", "--force"]));
    let mut rest = Vec::new();
    let mut next = Some(token.clone());
    while let Some(token) = next {
        let page = raw(
            &lab,
            &format!("/api/v1/namespaces/lomash-wood/pods?limit=4&continue={token}"),
        );
        rest.extend(names(&page));
        next = page["metadata"]["continue"].as_str().map(str::to_owned);
    }
    assert!(rest.contains(&later), "the snapshot lost {later}: {rest:?}");
    assert!(!rest.contains(&doomed), "pages overlap: {rest:?}");
    // Once the history is compacted the token is too old: 410 with a fresh token.
    lab.control().compact();
    let out = lab.kubectl(&[
        "get",
        "--raw",
        &format!("/api/v1/namespaces/lomash-wood/pods?limit=4&continue={token}"),
    ]);
    assert!(
        stderr(&out).contains("Expired") || stderr(&out).contains("410"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn resource_version_match_reads_an_exact_old_state_and_is_validated() {
    let lab = lab();
    let before = raw(
        &lab,
        "/api/v1/namespaces/lomash-wood/pods?labelSelector=app%3Dapi-gateway",
    );
    let rv = before["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim = names(&before).remove(0);
    ok(&lab.kubectl(&["delete", "pod", &victim, "--grace-period=0", "--force"]));
    let exact = raw(
        &lab,
        &format!(
            "/api/v1/namespaces/lomash-wood/pods?labelSelector=app%3Dapi-gateway&resourceVersion={rv}&resourceVersionMatch=Exact"
        ),
    );
    assert_eq!(names(&exact), names(&before));
    assert_eq!(exact["metadata"]["resourceVersion"], rv.as_str());
    let newer = raw(
        &lab,
        &format!(
            "/api/v1/namespaces/lomash-wood/pods?labelSelector=app%3Dapi-gateway&resourceVersion={rv}&resourceVersionMatch=NotOlderThan"
        ),
    );
    assert!(!names(&newer).contains(&victim));
    let out = lab.kubectl(&[
        "get",
        "--raw",
        "/api/v1/namespaces/lomash-wood/pods?resourceVersionMatch=Exact",
    ]);
    assert!(
        stderr(&out)
            .contains("resourceVersionMatch is forbidden unless resourceVersion is provided"),
        "{}",
        stderr(&out)
    );
}
