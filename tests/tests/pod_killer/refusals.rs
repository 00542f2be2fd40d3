//! What pod-killer refuses, and when: `--min-ready` (before the run and before every
//! kill), protected namespaces, a malformed selector, a missing target, RBAC denials;
//! dry runs and contexts.

use chaos_tests::kube_lab::KubeLab;

use super::{SA_USER, common, kills, setup};

#[test]
fn min_ready_refuses_a_kill_that_would_leave_too_few_ready_pods() {
    let s = setup(None);
    let before = s.lab.pod_names("app=product-service");
    let (exit, report, stderr) = s.run(&["--deployment", "product-service", "--min-ready", "2"]);
    assert_eq!(exit, 3, "{stderr}\n{report:#}");
    assert_eq!(report["result"], "refused");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("2 Ready now")
            && message.contains("--min-ready 2")
            && message.contains("leave 1"),
        "{message}"
    );
    assert_eq!(s.lab.pod_names("app=product-service"), before);
}

#[test]
fn min_ready_is_checked_again_before_each_kill() {
    // The first kill's replacement never becomes Ready: the second kill would delete the
    // last Ready pod, and must be skipped instead.
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: fragile\n    neverReady: true\n",
    ));
    let (exit, report, stderr) = s.run(&[
        "--deployment",
        "fragile",
        "-c",
        "2",
        "-i",
        "100ms",
        "--recovery-timeout",
        "500ms",
    ]);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    let kills = kills(&report);
    assert_eq!(kills[0]["outcome"], "not-recovered", "{kills:#?}");
    assert_eq!(kills[1]["outcome"], "skipped-min-ready", "{kills:#?}");
    let ready = s.ready_pods("fragile");
    assert_eq!(
        ready.len(),
        1,
        "kubectl shows {ready:?} Ready: the last Ready pod was killed"
    );
}

#[test]
fn a_protected_namespace_is_refused_before_anything_is_read() {
    let s = setup(None);
    let (exit, report, stderr) = s.run(&["-n", " kube-system ", "--deployment", "coredns"]);
    assert_eq!(exit, 3, "{stderr}\n{report:#}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("protected"),
        "{report:#}"
    );
    let touched: Vec<_> = s
        .lab
        .control()
        .accesses()
        .into_iter()
        .filter(|a| a.user == SA_USER && a.namespace == "kube-system")
        .collect();
    assert!(
        touched.is_empty(),
        "read the protected namespace: {touched:?}"
    );
    let after = s.lab.kubectl_json(&["get", "pods", "-n", "kube-system"]);
    assert_eq!(after["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn a_malformed_selector_is_bad_input_before_any_request() {
    let s = setup(None);
    let before = s.lab.control().accesses().len();
    let kubeconfig = s.sa.to_string_lossy().into_owned();
    for selector in ["app in a,b", "app=(x)", "app=a=b", "=x", "tier notin"] {
        let out = common::run(std::process::Command::new(common::bin("pod-killer")).args([
            "--kubeconfig",
            &kubeconfig,
            "-l",
            selector,
            "-y",
        ]));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{selector}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("--selector") && stderr.contains("not a valid label selector"),
            "{stderr}"
        );
    }
    assert_eq!(
        s.lab.control().accesses().len(),
        before,
        "a request reached the API server"
    );
}

#[test]
fn a_missing_target_is_bad_input_listing_what_exists() {
    let s = setup(None);
    for (flag, value, listed) in [
        ("--deployment", "nope", "product-service"),
        ("--service", "nope", "auth-service"),
        ("--statefulset", "nope", "redis"),
    ] {
        let (exit, report, stderr) = s.run(&[flag, value]);
        assert_eq!(exit, 2, "{stderr}\n{report:#}");
        assert_eq!(report["result"], "bad-input");
        let message = report["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(flag) && message.contains(listed),
            "{message}"
        );
    }
}

#[test]
fn forbidden_reads_name_verb_resource_namespace_and_rbac_yaml() {
    let s = setup(None);
    let (exit, report, stderr) = s.run(&["-n", "payments-restricted", "--deployment", "ledger"]);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    // The first read of a run is the freeze switch (docs/remote.md): a namespace where it
    // cannot be read ends the run there, before any workload is listed.
    for part in [
        "get configmaps/chaos-freeze",
        "payments-restricted",
        "403",
        "docs/rbac.yaml",
        SA_USER,
    ] {
        assert!(message.contains(part), "{part} missing: {message}");
    }
}

#[test]
fn a_role_without_delete_fails_the_kill_with_a_report() {
    let s = setup(None);
    let rbac = std::fs::read_to_string(chaos_tests::kube_lab::rbac_yaml()).unwrap();
    let no_delete = rbac.replace(
        r#"verbs: ["list", "watch", "delete"]"#,
        r#"verbs: ["list", "watch"]"#,
    );
    assert_ne!(rbac, no_delete, "docs/rbac.yaml changed shape");
    let file = s.lab.dir.join("rbac-no-delete.yaml");
    std::fs::write(&file, no_delete).unwrap();
    let sa = s
        .lab
        .service_account_kubeconfig(&file, "lomash-wood", "pod-killer");
    let args = [
        "--kubeconfig",
        sa.to_str().unwrap(),
        "--output",
        "json",
        "-y",
        "--deployment",
        "api-gateway",
        "-c",
        "1",
    ];
    let (exit, report, stderr) = common::run_json("pod-killer", &args);
    assert_eq!(exit, 1, "{stderr}\n{report:#}");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("delete pods in namespace lomash-wood")
            && message.contains("docs/rbac.yaml"),
        "{message}"
    );
    assert_eq!(s.ready_pods("api-gateway").len(), 2);
}

