//! Remote mode's dry runs against the Kubernetes API test server: the originals' and the
//! runbooks' forms resolve the pods and print the exact remote plan (what is copied where,
//! which ephemeral container with which capabilities, the in-pod argument vector), touch
//! nothing (no exec, no ephemeral container), and bad input is exit 2.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "remote_support/mod.rs"]
mod support;

use serde_json::Value;
use support::{Api, ensure_dist, plan_text};

fn in_pod(report: &Value) -> Vec<String> {
    report["parameters"]["inPodCommand"]
        .as_array()
        .unwrap_or_else(|| panic!("no inPodCommand: {report:#}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

fn names(report: &Value) -> Vec<String> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// Nothing reached into a pod: no exec, attach, log or ephemeral container request.
fn assert_untouched(api: &Api) {
    let touched: Vec<_> = api
        .lab
        .control()
        .accesses()
        .into_iter()
        .filter(|a| {
            ["exec", "attach", "log", "ephemeralcontainers"].contains(&a.subresource.as_str())
                || (a.resource == "pods" && !["get", "list", "watch"].contains(&a.verb.as_str()))
        })
        .collect();
    assert!(touched.is_empty(), "a dry run touched pods: {touched:#?}");
}

#[test]
fn remote_cpu_hog_dry_run_names_each_pod_the_copy_and_the_in_pod_command() {
    let dist = ensure_dist();
    let api = Api::start();
    let (exit, report, stderr) = api.run(
        "cpu-hog",
        None,
        &[
            "-s",
            "product-service",
            "-c",
            "80",
            "--of-limit",
            "-d",
            "180",
            "-y",
            "--dry-run",
            "--run-id",
            "r1",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["result"], "dry-run");
    let pods = api.lab.pod_names("app=product-service");
    let mut want: Vec<String> = pods.iter().map(|p| format!("lomash-wood/{p}")).collect();
    want.sort();
    assert_eq!(names(&report), want);
    assert_eq!(
        in_pod(&report),
        [
            "/tmp/chaos-cpu-hog-r1/cpu-hog",
            "--cpu-percent=80",
            "--of-limit",
            "--duration=180",
            "--run-id",
            "r1",
            "-y",
            "--output",
            "json",
            "--log-format",
            "json",
        ]
    );
    let target = &report["targets"][0]["details"];
    assert_eq!(target["container"], "product-service");
    assert!(
        target["stopCommand"]
            .as_str()
            .unwrap()
            .ends_with("-c product-service -- /tmp/chaos-cpu-hog-r1/cpu-hog --stop r1"),
        "{target:#}"
    );
    let plan = plan_text(&report);
    for needle in [
        &format!(
            "copy {}",
            dist.join("cpu-hog")
                .canonicalize()
                .unwrap_or(dist.join("cpu-hog"))
                .display()
        )[..],
        "(static x86_64",
        "tar -x -f - -C /tmp",
        "remove /tmp/chaos-cpu-hog-r1 from each container",
        "create pods/exec in lomash-wood",
    ] {
        assert!(plan.contains(needle), "plan lacks '{needle}':\n{plan}");
    }
    for pod in &pods {
        assert!(
            plan.contains(pod.as_str()),
            "plan does not name {pod}:\n{plan}"
        );
    }
    assert_untouched(&api);
}

#[test]
fn remote_memory_leak_runbook_form_watches_the_pod() {
    ensure_dist();
    let api = Api::start();
    let pod = api.lab.pod_names("app=notification-service").remove(0);
    let (exit, report, stderr) = api.run(
        "memory-leak",
        None,
        &[
            "--namespace=lomash-wood",
            &format!("--pod=pod/{pod}"),
            "--rate-mb-per-second=50",
            "--limit-mb=512",
            "--watch-oom",
            "--dry-run",
            "--run-id=r2",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(names(&report), [format!("lomash-wood/{pod}")]);
    let argv = in_pod(&report);
    for arg in ["--rate-mb-per-second=50", "--limit-mb=512", "--watch-oom"] {
        assert!(argv.iter().any(|a| a == arg), "{arg} not in {argv:?}");
    }
    assert!(
        !argv
            .iter()
            .any(|a| a.contains("namespace") || a.contains("--pod")),
        "{argv:?}"
    );
    assert!(
        plan_text(&report).contains("OOMKilled"),
        "{}",
        plan_text(&report)
    );
    assert_untouched(&api);
}

#[test]
fn remote_net_partition_cuts_the_services_cluster_ip_and_endpoints_from_an_ephemeral_container() {
    let api = Api::start();
    let (exit, report, stderr) = api.run(
        "net-partition",
        None,
        &[
            "-s",
            "order-payment-service",
            "-t",
            "auth-service",
            "-p",
            "3000",
            "--bidirectional",
            "--dry-run",
            "--run-id",
            "r3",
            "--image",
            "registry.example/chaos-tools:9",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["parameters"]["delivery"], "ephemeral");
    assert_eq!(names(&report).len(), 2);
    let argv = in_pod(&report);
    assert_eq!(argv[0], "net-partition");
    let mut hosts: Vec<&str> = argv
        .windows(2)
        .filter(|w| w[0] == "-H")
        .map(|w| w[1].as_str())
        .collect();
    hosts.sort_unstable();
    let mut want = api.pod_ips("auth-service");
    want.push("203.0.113.10".into());
    want.sort();
    assert_eq!(hosts, want);
    for arg in ["--target-port=3000", "--bidirectional", "--run-id"] {
        assert!(argv.iter().any(|a| a == arg), "{arg} not in {argv:?}");
    }
    assert!(!argv.iter().any(|a| a.contains("auth-service")), "{argv:?}");
    let plan = plan_text(&report);
    for needle in [
        "ephemeral container chaos-net-partition-r3",
        "image registry.example/chaos-tools:9",
        "capabilities: drop ALL, add NET_ADMIN",
        "net-partition __targets r3 add|delete",
        "ClusterIP 203.0.113.10",
        "cannot be removed",
        "patch pods/ephemeralcontainers in lomash-wood",
        "get namespaces lomash-wood",
    ] {
        assert!(plan.contains(needle), "plan lacks '{needle}':\n{plan}");
    }
    assert_untouched(&api);
}

#[test]
fn remote_latency_injector_forms_of_the_issue_and_the_runbooks() {
    let api = Api::start();
    let cases: &[(&[&str], &str, &[&str])] = &[
        (
            &[
                "--service=order-payment-service",
                "--endpoint=/v1/webhooks/stripe",
                "--latency-ms=10000",
            ],
            "app=order-payment-service",
            &["--endpoint=/v1/webhooks/stripe", "--latency=10000"],
        ),
        (
            &[
                "-n",
                "lomash-wood",
                "--target",
                "redis",
                "--latency-ms=5000",
            ],
            "app=redis",
            &["--latency=5000", "--app-port", "6379"],
        ),
        (
            &["-s", "product-service", "--target", "redis"],
            "app=product-service",
            &["--target=redis"],
        ),
        (
            &[
                "-s",
                "product-service",
                "--target",
                "redis",
                "--engine",
                "proxy",
            ],
            "app=product-service",
            &["--target=redis", "--engine=proxy"],
        ),
        // The originals' form: every outgoing TCP connection of the pod, with netem.
        (
            &[
                "-s",
                "product-service",
                "-l",
                "200",
                "-j",
                "50",
                "-p",
                "5432",
            ],
            "app=product-service",
            &[
                "--latency=200",
                "--jitter=50",
                "--target-port=5432",
                "--engine=netem",
            ],
        ),
    ];
    for (args, selector, want) in cases {
        let mut all = args.to_vec();
        all.extend(["--dry-run", "--run-id", "r4"]);
        let (exit, report, stderr) = api.run("latency-injector", None, &all);
        assert_eq!(exit, 0, "{args:?}: {stderr}\n{report:#}");
        let mut pods: Vec<String> = api
            .lab
            .pod_names(selector)
            .iter()
            .map(|p| format!("lomash-wood/{p}"))
            .collect();
        pods.sort();
        assert_eq!(names(&report), pods, "{args:?}");
        let argv = in_pod(&report);
        for arg in *want {
            assert!(
                argv.iter().any(|a| a == arg),
                "{args:?}: {arg} not in {argv:?}"
            );
        }
        if selector == &"app=redis" {
            assert!(!argv.iter().any(|a| a.starts_with("--target")), "{argv:?}");
        }
    }
    assert_untouched(&api);
}

/// The originals' `-s A -l 200 -j 50 -p PORT`: an ephemeral container with NET_ADMIN in
/// each pod of A running the netem engine, the plan saying so.
#[test]
fn remote_latency_injector_originals_form_plans_netem_in_an_ephemeral_container() {
    let api = Api::start();
    let (exit, report, stderr) = api.run(
        "latency-injector",
        None,
        &[
            "-s",
            "product-service",
            "-l",
            "200",
            "-j",
            "50",
            "-p",
            "5432",
            "--dry-run",
            "--run-id",
            "r6",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    common::assert_valid_report(&report);
    assert_eq!(report["parameters"]["delivery"], "ephemeral");
    assert_eq!(
        names(&report).len(),
        api.lab.pod_names("app=product-service").len()
    );
    let argv = in_pod(&report);
    assert_eq!(argv[0], "latency-injector");
    assert_eq!(
        argv.iter().filter(|a| a.starts_with("--engine")).count(),
        1,
        "{argv:?}"
    );
    let plan = plan_text(&report);
    for needle in [
        "ephemeral container chaos-latency-injector-r6",
        "capabilities: drop ALL, add NET_ADMIN",
        "--engine=netem",
        "--target-port=5432",
        "patch pods/ephemeralcontainers in lomash-wood",
    ] {
        assert!(plan.contains(needle), "plan lacks '{needle}':\n{plan}");
    }
    // --engine auto given: still one --engine in the pod, netem.
    let (exit, report, stderr) = api.run(
        "latency-injector",
        None,
        &[
            "-s",
            "product-service",
            "-l",
            "200",
            "--engine",
            "auto",
            "--dry-run",
        ],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    let argv = in_pod(&report);
    let engines: Vec<_> = argv.iter().filter(|a| a.starts_with("--engine")).collect();
    assert_eq!(engines, ["--engine=netem"], "{argv:?}");
    assert_untouched(&api);
}

/// `--cleanup` with remote flags: one target per matched pod, each with the in-pod
/// `TOOL --cleanup` it would run (a new ephemeral container where none of the tool's runs),
/// touching nothing in a dry run. latency-injector's `--cleanup -s A` names no place for a
/// delay: it was refused as bad input before the originals' form was wired.
#[test]
fn remote_cleanup_dry_run_names_the_cleanup_of_each_matched_pod() {
    let api = Api::start();
    for (tool, service) in [
        ("latency-injector", "product-service"),
        ("net-partition", "order-payment-service"),
    ] {
        let (exit, report, stderr) =
            api.run(tool, None, &["-s", service, "--cleanup", "--dry-run"]);
        assert_eq!(exit, 0, "{tool}: {stderr}\n{report:#}");
        common::assert_valid_report(&report);
        assert_eq!(report["action"], "cleanup", "{report:#}");
        assert_eq!(report["result"], "dry-run", "{report:#}");
        let mut pods: Vec<String> = api
            .lab
            .pod_names(&format!("app={service}"))
            .iter()
            .map(|p| format!("lomash-wood/{p}"))
            .collect();
        pods.sort();
        let mut got = names(&report);
        got.sort();
        assert_eq!(got, pods, "{tool}");
        let plan = plan_text(&report);
        for pod in api.lab.pod_names(&format!("app={service}")) {
            let line = format!("pod {pod}: add ephemeral container chaos-{tool}-");
            assert!(plan.contains(&line), "{tool}: plan lacks '{line}':\n{plan}");
        }
        assert!(
            plan.contains(&format!("running {tool} --cleanup")),
            "{plan}"
        );
        for target in report["targets"].as_array().unwrap() {
            assert_eq!(
                target["details"]["removed"],
                serde_json::json!([]),
                "{target:#}"
            );
        }
    }
    assert_untouched(&api);
}

#[test]
fn remote_max_pods_narrows_and_environment_values_are_forwarded() {
    let api = Api::start();
    let out = common::run(
        std::process::Command::new(common::bin("latency-injector"))
            .args([
                "--deployment",
                "product-service",
                "--endpoint",
                "/x",
                "--max-pods",
                "1",
                "--dry-run",
            ])
            .arg("--kubeconfig")
            .arg(&api.lab.kubeconfig)
            .args(["--output", "json"])
            .env("CHAOS_ENVIRONMENT", "staging"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    common::assert_valid_report(&report);
    assert_eq!(names(&report).len(), 1);
    assert!(
        plan_text(&report).contains("over --max-pods 1"),
        "{}",
        plan_text(&report)
    );
    assert!(
        in_pod(&report).iter().any(|a| a == "--environment=staging"),
        "{:?}",
        in_pod(&report)
    );
}

#[test]
fn remote_bad_input_is_exit_two_before_anything_is_touched() {
    let api = Api::start();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "net-partition",
            &["-s", "no-such-service", "-H", "198.51.100.1"],
            "no Running pod matches",
        ),
        (
            "net-partition",
            &["--pod", "pod/nope", "-H", "198.51.100.1"],
            "no such pod",
        ),
        (
            "latency-injector",
            &["--deployment", "nope", "--endpoint", "/x"],
            "no such Deployment",
        ),
        (
            "net-partition",
            &["-s", "order-payment-service", "-t", "nope"],
            "no such Service",
        ),
        (
            "net-partition",
            &[
                "-s",
                "order-payment-service",
                "--container",
                "app",
                "-H",
                "198.51.100.1",
            ],
            "no such container",
        ),
    ];
    for (tool, args, needle) in cases {
        let mut all = args.to_vec();
        all.push("--dry-run");
        let (exit, report, stderr) = api.run(tool, None, &all);
        assert_eq!(exit, 2, "{tool} {args:?}: {stderr}\n{report:#}");
        assert_eq!(
            report["result"], "bad-input",
            "{tool} {args:?}: {stderr}\n{report:#}"
        );
        assert!(stderr.contains(needle), "{tool} {args:?}: {stderr}");
    }
    // Refused by the command line itself: one line on stderr, no report.
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "cpu-hog",
            &["-n", "lomash-wood"],
            "only apply in remote mode",
        ),
        (
            "net-partition",
            &["-t", "auth-service"],
            "needs remote mode",
        ),
        (
            "latency-injector",
            &["-s", "product-service", "-l", "200", "--engine", "proxy"],
            "--engine proxy needs a target",
        ),
        (
            "latency-injector",
            &["-s", "product-service", "-p", "5432", "--endpoint", "/x"],
            "-p/--target-port alone",
        ),
        (
            "latency-injector",
            &["-s", "product-service", "--endpoint", "x"],
            "must be a path starting with '/'",
        ),
        ("cpu-hog", &["--pod", "a", "-s", "b"], "one way"),
        (
            "memory-leak",
            &["--pod", "a", "--rate-mb-per-second", "0"],
            "--rate-mb-per-second",
        ),
    ];
    for (tool, args, needle) in cases {
        let (exit, report, stderr) = api.run(tool, None, args);
        assert_eq!(exit, 2, "{tool} {args:?}: {stderr}");
        assert!(
            report.is_null(),
            "{tool} {args:?} printed a report: {report:#}"
        );
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{tool} {args:?}: {stderr}");
    }
    assert_untouched(&api);
}
