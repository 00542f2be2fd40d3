//! Remote `--cleanup` and latency-injector's originals' form end to end on the lab
//! (issue "Remote targeting"), judged from outside the tools:
//! - a run whose operator was SIGKILLed is swept by `cpu-hog --pod P --cleanup`: the
//!   report names the run it stopped and the copy it removed, the load and the copy are
//!   gone from the pod;
//! - `latency-injector -s A -l 200 -j 50` (the originals' netem form) on a kernel without
//!   `sch_netem` (this machine's) is refused in every pod, nothing applied: the fault
//!   could not be applied (exit 1) and the error names each pod's reason;
//! - `latency-injector -s A --cleanup` with no chaos container running adds one that runs
//!   the in-pod cleanup, which finds nothing of ours and ends `ok`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "remote_support/mod.rs"]
mod support;

use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use support::judge::{no_copy_left, pod_reports, timed_curl};
use support::lab::{Lab, Running};

/// `TOOL ARGS --output json` against the lab: (exit code, schema-valid report, stderr).
fn run_tool(lab: &Lab, tool: &str, args: &[&str]) -> (i32, Value, String) {
    let out = common::run(
        Command::new(common::bin(tool))
            .args(args)
            .args(["--output", "json"])
            .env("KUBECONFIG", &lab.kubeconfig)
            .env_remove("CHAOS_IMAGE"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{tool} {args:?}: stdout is not JSON ({e})\n{stderr}"));
    common::assert_valid_report(&report);
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// The operator's cpu-hog SIGKILLed mid-run; `cpu-hog --pod P --cleanup` stops the pod's
/// run and removes its copy, and says so per pod.
fn cleanup_sweeps_a_killed_run(lab: &Lab) {
    let pod = lab.pods("product-service").remove(0);
    let before = lab.processes(&pod);
    lab.orphan_cpu_hog(&pod, "swept-1");

    let (exit, report, stderr) = run_tool(lab, "cpu-hog", &["--pod", &pod, "--cleanup"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["action"], "cleanup");
    assert_eq!(report["result"], "ok", "{report:#}");
    let details = &report["targets"][0]["details"];
    assert_eq!(
        details["stopped"],
        serde_json::json!(["swept-1"]),
        "{report:#}"
    );
    let removed: Vec<&str> = details["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        removed.contains(&"/tmp/chaos-cpu-hog-swept-1"),
        "{removed:?}"
    );
    assert!(report["observations"]["removed"].as_u64().unwrap() >= 1);

    lab.until("load gone after --cleanup", 10, || {
        lab.cpu_percent(&pod, Duration::from_millis(250)) < 5.0
    });
    no_copy_left(lab, &pod, "cpu-hog");
    assert_eq!(lab.processes(&pod), before, "processes left in {pod}");

    // A second sweep finds nothing and says so.
    let (exit, report, stderr) = run_tool(lab, "cpu-hog", &["--pod", &pod, "--cleanup"]);
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(
        report["targets"][0]["details"]["stopped"],
        serde_json::json!([])
    );
    let done = report["targets"][0]["details"]["done"].to_string();
    assert!(done.contains("nothing to clean"), "{done}");
}

/// `-s order-payment-service -l 200 -j 50`: every pod refuses (no sch_netem here, its own
/// report `bad-input`); the run is `failed` (exit 1: the fault could not be applied, and
/// it is not bad input of the operator's: an ephemeral container was added before the
/// node's kernel could be asked), its error naming each pod's reason; nothing delayed.
fn netem_form_refused_without_sch_netem(lab: &Lab) {
    let pods = lab.pods("order-payment-service");
    let run = Running::start(
        lab,
        "latency-injector",
        &[
            "-s",
            "order-payment-service",
            "-l",
            "200",
            "-j",
            "50",
            "-d",
            "60",
        ],
    );
    let (exit, report, log) = run.finish(180);
    assert_eq!(exit, 1, "{log}\n{report:#}");
    assert_eq!(report["result"], "failed", "{report:#}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    for pod in &pods {
        assert!(
            message.contains(&format!(
                "pod {pod}: --engine netem: the kernel has no sch_netem"
            )),
            "{message}"
        );
    }
    let inner = pod_reports(&report);
    assert_eq!(inner.len(), pods.len(), "{report:#}");
    for r in &inner {
        assert_eq!(r["result"], "bad-input", "{r:#}");
        assert!(r["errors"].to_string().contains("sch_netem"), "{r:#}");
        assert_eq!(r["parameters"]["engine"], "netem", "{r:#}");
    }
    let webhook = format!("{}/v1/webhooks/stripe", lab.base_url);
    let (took, _) = timed_curl(&["-X", "POST", "--data", "{}", &webhook]);
    assert!(took < Duration::from_millis(200), "{took:?}");
}

/// `latency-injector -s order-payment-service --cleanup`: no chaos container runs any
/// more, so one is added per pod to run the in-pod cleanup; nothing of ours is found.
fn cleanup_in_new_ephemeral_containers(lab: &Lab) {
    let pods = lab.pods("order-payment-service");
    let (exit, report, stderr) = run_tool(
        lab,
        "latency-injector",
        &["-s", "order-payment-service", "--cleanup", "-y"],
    );
    assert_eq!(exit, 0, "{stderr}\n{report:#}");
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["targets"].as_array().unwrap().len(), pods.len());
    for t in report["targets"].as_array().unwrap() {
        assert!(
            t["details"]["done"].to_string().contains("--cleanup"),
            "{t:#}"
        );
        assert_eq!(t["details"]["removed"], serde_json::json!([]), "{t:#}");
    }
}

#[test]
fn root_remote_cleanup_and_the_netem_form_on_the_lab() {
    let lab = Lab::up(&["--no-build"]);
    cleanup_sweeps_a_killed_run(&lab);
    netem_form_refused_without_sch_netem(&lab);
    cleanup_in_new_ephemeral_containers(&lab);
}
