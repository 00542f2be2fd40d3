//! `lab-init`: the small, single-threaded program that turns a [`Launch`] into a
//! container process (what runc's init does), so that the multi-threaded kubelet never
//! calls `setns`/`unshare` itself and no unsafe code is needed (nix's wrappers are safe).
//!
//! Two stages, because a new PID namespace applies to children only:
//! 1. **shim** (`lab-init LAUNCH.json`): joins the container's cgroups, enters or creates
//!    the namespaces, prepares the mounts, then starts stage 2 and waits for it; it writes
//!    stage 2's pid to `pidFile`, moves itself to the pod's cgroups (so that it is neither
//!    charged nor OOM-killed with the container) and exits with the container's status
//!    (128 + signal when it was killed).
//! 2. **container** (`lab-init __container JSON`): PID 1 of a new PID namespace (or a
//!    member of the target's): mounts /proc, drops to the pod's user, groups and
//!    capabilities, sets no_new_privs and the parent-death signal, and execs the command.
//!
//! Both stages die with their parent (PR_SET_PDEATHSIG = SIGKILL): a kubelet that is
//! SIGKILLed takes its containers with it.

mod identity;
mod mounts;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitCode};

use anyhow::{Context, Result, bail};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::signal::Signal;

use super::launch::{Launch, NewSandbox, Sandbox, Stage2};

/// The argument that selects stage 2.
pub const STAGE2: &str = "__container";

/// Exit code when the command cannot be started (as a shell's "command not found").
pub const EXIT_CANNOT_EXEC: u8 = 127;

/// Stage 1: everything up to the container process, then wait for it.
pub fn shim(launch_file: &Path) -> Result<ExitCode> {
    let text = std::fs::read_to_string(launch_file)
        .with_context(|| format!("cannot read {}", launch_file.display()))?;
    let launch: Launch = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a launch spec", launch_file.display()))?;
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("PR_SET_PDEATHSIG")?;
    // Opened now: once the mounts change, the host's paths may be hidden.
    let mut pid_file = File::create(&launch.pid_file)
        .with_context(|| format!("cannot create {}", launch.pid_file.display()))?;
    let shim_cgroups = open_all(&launch.shim_cgroup_procs)?;
    let self_exe = std::env::current_exe().context("cannot find lab-init's own path")?;
    join_cgroups(&launch.cgroup_procs)?;
    let mount_proc = match &launch.sandbox {
        Sandbox::New(new) => {
            enter_new(new)?;
            true
        }
        Sandbox::Join { target_pid } => {
            join_all(*target_pid)?;
            false
        }
    };
    let stage2 = Stage2 {
        argv: launch.argv,
        env: launch.env,
        working_dir: launch.working_dir,
        identity: launch.identity,
        mount_proc,
    };
    let mut child = Command::new(&self_exe)
        .arg(STAGE2)
        .arg(serde_json::to_string(&stage2)?)
        .env_clear()
        .spawn()
        .with_context(|| format!("cannot start {} in the sandbox", self_exe.display()))?;
    writeln!(pid_file, "{}", child.id()).context("cannot write the pid file")?;
    drop(pid_file);
    for mut procs in shim_cgroups {
        // Best effort: a shim left in the container's cgroup costs a few KiB there (and on
        // v2 dies with the container's group OOM kill). The pod's side picks a cgroup that
        // takes processes (cgroups::shim_rel), so this does not fail in practice.
        let _ = writeln!(procs, "{}", std::process::id());
    }
    let status = child.wait().context("waiting for the container process")?;
    let code = match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 255,
    };
    Ok(ExitCode::from(u8::try_from(code).unwrap_or(255)))
}

/// Stage 2: become the container's command.
pub fn container(json: &str) -> ExitCode {
    let stage: Stage2 = match serde_json::from_str(json) {
        Ok(stage) => stage,
        Err(e) => {
            eprintln!("lab-init: bad stage-2 spec: {e}");
            return ExitCode::from(EXIT_CANNOT_EXEC);
        }
    };
    let error = match prepare_and_exec(&stage) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    eprintln!("lab-init: cannot start {:?}: {error:#}", stage.argv);
    ExitCode::from(EXIT_CANNOT_EXEC)
}

fn prepare_and_exec(stage: &Stage2) -> Result<std::convert::Infallible> {
    if stage.mount_proc {
        mounts::mount_proc()?;
    }
    identity::assume(&stage.identity)?;
    let Some((program, args)) = stage.argv.split_first() else {
        bail!("empty command");
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .envs(stage.env.iter().map(|(k, v)| (k, v)))
        .current_dir(stage.working_dir.as_deref().unwrap_or("/"));
    // std resets SIGPIPE and the signal mask before execvp, and searches the PATH given
    // in the new environment.
    Err(cmd.exec()).with_context(|| format!("exec {program}"))
}

fn open_all(paths: &[std::path::PathBuf]) -> Result<Vec<File>> {
    paths
        .iter()
        .map(|p| {
            OpenOptions::new()
                .write(true)
                .open(p)
                .with_context(|| format!("cannot open {}", p.display()))
        })
        .collect()
}

fn join_cgroups(procs: &[std::path::PathBuf]) -> Result<()> {
    for path in procs {
        std::fs::write(path, format!("{}\n", std::process::id()))
            .with_context(|| format!("cannot join cgroup {}", path.display()))?;
    }
    Ok(())
}

fn ns_file(path: &Path) -> Result<File> {
    File::open(path).with_context(|| format!("cannot open namespace {}", path.display()))
}

/// A new container in the pod: the pod's network, new everything else.
fn enter_new(new: &NewSandbox) -> Result<()> {
    let net = ns_file(&new.net_ns)?;
    let target_pid = new
        .pid_of
        .map(|pid| ns_file(Path::new(&format!("/proc/{pid}/ns/pid"))))
        .transpose()?;
    setns(&net, CloneFlags::CLONE_NEWNET)
        .with_context(|| format!("setns {}", new.net_ns.display()))?;
    let mut flags = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWCGROUP;
    match &target_pid {
        Some(file) => setns(file, CloneFlags::CLONE_NEWPID)
            .context("setns into the target's PID namespace")?,
        None => flags |= CloneFlags::CLONE_NEWPID,
    }
    unshare(flags).context("unshare")?;
    nix::unistd::sethostname(&new.hostname)
        .with_context(|| format!("sethostname {}", new.hostname))?;
    mounts::prepare(new)
}

/// An exec: every namespace of the running container process.
fn join_all(pid: i32) -> Result<()> {
    // Open all first: after the mount namespace changes, /proc is the container's.
    let kinds = [
        ("cgroup", CloneFlags::CLONE_NEWCGROUP),
        ("ipc", CloneFlags::CLONE_NEWIPC),
        ("uts", CloneFlags::CLONE_NEWUTS),
        ("net", CloneFlags::CLONE_NEWNET),
        ("pid", CloneFlags::CLONE_NEWPID),
        ("mnt", CloneFlags::CLONE_NEWNS),
    ];
    let files = kinds
        .iter()
        .map(|(name, _)| ns_file(Path::new(&format!("/proc/{pid}/ns/{name}"))))
        .collect::<Result<Vec<_>>>()
        .with_context(|| format!("the container process {pid} is gone"))?;
    for ((name, flag), file) in kinds.iter().zip(&files) {
        setns(file, *flag).with_context(|| format!("setns {name} of pid {pid}"))?;
    }
    nix::unistd::chdir("/").context("chdir /")?;
    Ok(())
}
