//! Kills and their timelines: one kill through its full recovery, several in a row, a
//! grace period, `-g 0`, evictions and PDBs, a replacement that never becomes Ready.

use serde_json::Value;

use super::{kills, ms, setup};

#[test]
fn a_kill_is_timed_through_its_full_recovery_and_recorded_as_an_event() {
    let s = setup(None);
    let before = s.lab.pod_names("app=product-service");
    let (exit, report, stderr) = s.run(&[
        "--deployment",
        "product-service",
        "-c",
        "1",
        "--run-id",
        "e2e-kill",
    ]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["result"], "ok");
    assert_eq!(
        report["observations"]["workload"],
        "deployment/product-service"
    );
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "recovered", "{kill:#}");
    let victim = kill["pod"].as_str().unwrap_or_default().to_owned();
    let replacement = kill["replacement"].as_str().unwrap_or_default().to_owned();
    assert!(before.contains(&victim), "{victim} not among {before:?}");
    assert!(
        !replacement.is_empty() && !before.contains(&replacement),
        "{kill:#}"
    );
    assert_ne!(kill["podUid"], kill["replacementUid"]);
    let created = ms(kill, "replacementCreatedMs");
    let scheduled = ms(kill, "replacementScheduledMs");
    let ready = ms(kill, "replacementReadyMs");
    let recovered = ms(kill, "recoveredMs");
    assert!(ms(kill, "deletionAcceptedMs") >= 0.0 && ms(kill, "oldPodGoneMs") >= 0.0);
    assert!(
        created <= scheduled && scheduled <= ready && ready <= recovered,
        "{kill:#}"
    );
    // The fixture's delays: scheduled +50 ms, Running +100 ms, Ready +200 ms.
    assert!(
        ready - created >= 250.0,
        "Ready too early after creation: {kill:#}"
    );
    let after = s.lab.pod_names("app=product-service");
    assert!(
        !after.contains(&victim) && after.contains(&replacement),
        "{after:?}"
    );
    let events = s.lab.kubectl_json(&["get", "events"]);
    let event = events["items"]
        .as_array()
        .and_then(|items| {
            items
                .iter()
                .find(|e| e["reason"] == "ChaosPodKilled")
                .cloned()
        })
        .unwrap_or_else(|| panic!("no ChaosPodKilled event: {events:#}"));
    assert_eq!(event["involvedObject"]["name"], "product-service");
    let message = event["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("e2e-kill") && message.contains(&victim),
        "{message}"
    );
}

#[test]
fn three_kills_one_second_apart_all_recover() {
    let s = setup(None);
    let (exit, report, stderr) = s.run(&[
        "-s",
        "order-payment-service",
        "--count",
        "3",
        "--interval",
        "1",
    ]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kills = kills(&report);
    assert_eq!(kills.len(), 3);
    assert!(
        kills.iter().all(|k| k["outcome"] == "recovered"),
        "{kills:#?}"
    );
    let requested: Vec<String> = kills
        .iter()
        .map(|k| k["requestedAt"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(requested.windows(2).all(|w| w[0] < w[1]), "{requested:?}");
    assert_eq!(report["observations"]["recovered"], 3);
    assert_eq!(s.ready_pods("order-payment-service").len(), 2);
}

#[test]
fn a_grace_period_keeps_the_old_pod_terminating_while_the_replacement_starts() {
    let s = setup(None);
    let (exit, report, stderr) = s.run(&[
        "-s",
        "content-service",
        "-c",
        "1",
        "-g",
        "2",
        "--delay",
        "100ms",
    ]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "recovered", "{kill:#}");
    assert!(ms(kill, "replacementCreatedMs") < 1000.0, "{kill:#}");
    // The app ignores SIGTERM (the fixture's default), so the pod goes when 2 s are up.
    assert!(ms(kill, "oldPodGoneMs") >= 1900.0, "{kill:#}");
    let pods = s
        .lab
        .kubectl_json(&["get", "pods", "-l", "app=content-service"]);
    let terminating = pods["items"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
            .count()
    });
    assert_eq!(terminating, 0, "{pods:#}");
}

#[test]
fn grace_period_zero_removes_the_old_pod_at_once() {
    // terminationGracePeriodSeconds 30: a lost -g 0 would keep the pod for 30 s.
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: web\n    terminationGracePeriodSeconds: 30\n",
    ));
    let (exit, report, stderr) = s.run(&["--deployment", "web", "-c", "1", "-g", "0"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kill = &kills(&report)[0];
    assert!(
        ms(kill, "oldPodGoneMs") < 1000.0,
        "-g 0 took its time: {kill:#}"
    );
}

#[test]
fn a_replacement_that_never_becomes_ready_fails_the_run() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: broken\n    neverReady: true\n",
    ));
    let (exit, report, stderr) = s.run(&[
        "--deployment",
        "broken",
        "-c",
        "1",
        "--recovery-timeout",
        "1500ms",
    ]);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    assert_eq!(report["result"], "failed");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "not-recovered", "{kill:#}");
    assert!(
        kill["replacement"].is_string() && kill["replacementReadyAt"].is_null(),
        "{kill:#}"
    );
    let failed: Vec<&Value> = report["criteria"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["passed"] == false).collect())
        .unwrap_or_default();
    assert_eq!(failed.len(), 1, "{:#}", report["criteria"]);
    assert_eq!(failed[0]["actual"], "not recovered within 1500ms");
}

#[test]
fn expect_recovery_within_fails_a_slow_recovery() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: slow\n    readyDelayMs: 1200\n",
    ));
    let (exit, report, stderr) = s.run(&[
        "--deployment",
        "slow",
        "-c",
        "1",
        "--expect-recovery-within",
        "500ms",
    ]);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    assert_eq!(kills(&report)[0]["outcome"], "recovered");
    assert_eq!(
        report["criteria"][0]["passed"], false,
        "{:#}",
        report["criteria"]
    );
}

#[test]
fn evict_honours_a_pod_disruption_budget() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: guarded\n    pdb: {minAvailable: 2}\n  - name: relaxed\n    pdb: {minAvailable: 1}\n",
    ));
    let before = s.lab.pod_names("app=guarded");
    let (exit, report, stderr) = s.run(&["--deployment", "guarded", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "blocked-by-pdb", "{kill:#}");
    assert_eq!(kill["message"], "blocked by PDB guarded-pdb");
    assert_eq!(
        s.lab.pod_names("app=guarded"),
        before,
        "a blocked eviction deleted a pod"
    );
    let (exit, report, stderr) = s.run(&["--deployment", "relaxed", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(kills(&report)[0]["outcome"], "recovered", "{report:#}");
}
