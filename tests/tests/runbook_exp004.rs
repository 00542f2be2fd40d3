//! EXP-004 (network partition order-payment-service -> auth-service) end to end on the
//! lab with real k6 (docs/runbooks.md#exp-004): net-partition in remote mode (`-s
//! order-payment-service -t auth-service`, an ephemeral container in each source pod).
//! PASS against the well-behaved stand-ins (503 with a clear error, the upstream named in
//! the log, no partial writes, payments back after), Ctrl-C while the partition holds
//! reverting it (every source pod reaches auth-service again, no partition container
//! still running), FAIL naming the 500s and the partial writes against the fragile
//! order-payment-service. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{Lab, Run, Runs};

const SCRIPT: &str = "exp-004-network-partition.sh";
const FAST: &[&str] = &[
    "--baseline",
    "5",
    "--fault-duration",
    "20",
    "--recovery",
    "8",
    "--band-window",
    "1",
    "--vus",
    "10",
    "--rate",
    "5",
];

/// The partition is gone from every source pod: each reaches auth-service again, and no
/// ephemeral partition container is still running (finished ones stay in the pod spec:
/// they cannot be removed, docs/remote.md).
fn partition_gone(lab: &Lab) {
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
        let out = lab.kubectl(&[
            "exec",
            pod,
            "--",
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-m",
            "3",
            "http://auth-service:3000/health",
        ]);
        assert!(out.status.success(), "{pod} cannot reach auth-service");
        let running = lab.ok(&[
            "get",
            pod,
            "-o",
            "jsonpath={.status.ephemeralContainerStatuses[?(@.state.running)].name}",
        ]);
        assert!(running.trim().is_empty(), "{pod} still runs {running}");
    }
}

fn reverted(run: &Run) {
    let report: serde_json::Value =
        serde_json::from_str(run.file("faults/partition.json").trim()).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert_eq!(run.status("fault 'partition' removed (verified)"), "pass");
}

#[test]
fn root_runbook_exp004_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();
    runs.dry_run_touches_nothing(
        &lab,
        SCRIPT,
        "t4-dry",
        "net-partition",
        "order-payment-service",
    );

    let pass = runs.run(SCRIPT, "t4-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "create-intent refused with 401/503 during the partition",
        "no 500, 502, 504 or unanswered create-intent during the partition",
        "refusals carry a clear error message",
        "error logged with the upstream (auth-service) named",
        "no partially processed orders",
        "requests succeed again after the partition",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    reverted(&pass);
    assert!(pass.file("faults/probes.tsv").contains("\t503\t"));
    assert!(runs.row("t4-pass").contains("| EXP-004 | Staging | PASS |"));
    partition_gone(&lab);
    lab.assert_as_it_was(&before);

    // Ctrl-C while the partition holds.
    let stopped = runs.interrupt(SCRIPT, "t4-ctrlc", FAST, || {
        runs.run_dir("t4-ctrlc")
            .and_then(|d| std::fs::read_to_string(d.join("faults/partition.log")).ok())
            .is_some_and(|log| log.contains("fault applied in pod"))
    });
    reverted(&stopped);
    assert!(
        runs.row("t4-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    partition_gone(&lab);
    lab.assert_as_it_was(&before);

    // The fragile order-payment-service writes the order before checking the token and
    // answers 500 when auth-service is out of reach.
    lab.fragile(&["order-payment-service"]);
    let fragile = lab.platform();
    let fail = runs.run(SCRIPT, "t4-fragile", FAST);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    let failed = fail.failed();
    for name in [
        "no 500, 502, 504 or unanswered create-intent during the partition",
        "refusals carry a clear error message",
        "no partially processed orders",
    ] {
        assert!(failed.contains(&name.to_owned()), "{name}: {failed:?}");
    }
    assert!(
        runs.row("t4-fragile")
            .contains("| EXP-004 | Staging | FAIL |")
    );
    reverted(&fail);
    partition_gone(&lab);
    lab.assert_as_it_was(&fragile);
}
