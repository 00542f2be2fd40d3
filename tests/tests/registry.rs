//! The instance registry behind `--stop` and `--cleanup`, attacked as a careless operator
//! and as another user would: a run id used twice, a registry nobody can write, a dry
//! cleanup, and files planted by another user naming root's processes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn cpu_hog(state_dir: &Path, run_id: &str) -> Command {
    let mut cmd = Command::new(common::bin("cpu-hog"));
    cmd.args([
        "-c", "5", "-d", "30", "-y", "--output", "json", "--run-id", run_id,
    ])
    .env("CHAOS_STATE_DIR", state_dir)
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

fn start(state_dir: &Path, run_id: &str) -> Child {
    let child = cpu_hog(state_dir, run_id)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn cpu-hog: {e}"));
    common::wait_until_registered(state_dir, "cpu-hog", run_id);
    child
}

fn json_of(out: &std::process::Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "not one JSON report ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    common::assert_valid_report(&report);
    report
}

fn alive(pid: i32) -> bool {
    chaos_common::instance::process_start_time(pid).is_some()
}

#[test]
fn a_run_id_already_running_is_refused_and_the_first_run_stays_stoppable() {
    let state = tempfile::tempdir().unwrap();
    let first = start(state.path(), "twice");
    let second = common::run(&mut cpu_hog(state.path(), "twice"));
    assert_eq!(second.status.code(), Some(2), "{second:?}");
    let report = json_of(&second);
    assert_eq!(report["result"], "bad-input");
    assert_eq!(report["revert"]["status"], "not-applied");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already running")
    );
    // The first run's registration is intact: --stop finds and stops it.
    let stop = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--stop", "twice", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(stop.status.code(), Some(0), "{stop:?}");
    assert_eq!(json_of(&stop)["observations"]["running"], true);
    let (code, report, _) = common::finish(first, Duration::from_secs(10));
    assert_eq!(code, 0);
    assert_eq!(report["stopReason"], "signal:SIGTERM");
}

#[test]
fn a_run_that_stop_could_not_find_is_refused() {
    let state = tempfile::tempdir().unwrap();
    let dir = state.path().join("open-to-all");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = common::run(&mut cpu_hog(&dir, "nowhere"));
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let report = json_of(&out);
    assert_eq!(report["result"], "refused");
    assert_eq!(report["revert"]["status"], "not-applied");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("writable by group or others"), "{message}");
    assert!(message.contains("CHAOS_STATE_DIR"), "{message}");
    // And --stop says it cannot know, rather than "nothing to stop".
    let stop = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--stop", "nowhere", "--output", "json"])
            .env("CHAOS_STATE_DIR", &dir),
    );
    assert_eq!(stop.status.code(), Some(1), "{stop:?}");
    assert!(
        json_of(&stop)["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot tell")
    );
}

#[test]
fn cleanup_dry_run_lists_a_running_run_and_leaves_it_running() {
    let state = tempfile::tempdir().unwrap();
    let child = start(state.path(), "keep-going");
    let dry = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--cleanup", "--dry-run", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(dry.status.code(), Some(0), "{dry:?}");
    let report = json_of(&dry);
    assert_eq!(report["result"], "dry-run");
    assert!(
        report["plan"][0].as_str().unwrap().contains("keep-going"),
        "{report:#}"
    );
    assert!(alive(child.id() as i32), "a dry cleanup stopped the run");
    let stop = common::run(
        Command::new(common::bin("cpu-hog"))
            .args(["--cleanup"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert!(stop.status.success(), "{stop:?}");
    let (_, report, _) = common::finish(child, Duration::from_secs(10));
    assert_eq!(report["result"], "aborted");
}

/// Another user plants an instance file naming one of root's processes (with its real
/// start time) in a directory they own; root's `--stop` and `--cleanup` must not signal it.
#[test]
fn root_a_planted_instance_file_never_makes_root_signal_its_process() {
    common::require_root("chown to another user; a root process as the victim");
    let victim = Command::new("sleep")
        .arg("60")
        .spawn()
        .unwrap_or_else(|e| panic!("spawn sleep: {e}"));
    let pid = victim.id() as i32;
    let guard = KillOnDrop(victim);
    let start_time = chaos_common::instance::process_start_time(pid).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    // Case 1: the directory is the other user's.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    // Case 2: root's directory, but a file the other user owns (as if it had been
    // writable once).
    let mine = tmp.path().join("mine");
    std::fs::create_dir(&mine).unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
    for dir in [&theirs, &mine] {
        let planted = dir.join("cpu-hog-x.json");
        let body = serde_json::json!({"tool": "cpu-hog", "runId": "x", "pid": pid, "startTime": start_time});
        std::fs::write(&planted, body.to_string()).unwrap();
        nix::unistd::chown(&planted, Some(nobody), None).unwrap();
    }
    nix::unistd::chown(&theirs, Some(nobody), None).unwrap();
    for dir in [&theirs, &mine] {
        for args in [&["--stop", "x"][..], &["--cleanup"][..]] {
            let out = common::run(
                Command::new(common::bin("cpu-hog"))
                    .args(args)
                    .args(["--output", "json"])
                    .env("CHAOS_STATE_DIR", dir),
            );
            let report = json_of(&out);
            assert!(
                alive(pid),
                "{args:?} in {dir:?} signalled root's process: {report:#}"
            );
            assert_eq!(
                report["targets"],
                serde_json::json!([]),
                "{args:?} in {dir:?}"
            );
        }
    }
    // A symlink planted where root's run will register is replaced, never followed.
    let precious = tmp.path().join("precious");
    std::fs::write(&precious, "root's file").unwrap();
    std::os::unix::fs::symlink(&precious, mine.join("cpu-hog-reg.json")).unwrap();
    let run = common::run(
        Command::new(common::bin("cpu-hog"))
            .args([
                "-c", "5", "-d", "1", "-y", "--output", "json", "--run-id", "reg",
            ])
            .env("CHAOS_STATE_DIR", &mine),
    );
    assert_eq!(run.status.code(), Some(0), "{run:?}");
    assert_eq!(std::fs::read_to_string(&precious).unwrap(), "root's file");
    drop(guard);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
