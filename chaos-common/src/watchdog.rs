//! The watchdog: a second process that deletes a tool's nftables table if the tool dies
//! without reverting (SIGKILL, OOM kill, a crash) or hangs past the end of its run (SIGSTOP,
//! a deadlock), because nftables rules outlive the process that made them. Shared by
//! net-partition and latency-injector.
//!
//! Before apply creates the table, the tool starts itself again as
//! `<tool> __watchdog TABLE RUN_FOR_MS` with a pipe on its stdin, so no moment exists in
//! which the table stands unguarded. The watchdog leaves the session (so Ctrl-C or a
//! hang-up sent to the terminal's process group does not reach it), blocks SIGINT, SIGTERM
//! and SIGHUP, says `ready`, and waits on the pipe:
//! - a normal revert deletes the table, writes `reverted`, and waits for the watchdog to
//!   exit;
//! - if the pipe closes without that line, the parent is gone: the watchdog deletes the
//!   table if it exists, and deletes it again 0.25 s, 1 s, 3 s and 10 s later, because an
//!   `nft` transaction the parent had started may still be committing after its death (one
//!   slower than that is not caught: `--cleanup` removes it);
//! - if `RUN_FOR_MS` plus [`GRACE`] pass without either, the parent is alive but hung:
//!   the watchdog deletes the table (the run's report, if it ever resumes, says it
//!   overran) and keeps waiting for the pipe to close.
//!
//! What it cannot survive: a kill of every process in the tool's cgroup (what a container
//! runtime does when it stops a container) kills the watchdog too. Inside a pod that
//! takes the network namespace with it only when the whole pod goes; for an ephemeral
//! container that is stopped alone, `<tool> --cleanup` in the pod's network namespace
//! removes the table (see docs/operator-guide.md).

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing::warn;

use crate::error::{ChaosError, Result};
use crate::nft;

/// The hidden first argument `main` dispatches on before clap sees the command line.
pub const WATCHDOG_ARG: &str = "__watchdog";
/// How long past the planned end of the run the watchdog waits before it treats the
/// injector as hung: room for apply, a slow revert and the report.
pub const GRACE: Duration = Duration::from_secs(10);
const READY: &str = "ready";
const REVERTED: &str = "reverted";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// When the watchdog deletes the table again after the parent's death (from that death).
const SETTLE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
];

/// The parent's side: the running watchdog and the pipe that keeps it waiting.
#[derive(Debug)]
pub struct Watchdog {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

fn fault(what: &str, e: impl std::fmt::Display) -> ChaosError {
    ChaosError::fault(format!("watchdog: {what}: {e}"))
}

impl Watchdog {
    /// Starts the watchdog for `table`, before the table exists, and waits until it is
    /// guarding it. `run_for` is how long the run will keep the table: past it and
    /// [`GRACE`], the watchdog removes the table of a hung injector.
    pub async fn start(table: &str, run_for: Duration) -> Result<Watchdog> {
        let exe = std::env::current_exe().map_err(|e| fault("cannot find own executable", e))?;
        let mut child = tokio::process::Command::new(exe)
            .arg(WATCHDOG_ARG)
            .arg(table)
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
        Ok(Watchdog { child, stdin })
    }

    /// Tells the watchdog the table is gone and waits for it to exit (killing it after
    /// a short wait: it only ever deletes our table, so stopping it is always safe).
    pub async fn stop(mut self) -> &'static str {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(format!("{REVERTED}\n").as_bytes()).await;
            let _ = stdin.flush().await;
        }
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => "stopped",
            Ok(_) => "exited-with-error",
            Err(_) => {
                warn!("watchdog did not exit within {STOP_TIMEOUT:?}; killing it");
                let _ = self.child.kill().await;
                "killed"
            }
        }
    }
}

fn say(tool: &str, line: &str) {
    let _ = writeln!(std::io::stderr(), "{tool} watchdog: {line}");
}

