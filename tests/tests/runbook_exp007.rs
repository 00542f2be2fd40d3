//! EXP-007 (Stripe webhook processing delay) end to end on the lab with real k6
//! (docs/runbooks.md#exp-007): latency-injector in remote mode (`--service
//! order-payment-service --endpoint /v1/webhooks/stripe`, an ephemeral container in each
//! pod) and the lab's Stripe-like sender (lab-stripe) settling the run's orders through
//! the delayed endpoint, retrying its timed-out deliveries. PASS against the well-behaved
//! stand-ins (retries seen, every event processed, no order left PENDING_PAYMENT, no
//! duplicate), Ctrl-C while the delay holds (the delay reverted, the sender stopped),
//! FAIL naming the duplicate check against the fragile order-payment-service (no webhook
//! idempotency). One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use std::process::Command;
use std::time::Instant;

use runbook_support::{Lab, Run, Runs};

const SCRIPT: &str = "exp-007-stripe-webhook-delay.sh";
const FAST: &[&str] = &[
    "--baseline",
    "5",
    "--fault-duration",
    "40",
    "--delay-duration",
    "8",
    "--recovery",
    "6",
    "--band-window",
    "1",
    "--rate",
    "10",
    "--latency-ms",
    "3000",
    "--sender-timeout-ms",
    "2000",
    "--orders",
    "5",
];

/// The delay is gone: the webhook endpoint answers at once (a bad signature: 400) and no
/// latency container still runs in the target's pods.
fn delay_gone(lab: &Lab) {
    let t0 = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "10"])
        .args(["-X", "POST", "--data", "{}"])
        .arg(format!("{}/v1/webhooks/stripe", lab.base_url))
        .output()
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "400");
    assert!(took.as_millis() < 2000, "the webhook still takes {took:?}");
    for pod in lab
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=order-payment-service",
            "-o",
            "name",
        ])
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

/// The tool's report says reverted, the removal was verified, the sender is gone.
fn reverted(run: &Run) {
    let report: serde_json::Value =
        serde_json::from_str(run.file("faults/delay.json").trim()).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert_eq!(run.status("fault 'delay' removed (verified)"), "pass");
    assert_eq!(run.status("fault 'deliveries' removed (verified)"), "pass");
    let pid = run.file("faults/stripe.pid");
    assert!(
        !std::path::Path::new(&format!("/proc/{}", pid.trim())).exists(),
        "the sender {pid} outlived the run"
    );
}

#[test]
fn root_runbook_exp007_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();
    runs.dry_run_touches_nothing(
        &lab,
        SCRIPT,
        "t7-dry",
        "latency-injector",
        "order-payment-service",
    );

    let pass = runs.run(SCRIPT, "t7-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "Stripe retries visible (deliveries retried)",
        "all events eventually processed successfully",
        "no orders stuck in PENDING_PAYMENT",
        "no duplicate order records",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    reverted(&pass);
    assert!(
        pass.file("faults/stripe.ndjson")
            .contains("timed out after 2000 ms")
    );
    assert!(runs.row("t7-pass").contains("| EXP-007 | Staging | PASS |"));
    delay_gone(&lab);
    lab.assert_as_it_was(&before);

    // Ctrl-C while the delay holds and the sender retries.
    let stopped = runs.interrupt(SCRIPT, "t7-ctrlc", FAST, || {
        runs.timeline("t7-ctrlc").contains("mark\tsender-started")
    });
    reverted(&stopped);
    assert!(
        runs.row("t7-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    delay_gone(&lab);
    lab.assert_as_it_was(&before);

    // The fragile order-payment-service processes every delivery of an event again: the
    // retries of the delayed deliveries duplicate the order records.
    lab.fragile(&["order-payment-service"]);
    let fragile = lab.platform();
    let fail = runs.run(SCRIPT, "t7-fragile", FAST);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"no duplicate order records".to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        runs.row("t7-fragile")
            .contains("| EXP-007 | Staging | FAIL |")
    );
    reverted(&fail);
    delay_gone(&lab);
    lab.assert_as_it_was(&fragile);
}
