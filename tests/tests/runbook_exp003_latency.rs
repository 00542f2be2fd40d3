//! EXP-003 `--mode latency` (Redis slowed down for every client) end to end on the lab with
//! real k6 (docs/runbooks.md#exp-003): latency-injector in remote mode (`-n lomash-wood
//! --target redis`, an ephemeral container in the Redis pod delaying every connection to
//! it). PASS against the well-behaved stand-ins (slower than their Redis timeout, they fall
//! back to the database), Ctrl-C while the delay holds (reverted, no latency container
//! still running), FAIL naming the products check against a product-service with no
//! fallback. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{GUARD_AWAY, Lab, Run, Runs};

const SCRIPT: &str = "exp-003-redis-failure.sh";
const FAST: &[&str] = &[
    "--mode",
    "latency",
    "--latency-ms",
    "500",
    "--baseline",
    "4",
    "--fault-duration",
    "15",
    "--recovery",
    "6",
    "--band-window",
    "1",
    "--rate",
    "20",
];

/// The tool's report says reverted, the removal was verified, and no latency container
/// still runs in the Redis pod.
fn reverted(lab: &Lab, run: &Run) {
    let report: serde_json::Value =
        serde_json::from_str(run.file("faults/redis.json").trim()).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert_eq!(run.status("fault 'redis' removed (verified)"), "pass");
    for pod in lab
        .ok(&["get", "pods", "-l", "app=redis", "-o", "name"])
        .lines()
    {
        let running = lab.ok(&[
            "get",
            pod,
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[?(@.state.running)].name}",
        ]);
        assert!(running.trim().is_empty(), "{pod} still runs {running}");
    }
}

#[test]
fn root_runbook_exp003_latency_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let pass = runs.run(SCRIPT, "t3l-pass", FAST);
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
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    reverted(&lab, &pass);
    assert!(
        runs.row("t3l-pass")
            .contains("| EXP-003 | Staging | PASS |")
    );
    lab.assert_as_it_was(&before);

    // Ctrl-C while Redis is slow.
    let stopped = runs.interrupt(SCRIPT, "t3l-ctrlc", FAST, || {
        runs.run_dir("t3l-ctrlc")
            .and_then(|d| std::fs::read_to_string(d.join("faults/redis.log")).ok())
            .is_some_and(|log| log.contains("fault applied in pod"))
    });
    reverted(&lab, &stopped);
    assert!(
        runs.row("t3l-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    lab.assert_as_it_was(&before);

    // A product-service with no fallback: 500s while Redis is slow.
    lab.fragile(&["product-service"]);
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "t3l-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"GET /v1/products continues returning data".to_owned()),
        "{:?}",
        fail.failed()
    );
    reverted(&lab, &fail);
    lab.assert_as_it_was(&fragile);
}
