//! The command line: help, bad input (exit 2, one line), dry-run (a report, no child),
//! and the memory-headroom safety rule (exit 3, result "refused").
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_memory-leak");

fn run(args: &[&str]) -> Output {
    match Command::new(BIN).args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {BIN}: {e}"),
    }
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Pids of allocator children (`memory-leak __allocate`) whose parent is `parent`.
fn allocators_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            cmdline.split(|&b| b == 0).nth(1) == Some(b"__allocate".as_slice())
                && ppid == Some(parent)
        })
        .collect()
}

#[test]
fn help_works_and_keeps_h_for_help() {
    for flag in ["--help", "-h"] {
        let out = run(&[flag]);
        assert_eq!(out.status.code(), Some(0), "{flag}");
        let text = String::from_utf8_lossy(&out.stdout);
        for expected in [
            "--rate-mb-per-second",
            "--limit-mb",
            "--target-mb",
            "--hold-seconds",
            "--watch-oom",
        ] {
            assert!(
                text.contains(expected),
                "{flag} output lacks {expected}:\n{text}"
            );
        }
    }
}

/// The original's `-h 60` (hold 60 s) must not print help and exit 0, which a script
/// would take for a run: exit 2, one line pointing to --hold-seconds, nothing on stdout.
#[test]
fn the_original_s_h_with_a_value_points_to_hold_seconds() {
    for args in [&["-h", "60"][..], &["-m", "64", "-h", "90s"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
        let value = args[args.len() - 1];
        assert!(
            stderr.contains(&format!("--hold-seconds {value}")),
            "{stderr}"
        );
    }
    // -h followed by a flag, or last, is still help.
    for args in [&["-h"][..], &["-h", "--limit-mb"]] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {out:?}");
    }
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &["--rate-mb-per-second", "0"],
        &["--rate-mb-per-second", "-1"],
        &["--rate-mb-per-second", "abc"],
        &["--rate-mb-per-second", "100000"],
        &["--limit-mb", "0"],
        &["--limit-mb", "-5"],
        &["--limit-mb", "10", "--target-mb", "20"],
        &["--rate-mb-per-second", "10", "--ramp-seconds", "5"],
        &["--ramp-seconds", "0"],
        &["--hold-seconds", "3parsecs"],
        // This machine's own memory cgroup has no limit.
        &["--limit-percent", "50"],
        &["--limit-percent", "0"],
        &["--limit-percent", "101"],
        &["--limit-percent", "50", "--limit-mb", "10"],
        &["--cgroup", "/proc"],
        // Issue 8: each of these panicked (exit 101) or overflowed somewhere.
        &["--rate-mb-per-second", "1e-17"],
        &["--rate-mb-per-second", "1e-300"],
        &["--rate-mb-per-second", "5e-324"],
        &["--rate-mb-per-second", "inf"],
        &["--rate-mb-per-second", "-inf"],
        &["--rate-mb-per-second", "NaN"],
        &["--rate-mb-per-second", "1e400"],
        &["--rate-mb-per-second", "-0"],
        &["--limit-mb", "18446744073709551616"],
        &[
            "--limit-mb",
            "18446744073709551615",
            "--rate-mb-per-second",
            "1",
        ],
        &["--target-mb", "1", "--ramp-seconds", "366d"],
        &["--target-mb", "1", "--ramp-seconds", "8784h"],
        &["--ramp-seconds", "1e-12"],
        &["--ramp-seconds", "1e308"],
        &["--hold-seconds", "1e308"],
        &["--hold-seconds", "inf"],
        &["--limit-percent", "4294967296"],
        &["--max-duration", "1e308"],
        &["--duration", "0"],
        &["--duration", "2h"],
        &["--no-such-flag"],
    ];
    for args in cases {
        let mut full = args.to_vec();
        full.extend(["--dry-run", "--output", "json"]);
        let out = run(&full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?} should exit 2; stderr: {stderr}"
        );
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{args:?}: one line on stderr, got:\n{stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: nothing on stdout");
    }
}

