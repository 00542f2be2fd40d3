//! Remote preflight against the Kubernetes API test server: RBAC (SelfSubjectAccessReview)
//! and Pod Security refusals are one line, exit 3, nothing touched; docs/rbac.yaml's
//! chaos-tools Role grants exactly what the forms ask for; the freeze switch refuses every
//! tool that reaches the cluster (remote runs and pod-killer) and stops a running
//! pod-killer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "remote_support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chaos_tests::kube_lab::{rbac_yaml, wait_until};
use serde_json::Value;
use support::{Api, ensure_dist, plan_text};

const FREEZE: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: chaos-freeze, namespace: NS}\ndata: {reason: \"incident INC-123: all chaos stopped\"}\n";

fn freeze(api: &Api, ns: &str) {
    api.apply(&FREEZE.replace("NS", ns));
}

fn thaw(api: &Api, ns: &str) {
    let out = api
        .lab
        .kubectl(&["delete", "configmap", "chaos-freeze", "-n", ns]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Requests of `user` that reached into a pod or changed one.
fn touched(api: &Api, user: &str) -> Vec<String> {
    api.lab
        .control()
        .accesses()
        .into_iter()
        .filter(|a| a.user == user && a.allowed && a.resource == "pods")
        .filter(|a| {
            !["get", "list", "watch"].contains(&a.verb.as_str()) || !a.subresource.is_empty()
        })
        .map(|a| format!("{} {}/{}", a.verb, a.resource, a.subresource))
        .collect()
}

#[test]
fn remote_freeze_switch_refuses_remote_runs_and_pod_killer_quoting_its_reason() {
    let api = Api::start();
    let runs: &[(&str, &[&str])] = &[
        (
            "net-partition",
            &[
                "-s",
                "order-payment-service",
                "-H",
                "198.51.100.1",
                "--dry-run",
            ],
        ),
        (
            "latency-injector",
            &["-n", "lomash-wood", "--target", "redis", "-y"],
        ),
        (
            "pod-killer",
            &["--deployment", "product-service", "--dry-run"],
        ),
    ];
    freeze(&api, "lomash-wood");
    for (tool, args) in runs {
        let (exit, report, stderr) = api.run(tool, None, args);
        assert_eq!(exit, 3, "{tool} {args:?}: {stderr}\n{report:#}");
        assert_eq!(report["result"], "refused");
        let message = report["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("\"incident INC-123: all chaos stopped\""),
            "{message}"
        );
        assert!(
            message.contains("kubectl delete configmap chaos-freeze -n lomash-wood"),
            "{message}"
        );
    }
    assert!(touched(&api, chaos_tests::kube_server::ADMIN_USER).is_empty());
    thaw(&api, "lomash-wood");
    // Elsewhere: only with --freeze-namespace.
    freeze(&api, "payments-restricted");
    let args = [
        "-s",
        "order-payment-service",
        "-H",
        "198.51.100.1",
        "--dry-run",
    ];
    assert_eq!(api.run("net-partition", None, &args).0, 0);
    let mut with = args.to_vec();
    with.extend(["--freeze-namespace", "payments-restricted"]);
    assert_eq!(api.run("net-partition", None, &with).0, 3);
    let pk = [
        "--deployment",
        "product-service",
        "--dry-run",
        "--freeze-namespace",
        "payments-restricted",
    ];
    assert_eq!(api.run("pod-killer", None, &pk).0, 3);
}

#[test]
fn remote_freeze_switch_stops_a_running_pod_killer() {
    let api = Api::start();
    let mut child = Command::new(common::bin("pod-killer"))
        .args([
            "--deployment",
            "product-service",
            "-c",
            "3",
            "-i",
            "60",
            "-y",
            "--output",
            "json",
        ])
        .arg("--kubeconfig")
        .arg(&api.lab.kubeconfig)
        .env_remove("KUBECONFIG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its first kill is the sign it runs.
    let deleted = |n: usize| {
        api.lab
            .control()
            .accesses()
            .iter()
            .filter(|a| {
                a.user == chaos_tests::kube_server::ADMIN_USER
                    && a.verb == "delete"
                    && a.resource == "pods"
            })
            .count()
            >= n
    };
    wait_until("pod-killer's first kill", Duration::from_secs(30), || {
        deleted(1).then_some(())
    });
    let frozen_at = Instant::now();
    freeze(&api, "lomash-wood");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let status = child.wait().unwrap();
    let stopped = frozen_at.elapsed();
    let report: Value = serde_json::from_reader(stdout).unwrap();
    common::assert_valid_report(&report);
    let logs = std::io::read_to_string(stderr).unwrap();
    println!(
        "pod-killer stopped {} ms after chaos-freeze was created",
        stopped.as_millis()
    );
    assert_eq!(status.code(), Some(0), "{logs}\n{report:#}");
    assert_eq!(report["result"], "aborted");
    assert!(
        report["stopReason"]
            .as_str()
            .unwrap()
            .starts_with("freeze: ConfigMap chaos-freeze exists"),
        "{report:#}"
    );
    assert!(!deleted(2), "pod-killer killed again after the freeze");
}

#[test]
fn remote_rbac_refusal_names_verb_resource_namespace_and_touches_nothing() {
    let api = Api::start();
    // An account that may list pods and read the freeze switch, and nothing else.
    let yaml = "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: reader, namespace: lomash-wood}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: reader, namespace: lomash-wood}\nrules:\n  - {apiGroups: [\"\"], resources: [pods], verbs: [list, get]}\n  - {apiGroups: [\"\"], resources: [configmaps], verbs: [get]}\n---\napiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: reader, namespace: lomash-wood}\nsubjects: [{kind: ServiceAccount, name: reader, namespace: lomash-wood}]\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: reader}\n";
    let file = api.lab.dir.join("reader.yaml");
    std::fs::write(&file, yaml).unwrap();
    let sa = api
        .lab
        .service_account_kubeconfig(&file, "lomash-wood", "reader");
    let (exit, report, stderr) = api.run(
        "net-partition",
        Some(&sa),
        &["-s", "order-payment-service", "-t", "auth-service", "-y"],
    );
    assert_eq!(exit, 3, "{stderr}\n{report:#}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    for needle in [
        "may not patch pods/ephemeralcontainers in namespace lomash-wood",
        "may not create pods/exec in namespace lomash-wood",
        "may not get namespaces lomash-wood at the cluster scope",
        "docs/rbac.yaml",
    ] {
        assert!(message.contains(needle), "'{needle}' missing: {message}");
    }
    let user = "system:serviceaccount:lomash-wood:reader";
    assert!(touched(&api, user).is_empty(), "{:?}", touched(&api, user));
}

/// (verb, resource) of every rule of the chaos-tools Role and ClusterRole.
fn granted() -> BTreeSet<String> {
    let text = std::fs::read_to_string(rbac_yaml()).unwrap();
    let mut grants = BTreeSet::new();
    for doc in serde_norway::Deserializer::from_str(&text) {
        let object: Value = serde::Deserialize::deserialize(doc).unwrap();
        let name = object["metadata"]["name"].as_str().unwrap_or("");
        let ours = matches!(object["kind"].as_str(), Some("Role" | "ClusterRole"))
            && name.starts_with("chaos-tools");
        if !ours {
            continue;
        }
        for rule in object["rules"].as_array().unwrap() {
            for verb in rule["verbs"].as_array().unwrap() {
                for group in rule["apiGroups"].as_array().unwrap() {
                    for resource in rule["resources"].as_array().unwrap() {
                        let (group, resource) =
                            (group.as_str().unwrap(), resource.as_str().unwrap());
                        let (res, sub) = resource.split_once('/').unwrap_or((resource, ""));
                        let mut text = if group.is_empty() {
                            res.to_owned()
                        } else {
                            format!("{res}.{group}")
                        };
                        if !sub.is_empty() {
                            text = format!("{text}/{sub}");
                        }
                        grants.insert(format!("{} {text}", verb.as_str().unwrap()));
                    }
                }
            }
        }
    }
    grants
}

/// The permissions a dry run's plan says the API server confirmed, as `verb resource`.
fn confirmed(report: &Value) -> BTreeSet<String> {
    let plan = plan_text(report);
    let line = plan
        .lines()
        .find(|l| l.starts_with("the API server allows this user"))
        .unwrap_or_else(|| panic!("no access line in the plan:\n{plan}"));
    line.split_once(": ")
        .unwrap()
        .1
        .split(", ")
        .map(|n| {
            let words: Vec<&str> = n.split(' ').collect();
            format!("{} {}", words[0], words[1])
        })
        .collect()
}

#[test]
fn remote_rbac_yaml_grants_exactly_what_the_remote_forms_ask_for() {
    ensure_dist();
    let api = Api::start();
    let sa = api
        .lab
        .service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "chaos-tools");
    let pod = api.lab.pod_names("app=notification-service").remove(0);
    let forms: &[(&str, Vec<String>)] = &[
        ("cpu-hog", vec!["-s".into(), "product-service".into()]),
        (
            "cpu-hog",
            vec!["--deployment".into(), "product-service".into()],
        ),
        (
            "memory-leak",
            vec![
                format!("--pod=pod/{pod}"),
                "--limit-mb=64".into(),
                "--watch-oom".into(),
            ],
        ),
        (
            "net-partition",
            vec![
                "-s".into(),
                "order-payment-service".into(),
                "-t".into(),
                "auth-service".into(),
            ],
        ),
        (
            "latency-injector",
            vec![
                "-n".into(),
                "lomash-wood".into(),
                "--target".into(),
                "redis".into(),
            ],
        ),
        (
            "latency-injector",
            vec![
                "-l".into(),
                "9".into(),
                "--selector".into(),
                "app=api-gateway".into(),
                "--endpoint=/x".into(),
            ],
        ),
        // The originals' form: netem for every outgoing connection of the pods.
        (
            "latency-injector",
            vec![
                "-s".into(),
                "product-service".into(),
                "-l".into(),
                "200".into(),
                "-j".into(),
                "50".into(),
            ],
        ),
    ];
    let mut used = BTreeSet::new();
    for (tool, args) in forms {
        let mut all: Vec<&str> = args.iter().map(String::as_str).collect();
        all.push("--dry-run");
        let (exit, report, stderr) = api.run(tool, Some(&sa), &all);
        assert_eq!(
            exit, 0,
            "{tool} {args:?} as chaos-tools: {stderr}\n{report:#}"
        );
        used.extend(confirmed(&report));
    }
    let granted = granted();
    assert_eq!(
        used, granted,
        "asked for vs granted by docs/rbac.yaml's chaos-tools roles"
    );
    let user = "system:serviceaccount:lomash-wood:chaos-tools";
    let denied: Vec<_> = api
        .lab
        .control()
        .accesses()
        .into_iter()
        .filter(|a| a.user == user && !a.allowed)
        .collect();
    assert!(denied.is_empty(), "{denied:#?}");
}

#[test]
fn remote_pod_security_baseline_refuses_the_ephemeral_container_not_exec_delivery() {
    ensure_dist();
    let api = Api::start();
    let out = api.lab.kubectl(&[
        "label",
        "namespace",
        "lomash-wood",
        "pod-security.kubernetes.io/enforce=baseline",
        "--overwrite",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The runbook's ingress form and the originals' netem form (no target).
    let forms: [&[&str]; 2] = [
        &[
            "--service=order-payment-service",
            "--endpoint=/v1/webhooks/stripe",
            "-y",
        ],
        &["-s", "product-service", "-l", "200", "-j", "50", "-y"],
    ];
    for args in forms {
        let (exit, report, stderr) = api.run("latency-injector", None, args);
        assert_eq!(exit, 3, "{args:?}: {stderr}\n{report:#}");
        let message = report["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("pod-security.kubernetes.io/enforce=baseline"),
            "{message}"
        );
        assert!(
            message.contains("kubectl label namespace lomash-wood"),
            "{message}"
        );
    }
    assert!(touched(&api, chaos_tests::kube_server::ADMIN_USER).is_empty());
    // cpu-hog runs in the application container itself: Pod Security does not apply.
    let (exit, _, stderr) = api.run("cpu-hog", None, &["-s", "product-service", "--dry-run"]);
    assert_eq!(exit, 0, "{stderr}");
}