/// The watchdog process: `<tool> __watchdog TABLE RUN_FOR_MS`; the tool's `main`
/// dispatches it (see [`crate::tool::Hidden`]) before clap sees the command line.
pub fn main(tool: &str, args: &[OsString]) -> ExitCode {
    let table = args.first().and_then(|t| t.to_str());
    let run_for = args
        .get(1)
        .and_then(|ms| ms.to_str())
        .and_then(|ms| ms.parse::<u64>().ok())
        .map(Duration::from_millis);
    let (Some(table), Some(run_for), 2) =
        (table.filter(|t| is_our_table(tool, t)), run_for, args.len())
    else {
        say(
            tool,
            &format!(
                "refusing to guard {args:?}: expected a {}* table name and a duration in ms",
                nft::table_prefix(tool)
            ),
        );
        return ExitCode::from(2);
    };
    // Not a process group leader (the parent spawned us), so setsid cannot fail with
    // EPERM; if it did, the watchdog still works, only Ctrl-C could reach it.
    let _ = nix::unistd::setsid();
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        say(tool, &format!("cannot block signals: {e}"));
    }
    let deadline = Instant::now() + run_for + GRACE;
    let mut stdout = std::io::stdout();
    // A failed write means the parent is already gone; the pipe read below says so.
    let _ = writeln!(stdout, "{READY}").and_then(|()| stdout.flush());
    let lines = read_parent_lines();
    match lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(line) if line == REVERTED => ExitCode::SUCCESS,
        Ok(_) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            say(
                tool,
                &format!("{tool} exited without reverting; deleting table inet {table}"),
            );
            settle(tool, table)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            say(
                tool,
                &format!(
                    "{tool} is still running {} s past the end of its run (stopped or hung); \
                     deleting table inet {table}",
                    GRACE.as_secs()
                ),
            );
            let code = delete_with_retries(tool, table);
            // Stay until the parent goes, so its revert finds a live watchdog to stop.
            let _ = lines.recv();
            code
        }
    }
}

/// The parent's lines on stdin, read on a thread so the main thread can wait with a
/// deadline; the channel disconnects when the pipe closes.
fn read_parent_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        while std::io::stdin().lock().read_line(&mut line).unwrap_or(0) > 0 {
            if tx.send(line.trim_end().to_owned()).is_err() {
                return;
            }
            line.clear();
        }
    });
    rx
}

/// After the parent's death: delete now and again on the [`SETTLE`] schedule, so a
/// transaction that was still committing when the parent died is removed too.
fn settle(tool: &str, table: &str) -> ExitCode {
    let died = Instant::now();
    let mut code = ExitCode::SUCCESS;
    for at in SETTLE {
        std::thread::sleep(at.saturating_sub(died.elapsed()));
        code = delete_with_retries(tool, table);
    }
    code
}

fn delete_with_retries(tool: &str, table: &str) -> ExitCode {
    for attempt in 1..=3 {
        match nft::delete_table_blocking(table) {
            Ok(nft::Deleted::Now) => {
                say(tool, &format!("table inet {table} removed"));
                return ExitCode::SUCCESS;
            }
            Ok(nft::Deleted::AlreadyGone) => return ExitCode::SUCCESS,
            Err(e) => say(tool, &format!("attempt {attempt}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ExitCode::FAILURE
}

/// The watchdog only ever deletes a table of this tool's with a valid run id.
fn is_our_table(tool: &str, name: &str) -> bool {
    name.strip_prefix(&nft::table_prefix(tool))
        .is_some_and(|id| crate::runid::validate(id).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_only_our_tables() {
        assert!(is_our_table("net-partition", "chaos-net-partition-abc123"));
        assert!(!is_our_table(
            "latency-injector",
            "chaos-net-partition-abc123"
        ));
        for name in [
            "filter",
            "chaos-net-partition-",
            "chaos-net-partition-UPPER",
            "x-chaos-net-partition-a",
        ] {
            assert!(!is_our_table("net-partition", name), "{name}");
        }
    }
}
