//! The Kubernetes API test server, judged by the real kubectl: list, get, delete, wait,
//! watch, events, and the error codes.

use std::time::{Duration, Instant};

use chaos_tests::kube_lab::KubeLab;
use serde_json::Value;

fn lab() -> KubeLab {
    KubeLab::lomash_wood().unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

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
    let pods = lab.kubectl_json(&["get", "pods", "-n", "lomash-wood"]);
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
}

#[test]
fn kubectl_get_deploy_shows_every_service_with_its_ready_count() {
    let lab = lab();
    let out = lab.kubectl(&["get", "deploy", "-n", "lomash-wood"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let table = String::from_utf8_lossy(&out.stdout);
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
    let out = lab.kubectl(&["get", "pods", "-l", "app=auth-service"]);
    let pods = String::from_utf8_lossy(&out.stdout);
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
}

#[test]
fn kubectl_delete_pod_gets_a_replacement_that_becomes_ready() {
    let lab = lab();
    let before = lab.pod_names("app=product-service");
    let victim = before[0].clone();
    let started = Instant::now();
    let out = lab.kubectl(&["delete", "pod", &victim, "--grace-period=1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "kubectl must wait for the grace period"
    );
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=product-service",
        "--timeout=15s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
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
    let conditions: Vec<&str> = pod["status"]["conditions"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["status"] == "True")
                .filter_map(|c| c["type"].as_str())
                .collect()
        })
        .unwrap_or_default();
    for wanted in ["PodScheduled", "Initialized", "ContainersReady", "Ready"] {
        assert!(conditions.contains(&wanted), "{wanted} not True: {pod:#}");
    }
    assert_eq!(
        lab.kubectl_json(&["get", "deploy", "product-service"])["status"]["readyReplicas"],
        2
    );
}

#[test]
fn kubectl_wait_sees_a_slow_pod_become_ready_through_the_watch() {
    let lab = KubeLab::from_yaml(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: slow\n    replicas: 1\n    readyDelayMs: 4000\n",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let victim = lab.pod_names("app=slow").remove(0);
    let out = lab.kubectl(&["delete", "pod", &victim, "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let pod = lab.kubectl_json(&["get", "pods", "-l", "app=slow"])["items"][0].clone();
    let replacement = pod["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let ready = pod["status"]["conditions"].as_array().is_some_and(|c| {
        c.iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True")
    });
    assert!(
        !ready,
        "the replacement was Ready before kubectl wait started (machine too slow?)"
    );
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        &format!("pod/{replacement}"),
        "--timeout=15s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("condition met"));
}

#[test]
fn kubectl_wait_times_out_on_a_replacement_that_never_becomes_ready() {
    let lab = KubeLab::from_yaml(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: broken\n    replicas: 1\n    neverReady: true\n",
    )
    .unwrap_or_else(|e| panic!("{e:#}"));
    let victim = lab.pod_names("app=broken").remove(0);
    let out = lab.kubectl(&["delete", "pod", &victim, "--grace-period=0", "--force"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=broken",
        "--timeout=1s",
    ]);
    assert!(!out.status.success());
    let pod = lab.kubectl_json(&["get", "pods", "-l", "app=broken"]);
    assert_eq!(pod["items"][0]["status"]["phase"], "Running", "{pod:#}");
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
        stderr(&out).contains("NotFound")
            && stderr(&out).contains("pods \"no-such-pod\" not found"),
        "{}",
        stderr(&out)
    );

    let out = lab.kubectl(&["get", "pods", "-n", "payments-restricted"]);
    assert!(!out.status.success());
    let message = stderr(&out);
    assert!(
        message.contains("Forbidden") && message.contains("cannot list resource \"pods\""),
        "{message}"
    );
    assert!(message.contains("payments-restricted"), "{message}");
}

#[test]
fn an_events_k8s_io_event_is_listed_by_kubectl_get_events_and_conflicts_on_reuse() {
    let lab = lab();
    let event = serde_json::json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "chaos-test-event", "namespace": "lomash-wood"},
        "eventTime": "2026-01-01T00:00:00.000000Z", "reason": "ChaosPodKilled", "note": "run abc",
        "type": "Warning", "action": "Delete", "reportingController": "chaos-tools/pod-killer",
        "reportingInstance": "pod-killer-abc",
        "regarding": {"kind": "Deployment", "name": "product-service", "namespace": "lomash-wood", "apiVersion": "apps/v1"}
    });
    let file = lab.dir.join("event.json");
    std::fs::write(&file, event.to_string()).unwrap_or_else(|e| panic!("{e}"));
    let path = file.to_string_lossy().into_owned();
    let out = lab.kubectl(&["create", "--validate=false", "-f", &path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let events = lab.kubectl_json(&["get", "events"]);
    let listed = &events["items"][0];
    assert_eq!(listed["reason"], "ChaosPodKilled", "{events:#}");
    assert_eq!(listed["involvedObject"]["name"], "product-service");
    let out = lab.kubectl(&["get", "events"]);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("ChaosPodKilled") && table.contains("deployment/product-service"),
        "{table}"
    );
    let out = lab.kubectl(&["create", "--validate=false", "-f", &path]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("AlreadyExists"), "{}", stderr(&out));
}
