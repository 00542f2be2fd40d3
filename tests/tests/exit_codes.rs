//! The output contract and exit codes of docs/design.md, checked the same way for all five
//! tools: help is exit 0, bad input is one stderr line and exit 2 with nothing on stdout,
//! a dry run is exit 0 with a schema-valid `dry-run` report, safety refusals are exit 3
//! with a report. The clock of the peak-hours rule is injected (`CHAOS_TEST_NOW`, honoured
//! by debug builds only), so both sides of the rule are checked whatever the time.

mod common;

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

use chaos_tests::kube_lab::KubeLab;
use serde_json::Value;

/// 2026-11-26 12:00:00 UTC (peak) and 22:00:00 UTC (off-peak).
const NOON_UTC: &str = "1795694400";
const TEN_PM_UTC: &str = "1795730400";

/// Each tool with the smallest arguments that make a valid local run (pod-killer's point
/// at a test API server, kept alive by the returned lab).
fn tools() -> (KubeLab, Vec<(&'static str, Vec<String>)>) {
    let lab =
        KubeLab::lomash_wood().unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"));
    let kubeconfig = lab.kubeconfig.display().to_string();
    let owned = |args: &[&str]| args.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let tools = vec![
        ("cpu-hog", owned(&[])),
        ("memory-leak", owned(&["--limit-mb", "64"])),
        ("net-partition", owned(&["-H", "198.51.100.2"])),
        (
            "latency-injector",
            owned(&[
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:9",
                "-l",
                "100",
            ]),
        ),
        (
            "pod-killer",
            owned(&[
                "--deployment",
                "product-service",
                "--kubeconfig",
                &kubeconfig,
            ]),
        ),
    ];
    (lab, tools)
}

fn run(tool: &str, base: &[String], extra: &[&str], now: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(common::bin(tool));
    cmd.args(base).args(extra);
    if let Some(now) = now {
        cmd.env("CHAOS_TEST_NOW", now);
    }
    let out = common::run(&mut cmd);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn report_of(tool: &str, stdout: &str, stderr: &str) -> Value {
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{tool}: stdout is not one JSON report ({e}): {stdout}\n{stderr}")
    });
    common::assert_valid_report(&report);
    report
}

fn assert_one_line_exit_two(tool: &str, what: &str, code: i32, stdout: &str, stderr: &str) {
    assert_eq!(code, 2, "{tool} {what}: stderr {stderr}");
    assert!(
        stdout.is_empty(),
        "{tool} {what} printed on stdout: {stdout}"
    );
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "{tool} {what}: {stderr}"
    );
    assert!(
        stderr.contains(tool),
        "{tool} {what}: the line names the tool: {stderr}"
    );
}

#[test]
fn help_exits_zero_on_stdout() {
    let (_lab, tools) = tools();
    for (tool, _) in &tools {
        let (code, stdout, _) = run(tool, &[], &["--help"], None);
        assert_eq!(code, 0, "{tool} --help");
        assert!(
            stdout.contains("--dry-run") && stdout.contains("--duration"),
            "{tool}: {stdout}"
        );
    }
}

#[test]
fn bad_input_is_one_line_and_exit_two() {
    let bad: &[&[&str]] = &[
        &["--no-such-flag"],
        &["--duration", "10days"],
        &["--duration", "0"],
        &["--duration", "2h"],
        &["--run-id", "Not Valid"],
        &["--output", "yaml"],
        &["--approved-by", ""],
        &["--protected-namespace", "LOMASH-WOOD"],
        &["--protected-namespace", "payments,-bad"],
        &["--stop", "Not Valid"],
    ];
    let (_lab, tools) = tools();
    for (tool, base) in &tools {
        for extra in bad {
            let (code, stdout, stderr) = run(tool, base, extra, None);
            assert_one_line_exit_two(tool, &format!("{extra:?}"), code, &stdout, &stderr);
        }
    }
}

