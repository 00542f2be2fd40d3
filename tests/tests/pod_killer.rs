//! pod-killer against the Kubernetes API test server, checked with kubectl: a kill and
//! its recovery timeline, a replacement that never becomes Ready, the refusals
//! (--min-ready, protected namespace), 403, dry-run, several kills, --evict with PDBs.

mod common;

use chaos_tests::kube_lab::KubeLab;
use serde_json::Value;

fn lab() -> KubeLab {
    KubeLab::lomash_wood().unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"))
}

fn lab_from(yaml: &str) -> KubeLab {
    KubeLab::from_yaml(yaml).unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"))
}

/// Runs pod-killer against `lab` with `--output json -y`; returns (exit, report, stderr).
fn pod_killer(lab: &KubeLab, args: &[&str]) -> (i32, Value, String) {
    let kubeconfig = lab.kubeconfig.to_string_lossy().into_owned();
    let mut all = vec![
        "--kubeconfig",
        kubeconfig.as_str(),
        "--output",
        "json",
        "-y",
    ];
    all.extend_from_slice(args);
    common::run_json("pod-killer", &all)
}

fn kills(report: &Value) -> Vec<Value> {
    report["observations"]["kills"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ms(kill: &Value, step: &str) -> f64 {
    kill["msAfterRequest"][step]
        .as_f64()
        .unwrap_or_else(|| panic!("{step} missing: {kill:#}"))
}

#[test]
fn a_kill_is_timed_through_its_full_recovery_and_recorded_as_an_event() {
    let lab = lab();
    let before = lab.pod_names("app=product-service");
    let (exit, report, stderr) = pod_killer(
        &lab,
        &[
            "--deployment",
            "product-service",
            "-c",
            "1",
            "--run-id",
            "e2e-kill",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    assert_eq!(report["result"], "ok");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "recovered", "{kill:#}");
    let victim = kill["pod"].as_str().unwrap_or_default().to_owned();
    let replacement = kill["replacement"].as_str().unwrap_or_default().to_owned();
    assert!(before.contains(&victim), "{victim} not among {before:?}");
    assert!(
        !replacement.is_empty() && !before.contains(&replacement),
        "{kill:#}"
    );
    // Every step was seen, in the order the controllers produce them.
    let created = ms(kill, "replacementCreated");
    let scheduled = ms(kill, "replacementScheduled");
    let ready = ms(kill, "replacementReady");
    let recovered = ms(kill, "deploymentRecovered");
    assert!(ms(kill, "deletionAccepted") >= 0.0 && ms(kill, "oldPodGone") >= 0.0);
    assert!(
        created <= scheduled && scheduled <= ready && ready <= recovered,
        "{kill:#}"
    );
    // The fixture's delays: scheduled +50 ms, Running +100 ms, Ready +200 ms (less some
    // slack for event delivery on a busy machine).
    assert!(
        ready - created >= 150.0,
        "Ready too early after creation: {kill:#}"
    );

    let after = lab.pod_names("app=product-service");
    assert!(
        !after.contains(&victim) && after.contains(&replacement),
        "{after:?}"
    );
    let events = lab.kubectl_json(&["get", "events"]);
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
fn a_replacement_that_never_becomes_ready_fails_the_run() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: broken\n    neverReady: true\n",
    );
    let (exit, report, stderr) = pod_killer(
        &lab,
        &[
            "--deployment",
            "broken",
            "-c",
            "1",
            "--recovery-timeout",
            "1500ms",
        ],
    );
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
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
    assert!(
        failed[0]["actual"]
            .as_str()
            .unwrap_or_default()
            .contains("not recovered")
    );
}

#[test]
fn expect_recovery_within_fails_a_slow_recovery() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: slow\n    readyDelayMs: 1200\n",
    );
    let (exit, report, stderr) = pod_killer(
        &lab,
        &[
            "--deployment",
            "slow",
            "-c",
            "1",
            "--expect-recovery-within",
            "500ms",
        ],
    );
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    assert_eq!(kills(&report)[0]["outcome"], "recovered");
    assert_eq!(
        report["criteria"][0]["passed"], false,
        "{:#}",
        report["criteria"]
    );
}

