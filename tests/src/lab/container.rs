//! One container instance: the launch spec written to disk, lab-init started with the
//! container's stdout and stderr pumped into its log file, the container's main pid read
//! back, and the exit status collected.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use super::launch::Launch;
use super::logs::LogSink;

/// How long lab-init may take to start the container process.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// A started container process.
pub struct Instance {
    /// lab-init's shim (our child): its exit status is the container's.
    pub shim: Child,
    /// The container's main process as the host sees it.
    pub pid: i32,
}

/// Starts `launch` through lab-init (`lab_init`), logging to `log`. `launch_file` and
/// `launch.pid_file` are this instance's files in the pod's state directory.
pub async fn start(
    lab_init: &Path,
    launch: &Launch,
    launch_file: &Path,
    log: &LogSink,
) -> Result<Instance> {
    let _ = std::fs::remove_file(&launch.pid_file);
    std::fs::write(launch_file, serde_json::to_vec(launch)?)
        .with_context(|| format!("cannot write {}", launch_file.display()))?;
    let mut shim = Command::new(lab_init)
        .arg(launch_file)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .with_context(|| {
            format!(
                "cannot run {} (build it: cargo build -p chaos-tests)",
                lab_init.display()
            )
        })?;
    if let Some(out) = shim.stdout.take() {
        tokio::spawn(log.clone().pump("stdout", out));
    }
    if let Some(err) = shim.stderr.take() {
        tokio::spawn(log.clone().pump("stderr", err));
    }
    let pid = wait_for_pid(&mut shim, &launch.pid_file).await?;
    Ok(Instance { shim, pid })
}

/// Like [`start`] for an exec: stdin, stdout and stderr are the caller's pipes.
pub fn spawn_exec(lab_init: &Path, launch: &Launch, launch_file: &Path) -> Result<Child> {
    std::fs::write(launch_file, serde_json::to_vec(launch)?)
        .with_context(|| format!("cannot write {}", launch_file.display()))?;
    Command::new(lab_init)
        .arg(launch_file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot run {}", lab_init.display()))
}

async fn wait_for_pid(shim: &mut Child, pid_file: &Path) -> Result<i32> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(pid) = read_pid(pid_file) {
            return Ok(pid);
        }
        if let Some(status) = shim.try_wait()? {
            // It may have written the pid and exited at once (a command that ends fast).
            if let Some(pid) = read_pid(pid_file) {
                return Ok(pid);
            }
            bail!(
                "lab-init ended before the container process started ({status}); see the container's log"
            );
        }
        if Instant::now() > deadline {
            let _ = shim.start_kill();
            bail!("lab-init did not start the container process within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn read_pid(path: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(path).ok()?;
    let line = text.strip_suffix('\n')?;
    line.trim().parse().ok()
}

impl Instance {
    /// Waits for the container to end; its exit code (128 + signal when killed).
    pub async fn wait(&mut self) -> i32 {
        match self.shim.wait().await {
            Ok(status) => status.code().unwrap_or(255),
            Err(_) => 255,
        }
    }

    /// Sends `signal` to the container's main process.
    pub fn signal(&self, signal: Signal) {
        let _ = kill(Pid::from_raw(self.pid), signal);
    }
}

/// The files of one container instance in the pod's state directory.
pub fn instance_files(pod_dir: &Path, container: &str, instance: u32) -> (PathBuf, PathBuf) {
    let dir = pod_dir.join("run");
    (
        dir.join(format!("{container}-{instance}.json")),
        dir.join(format!("{container}-{instance}.pid")),
    )
}
