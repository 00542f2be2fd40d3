//! Deletion as the API server and the kubelet do it: a graceful DELETE keeps the pod
//! with a deletionTimestamp and Ready False until its containers stop; a second DELETE
//! may shorten the grace; finalizers hold a pod in Terminating; controllers react after
//! the DELETE has returned, not inside it.

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams};

use super::{client, condition, lab_from, ok, stderr};

#[test]
fn a_graceful_delete_keeps_the_pod_terminating_and_not_ready_and_a_shorter_grace_ends_it() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: web\n    replicas: 1\n",
    );
    let victim = lab.pod_names("app=web").remove(0);
    let pod_ref = format!("pod/{victim}");
    ok(&lab.kubectl(&["delete", &pod_ref, "--wait=false"]));
    ok(&lab.kubectl(&[
        "wait",
        "--for=condition=Ready=false",
        &pod_ref,
        "--timeout=10s",
    ]));
    let pod = lab.kubectl_json(&["get", &pod_ref]);
    assert!(pod["metadata"]["deletionTimestamp"].is_string(), "{pod:#}");
    assert_eq!(pod["metadata"]["deletionGracePeriodSeconds"], 30);
    assert_eq!(condition(&pod, "ContainersReady").as_deref(), Some("False"));
    let table = ok(&lab.kubectl(&["get", &pod_ref]));
    assert!(table.contains("Terminating"), "{table}");
    // A longer grace changes nothing; a shorter one ends it well before the 30 s.
    ok(&lab.kubectl(&["delete", &pod_ref, "--grace-period=60", "--wait=false"]));
    assert_eq!(
        lab.kubectl_json(&["get", &pod_ref])["metadata"]["deletionGracePeriodSeconds"],
        30
    );
    ok(&lab.kubectl(&["delete", &pod_ref, "--grace-period=1", "--wait=false"]));
    ok(&lab.kubectl(&["wait", "--for=delete", &pod_ref, "--timeout=10s"]));
    ok(&lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "--timeout=10s",
    ]));
}

#[test]
fn finalizers_hold_a_deleted_pod_until_the_last_one_is_removed() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: held\n    replicas: 1\n    stopDelayMs: 0\n    finalizers: [example.com/hold]\n",
    );
    let victim = lab.pod_names("app=held").remove(0);
    let pod_ref = format!("pod/{victim}");
    ok(&lab.kubectl(&["delete", &pod_ref, "--wait=false"]));
    // The containers stopped and the kubelet removed the pod: only the finalizer holds it.
    ok(&lab.kubectl(&[
        "wait",
        "--for=jsonpath={.metadata.deletionGracePeriodSeconds}=0",
        &pod_ref,
        "--timeout=10s",
    ]));
    let out = lab.kubectl(&["wait", "--for=delete", &pod_ref, "--timeout=1s"]);
    assert!(!out.status.success(), "gone despite its finalizer");
    ok(&lab.kubectl(&[
        "patch",
        &pod_ref,
        "--type=json",
        "-p",
        r#"[{"op":"remove","path":"/metadata/finalizers"}]"#,
    ]));
    ok(&lab.kubectl(&["wait", "--for=delete", &pod_ref, "--timeout=10s"]));
    let out = lab.kubectl(&["get", &pod_ref]);
    assert!(stderr(&out).contains("NotFound"), "{}", stderr(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_replica_set_reacts_after_the_delete_has_returned() {
    let lab = lab_from(
        "server:\n  controllerDelayMs: 3000\nnamespaces:\n- name: lomash-wood\n  deployments:\n  - name: web\n    replicas: 2\n",
    );
    let api: Api<Pod> = Api::namespaced(client(&lab.kubeconfig).await, "lomash-wood");
    let by_app = ListParams::default().labels("app=web");
    let before = api.list(&by_app).await.unwrap().items;
    let victim = before[0].metadata.name.clone().unwrap();
    api.delete(&victim, &DeleteParams::default().grace_period(0))
        .await
        .unwrap();
    let right_after = api.list(&by_app).await.unwrap().items;
    assert_eq!(
        right_after.len(),
        1,
        "a replacement was created inside the DELETE"
    );
    let out = lab.kubectl(&[
        "wait",
        "--for=condition=Ready",
        "pod",
        "-l",
        "app=web",
        "--timeout=15s",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    tokio::time::timeout(Duration::from_secs(15), async {
        while api.list(&by_app).await.unwrap().items.len() < 2 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("no replacement");
}