#[test]
fn min_ready_refuses_a_kill_that_would_leave_too_few_ready_pods() {
    let lab = lab();
    let before = lab.pod_names("app=product-service");
    let (exit, report, stderr) = pod_killer(
        &lab,
        &["--deployment", "product-service", "--min-ready", "2"],
    );
    assert_eq!(exit, 3, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    assert_eq!(report["result"], "refused");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 Ready now")
            && message.contains("--min-ready 2")
            && message.contains("leave 1"),
        "{message}"
    );
    assert_eq!(lab.pod_names("app=product-service"), before);
}

#[test]
fn a_protected_namespace_is_refused_before_anything_is_read() {
    let lab = lab();
    let before = lab.pod_names("app=coredns");
    let (exit, report, stderr) =
        pod_killer(&lab, &["-n", "kube-system", "--deployment", "coredns"]);
    assert_eq!(exit, 3, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("protected"),
        "{report:#}"
    );
    let after = lab.kubectl_json(&["get", "pods", "-n", "kube-system"]);
    assert_eq!(after["items"].as_array().map(Vec::len), Some(2));
    assert!(
        before.is_empty(),
        "coredns lives in kube-system, not lomash-wood"
    );
}

#[test]
fn dry_run_deletes_nothing() {
    let lab = lab();
    let before = lab.kubectl_json(&["get", "pods"]);
    let (exit, report, stderr) = pod_killer(&lab, &["-s", "auth-service", "--dry-run"]);
    assert_eq!(exit, 0, "{stderr}");
    common::assert_valid_report(&report);
    assert_eq!(report["result"], "dry-run");
    assert!(report["plan"].as_array().is_some_and(|p| {
        p.iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("delete ")))
    }));
    let pods: Vec<&Value> = report["targets"]
        .as_array()
        .map(|t| t.iter().filter(|t| t["kind"] == "pod").collect())
        .unwrap_or_default();
    assert_eq!(pods.len(), 2, "{:#}", report["targets"]);
    let after = lab.kubectl_json(&["get", "pods"]);
    assert_eq!(before["items"], after["items"], "dry-run changed pods");
    assert_eq!(
        lab.kubectl_json(&["get", "events"])["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn forbidden_list_names_verb_resource_namespace_and_rbac_yaml() {
    let lab = lab();
    let out = common::run(std::process::Command::new(common::bin("pod-killer")).args([
        "--kubeconfig",
        &lab.kubeconfig.to_string_lossy(),
        "-n",
        "payments-restricted",
        "--deployment",
        "ledger",
        "-y",
    ]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for part in [
        "list deployments",
        "payments-restricted",
        "403",
        "docs/rbac.yaml",
    ] {
        assert!(stderr.contains(part), "{part} missing: {stderr}");
    }
}

#[test]
fn forbidden_delete_fails_the_run_with_a_report() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: api\nforbidden:\n- namespace: lomash-wood\n  verbs: [delete]\n",
    );
    let (exit, report, stderr) = pod_killer(&lab, &["--deployment", "api", "-c", "1"]);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("delete pods in namespace lomash-wood")
            && message.contains("docs/rbac.yaml"),
        "{message}"
    );
    assert_eq!(lab.pod_names("app=api").len(), 2);
}

