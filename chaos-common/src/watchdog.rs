//! The watchdog: a second process that deletes a tool's nftables table if the tool dies
//! without reverting (SIGKILL, OOM kill, a crash), because nftables rules outlive the
//! process that made them. Shared by net-partition and latency-injector.
//!
//! After apply, the tool starts itself again as `<tool> __watchdog TABLE`
//! with a pipe on its stdin. The watchdog leaves the session (so Ctrl-C or a hang-up sent
//! to the terminal's process group does not reach it), blocks SIGINT, SIGTERM and SIGHUP,
//! says `ready`, and waits on the pipe. A normal revert deletes the table, writes
//! `reverted`, and waits for the watchdog to exit. If the pipe closes without that line,
//! the parent is gone: the watchdog deletes the table (already gone is fine) and exits.

use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tracing::warn;

use crate::error::{ChaosError, Result};
use crate::nft;

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

fn say(tool: &str, line: &str) {
    let _ = writeln!(std::io::stderr(), "{tool} watchdog: {line}");
}

/// The watchdog process: `<tool> __watchdog TABLE`; the tool's `main` calls this before
/// clap sees the command line.
pub fn main(tool: &str, args: &[String]) -> ExitCode {
    let Some(table) = args.first().filter(|t| is_our_table(tool, t)) else {
        say(
            tool,
            &format!(
                "refusing to guard {args:?}: not a {}* table name",
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
    say(
        tool,
        &format!("{tool} exited without reverting; deleting table inet {table}"),
    );
    for attempt in 1..=3 {
        match nft::delete_table_blocking(table) {
            Ok(()) => {
                say(tool, &format!("table inet {table} removed"));
                return ExitCode::SUCCESS;
            }
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
