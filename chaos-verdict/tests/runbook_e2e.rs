//! The runbook library end to end, with real k6 and chaos-verdict, against a stand-in
//! service on loopback whose behaviour a toy fault switches (no Kubernetes): the toy
//! experiment PASSes when the service recovers, FAILs naming the check when it does not,
//! is ABORTED by the guard (every fault gone within 5 s of the breach), survives one bad
//! second, and reverts on Ctrl-C / SIGTERM while still writing its result log row.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::toy::{PLACEHOLDER_LOG, Toy, text};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

fn check<'a>(result: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    result["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check '{name}' in {result:#}"))
}

fn ms_between(a: &serde_json::Value, b: &serde_json::Value) -> i64 {
    let t = |v: &serde_json::Value| chaos_verdict::time::parse(v.as_str().unwrap()).unwrap();
    t(b) - t(a)
}

#[test]
fn runbook_passes_when_the_service_recovers() {
    let toy = Toy::new(false);
    let out = toy.run(&["--mode", "slow:100"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let r = toy.result();
    assert_eq!(r["result"], "PASS", "{r:#}");
    let fault = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fault")
        .unwrap();
    assert!(
        fault["p95Ms"].as_f64().unwrap() >= 100.0,
        "the fault slowed the service: {fault}"
    );
    assert!(fault["p95DeltaMs"].as_f64().unwrap() >= 90.0);
    assert_eq!(
        check(&r, "fault 'flip' removed (verified)")["status"],
        "pass"
    );
    assert_eq!(
        check(&r, "the mode file says ok after the run")["status"],
        "pass"
    );
    assert_eq!(toy.mode(), "ok");
    let names: Vec<&str> = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "hypothesis",
            "preflight",
            "baseline",
            "injection",
            "observation",
            "recovery",
            "result",
            "fault"
        ]
    );
    let log = toy.log_text();
    assert!(
        !log.contains("Pending first run"),
        "the placeholder row is replaced:\n{log}"
    );
    assert!(
        log.contains("| TOY-001 | Development | PASS | PASS: 6/6 checks passed; recovery "),
        "{log}"
    );
    let dir = toy.run_dir();
    for file in [
        "manifest.json",
        "timeline.svg",
        "summary.md",
        "seconds.csv",
        "checks.tsv",
        "k6/products.ndjson",
        "k6/products-summary.json",
        "faults/flip.json",
        "preflight/flip.json",
    ] {
        assert!(
            dir.join(file).exists(),
            "{file} missing from {}",
            dir.display()
        );
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["experiment"], "TOY-001");
    assert!(
        manifest["tools"][0]
            .as_str()
            .unwrap()
            .contains("toy-fault 0.0.1"),
        "{manifest:#}"
    );
    assert_eq!(manifest["targets.flip"][0]["kind"], "file");
    assert!(
        dir.file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .contains("-TOY-001-")
    );
}

#[test]
fn runbook_fails_naming_the_check_when_the_service_does_not_recover() {
    let toy = Toy::new(true);
    let out = toy.run(&["--mode", "slow:100"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("failed: \"p95 back to baseline within 3 s\""),
        "{stdout}"
    );
    let r = toy.result();
    let c = check(&r, "p95 back to baseline within 3 s");
    assert_eq!(c["status"], "fail");
    assert!(
        c["detail"].as_str().unwrap().starts_with("not recovered"),
        "{c}"
    );
    assert_eq!(
        check(&r, "fault 'flip' removed (verified)")["status"],
        "pass",
        "the fault itself was removed"
    );
    assert!(
        toy.log_text()
            .contains("| TOY-001 | Development | FAIL | FAIL: ")
    );
}

#[test]
fn runbook_aborts_when_the_guard_trips_and_every_fault_is_gone_within_5_s() {
    let toy = Toy::new(false);
    let out = toy.run(&["--mode", "fail:100", "--fault-duration", "60"]);
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    let r = toy.result();
    assert_eq!(r["result"], "ABORTED");
    let abort = &r["abort"];
    assert_eq!(abort["by"], "guard", "{abort}");
    assert!(
        abort["reason"].as_str().unwrap().contains("above 10%"),
        "{abort}"
    );
    let removed_ms = abort["breachToRemovedMs"].as_i64().unwrap();
    eprintln!(
        "guard: breach {} trip {} all faults removed {} ({removed_ms} ms after the breach)",
        abort["breachAt"], abort["trippedAt"], abort["faultsRemovedAt"]
    );
    assert!(
        (0..=5000).contains(&removed_ms),
        "breach to every fault removed: {removed_ms} ms ({abort})"
    );
    assert!(ms_between(&abort["breachAt"], &abort["trippedAt"]) >= 0);
    assert_eq!(toy.mode(), "ok", "the fault was reverted");
    assert_eq!(
        check(&r, "fault 'flip' removed (verified)")["status"],
        "pass"
    );
    let recovery = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "recovery")
        .unwrap();
    assert!(
        recovery["requests"].as_u64().unwrap() > 0,
        "the recovery is still measured after an abort"
    );
    assert_eq!(r["faults"][0]["toolResult"], "aborted");
    assert!(
        toy.log_text()
            .contains("| ABORTED | ABORTED: aborted by guard: error rate"),
        "{}",
        toy.log_text()
    );
}

