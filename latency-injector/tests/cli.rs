//! The command line of the built binary: help, bad input (exit 2, one stderr line,
//! nothing started), dry-run (a JSON report, nothing listening), and the errors of a
//! run that cannot start (exit 1, naming the flag).

use std::net::TcpListener;
use std::process::{Command, Output};

use serde_json::Value;

fn injector(args: &[&str]) -> Output {
    match Command::new(env!("CARGO_BIN_EXE_latency-injector"))
        .args(args)
        .output()
    {
        Ok(out) => out,
        Err(e) => panic!("cannot run latency-injector {args:?}: {e}"),
    }
}

fn stderr_of(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn report_of(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not one JSON document ({e}): {stdout}\n{}", stderr_of(out)))
}

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_default()
}

#[test]
fn help_works_and_names_the_flags() {
    let out = injector(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--upstream",
        "--latency",
        "--latency-ms",
        "--jitter",
        "--probability",
        "--direction",
        "--endpoint",
        "--method",
        "--duration",
        "--dry-run",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = injector(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = stderr_of(&out);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn each_bad_value_exits_2_naming_the_flag() {
    let base = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:6379"];
    let table: [(&[&str], &str); 19] = [
        (&["-l", "abc"], "--latency"),
        (&["--latency-ms", "-5"], "--latency"),
        (&["-l", "900000"], "--latency-ms"),
        (&["-j", "x"], "--jitter"),
        (&["--probability", "150"], "--probability"),
        (&["--direction", "sideways"], "--direction"),
        (&["--endpoint", "health"], "--endpoint"),
        (&["--method", "GE T"], "--method"),
        (&["-d", "0"], "--duration"),
        (&["--listen", "not-an-addr"], "--listen"),
        (&["--upstream", "no-such-host.invalid:6379"], "--upstream"),
        (&["--probability", "0"], "not a fault"),
        (&["--drain-timeout", "8000h"], "--drain-timeout"),
        (&["--drain-timeout", "11m"], "--drain-timeout"),
        (&["--header-timeout", "0"], "--header-timeout"),
        (&["--buffer-limit", "10"], "--buffer-limit"),
        (&["--buffer-limit", "2GiB"], "--buffer-limit"),
        (&["--http", "--direction", "both"], "--direction"),
        (&["--allow-source-rewrite"], "--allow-source-rewrite"),
    ];
    for (args, flag) in table {
        let mut argv: Vec<&str> = Vec::new();
        // Later flags override earlier ones in clap only for single values: build each
        // command line so that the flag under test appears once.
        for pair in base.chunks(2) {
            if !args.contains(&pair[0]) {
                argv.extend(pair);
            }
        }
        argv.extend(args);
        let out = injector(&argv);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
        assert!(
            stderr.contains(flag),
            "{argv:?} should name {flag}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{argv:?} printed a report");
    }
}

/// Flags one engine cannot serve, with the engine named: bad input (exit 2, one line,
/// no report), whatever the kernel has. The refusals that depend on the kernel (no
/// sch_netem, a foreign root qdisc) are exit 1 and tested in tests/tests/latency_engine.rs
/// and in the VM lane.
#[test]
fn an_engine_that_cannot_serve_the_flags_is_bad_input() {
    let table: [(&[&str], &str); 10] = [
        (
            &[
                "--engine",
                "netem",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                "127.0.0.1:6379",
            ],
            "explicit proxy",
        ),
        (
            &["--engine", "netem", "--endpoint", "/x"],
            "transparent ingress",
        ),
        (
            &["--engine", "netem", "--target", "198.51.100.2", "--http"],
            "HTTP endpoint matching",
        ),
        (
            &[
                "--engine",
                "netem",
                "--target",
                "198.51.100.2",
                "--direction",
                "both",
            ],
            "--direction",
        ),
        (
            &[
                "--engine",
                "netem",
                "--target",
                "198.51.100.2",
                "--reset-existing",
            ],
            "--reset-existing",
        ),
        (
            &[
                "--engine",
                "netem",
                "--target",
                "198.51.100.2",
                "-l",
                "0",
                "--probability",
                "50",
            ],
            "--probability with --latency-ms 0",
        ),
        (
            &["--engine", "proxy", "-l", "100"],
            "--engine proxy needs a target",
        ),
        (
            &["--engine", "proxy", "-p", "6379"],
            "--engine proxy needs a target",
        ),
        (&["--reset-existing"], "the proxy needs a target"),
        (
            &["--engine", "warp", "--target", "198.51.100.2"],
            "--engine",
        ),
    ];
    for (argv, says) in table {
        let out = injector(argv);
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{argv:?}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{argv:?}: {stderr}");
        assert!(
            stderr.contains(says),
            "{argv:?} should say {says:?}: {stderr}"
        );
        assert!(out.stdout.is_empty(), "{argv:?} printed a report");
    }
}

#[test]
fn help_names_the_engines() {
    let out = injector(&["--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    for word in ["--engine", "netem", "proxy", "auto"] {
        assert!(
            help.contains(word),
            "--help does not mention {word}:\n{help}"
        );
    }
}

#[test]
fn dry_run_prints_the_plan_and_listens_on_nothing() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let out = injector(&[
        "--listen",
        &listen,
        "--upstream",
        "127.0.0.1:1",
        "-l",
        "500",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report = report_of(&out);
    assert_eq!(report["result"], "dry-run");
    assert_eq!(report["revert"]["status"], "not-applied");
    assert_eq!(report["parameters"]["latencyMs"], 500);
    let plan = report["plan"].to_string();
    assert!(plan.contains("500 ms"), "{plan}");
    // Nothing was bound: the port is still free.
    assert!(TcpListener::bind(&listen).is_ok());
}

#[test]
fn unreachable_upstream_exits_1_naming_the_flag() {
    let listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("127.0.0.1:{}", free_port());
    let out = injector(&[
        "--listen",
        &listen,
        "--upstream",
        &upstream,
        "-d",
        "2",
        "-y",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report = report_of(&out);
    assert_eq!(report["result"], "failed");
    assert!(
        report["errors"].to_string().contains("--upstream"),
        "{report}"
    );
}

#[test]
fn port_in_use_exits_1_naming_the_flag() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let listen = taken
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    // The upstream must answer for the run to get as far as binding.
    let answering = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    let upstream = answering
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let out = injector(&[
        "--listen",
        &listen,
        "--upstream",
        &upstream,
        "-d",
        "2",
        "-y",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    let report = report_of(&out);
    assert!(
        report["errors"].to_string().contains("--listen"),
        "{report}"
    );
    drop((taken, answering));
}

#[test]
fn dry_run_of_transparent_egress_creates_no_table() {
    let out = injector(&[
        "--target",
        "198.51.100.2:6379",
        "--run-id",
        "dry-egress",
        "-l",
        "100",
        "--dry-run",
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let report = report_of(&out);
    assert_eq!(report["result"], "dry-run");
    let plan = report["plan"].to_string();
    assert!(plan.contains("chaos-latency-injector-dry-egress"), "{plan}");
    assert!(plan.contains("watchdog"), "{plan}");
    // The bypass warning belongs to live runs that found bypassing connections.
    assert_eq!(report["warnings"], serde_json::json!([]), "{report}");
    // A dry run does not even look for nft: it runs where nft is missing or forbidden,
    // which `root_*` tests in the workspace's tests check with real tables.
    assert!(!stderr_of(&out).contains("nft"), "{}", stderr_of(&out));
}

#[test]
fn arguments_that_are_not_utf8_exit_2_with_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/\xff");
    let host = std::ffi::OsStr::from_bytes(b"\xff");
    for (flag, value) in [("--endpoint", bad), ("-H", host), ("--upstream", host)] {
        let out = Command::new(env!("CARGO_BIN_EXE_latency-injector"))
            .args(["--listen", "127.0.0.1:0"])
            .arg(flag)
            .arg(value)
            .output()
            .unwrap_or_else(|e| panic!("cannot run latency-injector: {e}"));
        let stderr = stderr_of(&out);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{flag}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}
