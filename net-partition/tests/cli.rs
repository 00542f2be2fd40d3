//! The command line, end to end, without privileges: `nft` is replaced by a fake on
//! PATH that records every call, which proves that bad input and `--dry-run` touch
//! nothing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_net-partition");

/// A directory holding a fake `nft` that appends its arguments to `calls.log`, prints
/// `stdout`, and exits with `code` (and prints `stderr` on failure).
struct FakeNft {
    dir: tempfile::TempDir,
}

impl FakeNft {
    fn new(code: i32, stderr: &str) -> FakeNft {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let log = dir.path().join("calls.log");
        let script = format!(
            "#!/bin/sh\necho \"$*\" >> '{}'\n[ {code} -ne 0 ] && echo '{stderr}' >&2\necho '{{\"nftables\": []}}'\nexit {code}\n",
            log.display()
        );
        let path = dir.path().join("nft");
        std::fs::write(&path, script).unwrap_or_else(|e| panic!("write fake nft: {e}"));
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
        FakeNft { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("calls.log")).unwrap_or_default()
    }
}

fn run_with_path(path: &Path, args: &[&str]) -> Output {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = Command::new(BIN)
        .args(args)
        .env("PATH", path)
        .env("CHAOS_STATE_DIR", state.path())
        .env_remove("CHAOS_ENVIRONMENT")
        .output()
        .unwrap_or_else(|e| panic!("run {BIN}: {e}"));
    drop(state);
    out
}

fn report(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn help_works() {
    let out = run_with_path(&PathBuf::from("/usr/bin:/bin"), &["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--target-host",
        "--target-port",
        "--protocol",
        "--bidirectional",
        "--drop-percent",
        "--reject",
        "--probe",
        "--duration",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    assert!(!help.contains("__watchdog"));
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = run_with_path(&PathBuf::from("/usr/bin:/bin"), &["--no-such-flag"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn bad_values_exit_2_and_touch_nothing() {
    let nft = FakeNft::new(0, "");
    let cases: &[&[&str]] = &[
        &[],
        &["-H", "198.51.100.0/33"],
        &["-H", "198.51.100.1/24"],
        &["-H", "2001:db8::/129"],
        &["-H", "not an address/8"],
        &["-H", "0x7f.1"],
        &["-H", "1.2.3"],
        &["-H", "2130706433"],
        &["-H", "fe80::1%lo"],
        &["-H", "198.51.100.1", "-p", "0"],
        &["-H", "198.51.100.1", "-p", "65536"],
        &["-H", "198.51.100.1", "-p", "http"],
        &["-H", "198.51.100.1", "--drop-percent", "0"],
        &["-H", "198.51.100.1", "--drop-percent", "101"],
        &["-H", "198.51.100.1", "--protocol", "sctp"],
        &["-H", "198.51.100.1", "--probe", "198.51.100.1:0"],
        &["-H", "198.51.100.1", "-d", "2h"],
        &["-H", "198.51.100.1", "-t", "auth-service"],
        &["-H", "198.51.100.1", "--run-id", "Bad_Id"],
    ];
    for args in cases {
        let mut full = args.to_vec();
        full.extend(["-y", "-d", "1"].iter().filter(|_| !args.contains(&"-d")));
        let out = run_with_path(nft.path(), &full);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error"), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(nft.calls(), "", "bad input must never run nft");
}

/// A host name that does not resolve is found after parsing (the resolve step): still
/// exit 2 with one error line, and a report saying so; nft is never run.
#[test]
fn a_host_that_does_not_resolve_is_bad_input_with_a_report() {
    let nft = FakeNft::new(0, "");
    let out = run_with_path(
        nft.path(),
        &[
            "-H",
            "no-such-host.invalid",
            "-y",
            "-d",
            "1",
            "--output",
            "json",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["result"], "bad-input");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot resolve host 'no-such-host.invalid'"),
        "{report:#}"
    );
    assert_eq!(nft.calls(), "", "nothing is touched");
}

#[test]
fn a_target_that_is_not_utf8_is_bad_input() {
    use std::os::unix::ffi::OsStrExt;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_net-partition"))
        .arg("-H")
        .arg(std::ffi::OsStr::from_bytes(b"\xff"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim().lines().count(),
        1
    );
}

#[test]
fn dry_run_prints_the_plan_and_touches_nothing() {
    let nft = FakeNft::new(0, "");
    let out = run_with_path(
        nft.path(),
        &[
            "-H",
            "198.51.100.0/30",
            "-p",
            "8080",
            "--protocol",
            "tcp",
            "--bidirectional",
            "--dry-run",
            "--output",
            "json",
            "--run-id",
            "dry1",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = report(&out);
    assert_eq!(report["result"], "dry-run");
    assert_eq!(report["revert"]["status"], "not-applied");
    let plan: Vec<&str> = report["plan"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        plan.iter()
            .any(|s| s.starts_with("create nftables table inet chaos-net-partition-dry1")),
        "{plan:?}"
    );
    assert!(plan.contains(&"add rule to chain egress: ip daddr @targets4 meta l4proto tcp th dport 8080 counter name \"egress\" drop"), "{plan:?}");
    assert!(plan.contains(&"add rule to chain ingress: ip saddr @targets4 meta l4proto tcp th sport 8080 counter name \"ingress\" drop"), "{plan:?}");
    assert_eq!(report["parameters"]["targetPort"], 8080);
    assert_eq!(report["targets"][0]["name"], "198.51.100.0/30");
    assert_eq!(nft.calls(), "", "dry-run must never run nft");
}

#[test]
fn missing_nft_is_a_clear_precondition_failure() {
    let empty = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let out = run_with_path(
        empty.path(),
        &["-H", "198.51.100.1", "-d", "1", "-y", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = report(&out);
    assert_eq!(report["revert"]["status"], "not-applied");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("nftables"), "{message}");
}

#[test]
fn no_permission_is_a_clear_precondition_failure() {
    let nft = FakeNft::new(1, "Operation not permitted (you must be root)");
    let out = run_with_path(
        nft.path(),
        &["-H", "198.51.100.1", "-d", "1", "-y", "--output", "json"],
    );
    assert_eq!(out.status.code(), Some(1));
    let report = report(&out);
    assert_eq!(report["errors"][0]["kind"], "precondition");
    let message = report["errors"][0]["message"].as_str().unwrap_or_default();
    assert!(message.contains("CAP_NET_ADMIN"), "{message}");
    assert_eq!(
        nft.calls().trim(),
        "-j list tables",
        "only the read-only access check ran"
    );
}
