//! Starting, signalling and reaping the allocator child from the parent.
//!
//! The child is this binary re-executed with [`allocator::ARG`]. It gets its own process
//! group, so a Ctrl-C on the terminal reaches only the supervisor (which then reverts)
//! and not the allocator. Its pid cannot be reused while it is unreaped, so signalling
//! it by pid is safe until [`Child::stop`] or [`Child::try_wait`] has reaped it.

use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Result};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::allocator::{self, Params};

/// How long the child may take to start, join its cgroup and say it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait for the child's stderr once it has exited.
const STDERR_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Debug)]
pub struct Child {
    inner: tokio::process::Child,
    pub pid: i32,
    stderr: Option<JoinHandle<String>>,
}

/// How [`Child::stop`] went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stopped {
    /// The child had already exited (OOM kill, crash): nothing was signalled.
    pub already_exited: bool,
    /// SIGTERM was not enough within the grace time.
    pub needed_sigkill: bool,
    /// From the first signal until the child was reaped (its memory freed).
    pub took: Duration,
}

/// The binary to re-execute: ours, or /proc/self/exe if the path is gone (a rebuilt or
/// deleted binary still runs through /proc/self/exe).
pub fn executable() -> PathBuf {
    std::env::current_exe()
        .ok()
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from("/proc/self/exe"))
}

impl Child {
    /// Starts the allocator and waits until it has joined its cgroup and is about to
    /// allocate. On failure the child is killed and reaped, and its stderr is the error.
    pub async fn spawn(params: &Params) -> Result<Child> {
        let exe = executable();
        let mut command = tokio::process::Command::new(&exe);
        command
            .arg0("memory-leak")
            .args(params.to_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut inner = command
            .spawn()
            .map_err(|e| ChaosError::io("start the allocator", &exe, e))?;
        let pid = inner
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| ChaosError::fault("the allocator exited before it had a pid"))?;
        let stderr = inner.stderr.take().map(|mut pipe| {
            tokio::spawn(async move {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text).await;
                text
            })
        });
        let mut child = Child { inner, pid, stderr };
        if let Err(e) = child.await_ready().await {
            let _ = child.inner.start_kill();
            let _ = child.inner.wait().await;
            let stderr = child.stderr_text().await;
            return Err(ChaosError::fault(format!(
                "the allocator did not start: {e}{stderr}"
            )));
        }
        debug!("allocator ready (pid {pid})");
        Ok(child)
    }

    async fn await_ready(&mut self) -> std::result::Result<(), String> {
        let stdout = self.inner.stdout.take().ok_or("no stdout pipe")?;
        let mut line = String::new();
        let mut reader = BufReader::new(stdout);
        match tokio::time::timeout(READY_TIMEOUT, reader.read_line(&mut line)).await {
            Err(_) => Err(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
            Ok(Err(e)) => Err(format!("reading its stdout: {e}")),
            Ok(Ok(_)) if line.trim() == allocator::READY => Ok(()),
            Ok(Ok(0)) => Err("it exited".into()),
            Ok(Ok(_)) => Err(format!("unexpected output {:?}", line.trim())),
        }
    }

    /// The exit status if the child has ended (and is now reaped).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        self.inner.try_wait().map_err(|e| {
            ChaosError::fault(format!(
                "cannot check the allocator (pid {}): {e}",
                self.pid
            ))
        })
    }

    /// What the child wrote on stderr, as `: <text>` (empty if nothing), once it has
    /// exited. Waits briefly for the pipe to drain; safe to call more than once.
    pub async fn stderr_text(&mut self) -> String {
        let Some(task) = self.stderr.as_mut() else {
            return String::new();
        };
        match tokio::time::timeout(STDERR_TIMEOUT, task).await {
            Ok(Ok(text)) => {
                self.stderr = None;
                let text = text.trim();
                if text.is_empty() {
                    String::new()
                } else {
                    format!(": {text}")
                }
            }
            _ => String::new(),
        }
    }

    /// Ends the child: SIGTERM, then SIGKILL after `grace`; returns once it is reaped,
    /// which is when the kernel has freed its memory. "Already gone" is success.
    pub async fn stop(&mut self, grace: Duration) -> Result<Stopped> {
        let started = Instant::now();
        if self.try_wait()?.is_some() {
            return Ok(Stopped {
                already_exited: true,
                needed_sigkill: false,
                took: Duration::ZERO,
            });
        }
        match kill(Pid::from_raw(self.pid), Signal::SIGTERM) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => {
                return Err(ChaosError::fault(format!(
                    "cannot send SIGTERM to the allocator (pid {}): {e}",
                    self.pid
                )));
            }
        }
        let mut needed_sigkill = false;
        if tokio::time::timeout(grace, self.inner.wait())
            .await
            .is_err()
        {
            warn!(
                pid = self.pid,
                "allocator still alive {grace:?} after SIGTERM: sending SIGKILL"
            );
            needed_sigkill = true;
            self.inner.start_kill().map_err(|e| {
                ChaosError::fault(format!(
                    "cannot send SIGKILL to the allocator (pid {}): {e}",
                    self.pid
                ))
            })?;
        }
        self.inner.wait().await.map_err(|e| {
            ChaosError::fault(format!("cannot reap the allocator (pid {}): {e}", self.pid))
        })?;
        Ok(Stopped {
            already_exited: false,
            needed_sigkill,
            took: started.elapsed(),
        })
    }
}
