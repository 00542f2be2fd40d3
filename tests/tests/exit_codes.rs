//! The output contract and exit codes of DESIGN.md, checked the same way for every tool:
//! help is exit 0, bad input is one stderr line and exit 2 with nothing on stdout, a dry
//! run is exit 0 with a schema-valid `dry-run` report, safety refusals are exit 3.

mod common;

use std::process::Command;

use serde_json::Value;

/// Each tool with the smallest arguments that make a valid local run.
const TOOLS: &[(&str, &[&str])] = &[
    ("cpu-hog", &[]),
    ("memory-leak", &["--limit-mb", "64"]),
    ("net-partition", &["-H", "198.51.100.2"]),
];

fn run(tool: &str, base: &[&str], extra: &[&str]) -> (i32, String, String) {
    let out = common::run(Command::new(common::bin(tool)).args(base).args(extra));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_exits_zero_on_stdout() {
    for (tool, _) in TOOLS {
        let (code, stdout, _) = run(tool, &["--help"], &[]);
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
    ];
    for (tool, base) in TOOLS {
        for extra in bad {
            let (code, stdout, stderr) = run(tool, base, extra);
            assert_eq!(code, 2, "{tool} {extra:?}: stderr {stderr}");
            assert!(
                stdout.is_empty(),
                "{tool} {extra:?} printed on stdout: {stdout}"
            );
            assert_eq!(
                stderr.trim_end().lines().count(),
                1,
                "{tool} {extra:?}: {stderr}"
            );
            assert!(
                stderr.contains(tool),
                "{tool} {extra:?}: the line names the tool: {stderr}"
            );
        }
    }
}

#[test]
fn dry_run_prints_a_valid_report_and_exits_zero() {
    for (tool, base) in TOOLS {
        let (code, stdout, stderr) = run(
            tool,
            base,
            &["--dry-run", "--output", "json", "--run-id", "dry-1"],
        );
        assert_eq!(code, 0, "{tool}: {stderr}");
        let report: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{tool}: {e}: {stdout}"));
        common::assert_valid_report(&report);
        assert_eq!(report["result"], "dry-run");
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
    let peak = chaos_common::safety::is_peak_hour(std::time::SystemTime::now());
    for (tool, base) in TOOLS {
        // Approved, so only the hour decides.
        let (code, stdout, stderr) = run(
            tool,
            base,
            &[
                "--dry-run",
                "--output",
                "json",
                "--environment",
                "production",
                "--approved-by",
                "em",
            ],
        );
        let report: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{tool}: {e}: {stderr}"));
        common::assert_valid_report(&report);
        if peak {
            assert_eq!(code, 3, "{tool} in production at peak hours: {stderr}");
            assert_eq!(report["result"], "refused");
        } else {
            assert_ne!(report["result"], "refused", "{tool} off-peak: {stderr}");
        }
        // With the override the hour never refuses; the reason is recorded.
        let (_, stdout, _) = run(
            tool,
            base,
            &[
                "--dry-run",
                "--output",
                "json",
                "--environment",
                "production",
                "--allow-peak-hours",
                "game day",
                "--approved-by",
                "em",
            ],
        );
        let report: Value =
            serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{tool}: {e}"));
        assert_eq!(report["result"], "dry-run", "{tool}");
        assert_eq!(report["safety"]["peakHoursOverride"], "game day");
    }
}

#[test]
fn destructive_production_runs_need_approval() {
    // A partition is destructive: without --approved-by it is refused at any hour.
    let (code, stdout, stderr) = run(
        "net-partition",
        &["-H", "198.51.100.2"],
        &[
            "--dry-run",
            "--output",
            "json",
            "--environment",
            "production",
            "--allow-peak-hours",
            "drill",
        ],
    );
    assert_eq!(code, 3, "{stderr}");
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["result"], "refused");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--approved-by")
    );
}