/// Arguments that are not UTF-8 are bad input, never a panic (exit 101).
#[test]
fn arguments_that_are_not_utf8_are_bad_input() {
    let not_utf8 = OsStr::from_bytes(b"\xff\xfe").to_owned();
    let (_lab, tools) = tools();
    for (tool, base) in &tools {
        for flag in ["--run-id", "--approved-by", "--protected-namespace"] {
            let mut cmd = Command::new(common::bin(tool));
            cmd.args(base).arg(flag).arg(&not_utf8);
            let out = common::run(&mut cmd);
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            );
            let code = out.status.code().unwrap_or(-1);
            assert_one_line_exit_two(tool, flag, code, &stdout, &stderr);
        }
        // Even as the first argument, where hidden sub-commands are looked up.
        let out = common::run(Command::new(common::bin(tool)).arg(&not_utf8));
        assert_eq!(
            out.status.code(),
            Some(2),
            "{tool}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn dry_run_prints_a_valid_report_and_exits_zero() {
    let (_lab, tools) = tools();
    for (tool, base) in &tools {
        let (code, stdout, stderr) = run(
            tool,
            base,
            &["--dry-run", "--output", "json", "--run-id", "dry-1"],
            None,
        );
        assert_eq!(code, 0, "{tool}: {stderr}");
        let report = report_of(tool, &stdout, &stderr);
        assert_eq!(report["result"], "dry-run");
        assert_eq!(report["action"], "run");
        assert_eq!(report["tool"], *tool);
        assert_eq!(report["runId"], "dry-1");
        assert_eq!(report["revert"]["status"], "not-applied");
        assert!(
            !report["plan"].as_array().map(Vec::is_empty).unwrap_or(true),
            "{tool}: empty plan"
        );
    }
}

#[test]
fn production_peak_hours_rule_is_enforced_by_every_tool() {
    let (_lab, tools) = tools();
    let production = [
        "--dry-run",
        "--output",
        "json",
        "--environment",
        "production",
    ];
    for (tool, base) in &tools {
        // Approved, so only the hour decides.
        let approved = [&production[..], &["--approved-by", "em"]].concat();
        let (code, stdout, stderr) = run(tool, base, &approved, Some(NOON_UTC));
        let report = report_of(tool, &stdout, &stderr);
        assert_eq!(code, 3, "{tool} in production at noon: {stderr}");
        assert_eq!(report["result"], "refused");
        assert!(
            report["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("--allow-peak-hours"),
            "{tool}: the refusal names the way out: {report:#}"
        );

        let (code, stdout, stderr) = run(tool, base, &approved, Some(TEN_PM_UTC));
        let report = report_of(tool, &stdout, &stderr);
        assert_eq!(code, 0, "{tool} in production at 22:00: {stderr}");
        assert_eq!(report["result"], "dry-run");

        // With the override the hour never refuses; the reason is recorded.
        let overridden = [&approved[..], &["--allow-peak-hours", "game day"]].concat();
        let (code, stdout, stderr) = run(tool, base, &overridden, Some(NOON_UTC));
        let report = report_of(tool, &stdout, &stderr);
        assert_eq!(code, 0, "{tool}: {stderr}");
        assert_eq!(report["result"], "dry-run", "{tool}");
        assert_eq!(report["safety"]["peakHoursOverride"], "game day");
    }
}

#[test]
fn destructive_production_runs_need_approval() {
    let (_lab, tools) = tools();
    let production = [
        "--dry-run",
        "--output",
        "json",
        "--environment",
        "production",
        "--allow-peak-hours",
        "drill",
    ];
    for (tool, base) in &tools {
        let (code, stdout, stderr) = run(tool, base, &production, Some(TEN_PM_UTC));
        let report = report_of(tool, &stdout, &stderr);
        // Partitions and pod kills are destructive; CPU load, memory growth that is not
        // expected to OOM, and an explicit latency proxy degrade but destroy nothing.
        let destructive = matches!(*tool, "net-partition" | "pod-killer");
        if destructive {
            assert_eq!(code, 3, "{tool}: {stderr}");
            assert_eq!(report["result"], "refused");
            assert!(
                report["errors"][0]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("--approved-by"),
                "{tool}: {report:#}"
            );
        } else {
            assert_eq!(code, 0, "{tool}: {stderr}");
            assert_eq!(report["result"], "dry-run");
        }
    }
}

#[test]
fn stop_prints_a_report_too() {
    let (_lab, tools) = tools();
    let state = tempfile::tempdir().unwrap();
    for (tool, _) in &tools {
        let mut cmd = Command::new(common::bin(tool));
        cmd.args(["--stop", "never-ran", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path().join("s"));
        let out = common::run(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let report = report_of(tool, &stdout, &String::from_utf8_lossy(&out.stderr));
        // A run id that never ran here is most likely a typo: bad input, with a report.
        assert_eq!(
            out.status.code(),
            Some(2),
            "{tool}: a run id that never ran is bad input"
        );
        assert_eq!(report["action"], "stop");
        assert_eq!(report["runId"], "never-ran");
        assert_eq!(report["result"], "bad-input");
        assert_eq!(report["observations"]["running"], false);
    }
}

/// `--cleanup --dry-run` lists and touches nothing (the network tools list their tables,
/// which needs nft and NET_ADMIN: root).
#[test]
fn root_cleanup_dry_run_prints_a_report_for_every_tool() {
    common::require_root("nft list tables for the network tools");
    let (_lab, tools) = tools();
    let state = tempfile::tempdir().unwrap();
    for (tool, _) in &tools {
        let mut cmd = Command::new(common::bin(tool));
        cmd.args(["--cleanup", "--dry-run", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path().join("s"));
        let out = common::run(&mut cmd);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report = report_of(tool, &stdout, &stderr);
        assert_eq!(out.status.code(), Some(0), "{tool}: {stderr}");
        assert_eq!(report["action"], "cleanup");
        assert_eq!(report["result"], "dry-run", "{tool}: {stderr}");
    }
}

/// `-q` leaves only warnings and errors on stderr; without it the run id is logged once,
/// on the first line, not as a field of every line.
#[test]
fn quiet_logs_only_warnings_and_the_run_id_is_said_once() {
    let (_lab, tools) = tools();
    for (tool, base) in &tools {
        let (code, _, stderr) = run(
            tool,
            base,
            &["--dry-run", "-q", "--run-id", "quiet-1"],
            None,
        );
        assert_eq!(code, 0, "{tool}: {stderr}");
        assert!(
            stderr
                .lines()
                .all(|l| l.contains("WARN") || l.contains("ERROR")),
            "{tool} -q: {stderr}"
        );
        let (code, _, stderr) = run(
            tool,
            base,
            &["--dry-run", "--output", "json", "--run-id", "loud-1"],
            None,
        );
        assert_eq!(code, 0, "{tool}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert!(lines[0].contains("run loud-1"), "{tool}: {stderr}");
        assert!(
            !stderr.contains("run_id="),
            "{tool}: the run id repeated as a field:\n{stderr}"
        );
    }
}
