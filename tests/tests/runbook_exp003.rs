//! EXP-003 (Redis failure, scale-to-zero) end to end on the lab with real k6
//! (docs/runbooks.md#exp-003): PASS against the well-behaved stand-ins (they fall back to
//! the database); Ctrl-C while Redis is gone scaling it back; FAIL naming the products
//! check against a product-service with no fallback. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Runs};

const SCRIPT: &str = "exp-003-redis-failure.sh";
const FAST: &[&str] = &[
    "--baseline",
    "4",
    "--fault-duration",
    "12",
    "--recovery",
    "6",
    "--band-window",
    "1",
    "--rate",
    "20",
];

#[test]
fn root_runbook_exp003_passes_restores_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let pass = runs.run(SCRIPT, "t3-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "health endpoints answer 200 (the clients' pods stay Ready)",
        "GET /v1/products continues returning data",
        "POST /v1/auth/login continues working",
        "no unhandled errors (fallback silent or a warning)",
        "products p95 < 3x baseline",
        "login p95 < 3x baseline",
        "fault 'redis' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    assert!(pass.file("timeline.tsv").contains("mark\tredis-gone"));
    assert!(runs.row("t3-pass").contains("| EXP-003 | Staging | PASS |"));
    lab.assert_as_it_was(&before);

    // Ctrl-C while Redis is scaled to zero: scaled back, rollout awaited.
    let stopped = runs.interrupt(SCRIPT, "t3-ctrlc", FAST, || {
        runs.timeline("t3-ctrlc").contains("mark\tredis-gone")
    });
    assert_eq!(stopped.status("fault 'redis' removed (verified)"), "pass");
    assert!(
        runs.row("t3-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    lab.assert_as_it_was(&before);

    // A product-service with no fallback: 500s while Redis is gone.
    lab.fragile(&["product-service"]);
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "t3-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"GET /v1/products continues returning data".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        runs.row("t3-fragile")
            .contains("| EXP-003 | Staging | FAIL |")
    );
    lab.assert_as_it_was(&fragile);
}
