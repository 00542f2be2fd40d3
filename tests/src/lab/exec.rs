//! Exec in a running container: lab-init joins every namespace of the container's main
//! process, its cgroups (the exec'd processes are charged to the container, as with
//! `kubectl exec`), and takes on its user, groups, capabilities and environment.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

use super::launch::{Launch, Sandbox};
use super::pod::PodShared;

static EXEC_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A started exec; its files are removed when it is dropped. Dropping it does not kill
/// the process (as on a node, a client that goes away leaves its exec running).
pub struct ExecProcess {
    pub child: Child,
    files: [PathBuf; 2],
}

impl Drop for ExecProcess {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// The launch of `argv` inside `container` of `pod` (which must be running).
pub fn launch_for(
    pod: &PodShared,
    container: &str,
    argv: Vec<String>,
) -> Result<(Launch, PathBuf)> {
    if argv.is_empty() {
        bail!("an exec needs a command");
    }
    let state = pod.lock();
    let Some(slot) = state.containers.get(container) else {
        bail!("container not found ({container:?}) in pod {}", pod.name);
    };
    let (Some(pid), Some(running), Some(cgroup)) = (slot.pid, &slot.launch, &slot.cgroup) else {
        bail!("container {container:?} of pod {} is not running", pod.name);
    };
    let n = EXEC_COUNTER.fetch_add(1, Ordering::Relaxed);
    let run = pod.dir.join("run");
    let launch = Launch {
        argv,
        env: running.env.clone(),
        working_dir: running.working_dir.clone(),
        identity: running.identity.clone(),
        cgroup_procs: cgroup.procs_files(),
        shim_cgroup_procs: pod.shim_cgroup.procs_files(),
        pid_file: run.join(format!("exec-{n}.pid")),
        sandbox: Sandbox::Join { target_pid: pid },
    };
    Ok((launch, run.join(format!("exec-{n}.json"))))
}

/// Starts `argv` in the container with piped stdin, stdout and stderr.
pub fn spawn(pod: &PodShared, container: &str, argv: Vec<String>) -> Result<ExecProcess> {
    let (launch, file) = launch_for(pod, container, argv)?;
    std::fs::write(&file, serde_json::to_vec(&launch)?)
        .with_context(|| format!("cannot write {}", file.display()))?;
    let child = Command::new(pod.ctx.config.lab_init())
        .arg(&file)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(false)
        .spawn()
        .context("cannot start lab-init for the exec")?;
    Ok(ExecProcess {
        child,
        files: [file, launch.pid_file],
    })
}

/// Output of a finished exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `argv` in the container to completion (at most `timeout`, then it is killed).
pub async fn run(
    pod: &PodShared,
    container: &str,
    argv: Vec<String>,
    timeout: Duration,
) -> Result<ExecOutput> {
    let mut exec = spawn(pod, container, argv)?;
    drop(exec.child.stdin.take());
    let mut out = exec.child.stdout.take().context("no stdout pipe")?;
    let mut err = exec.child.stderr.take().context("no stderr pipe")?;
    let finished = {
        let child = &mut exec.child;
        let collect = async move {
            let (mut o, mut e) = (Vec::new(), Vec::new());
            let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
            let status = child.wait().await;
            (o, e, status)
        };
        tokio::time::timeout(timeout, collect).await
    };
    let Ok((o, e, status)) = finished else {
        // The shim's death takes the command with it (parent-death signal).
        let _ = exec.child.start_kill();
        bail!("exec did not finish within {timeout:?}");
    };
    Ok(ExecOutput {
        code: status.ok().and_then(|s| s.code()).unwrap_or(255),
        stdout: String::from_utf8_lossy(&o).into_owned(),
        stderr: String::from_utf8_lossy(&e).into_owned(),
    })
}
