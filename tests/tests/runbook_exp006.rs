//! EXP-006 (memory leak until the OOM killer) end to end on the lab with real k6
//! (docs/runbooks.md#exp-006): memory-leak copied into one notification-service pod and
//! run there through kubectl exec. PASS against the well-behaved stand-ins (the OOM kill
//! recorded, the container back in time, the Grafana check confirmed by the operator);
//! Ctrl-C while it grows (slowly) stopping it before any OOM kill, nothing left in the
//! pod; FAIL naming the users' error-rate check against a replacement that is Ready before
//! it serves. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Runs};

const SCRIPT: &str = "exp-006-memory-leak.sh";
const GRAFANA: &str = "memory metrics in Grafana show the event and recovery";
const FAST: &[&str] = &[
    "--baseline",
    "4",
    "--fault-duration",
    "30",
    "--recovery",
    "20",
    "--band-window",
    "1",
    "--rate",
    "20",
];

/// No memory-leak process and no copy in any notification-service pod.
fn nothing_in_the_pods(lab: &Lab) {
    for pod in lab
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=notification-service",
            "-o",
            "name",
        ])
        .lines()
    {
        let comms = lab.ok(&["exec", pod, "--", "sh", "-c", "cat /proc/[0-9]*/comm"]);
        assert!(
            !comms.lines().any(|c| c == "memory-leak"),
            "{pod} still runs memory-leak"
        );
        let tmp = lab.ok(&["exec", pod, "--", "ls", "-a", "/tmp"]);
        assert!(!tmp.contains("chaos-memory-leak"), "{pod}: {tmp}");
    }
}

#[test]
fn root_runbook_exp006_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let mut args = FAST.to_vec();
    args.extend(["--confirm", GRAFANA]);
    let pass = runs.run(SCRIPT, "t6-pass", &args);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "OOMKill event recorded in pod events",
        "pod replaced within 30 s",
        "no error rate increase visible to end users",
        GRAFANA,
        "fault 'leak' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    assert!(pass.file("faults/pod-events.txt").contains("OOMKilling"));
    assert!(runs.row("t6-pass").contains("| EXP-006 | Staging | PASS |"));
    nothing_in_the_pods(&lab);
    lab.assert_as_it_was(&before);

    // Without the confirmation the Grafana check stays manual: PARTIAL, exit 5. (The same
    // pod is OOM-killed again: its restart now waits for the back-off, about 10 s here,
    // as on Kubernetes; hence the seed's 30 s, not less.)
    let partial = runs.run(SCRIPT, "t6-partial", FAST);
    partial.expect("PARTIAL");
    assert_eq!(partial.code, Some(5));
    assert_eq!(partial.status(GRAFANA), "manual");
    lab.assert_as_it_was(&before);

    // Ctrl-C while it grows at 2 MiB/s, long before the OOM kill: stopped and reverted.
    let mut args = FAST.to_vec();
    args.extend(["--rate-mb-per-second", "2"]);
    let stopped = runs.interrupt(SCRIPT, "t6-ctrlc", &args, || {
        runs.timeline("t6-ctrlc").contains("mark\tleak-applied")
    });
    assert_eq!(stopped.status("fault 'leak' removed (verified)"), "pass");
    let report: serde_json::Value =
        serde_json::from_str(&stopped.file("faults/leak.json")).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert!(
        runs.row("t6-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    nothing_in_the_pods(&lab);
    lab.assert_as_it_was(&before);

    // A replacement Ready 8 s before it can serve: the users see 503s.
    lab.fragile(&["notification-service"]);
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    args.extend(["--confirm", GRAFANA]);
    let fail = runs.run(SCRIPT, "t6-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"no error rate increase visible to end users".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        runs.row("t6-fragile")
            .contains("| EXP-006 | Staging | FAIL |")
    );
    nothing_in_the_pods(&lab);
    lab.assert_as_it_was(&fragile);
}
