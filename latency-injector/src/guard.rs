//! Guards: second processes that remove what a run set up outside nftables if the
//! injector dies without reverting (SIGKILL, OOM kill, a crash) or hangs past the end of
//! its run, since it outlives the process. Like the nftables watchdog of chaos-common,
//! one guard per kind of state:
//! - `latency-injector __routes-guard TABLE APP_PORT RUN_FOR_MS`: ingress's policy
//!   routing (`routes.rs`);
//! - `latency-injector __netem-guard ROOT RUN_FOR_MS DEV...`: the netem engine's root
//!   qdiscs (`netem_guard.rs`).
//!
//! The injector starts the guard *before* adding what it guards, with a pipe on its
//! stdin. The guard leaves the session, blocks SIGINT, SIGTERM and SIGHUP, says `ready`,
//! and waits on the pipe. A normal revert removes the state itself, writes `reverted` and
//! waits for the guard to exit. If the pipe closes without that line, the injector is
//! gone: the guard removes the state (already gone is fine), and again 0.25 s, 1 s, 3 s
//! and 10 s later, because a command the injector had started (`ip rule add`, `tc qdisc
//! add`) may still complete after its death. If `RUN_FOR_MS` plus the watchdog's grace
//! pass first, the injector is hung: the guard removes the state then.

use std::ffi::OsString;
use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use chaos_common::watchdog::GRACE;
use chaos_common::{ChaosError, Result};
use nix::sys::signal::{SigSet, Signal};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::routes::{self, Routes};

/// The hidden first argument of the routes guard.
pub const GUARD_ARG: &str = "__routes-guard";
const READY: &str = "ready";
const REVERTED: &str = "reverted";
const START_TIMEOUT: Duration = Duration::from_secs(5);
const STOP_TIMEOUT: Duration = Duration::from_secs(2);
/// When the guard removes the state again after the injector's death (from that death).
const SETTLE: [Duration; 5] = [
    Duration::ZERO,
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(3),
    Duration::from_secs(10),
];

#[derive(Debug)]
pub struct Guard {
    child: tokio::process::Child,
    stdin: Option<tokio::process::ChildStdin>,
}

fn fault(what: &str, e: impl std::fmt::Display) -> ChaosError {
    ChaosError::fault(format!("guard: {what}: {e}"))
}

impl Guard {
    /// Starts `latency-injector ARG ARGS...` and waits until it is guarding.
    pub async fn start(arg: &str, args: &[String]) -> Result<Guard> {
        let exe = std::env::current_exe().map_err(|e| fault("cannot find own executable", e))?;
        let mut child = tokio::process::Command::new(exe)
            .arg(arg)
            .args(args)
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
            return Err(fault(
                &format!("{arg} did not report ready"),
                format!("got {line:?}"),
            ));
        }
        Ok(Guard { child, stdin })
    }

    /// The routes guard of `routes`.
    pub async fn routes(routes: &Routes, run_for: Duration) -> Result<Guard> {
        let args = [
            routes.table.to_string(),
            routes.app_port.to_string(),
            run_for.as_millis().to_string(),
        ];
        Guard::start(GUARD_ARG, &args).await
    }

    /// Tells the guard the state is gone and waits for it to exit.
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

pub fn say(what: &str, line: &str) {
    let _ = writeln!(std::io::stderr(), "latency-injector {what} guard: {line}");
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

fn remove_with_retries(what: &str, remove: &dyn Fn() -> Result<()>) -> ExitCode {
    for attempt in 1..=3 {
        match remove() {
            Ok(()) => return ExitCode::SUCCESS,
            Err(e) => say(what, &format!("attempt {attempt}: {e}")),
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    ExitCode::FAILURE
}

/// The guard process, once its arguments are checked: `what` names the state in its
/// messages (`routes`, `netem`), `remove` removes it (already gone is success).
pub fn serve(what: &str, run_for: Duration, remove: &dyn Fn() -> Result<()>) -> ExitCode {
    // Not a process group leader (the injector spawned us), so setsid does not fail.
    let _ = nix::unistd::setsid();
    let mut signals = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(signal);
    }
    if let Err(e) = signals.thread_block() {
        say(what, &format!("cannot block signals: {e}"));
    }
    let mut stdout = std::io::stdout();
    // A failed write means the injector is already gone: the read below sees it.
    let _ = writeln!(stdout, "{READY}").and_then(|()| stdout.flush());
    match wait_for_parent(run_for + GRACE) {
        Some(line) if line.trim_end() == REVERTED => ExitCode::SUCCESS,
        Some(_) => {
            say(
                what,
                "the injector exited without reverting; removing what it set up",
            );
            let died = Instant::now();
            let mut code = ExitCode::SUCCESS;
            for at in SETTLE {
                std::thread::sleep(at.saturating_sub(died.elapsed()));
                code = remove_with_retries(what, remove);
            }
            code
        }
        None => {
            say(
                what,
                &format!(
                    "the injector overran its run by more than {GRACE:?}; removing what it set up"
                ),
            );
            remove_with_retries(what, remove)
        }
    }
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

/// The routes guard process: `latency-injector __routes-guard TABLE APP_PORT RUN_FOR_MS`.
pub fn main(args: &[OsString]) -> ExitCode {
    let Some((routes, run_for)) = parse(args) else {
        say(
            "routes",
            &format!("refusing to guard {args:?}: not a latency-injector routing table"),
        );
        return ExitCode::from(2);
    };
    serve("routes", run_for, &|| routes::remove(&routes))
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
