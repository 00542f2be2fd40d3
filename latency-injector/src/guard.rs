//! The guard of a run's policy routing (see `routes.rs`): like the nftables watchdog of
//! chaos-common, a second process that removes the rule and table if the injector dies
//! without reverting (SIGKILL, OOM kill, a crash), since they outlive the process.
//!
//! Before the routes are added, the injector starts itself again as
//! `latency-injector __routes-guard TABLE APP_PORT RUN_FOR_MS` with a pipe on its stdin.
//! The guard leaves the session, blocks SIGINT, SIGTERM and SIGHUP, says `ready`, and
//! waits on the pipe. A normal revert removes the routes itself, writes `reverted` and
//! waits for the guard to exit. If the pipe closes without that line, the injector is
//! gone: the guard removes the routes (already gone is fine). If `RUN_FOR_MS` plus the
//! watchdog's grace pass first, the injector is hung: the guard removes them then.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use chaos_common::watchdog::GRACE;
use chaos_common::{ChaosError, Result};
use nix::sys::signal::{SigSet, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::routes::{self, Routes};

/// The hidden first argument the binary dispatches on before clap.
pub const GUARD_ARG: &str = "__routes-guard";
const READY: &str = "ready";
const REVERTED: &str = "reverted";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub struct Guard {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

fn fault(what: &str, e: impl std::fmt::Display) -> ChaosError {
    ChaosError::fault(format!("routes guard: {what}: {e}"))
}

impl Guard {
    /// Starts the guard of `routes` and waits until it is guarding them.
    pub async fn start(routes: &Routes, run_for: Duration) -> Result<Guard> {
        let exe = std::env::current_exe().map_err(|e| fault("cannot find own executable", e))?;
        let mut child = tokio::process::Command::new(exe)
            .arg(GUARD_ARG)
            .arg(routes.table.to_string())
            .arg(routes.app_port.to_string())
            .arg(run_for.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(false)
            .spawn()
            .map_err(|e| fault("cannot start", e))?;
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            let mut reader = BufReader::new(stdout);
            let _ = tokio::time::timeout(START_TIMEOUT, reader.read_line(&mut line)).await;
        }
        if line.trim() != READY {
            let _ = child.start_kill();
            return Err(fault("did not report ready", format!("got {line:?}")));
        }
        Ok(Guard { child, stdin })
    }

    /// Tells the guard the routes are gone and waits for it to exit.
    pub async fn stop(mut self) -> &'static str {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(format!("{REVERTED}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => "stopped",
            Ok(_) => "exited-with-error",
            Err(_) => {
                let _ = self.child.kill().await;
                "killed"
            }
        }
    }
}

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "latency-injector routes guard: {line}");
}

/// `TABLE APP_PORT RUN_FOR_MS`, only for a table of ours.
fn parse(args: &[OsString]) -> Option<(Routes, Duration)> {
    let [table, port, run_for] = args else {
        return None;
    };
    let run_for = Duration::from_millis(run_for.to_str()?.parse().ok()?);
    let table: u32 = table.to_str()?.parse().ok()?;
    let app_port: u16 = port.to_str()?.parse().ok()?;
    let routes = Routes { table, app_port };
    (routes::owned_rules(&serde_json::json!([{
        "src": "127.0.0.1", "ipproto": "tcp", "sport": app_port, "table": table.to_string()
    }])) == [routes])
    .then_some((routes, run_for))
}

/// Waits for a line on stdin (`reverted`, or the end of the pipe); `None` when the
/// deadline passes first.
fn wait_for_parent(deadline: Duration) -> Option<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        let _ = tx.send(line);
    });
    rx.recv_timeout(deadline).ok()
}

fn remove_with_retries(routes: &Routes) -> ExitCode {
    for attempt in 1..=3 {
        match routes::remove(routes) {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => say(&format!("attempt {attempt}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ExitCode::FAILURE
}

/// The guard process: `latency-injector __routes-guard TABLE APP_PORT`.
pub fn main(args: &[OsString]) -> ExitCode {
    let Some((routes, run_for)) = parse(args) else {
        say(&format!(
            "refusing to guard {args:?}: not a latency-injector routing table"
        ));
        return ExitCode::from(2);
    };
    // Not a process group leader (the injector spawned us), so setsid does not fail.
    let _ = nix::unistd::setsid();
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        say(&format!("cannot block signals: {e}"));
    }
    let mut stdout = std::io::stdout();
    // A failed write means the injector is already gone: the read below sees it.
    let _ = writeln!(stdout, "{READY}").and_then(|()| stdout.flush());
    match wait_for_parent(run_for + GRACE) {
        Some(line) if line.trim_end() == REVERTED => ExitCode::SUCCESS,
        Some(_) => {
            say(&format!(
                "the injector exited without reverting; removing rule and table {}",
                routes.table
            ));
            remove_with_retries(&routes)
        }
        None => {
            say(&format!(
                "the injector overran its run by more than {GRACE:?}; removing rule and table {}",
                routes.table
            ));
            remove_with_retries(&routes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_only_our_tables() {
        let args =
            |a: &str, b: &str| [OsString::from(a), OsString::from(b), OsString::from("1000")];
        assert!(parse(&args("1279896525", "3000")).is_some());
        for (table, port) in [("133", "3000"), ("1279896525", "0x"), ("main", "3000")] {
            assert!(parse(&args(table, port)).is_none(), "{table} {port}");
        }
        assert!(parse(&[OsString::from("1279896525"), OsString::from("3000")]).is_none());
    }
}