#[test]
fn a_fake_cgroup_directory_is_bad_input_before_any_rule() {
    // Issue 8: a directory with a fake 64 MiB memory.limit_in_bytes bypassed the
    // memory-headroom rule (the limit looked low) and the run grew to 403 MiB.
    let fake = std::env::temp_dir().join(format!("fake-cgroup-{}", std::process::id()));
    std::fs::create_dir_all(&fake).unwrap();
    for file in ["memory.limit_in_bytes", "memory.max"] {
        std::fs::write(fake.join(file), "67108864\n").unwrap();
    }
    std::fs::write(fake.join("cgroup.procs"), "").unwrap();
    let dir = fake.to_str().unwrap();
    let out = run(&[
        "--cgroup",
        dir,
        "--limit-mb",
        "100000000",
        "--rate-mb-per-second",
        "10",
        "-d",
        "2",
        "-y",
        "--output",
        "json",
    ]);
    let _ = std::fs::remove_dir_all(&fake);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not on a cgroup filesystem"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn dry_run_prints_the_plan_and_starts_no_child() {
    let out = run(&[
        "--dry-run",
        "--output",
        "json",
        "--rate-mb-per-second",
        "50",
        "--limit-mb",
        "512",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report = report(&out);
    assert_eq!(report["result"], "dry-run");
    assert_eq!(report["tool"], "memory-leak");
    assert_eq!(report["revert"]["status"], "not-applied");
    assert_eq!(report["parameters"]["targetMib"], 512.0);
    assert_eq!(report["parameters"]["rateMibPerSecond"], 50.0);
    assert_eq!(report["parameters"]["durationSeconds"], 70.2);
    let plan = report["plan"].to_string();
    assert!(
        plan.contains("50 MiB/s") && plan.contains("512 MiB"),
        "{plan}"
    );
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        phases,
        ["safety", "resolve"],
        "a dry run has no apply phase"
    );
    assert!(report["observations"].is_null());
}

#[test]
fn dry_run_of_the_original_flags() {
    let out = run(&[
        "--dry-run",
        "--output",
        "json",
        "-m",
        "64",
        "-r",
        "8",
        "--hold-seconds",
        "2",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report = report(&out);
    assert_eq!(report["parameters"]["rateMibPerSecond"], 8.0);
    assert_eq!(report["parameters"]["durationSeconds"], 10.0);
}

#[test]
fn the_headroom_rule_refuses_a_dry_run_too() {
    // A rule, not an access check: --dry-run must say the live run would be refused.
    let out = run(&[
        "--limit-mb",
        "100000000",
        "--rate-mb-per-second",
        "10",
        "-d",
        "2",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report(&out);
    assert_eq!(report["result"], "refused");
    assert!(report["errors"].to_string().contains("memory-headroom"));
}

#[test]
fn headroom_rule_refuses_a_target_beyond_the_machine() {
    // No cgroup limit here, so 100,000,000 MiB (95 TiB) is far above 80% of MemAvailable.
    // -d 2 at 10 MiB/s bounds the damage should the rule ever fail to fire.
    let mut child = match Command::new(BIN)
        .args([
            "--limit-mb",
            "100000000",
            "--rate-mb-per-second",
            "10",
            "-d",
            "2",
            "-y",
            "--output",
            "json",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => panic!("cannot run {BIN}: {e}"),
    };
    // Watch for an allocator child for as long as the tool runs.
    let pid = child.id();
    let mut seen = Vec::new();
    while matches!(child.try_wait(), Ok(None)) {
        seen.extend(allocators_of(pid));
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let out = match child.wait_with_output() {
        Ok(o) => o,
        Err(e) => panic!("wait: {e}"),
    };
    assert_eq!(
        out.status.code(),
        Some(3),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report(&out);
    assert_eq!(report["result"], "refused");
    assert_eq!(report["revert"]["status"], "not-applied");
    let errors = report["errors"].to_string();
    assert!(errors.contains("memory-headroom"), "{errors}");
    assert!(seen.is_empty(), "no allocator may start: {seen:?}");
}