#[test]
fn dry_run_deletes_nothing() {
    let s = setup(None);
    let before = s.lab.kubectl_json(&["get", "pods"]);
    let (exit, report, stderr) = s.run(&["-s", "auth-service", "--dry-run"]);
    assert_eq!(exit, 0, "{stderr}");
    assert_eq!(report["result"], "dry-run");
    assert!(report["plan"].as_array().is_some_and(|p| {
        p.iter()
            .any(|s| s.as_str().is_some_and(|s| s.starts_with("delete ")))
    }));
    let pods = report["targets"]
        .as_array()
        .map_or(0, |t| t.iter().filter(|t| t["kind"] == "pod").count());
    assert_eq!(pods, 2, "{:#}", report["targets"]);
    assert_eq!(report["targets"][0]["kind"], "deployment");
    assert_eq!(
        before["items"],
        s.lab.kubectl_json(&["get", "pods"])["items"],
        "dry-run changed pods"
    );
    assert_eq!(
        s.lab.kubectl_json(&["get", "events"])["items"]
            .as_array()
            .map(Vec::len),
        Some(0)
    );
}

#[test]
fn with_no_target_a_deployment_that_can_lose_a_pod_is_chosen() {
    let s = setup(Some(
        "namespaces:\n- name: lomash-wood\n  deployments:\n  - name: single\n    replicas: 1\n  - name: pair\n  - name: lone\n    replicas: 1\n",
    ));
    for _ in 0..3 {
        let (exit, report, stderr) = s.run(&["--dry-run"]);
        assert_eq!(exit, 0, "{stderr}");
        assert_eq!(
            report["targets"][0]["name"], "pair",
            "{:#}",
            report["targets"]
        );
    }
    let (exit, report, _) = s.run(&["--dry-run", "--min-ready", "2"]);
    assert_eq!(exit, 3);
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("min-ready") && message.contains("pair"),
        "{message}"
    );
}

#[test]
fn context_selects_the_cluster_from_a_kubeconfig_with_several() {
    let s = setup(None);
    let lab: &KubeLab = &s.lab;
    let text = std::fs::read_to_string(&s.sa).unwrap();
    let mut config: serde_json::Value = serde_norway::from_str(&text).unwrap();
    config["clusters"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "dead", "cluster": {"server": "https://127.0.0.1:1"}}));
    config["contexts"][0]["name"] = "lab".into();
    config["contexts"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({"name": "dead", "context": {"cluster": "dead", "user": SA_USER}}));
    config["current-context"] = "dead".into();
    let path = lab.dir.join("two-contexts");
    std::fs::write(&path, serde_norway::to_string(&config).unwrap()).unwrap();
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
    let (exit, report, _) = common::run_json(
        "pod-killer",
        &[
            "--kubeconfig",
            &path,
            "-s",
            "api-gateway",
            "--dry-run",
            "--output",
            "json",
        ],
    );
    assert_eq!(exit, 1, "the current context points at a dead server");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("127.0.0.1:1"),
        "{report:#}"
    );
}

#[test]
fn needs_no_system_ca_bundle_as_in_a_scratch_image() {
    let s = setup(None);
    let kubeconfig = s.sa.to_string_lossy().into_owned();
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
