//! A run survives what a real API server does to clients: a watch that must relist after
//! 410 Gone, throttling (429 with Retry-After) mid-run, and a 429 on an eviction that is
//! throttling, not a PodDisruptionBudget.

use std::time::Duration;

use super::{common, kills, setup};

#[test]
fn a_run_survives_a_410_relist_mid_run() {
    let s = setup(None);
    let child = s.spawn(&[
        "-s",
        "order-payment-service",
        "-c",
        "2",
        "-i",
        "3s",
        "--run-id",
        "relist",
    ]);
    s.wait_for_access("delete", "pods", 1);
    // A change pod-killer's watch does not see, then a compaction and every watch ended:
    // its resourceVersion is now older than the history, so resuming gets 410 Gone.
    let other = s.lab.pod_names("app=auth-service").remove(0);
    let out = s
        .lab
        .kubectl(&["annotate", "pod", &other, "chaos-test/touched=yes"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    s.lab.control().compact();
    s.lab.control().close_watches();
    let (exit, report, stderr) = common::finish(child, Duration::from_secs(60));
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert!(
        s.lab.control().expired_watches() >= 1,
        "no watch was answered 410"
    );
    assert!(
        report["observations"]["watchRelists"].as_u64() >= Some(1),
        "{report:#}"
    );
    let kills = kills(&report);
    assert!(
        kills.len() == 2 && kills.iter().all(|k| k["outcome"] == "recovered"),
        "{kills:#?}"
    );
    assert_eq!(s.ready_pods("order-payment-service").len(), 2);
}

#[test]
fn throttling_mid_run_is_retried_and_the_kills_still_recover() {
    let s = setup(None);
    let child = s.spawn(&["-s", "notification-service", "-c", "2", "-i", "2s"]);
    s.wait_for_access("delete", "pods", 1);
    s.lab.control().set_throttle(50, 1);
    // And the next kill's DELETE is throttled twice for sure.
    s.lab.control().reject_next(2, "delete", "pods");
    let (exit, report, stderr) = common::finish(child, Duration::from_secs(60));
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert!(
        report["observations"]["throttledRequests"].as_u64() >= Some(2),
        "{report:#}"
    );
    assert!(
        kills(&report).iter().all(|k| k["outcome"] == "recovered"),
        "{report:#}"
    );
    assert!(stderr.contains("throttled by the API server"), "{stderr}");
}

#[test]
fn a_throttled_eviction_is_retried_and_never_reported_as_a_pdb_block() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: free\n  - name: guarded\n    pdb: {minAvailable: 2}\n",
    ));
    s.lab.control().reject_next(2, "create", "pods/eviction");
    let (exit, report, stderr) = s.run(&["--deployment", "free", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kill = &kills(&report)[0];
    assert_eq!(
        kill["outcome"], "recovered",
        "throttling read as a PDB: {kill:#}"
    );
    assert_eq!(report["observations"]["throttledRequests"], 2);
    // Throttled first, then the budget's own refusal: that one is the PDB.
    s.lab.control().reject_next(1, "create", "pods/eviction");
    let (exit, report, stderr) = s.run(&["--deployment", "guarded", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(
        kills(&report)[0]["message"],
        "blocked by PDB guarded-pdb",
        "{report:#}"
    );
}
