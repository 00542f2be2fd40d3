//! Support for the integration tests: find the built binaries, require root loudly,
//! run a tool and parse its report, validate reports against the JSON Schema.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

pub mod cgroup;
pub mod examples;
pub mod fidelity;
pub mod http_app;
pub mod injector;
pub mod lab;
pub mod netlab;
pub mod nginx;
pub mod redis;

use serde_json::Value;

/// The directory cargo put this workspace's binaries in (target/debug or target/release).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    // target/debug/deps/test-binary -> target/debug
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The path of a workspace binary; fails with the command that builds it.
pub fn bin(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace --bins` first (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Tests that need root call this first. Without root they fail with the reason, never
/// pass silently; scripts/test.sh excludes `root_*` tests (and says so) when not root.
pub fn require_root(what: &str) {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root ({what}); run as root, or through scripts/test.sh which reports these as skipped"
    );
}

pub fn run(cmd: &mut Command) -> Output {
    match cmd.output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run {cmd:?}: {e}"),
    }
}

/// Runs a tool with `--output json` already in `args`; returns (exit code, report, stderr).
pub fn run_json(bin_name: &str, args: &[&str]) -> (i32, Value, String) {
    let out = run(Command::new(bin(bin_name)).args(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout of {bin_name} {args:?} is not one JSON document ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// Waits for a tool started with `--output json` and piped stdout/stderr (at most
/// `timeout`, then SIGKILL and panic); returns (exit code, schema-valid report, stderr).
/// The pipes are drained while waiting, so a chatty tool cannot block on a full pipe.
pub fn finish(child: Child, timeout: Duration) -> (i32, Value, String) {
    let pid = child.id() as i32;
    let waiter = std::thread::spawn(move || child.wait_with_output());
    let deadline = Instant::now() + timeout;
    while !waiter.is_finished() {
        if Instant::now() > deadline {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("pid {pid} did not end within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = match waiter.join() {
        Ok(Ok(out)) => out,
        other => panic!("waiting for pid {pid} failed: {other:?}"),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("stdout is not one JSON report ({e}):\n{stdout}\nstderr:\n{stderr}")
    });
    assert_valid_report(&report);
    (out.status.code().unwrap_or(-1), report, stderr)
}

/// A helper process (a server a test started) that is killed and reaped when the test
/// ends, even on failure: `std::process::Child` alone would leave it running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits (at most 10 s) until a run has written its instance file into `state_dir`
/// (`CHAOS_STATE_DIR`), which the runner does right before apply.
pub fn wait_until_registered(state_dir: &Path, tool: &str, run_id: &str) {
    let file = state_dir.join(format!("{tool}-{run_id}.json"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !file.exists() {
        assert!(
            Instant::now() < deadline,
            "{tool} never registered {}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn schema() -> &'static jsonschema::Validator {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/report.schema.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let schema: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("schema is not JSON: {e}"));
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema is invalid: {e}"))
    })
}

/// Panics with every violation if `report` does not match docs/report.schema.json.
pub fn assert_valid_report(report: &Value) {
    let errors: Vec<String> = schema()
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "report violates the schema:\n{}\n{report:#}",
        errors.join("\n")
    );
}

/// A loopback port nobody listens on (bound, then released).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap_or_else(|e| panic!("bind an ephemeral port: {e}"));
    listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local address: {e}"))
        .port()
}

/// Waits until `cond` holds, checking every 10 ms; panics naming `what` after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !cond() {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
