//! EXP-005 (CPU saturation) end to end on the lab with real k6 (docs/runbooks.md#exp-005):
//! cpu-hog copied into one product-service pod and run there through kubectl exec, the
//! HPA's answer sampled. PASS against the well-behaved stand-ins, Ctrl-C while the hog
//! holds reverting everything (no cpu-hog process, no copy left in the pod), FAIL naming
//! the 5xx check against replicas that are Ready before they serve. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Runs};

const SCRIPT: &str = "exp-005-cpu-saturation.sh";
const FAST: &[&str] = &[
    "--baseline",
    "4",
    "--fault-duration",
    "25",
    "--recovery",
    "6",
    "--band-window",
    "1",
    "--rate",
    "20",
    "--hpa-within",
    "20",
    "--ready-within",
    "20",
    "--back-within",
    "30",
];

/// The processes of every product-service pod: none may be a cpu-hog after a run.
fn no_hog_in_the_pods(lab: &Lab) {
    for pod in lab
        .ok(&["get", "pods", "-l", "app=product-service", "-o", "name"])
        .lines()
    {
        let comms = lab.ok(&["exec", pod, "--", "sh", "-c", "cat /proc/[0-9]*/comm"]);
        assert!(
            !comms.lines().any(|c| c == "cpu-hog"),
            "{pod} still runs cpu-hog"
        );
        let tmp = lab.ok(&["exec", pod, "--", "ls", "-a", "/tmp"]);
        assert!(!tmp.contains("chaos-cpu-hog"), "{pod}: {tmp}");
    }
}

#[test]
fn root_runbook_exp005_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let pass = runs.run(SCRIPT, "t5-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "HPA triggers within 20 s of CPU > target",
        "new pod Ready within 20 s",
        "P95 back to baseline within 30 s",
        "no 5xx increase during scaling",
        "fault 'hog' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    // The in-pod run's own report: it held its load of the container's limit, reverted.
    let report: serde_json::Value = serde_json::from_str(&pass.file("faults/hog.json")).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert_eq!(report["observations"]["ofLimit"], true);
    assert_eq!(report["observations"]["cgroupCpuQuotaCores"], 0.5);
    let hpa = pass.file("faults/hpa.tsv");
    assert!(
        hpa.lines().any(|l| l.split('\t').nth(2).unwrap() != "2"),
        "the HPA never asked for more than 2 replicas:\n{hpa}"
    );
    assert!(pass.file("timeline.tsv").contains("mark\thog-applied"));
    assert!(runs.row("t5-pass").contains("| EXP-005 | Staging | PASS |"));
    no_hog_in_the_pods(&lab);
    lab.assert_back_to(&before, 120);

    // Ctrl-C while the hog holds the pod's CPU.
    let stopped = runs.interrupt(SCRIPT, "t5-ctrlc", FAST, || {
        runs.timeline("t5-ctrlc").contains("mark\thog-applied")
    });
    assert_eq!(stopped.status("fault 'hog' removed (verified)"), "pass");
    let report: serde_json::Value = serde_json::from_str(&stopped.file("faults/hog.json")).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert!(
        runs.row("t5-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    no_hog_in_the_pods(&lab);
    lab.assert_back_to(&before, 120);

    // Replicas Ready before they can serve: the scale-up brings 503s.
    lab.fragile(&["product-service"]);
    // The rollout's warm-up may have made the HPA scale up: its minimum first.
    runbook_support::wait_until("the HPA back to 2 replicas", 120, || {
        lab.ok(&[
            "get",
            "deployment",
            "product-service",
            "-o",
            "jsonpath={.spec.replicas}",
        ]) == "2"
    });
    lab.settled();
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "t5-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"no 5xx increase during scaling".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        runs.row("t5-fragile")
            .contains("| EXP-005 | Staging | FAIL |")
    );
    no_hog_in_the_pods(&lab);
    lab.assert_back_to(&fragile, 120);
}
