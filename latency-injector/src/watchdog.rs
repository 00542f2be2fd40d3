//! (Duplicated from latency-injector's `watchdog.rs`, to move into chaos-common.)
//!
//! The watchdog: a second process that deletes the table if latency-injector dies without
//! reverting (SIGKILL, OOM kill, a crash), because nftables rules outlive the process
//! that made them.
//!
//! After apply, latency-injector starts itself again as `latency-injector __watchdog TABLE`
//! with a pipe on its stdin. The watchdog leaves the session (so Ctrl-C or a hang-up sent
//! to the terminal's process group does not reach it), blocks SIGINT, SIGTERM and SIGHUP,
//! says `ready`, and waits on the pipe. A normal revert deletes the table, writes
//! `reverted`, and waits for the watchdog to exit. If the pipe closes without that line,
//! the parent is gone: the watchdog deletes the table (already gone is fine) and exits.

use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use chaos_common::{ChaosError, Result};
use nix::sys::signal::{SigSet, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing::warn;

use crate::nft;
use crate::rules::TABLE_PREFIX;

/// The hidden first argument `main` dispatches on before clap sees the command line.
pub const WATCHDOG_ARG: &str = "__watchdog";
const READY: &str = "ready";
const REVERTED: &str = "reverted";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(2);

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
    /// Starts the watchdog for `table` and waits until it is guarding it.
    pub async fn start(table: &str) -> Result<Watchdog> {
        let exe = std::env::current_exe().map_err(|e| fault("cannot find own executable", e))?;
        let mut child = tokio::process::Command::new(exe)
            .arg(WATCHDOG_ARG)
            .arg(table)
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

fn say(line: &str) {
    let _ = writeln!(std::io::stderr(), "latency-injector watchdog: {line}");
}

/// The watchdog process: `latency-injector __watchdog TABLE`.
pub fn main(args: &[String]) -> ExitCode {
    let Some(table) = args.first().filter(|t| is_our_table(t)) else {
        say(&format!(
            "refusing to guard {args:?}: not a {TABLE_PREFIX}* table name"
        ));
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
        say(&format!("cannot block signals: {e}"));
    }
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{READY}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        // The parent is already gone.
    }
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    if line.trim_end() == REVERTED {
        return ExitCode::SUCCESS;
    }
    say(&format!(
        "latency-injector exited without reverting; deleting table inet {table}"
    ));
    for attempt in 1..=3 {
        match nft::delete_table_blocking(table) {
            Ok(()) => {
                say(&format!("table inet {table} removed"));
                return ExitCode::SUCCESS;
            }
            Err(e) => say(&format!("attempt {attempt}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ExitCode::FAILURE
}

/// The watchdog only ever deletes a table of ours with a valid run id.
fn is_our_table(name: &str) -> bool {
    name.strip_prefix(TABLE_PREFIX)
        .is_some_and(|id| chaos_common::runid::validate(id).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_only_our_tables() {
        assert!(is_our_table("chaos-latency-injector-abc123"));
        for name in [
            "filter",
            "chaos-latency-injector-",
            "chaos-latency-injector-UPPER",
            "x-chaos-latency-injector-a",
        ] {
            assert!(!is_our_table(name), "{name}");
        }
    }
}
