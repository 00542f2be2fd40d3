//! StatefulSet pods as targets: the replacement has the victim's name and a new UID,
//! and the kill is timed through it.

use super::{kills, ms, setup};

#[test]
fn a_stateful_set_pods_same_name_replacement_is_timed() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  statefulsets:\n  - name: redis\n    replicas: 2\n    stopDelayMs: 300\n",
    ));
    let before = s.lab.kubectl_json(&["get", "pods", "-l", "app=redis"]);
    let (exit, report, stderr) = s.run(&["-s", "redis", "-c", "1", "-g", "5"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["observations"]["workload"], "statefulset/redis");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "recovered", "{kill:#}");
    assert_eq!(
        kill["pod"], kill["replacement"],
        "a StatefulSet's replacement keeps the name: {kill:#}"
    );
    assert_ne!(kill["podUid"], kill["replacementUid"], "{kill:#}");
    // The controller recreates the name only once the old pod is gone.
    assert!(
        ms(kill, "oldPodGoneMs") <= ms(kill, "replacementCreatedMs"),
        "{kill:#}"
    );
    assert!(
        ms(kill, "replacementReadyMs") <= ms(kill, "recoveredMs"),
        "{kill:#}"
    );
    let old_uids: Vec<&str> = before["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap())
        .collect();
    assert!(old_uids.contains(&kill["podUid"].as_str().unwrap()));
    let after = s
        .lab
        .kubectl_json(&["get", "pod", kill["pod"].as_str().unwrap()]);
    assert_eq!(after["metadata"]["uid"], kill["replacementUid"]);
    let out = s
        .lab
        .kubectl(&["rollout", "status", "statefulset/redis", "--timeout=10s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (exit, report, stderr) = s.run(&["--statefulset", "redis", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(kills(&report)[0]["outcome"], "recovered", "{report:#}");
}
