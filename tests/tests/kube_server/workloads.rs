//! StatefulSets and Deployments as kubectl drives them: `kubectl scale`,
//! `kubectl rollout status`, ordered creation, same-name replacement, a template change
//! rolled out with `kubectl set env`, evictions refused by a PodDisruptionBudget.

use std::time::Duration;

use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::Api;
use kube::runtime::watcher;

use super::{client, lab, lab_from, ok, stderr};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stateful_set_scales_up_in_order_and_rollout_status_waits_for_it() {
    let lab = lab();
    let api: Api<Pod> = Api::namespaced(client(&lab.kubeconfig).await, "lomash-wood");
    // Record (pod, ready) as the watch sees them while kubectl scales.
    let mut stream = watcher(api, watcher::Config::default().labels("app=redis")).boxed();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let (synced_tx, synced) = tokio::sync::oneshot::channel();
    let mut synced_tx = Some(synced_tx);
    let task = tokio::spawn(async move {
        while let Some(Ok(event)) = stream.next().await {
            match event {
                watcher::Event::Apply(pod) | watcher::Event::InitApply(pod) => {
                    let ready = chaos_ready(&pod);
                    record
                        .lock()
                        .unwrap()
                        .push((pod.metadata.name.unwrap_or_default(), ready));
                }
                watcher::Event::InitDone => {
                    if let Some(tx) = synced_tx.take() {
                        let _ = tx.send(());
                    }
                }
                _ => {}
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), synced)
        .await
        .unwrap()
        .unwrap();
    ok(&lab.kubectl(&["scale", "statefulset/redis", "--replicas=3"]));
    let out = ok(&lab.kubectl(&["rollout", "status", "statefulset/redis", "--timeout=30s"]));
    assert!(out.contains("roll out complete"), "{out}");
    let pods = lab.pod_names("app=redis");
    assert_eq!(pods, ["redis-0", "redis-1", "redis-2"]);
    task.abort();
    let seen = seen.lock().unwrap().clone();
    let first = |name: &str| seen.iter().position(|(n, _)| n == name);
    let ready = |name: &str| seen.iter().position(|(n, r)| n == name && *r);
    assert!(
        ready("redis-1").is_some() && first("redis-2").is_some(),
        "{seen:?}"
    );
    assert!(
        ready("redis-1") < first("redis-2"),
        "redis-2 created before redis-1 was Ready: {seen:?}"
    );
}

/// Pods of `app` that are not terminating.
fn live_pods(lab: &chaos_tests::kube_lab::KubeLab, app: &str) -> Vec<String> {
    let list = lab.kubectl_json(&["get", "pods", "-l", &format!("app={app}")]);
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn chaos_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_stateful_set_pod_comes_back_under_its_name_with_a_new_uid() {
    let lab = lab();
    let before = lab.kubectl_json(&["get", "pod", "redis-0"]);
    ok(&lab.kubectl(&["delete", "pod", "redis-0", "--grace-period=1"]));
    let after =
        chaos_tests::kube_lab::wait_until("redis-0 to come back", Duration::from_secs(15), || {
            let out = lab.kubectl(&["get", "pod", "redis-0", "-o", "json"]);
            out.status
                .success()
                .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap())
        });
    assert_ne!(before["metadata"]["uid"], after["metadata"]["uid"]);
    ok(&lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod/redis-0",
        "--timeout=15s",
    ]));
    ok(&lab.kubectl(&["rollout", "status", "statefulset/redis", "--timeout=15s"]));
}

#[test]
fn a_template_change_rolls_out_a_new_replica_set() {
    let lab = lab();
    let before = lab.pod_names("app=api-gateway");
    ok(&lab.kubectl(&["set", "env", "deployment/api-gateway", "LAB_MODE=fragile"]));
    let out = ok(&lab.kubectl(&[
        "rollout",
        "status",
        "deployment/api-gateway",
        "--timeout=30s",
    ]));
    assert!(out.contains("successfully rolled out"), "{out}");
    // Old pods may still be terminating (their grace period), as on a cluster.
    let after = live_pods(&lab, "api-gateway");
    assert_eq!(after.len(), 2, "{after:?}");
    assert!(
        after.iter().all(|p| !before.contains(p)),
        "{before:?} -> {after:?}"
    );
    let sets = lab.kubectl_json(&["get", "replicasets", "-l", "app=api-gateway"]);
    let replicas: Vec<i64> = sets["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["spec"]["replicas"].as_i64().unwrap())
        .collect();
    assert_eq!(
        replicas.iter().filter(|r| **r == 2).count(),
        1,
        "{replicas:?}"
    );
    assert_eq!(replicas.len(), 2, "old and new ReplicaSet: {replicas:?}");
    let pod = lab.kubectl_json(&["get", "pod", &after[0]]);
    assert_eq!(pod["spec"]["containers"][0]["env"][0]["name"], "LAB_MODE");
    ok(&lab.kubectl(&["scale", "deployment/api-gateway", "--replicas=3"]));
    ok(&lab.kubectl(&[
        "rollout",
        "status",
        "deployment/api-gateway",
        "--timeout=30s",
    ]));
    assert_eq!(live_pods(&lab, "api-gateway").len(), 3);
}

#[test]
fn an_eviction_is_refused_while_the_disruption_budget_allows_none() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: guarded\n    pdb: {minAvailable: 2}\n  - name: relaxed\n    pdb: {maxUnavailable: 1}\n",
    );
    let pdb = lab.kubectl_json(&["get", "pdb", "guarded-pdb"]);
    assert_eq!(pdb["status"]["disruptionsAllowed"], 0, "{pdb:#}");
    let evict = |pod: &str| {
        let body = lab.dir.join(format!("eviction-{pod}.json"));
        std::fs::write(
            &body,
            format!(
                r#"{{"apiVersion":"policy/v1","kind":"Eviction","metadata":{{"name":"{pod}"}}}}"#
            ),
        )
        .unwrap();
        let path = format!("/api/v1/namespaces/lomash-wood/pods/{pod}/eviction");
        lab.kubectl(&["create", "--raw", &path, "-f", &body.to_string_lossy()])
    };
    let guarded = lab.pod_names("app=guarded").remove(0);
    let out = evict(&guarded);
    assert!(
        stderr(&out).contains("Cannot evict pod as it would violate the pod's disruption budget."),
        "{}",
        stderr(&out)
    );
    assert_eq!(lab.pod_names("app=guarded").len(), 2);
    // maxUnavailable 1: the first eviction uses the budget, the second (at once) is refused.
    let relaxed = lab.pod_names("app=relaxed");
    ok(&evict(&relaxed[0]));
    let out = evict(&relaxed[1]);
    assert!(
        !out.status.success(),
        "both pods evicted although the budget allows one"
    );
}
