//! EXP-001 (pod failure) end to end on the lab with real k6 (docs/runbooks.md#exp-001):
//! PASS against the well-behaved stand-ins, Ctrl-C in the middle reverting everything,
//! FAIL naming the deletion-window check against the badly-behaved ones. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Runs};

const SCRIPT: &str = "exp-001-pod-failure.sh";
const FAST: &[&str] = &[
    "--baseline",
    "3",
    "--recovery",
    "6",
    "--band-window",
    "1",
    "--rate",
    "20",
    "--settle",
    "4",
];

#[test]
fn root_runbook_exp001_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let pass = runs.run(SCRIPT, "t1-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline p95 < 300 ms",
        "baseline error rate < 0.1%",
        "< 5 errors in the pod deletion window",
        "pod rescheduled within 30 s",
        "P95 back to baseline within 60 s",
        "fault 'kill' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    let report: serde_json::Value = serde_json::from_str(&pass.file("faults/kill.json")).unwrap();
    assert_eq!(report["observations"]["kills"][0]["outcome"], "recovered");
    assert!(pass.file("timeline.svg").starts_with("<svg"));
    let row = runs.row("t1-pass");
    assert!(row.contains("| EXP-001 | Staging | PASS |"), "{row}");
    assert!(
        !runs.log_text().contains("| — | EXP-001 |"),
        "the placeholder row is replaced:\n{}",
        runs.log_text()
    );
    lab.assert_as_it_was(&before);

    // Ctrl-C while pod-killer waits for the old pod to go (a 5 s grace period).
    let mut args = FAST.to_vec();
    args.extend(["--grace-period", "5"]);
    let stopped = runs.interrupt(SCRIPT, "t1-ctrlc", &args, || {
        runs.timeline("t1-ctrlc").contains("fault-start\tkill")
            && lab
                .ok(&["get", "events", "-o", "name"])
                .contains("chaos-pod-killer-t1-ctrlc-kill")
    });
    assert_eq!(stopped.status("fault 'kill' removed (verified)"), "pass");
    assert!(
        runs.row("t1-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    lab.assert_as_it_was(&before);

    // Against a product-service that is Ready before it can serve: the replacement answers
    // 503s, which the deletion window counts.
    lab.fragile(&["product-service"]);
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "t1-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"< 5 errors in the pod deletion window".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        fail.out
            .contains("failed: \"< 5 errors in the pod deletion window\""),
        "{}",
        fail.out
    );
    assert!(
        runs.row("t1-fragile")
            .contains("| EXP-001 | Staging | FAIL |")
    );
}
