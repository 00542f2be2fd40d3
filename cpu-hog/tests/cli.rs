//! The command line of the built binary: help, bad input (exit 2, one stderr line,
//! nothing started) and dry-run (a JSON report, nothing started). `--of-limit` depends
//! on the cgroup the process runs in, so its tests create that cgroup: they are in
//! tests/tests/cpu_hog.rs (root) and in the VM lane's guest suite (cgroup v2).

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn cpu_hog(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_cpu-hog"))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run cpu-hog {args:?}: {e}"),
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `-h 5` is a mistake (help takes no value): exit 2 saying so, not help and exit 0.
#[test]
fn help_followed_by_a_value_is_bad_input() {
    let out = cpu_hog(&["-c", "50", "-h", "5"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = stderr_of(&out);
    assert!(
        stderr.contains("-h is help and takes no value ('5' follows it)"),
        "{stderr}"
    );
}

#[test]
fn help_works_and_names_the_flags() {
    let out = cpu_hog(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--cpu-percent",
        "--cores",
        "--of-limit",
        "--duration",
        "--dry-run",
        "--stop",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = cpu_hog(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn each_bad_value_exits_2_naming_the_flag() {
    let table: [(&[&str], &str); 20] = [
        (&["-c", "0"], "--cpu-percent"),
        // Non-finite, tiny and huge values: none may panic or slip through (issue 8).
        (&["-c", "NaN"], "--cpu-percent"),
        (&["-c", "inf"], "--cpu-percent"),
        (&["--cpu-percent=-inf"], "--cpu-percent"),
        (&["-c", "1e400"], "--cpu-percent"),
        (&["-c", "1e-300"], "--cpu-percent"),
        (&["-c", "0x50"], "--cpu-percent"),
        (&["-k", "99999999999"], "--cores"),
        (&["-k", "1025"], "--cores"),
        (&["-d", "1e308"], "--duration"),
        (&["-d", "8785h"], "--duration"),
        (&["-c", "101"], "--cpu-percent"),
        (&["-c", "abc"], "--cpu-percent"),
        (&["--cpu-percent", "-3"], "--cpu-percent"),
        (&["-k", "-1"], "--cores"),
        (&["-k", "two"], "--cores"),
        (&["-d", "10days"], "--duration"),
        (&["-d", "0"], "--duration"),
        (&["-d", "2h"], "--duration"),
        (&["--output", "yaml"], "--output"),
    ];
    for (args, flag) in table {
        let started = Instant::now();
        let out = cpu_hog(args);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{args:?} does not name {flag}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{args:?} printed to stdout");
        // Nothing was started: no 5 s countdown, no load.
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{args:?} took too long"
        );
    }
}

#[test]
fn dry_run_prints_the_plan_as_json_and_burns_nothing() {
    let started = Instant::now();
    let out = cpu_hog(&[
        "-c",
        "50",
        "-k",
        "2",
        "-d",
        "10",
        "--dry-run",
        "--output",
        "json",
    ]);
    let stderr = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(3));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    });
    assert_eq!(report["result"], "dry-run");
    assert_eq!(report["tool"], "cpu-hog");
    assert_eq!(report["revert"]["status"], "not-applied");
    assert_eq!(report["parameters"]["workers"], 2);
    assert_eq!(report["parameters"]["targetCpuPercent"], 50.0);
    assert_eq!(
        report["plan"][0],
        "start 2 workers holding 50.0% of one CPU each for 10s"
    );
    assert_eq!(report["targets"][0]["kind"], "process");
    assert!(report["observations"].is_null());
    // The phases stop at the safety check: no apply.
    let phases: Vec<&str> = report["phases"]
        .as_array()
        .map(|p| p.iter().filter_map(|x| x["name"].as_str()).collect())
        .unwrap_or_default();
    assert!(!phases.contains(&"apply"), "{phases:?}");
}

#[test]
fn cores_all_resolves_to_a_worker_count() {
    let out = cpu_hog(&["-k", "all", "--dry-run", "--output", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(1, usize::from) as u64;
    let workers = report["parameters"]["workers"].as_u64().unwrap_or_default();
    assert!(
        workers >= 1 && workers <= cpus,
        "workers {workers}, cpus {cpus}"
    );
    assert_eq!(report["parameters"]["cores"], "all");
}