#[test]
fn a_missing_target_is_bad_input_listing_what_exists() {
    let lab = lab();
    let (kubeconfig, bin) = (
        lab.kubeconfig.to_string_lossy().into_owned(),
        common::bin("pod-killer"),
    );
    for (flag, value, listed) in [
        ("--deployment", "nope", "product-service"),
        ("--service", "nope", "auth-service"),
    ] {
        let out = common::run(std::process::Command::new(&bin).args([
            "--kubeconfig",
            &kubeconfig,
            flag,
            value,
            "-y",
        ]));
        assert_eq!(out.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(flag) && stderr.contains(listed), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
}

#[test]
fn three_kills_one_second_apart_all_recover() {
    let lab = lab();
    let (exit, report, stderr) = pod_killer(
        &lab,
        &[
            "-s",
            "order-payment-service",
            "--count",
            "3",
            "--interval",
            "1",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
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
    assert_eq!(
        lab.kubectl_json(&["get", "deploy", "order-payment-service"])["status"]["readyReplicas"],
        2
    );
}

#[test]
fn evict_honours_a_pod_disruption_budget() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: guarded\n    pdb: {minAvailable: 2}\n  - name: relaxed\n    pdb: {minAvailable: 1}\n",
    );
    let before = lab.pod_names("app=guarded");
    let (exit, report, stderr) =
        pod_killer(&lab, &["--deployment", "guarded", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "blocked-by-pdb", "{kill:#}");
    assert_eq!(kill["message"], "blocked by PDB guarded-pdb");
    assert_eq!(
        lab.pod_names("app=guarded"),
        before,
        "a blocked eviction deleted a pod"
    );

    let (exit, report, stderr) =
        pod_killer(&lab, &["--deployment", "relaxed", "-c", "1", "--evict"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(kills(&report)[0]["outcome"], "recovered", "{report:#}");
}

#[test]
fn with_no_target_a_deployment_that_can_lose_a_pod_is_chosen() {
    let lab = lab_from(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: single\n    replicas: 1\n  - name: pair\n  - name: lone\n    replicas: 1\n",
    );
    for _ in 0..3 {
        let (exit, report, stderr) = pod_killer(&lab, &["--dry-run"]);
        assert_eq!(exit, 0, "{stderr}");
        assert_eq!(report["targets"][0]["kind"], "deployment");
        assert_eq!(
            report["targets"][0]["name"], "pair",
            "{:#}",
            report["targets"]
        );
    }
    // None can: refused before a report exists (nothing was chosen), exit 3.
    let kubeconfig = lab.kubeconfig.to_string_lossy().into_owned();
    let out = common::run(std::process::Command::new(common::bin("pod-killer")).args([
        "--kubeconfig",
        &kubeconfig,
        "--dry-run",
        "--min-ready",
        "2",
    ]));
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("min-ready") && stderr.contains("pair"),
        "{stderr}"
    );
}

#[test]
fn context_selects_the_cluster_from_a_kubeconfig_with_several() {
    let lab = lab();
    let text = format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster:\n    server: http://127.0.0.1:1\n\
         - name: lab\n  cluster:\n    server: http://{}\ncontexts:\n- name: dead\n  context:\n    cluster: dead\n    user: u\n\
         - name: lab\n  context:\n    cluster: lab\n    user: u\ncurrent-context: dead\nusers:\n- name: u\n  user: {{}}\n",
        lab.server.addr
    );
    let path = lab.dir.join("two-contexts");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    let path = path.to_string_lossy().into_owned();
    let (exit, report, stderr) = common::run_json(
        "pod-killer",
        &[
            "--kubeconfig",
            &path,
            "--context",
            "lab",
            "-s",
            "api-gateway",
            "--dry-run",
            "--output",
            "json",
        ],
    );
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(report["targets"][0]["name"], "api-gateway");
    let out = common::run(std::process::Command::new(common::bin("pod-killer")).args([
        "--kubeconfig",
        &path,
        "-s",
        "api-gateway",
        "--dry-run",
    ]));
    assert_eq!(
        out.status.code(),
        Some(1),
        "the current context points at a dead server"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("127.0.0.1:1"));
}

#[test]
fn a_grace_period_keeps_the_old_pod_terminating_while_the_replacement_starts() {
    let lab = lab();
    let (exit, report, stderr) = pod_killer(
        &lab,
        &[
            "-s",
            "content-service",
            "-c",
            "1",
            "-g",
            "2",
            "--delay",
            "100ms",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let kill = &kills(&report)[0];
    assert_eq!(kill["outcome"], "recovered", "{kill:#}");
    // The replacement is created at once and recovers while the old pod is still
    // terminating; the old pod goes after its 2 s grace period, which the run waits for.
    assert!(ms(kill, "replacementCreated") < 1000.0, "{kill:#}");
    let gone = &kill["msAfterRequest"]["oldPodGone"];
    assert!(
        gone.is_null() || gone.as_f64().is_some_and(|g| g >= 1900.0),
        "{kill:#}"
    );
    let pods = lab.kubectl_json(&["get", "pods", "-l", "app=content-service"]);
    let terminating = pods["items"].as_array().map_or(0, |p| {
        p.iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_string())
            .count()
    });
    assert_eq!(terminating, 0, "{pods:#}");
}

#[test]
fn needs_no_system_ca_bundle_as_in_a_scratch_image() {
    let lab = lab();
    let kubeconfig = lab.kubeconfig.to_string_lossy().into_owned();
    let out = common::run(
        std::process::Command::new(common::bin("pod-killer"))
            .args([
                "--kubeconfig",
                &kubeconfig,
                "-s",
                "api-gateway",
                "--dry-run",
                "--output",
                "json",
            ])
            .env("SSL_CERT_FILE", "/nonexistent/ca.crt")
            .env("SSL_CERT_DIR", "/nonexistent"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
