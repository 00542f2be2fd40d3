//! EXP-002 (database connection pool exhaustion) end to end on the lab with real k6
//! (docs/runbooks.md#exp-002): PASS against the well-behaved stand-ins with
//! DATABASE_CONNECTION_LIMIT restored to the value read first; Ctrl-C during the burst
//! restoring it too; FAIL naming the crash checks against an order-payment-service that
//! exits when its pool is exhausted. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Runs};

const SCRIPT: &str = "exp-002-db-pool-exhaustion.sh";
const FAST: &[&str] = &[
    "--baseline",
    "4",
    "--burst-duration",
    "8",
    "--load-drop",
    "6",
    "--recovery",
    "8",
    "--band-window",
    "1",
    "--rate",
    "10",
];

/// The limit in order-payment-service's Deployment (the lab's manifest sets 20).
fn limit(lab: &Lab) -> String {
    lab.ok(&[
        "get",
        "deployment",
        "order-payment-service",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].env[?(@.name==\"DATABASE_CONNECTION_LIMIT\")].value}",
    ])
}

#[test]
fn root_runbook_exp002_passes_restores_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();
    assert_eq!(limit(&lab), "20");

    let pass = runs.run(SCRIPT, "t2-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "pool exhausted: the burst got 503s",
        "503s, not crashes or timeouts (no 500, 502, 504 or unanswered request)",
        "recovers when the load drops (limit still 2)",
        "logs contain PrismaClientKnownRequestError",
        "no OOMKilled or CrashLoopBackOff",
        "back to baseline within 60 s of the limit restored",
        "fault 'pool' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    assert!(runs.row("t2-pass").contains("| EXP-002 | Staging | PASS |"));
    assert_eq!(limit(&lab), "20");
    lab.assert_as_it_was(&before);

    // Ctrl-C in the middle of the burst: the limit is restored and the rollout awaited.
    let stopped = runs.interrupt(SCRIPT, "t2-ctrlc", FAST, || {
        runs.timeline("t2-ctrlc").contains("\tburst\t")
    });
    assert_eq!(stopped.status("fault 'pool' removed (verified)"), "pass");
    assert!(
        runs.row("t2-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    assert_eq!(limit(&lab), "20");
    lab.assert_as_it_was(&before);

    // An order-payment-service that exits when its pool is exhausted.
    lab.fragile(&["order-payment-service"]);
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "t2-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"no OOMKilled or CrashLoopBackOff".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        runs.row("t2-fragile")
            .contains("| EXP-002 | Staging | FAIL |")
    );
    assert_eq!(limit(&lab), "20");
    lab.assert_as_it_was(&fragile);
}