#[test]
fn one_bad_second_on_little_traffic_does_not_trip_the_guard() {
    let toy = Toy::new(false);
    let out = toy.run(&[
        "--mode",
        "fail:100",
        "--fault-duration",
        "1",
        "--rate",
        "10",
        "--recovery",
        "2",
    ]);
    assert_ne!(out.status.code(), Some(6), "{}", text(&out));
    let r = toy.result();
    assert!(r["abort"].is_null(), "{:#}", r["abort"]);
    let fault = r["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fault")
        .unwrap();
    assert!(
        fault["errors"].as_u64().unwrap() > 0,
        "the bad second happened: {fault}"
    );
    let guard = std::fs::read_to_string(toy.run_dir().join("guard/guard.log")).unwrap();
    assert!(!guard.contains("\"trip\""), "{guard}");
}

/// Ctrl-C as a terminal sends it (to the whole process group) or SIGTERM to the runbook
/// alone: the fault is reverted, nothing of the run is left running, the row is written.
fn interrupted(signal: Signal, group: bool) {
    let toy = Toy::new(false);
    let child = toy.spawn(&["--mode", "slow:100", "--fault-duration", "60"]);
    let pid = Pid::from_raw(i32::try_from(child.id()).unwrap());
    toy.wait_for_mode("slow", Duration::from_secs(60));
    if group {
        killpg(pid, signal).unwrap();
    } else {
        kill(pid, signal).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(6), "{}", text(&out));
    assert!(
        killpg(pid, None).is_err(),
        "a process of the run outlived it"
    );
    assert_eq!(toy.mode(), "ok", "the fault was reverted");
    let r = toy.result();
    assert_eq!(r["result"], "ABORTED");
    assert_eq!(
        r["abort"]["by"],
        "operator",
        "{}\n{}",
        toy.timeline(),
        text(&out)
    );
    assert!(
        r["abort"]["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("{signal:?}")),
        "{}",
        r["abort"]
    );
    assert_eq!(
        check(&r, "fault 'flip' removed (verified)")["status"],
        "pass"
    );
    assert!(
        toy.log_text()
            .contains("| TOY-001 | Development | ABORTED | ABORTED: aborted by operator"),
        "{}",
        toy.log_text()
    );
    assert_ne!(toy.log_text(), PLACEHOLDER_LOG);
}

#[test]
fn ctrl_c_mid_run_reverts_and_still_writes_the_row() {
    interrupted(Signal::SIGINT, true);
}

#[test]
fn sigterm_to_the_runbook_reverts_and_still_writes_the_row() {
    interrupted(Signal::SIGTERM, false);
}

#[test]
fn a_tool_whose_revert_fails_fails_the_run_and_says_so() {
    let toy = Toy::new(false);
    let out = toy.run(&[
        "--mode",
        "slow:100",
        "--fault-duration",
        "1",
        "--revert-fails",
        "--recovery",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let r = toy.result();
    let c = check(&r, "fault 'flip' removed (verified)");
    assert_eq!(c["status"], "fail");
    assert!(
        c["detail"].as_str().unwrap().contains("revert failed"),
        "{c}"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("REMOVAL NOT VERIFIED for flip"),
        "{}",
        text(&out)
    );
}
