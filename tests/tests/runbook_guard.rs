//! The abort guard end to end on the lab with real k6 (docs/runbooks.md#the-abort-guard).
//! The runbook is EXP-004 (net-partition in remote mode: the cheapest fault that holds
//! for `--fault-duration` and whose removal can be seen in the lab); the guard watches
//! its products sentinel, and the stand-in product-service is made to fail on demand
//! while the partition holds (`POST /lab/fail?ms=N` on each of its pods, docs/lab.md):
//!
//! - an error spike that lasts: the guard trips, every fault is gone within 5 s of the
//!   breach (and of the trip), the result is ABORTED (exit 6) by the guard with the
//!   breach, trip and removal times in result.json and the row in the result log, and
//!   the partition is really gone from every pod;
//! - one bad second on little traffic (the sentinel at 3 requests a second, a window of
//!   about 30, just above the guard's minimum of 20): the guard never trips and the run
//!   reaches its verdict, PASS.
//!
//! One lab. The guard's rule on synthetic points is in chaos-verdict/src/guard_tests.rs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use std::time::SystemTime;

use k8s_openapi::chrono::{DateTime, Utc};
use runbook_support::{Lab, Run, Runs};
use serde_json::Value;

const SCRIPT: &str = "exp-004-network-partition.sh";
const APPLIED: &str = "fault applied in pod";

fn args<'a>(fault_seconds: &'a str, rate: &'a str) -> Vec<&'a str> {
    vec![
        "--baseline",
        "5",
        "--fault-duration",
        fault_seconds,
        "--recovery",
        "8",
        "--band-window",
        "1",
        "--vus",
        "10",
        "--rate",
        rate,
    ]
}

fn at(v: &Value) -> DateTime<Utc> {
    let text = v.as_str().unwrap_or_else(|| panic!("not a time: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn ms(from: &Value, to: &Value) -> i64 {
    (at(to) - at(from)).num_milliseconds()
}

/// Starts EXP-004 and returns once the partition is in place in every source pod.
fn started(runs: &Runs, lab: &Lab, run_id: &str, args: &[&str]) -> std::process::Child {
    let pods = lab
        .ok(&[
            "get",
            "pods",
            "-l",
            "app=order-payment-service",
            "-o",
            "name",
        ])
        .lines()
        .count();
    let child = runs.spawn(SCRIPT, run_id, args);
    runs.wait_for_lines(run_id, "faults/partition.log", APPLIED, pods);
    child
}

fn reverted(run: &Run) {
    let report: Value = serde_json::from_str(run.file("faults/partition.json").trim()).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert_eq!(run.status("fault 'partition' removed (verified)"), "pass");
}

fn spike_trips_the_guard(lab: &Lab, runs: &Runs) {
    // The partition would hold 60 s: the guard, not its end, removes it.
    let child = started(runs, lab, "tg-trip", &args("60", "5"));
    let spike_at = DateTime::<Utc>::from(SystemTime::now());
    lab.fail_pods("product-service", 60_000);
    let run = runs.wait("tg-trip", child);
    lab.fail_pods("product-service", 0);

    run.expect("ABORTED");
    assert_eq!(run.code, Some(6), "{}", run.out);
    let abort = &run.result["abort"];
    assert_eq!(abort["by"], "guard", "{abort:#}\n{}", run.out);
    assert!(
        abort["reason"].as_str().unwrap().contains("above 10%"),
        "{abort:#}"
    );
    let (breach, trip, removed) = (
        &abort["breachAt"],
        &abort["trippedAt"],
        &abort["faultsRemovedAt"],
    );
    let trip_to_removed = ms(trip, removed);
    let breach_to_removed = abort["breachToRemovedMs"].as_i64().unwrap();
    eprintln!(
        "guard on the lab: spike {spike_at:?}, breach {breach}, trip {trip}, every fault removed {removed}: \
         trip -> removed {trip_to_removed} ms, breach -> removed {breach_to_removed} ms, spike -> trip {} ms",
        (at(trip) - spike_at).num_milliseconds()
    );
    assert!(
        at(breach) >= spike_at,
        "a breach before the spike: {abort:#}"
    );
    assert!(ms(breach, trip) >= 0, "{abort:#}");
    assert!(
        (0..=5000).contains(&trip_to_removed),
        "trip to every fault removed: {trip_to_removed} ms ({abort:#})"
    );
    assert!(
        (0..=5000).contains(&breach_to_removed),
        "breach to every fault removed: {breach_to_removed} ms ({abort:#})"
    );
    assert_eq!(breach_to_removed, ms(breach, removed));
    // Every fault's own end is recorded, and none after "every fault removed".
    for fault in run.result["faults"].as_array().unwrap() {
        assert!(
            ms(&fault["endedAt"], removed) >= 0,
            "{fault:#} ended after {removed}"
        );
    }
    let tripping: Value = serde_json::from_str(run.file("guard/trip.json").trim()).unwrap();
    assert_eq!(tripping["guard"], "trip", "{tripping:#}");
    reverted(&run);
    assert!(
        runs.row("tg-trip")
            .contains("| EXP-004 | Staging | ABORTED | ABORTED: aborted by guard: error rate"),
        "{}",
        runs.log_text()
    );
    lab.partition_gone("order-payment-service", "auth-service");
}

fn one_bad_second_does_not_trip(lab: &Lab, runs: &Runs) {
    let child = started(runs, lab, "tg-second", &args("20", "3"));
    lab.fail_pods("product-service", 1000);
    let run = runs.wait("tg-second", child);

    let guard = run.file("guard/guard.log");
    let evaluations: Vec<Value> = guard
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        evaluations.iter().any(|e| e["errors"].as_u64() > Some(0)),
        "the bad second never reached the guard's window:\n{guard}"
    );
    assert!(
        evaluations
            .iter()
            .all(|e| e["guard"] != "trip" && e["guard"] != "breach"),
        "one bad second breached:\n{guard}"
    );
    assert!(run.result["abort"].is_null(), "{:#}", run.result["abort"]);
    run.expect("PASS");
    assert_eq!(run.code, Some(0));
    reverted(&run);
    lab.partition_gone("order-payment-service", "auth-service");
}

#[test]
fn root_runbook_guard_aborts_on_an_error_spike_and_ignores_one_bad_second() {
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    spike_trips_the_guard(&lab, &runs);
    lab.assert_as_it_was(&before);
    lab.warm(&["/v1/products"], 3);

    one_bad_second_does_not_trip(&lab, &runs);
    lab.assert_as_it_was(&before);
}
