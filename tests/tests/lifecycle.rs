//! The lifecycle through real signals, with cpu-hog as the fault: every stop signal
//! reverts and reports; a burst of signals during the stop cannot abort the revert;
//! `--stop RUN_ID` stops a run from another process.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Starts cpu-hog for 30 s with its instance file in `state_dir`, and waits until the run
/// has registered (which happens right before apply) plus a moment for apply itself.
fn start_cpu_hog(state_dir: &Path, run_id: &str) -> Child {
    let child = Command::new(common::bin("cpu-hog"))
        .args([
            "-c", "20", "-d", "30", "-y", "--output", "json", "--run-id", run_id,
        ])
        .env("CHAOS_STATE_DIR", state_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn cpu-hog: {e}"));
    common::wait_until_registered(state_dir, "cpu-hog", run_id);
    std::thread::sleep(Duration::from_millis(300));
    child
}

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap_or_else(|e| panic!("kill {sig}: {e}"));
}

#[test]
fn every_stop_signal_reverts_and_reports_aborted() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for (i, sig) in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP]
        .into_iter()
        .enumerate()
    {
        let run_id = format!("signal-{i}");
        let child = start_cpu_hog(state.path(), &run_id);
        signal(&child, sig);
        let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
        assert_eq!(code, 0, "{sig}: {stderr}");
        assert_eq!(report["result"], "aborted", "{sig}");
        assert_eq!(report["stopReason"], format!("signal:{sig}"));
        assert_eq!(report["revert"]["status"], "reverted", "{sig}");
        assert!(
            !state.path().join(format!("cpu-hog-{run_id}.json")).exists(),
            "instance file left behind"
        );
    }
}

#[test]
fn a_burst_of_signals_cannot_abort_the_revert() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let child = start_cpu_hog(state.path(), "burst");
    // Ctrl-C, Ctrl-C, then SIGTERM and SIGHUP while the first stop is being handled:
    // without the runner's handlers the second SIGINT would kill the process (exit 130).
    for sig in [
        Signal::SIGINT,
        Signal::SIGINT,
        Signal::SIGTERM,
        Signal::SIGHUP,
        Signal::SIGINT,
    ] {
        signal(&child, sig);
        std::thread::sleep(Duration::from_millis(1));
    }
    let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    assert_eq!(report["stopReason"], "signal:SIGINT");
    assert_eq!(report["revert"]["status"], "reverted");
}

#[test]
fn stop_by_run_id_from_another_process() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let child = start_cpu_hog(state.path(), "stop-me");
    let stopper = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--stop", "stop-me"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert!(stopper.status.success(), "--stop failed: {stopper:?}");
    // --stop returns only once the run has exited.
    let (code, report, _) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0);
    assert_eq!(report["stopReason"], "signal:SIGTERM");
    // Stopping a run that already ended is not an error.
    let again = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--stop", "stop-me"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert!(again.status.success(), "second --stop: {again:?}");
}

#[test]
fn cleanup_stops_every_running_instance() {
    let state = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = start_cpu_hog(state.path(), "sweep-a");
    let second = start_cpu_hog(state.path(), "sweep-b");
    let sweep = common::run(
        Command::new(common::bin("cpu-hog"))
            .arg("--cleanup")
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert!(sweep.status.success(), "--cleanup failed: {sweep:?}");
    for child in [first, second] {
        let (code, report, _) = common::finish(child, Duration::from_secs(10));
        assert_eq!(code, 0);
        assert_eq!(report["result"], "aborted");
    }
    let twice = common::run(
        Command::new(common::bin("cpu-hog"))
            .arg("--cleanup")
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert!(twice.status.success(), "second --cleanup: {twice:?}");
}
