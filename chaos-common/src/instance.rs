//! Running instances, found by run id: what `--stop RUN_ID` and `--cleanup` act on.
//!
//! Each live run writes `<dir>/<tool>-<run id>.json` holding its pid and the process
//! start time (field 22 of /proc/PID/stat), and removes it when it ends. The start time
//! guards against pid reuse: a file whose process is gone or whose start time differs is
//! stale and is removed, never acted on. Pids and start times only mean something in the
//! pid namespace that wrote them: the file also names that namespace, and a file written
//! in another one (a container sharing the directory) is neither acted on nor removed.
//!
//! # Trust
//! A file in the registry makes this tool send SIGTERM to the process it names, so the
//! registry is only read from, and written to, a directory that nobody else can write:
//! - the directory is `$CHAOS_STATE_DIR` when set, else `/run/chaos-tools` and
//!   `$TMPDIR/chaos-tools-<uid>` (per user: one user's directory can never be another's;
//!   `/tmp` is an emptyDir in pods whose root filesystem is read-only);
//! - it is trusted only if it is a real directory (not a symlink), owned by the effective
//!   user or root, and not writable by group or others; the tool creates it with mode 0700;
//! - files are opened relative to the directory's descriptor with `O_NOFOLLOW`, and a file
//!   is read only if it is a regular file owned by the effective user or root, not writable
//!   by group or others, and small; files are created with `O_CREAT|O_EXCL` and mode 0600,
//!   so a planted file or symlink is never followed or overwritten.
//!
//! Runs that ended are remembered for a bounded time ([`ended`]) so that `--stop` can
//! tell a run that already ended from a run id that never ran here.
//!
//! An untrusted directory is skipped with a warning naming it and the reason; a run that
//! finds no trusted writable directory is refused (see [`register`]), because a run that
//! `--stop` cannot find must not start.

use std::ffi::OsString;
use std::fs;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Pid, Uid};
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ChaosError, Result};
use state_dir::{StateDir, Unusable};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Instance {
    pub tool: String,
    pub run_id: String,
    pub pid: i32,
    pub start_time: u64,
    /// The pid namespace `pid` and `start_time` belong to (`pid:[INODE]`, the link
    /// /proc/self/ns/pid); None in files of older versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<String>,
}

/// The caller's pid namespace, as the link /proc/self/ns/pid names it.
pub fn own_pid_namespace() -> Option<String> {
    fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.to_string_lossy().into_owned())
}

/// Removes the instance file when the run ends, and remembers that it ended
/// ([`ended`]).
#[derive(Debug)]
pub struct Registration {
    dir: StateDir,
    name: String,
    tool: String,
    run_id: String,
}

impl Registration {
    /// Where the instance file is.
    pub fn path(&self) -> PathBuf {
        self.dir.path.join(&self.name)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.dir.remove(&self.name);
        ended::remember(&self.dir, &self.tool, &self.run_id);
    }
}

/// The directories the registry may live in, in order of preference.
pub fn candidate_dirs() -> Vec<PathBuf> {
    match std::env::var_os("CHAOS_STATE_DIR") {
        Some(dir) if !dir.is_empty() => vec![PathBuf::from(dir)],
        _ => {
            let mut per_user = OsString::from("chaos-tools-");
            per_user.push(Uid::effective().to_string());
            vec![
                "/run/chaos-tools".into(),
                std::env::temp_dir().join(per_user),
            ]
        }
    }
}

fn file_name(tool: &str, run_id: &str) -> String {
    format!("{tool}-{run_id}.json")
}

/// The start time of a running process in clock ticks since boot, or None if it is
/// gone. A zombie (exited, not yet reaped by its parent) counts as gone: its revert is
/// over.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (state, start_time) = parse_stat(&stat)?;
    (state != "Z" && state != "X").then_some(start_time)
}

/// (state, start time) from the text of /proc/PID/stat.
fn parse_stat(stat: &str) -> Option<(&str, u64)> {
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

/// Registers this process as the run `run_id` of `tool`, so that `--stop` finds it.
///
/// A live run of `tool` with this run id already is bad input (`ChaosError::BadInput`,
/// exit 2: choose another `--run-id`); no trusted writable directory is a refusal
/// (`ChaosError::Refused`, exit 3): a run that `--stop` cannot find must not start.
pub fn register(tool: &str, run_id: &str) -> Result<Registration> {
    Registry::from_env().register(tool, run_id)
}

/// Refuses when a live run of `tool` already has `run_id` (read-only: dry runs check
/// this too).
pub fn ensure_not_running(tool: &str, run_id: &str) -> Result<()> {
    Registry::from_env().ensure_not_running(tool, run_id)
}

/// Live instances of `tool` (all of them with `run_id` None); stale files are removed.
pub fn list(tool: &str, run_id: Option<&str>) -> Listing {
    Registry::from_env().list(tool, run_id)
}

/// The registry: its candidate directories, in order of preference.
#[derive(Debug, Clone)]
pub struct Registry {
    pub dirs: Vec<PathBuf>,
}

impl Registry {
    /// `$CHAOS_STATE_DIR`, else `/run/chaos-tools` and `$TMPDIR/chaos-tools-<uid>`.
    pub fn from_env() -> Registry {
        Registry {
            dirs: candidate_dirs(),
        }
    }

    /// See [`register`].
    pub fn register(&self, tool: &str, run_id: &str) -> Result<Registration> {
        self.ensure_not_running(tool, run_id)?;
        let pid = std::process::id() as i32;
        let instance = Instance {
            tool: tool.into(),
            run_id: run_id.into(),
            pid,
            start_time: process_start_time(pid).ok_or_else(|| {
                ChaosError::Precondition(
                    "cannot read /proc/self/stat, which --stop needs to tell this run from a \
                     reused pid: run where /proc is mounted (every container runtime mounts it)"
                        .into(),
                )
            })?,
            pid_namespace: own_pid_namespace(),
        };
        let body = serde_json::to_vec(&instance).map_err(|e| ChaosError::fault(e.to_string()))?;
        let name = file_name(tool, run_id);
        let mut tried = Vec::new();
        for path in &self.dirs {
            let dir = match StateDir::open(path, true) {
                Ok(dir) => dir,
                Err(Unusable::Missing) => {
                    tried.push(format!("{}: missing", path.display()));
                    continue;
                }
                Err(Unusable::Refused(why)) => {
                    tried.push(format!("{}: {why}", path.display()));
                    continue;
                }
            };
            match create_once(&dir, &name, &body, tool, run_id) {
                Ok(()) => {
                    return Ok(Registration {
                        dir,
                        name,
                        tool: tool.into(),
                        run_id: run_id.into(),
                    });
                }
                Err(CreateError::Running(e)) => return Err(e),
                Err(CreateError::Io(e)) => tried.push(format!("{}: {e}", path.display())),
            }
        }
        Err(ChaosError::Refused {
            rule: "stoppable",
            message: format!(
                "cannot register run {run_id} for --stop ({}); set CHAOS_STATE_DIR to a directory \
             owned by you (or root) that nobody else can write",
                tried.join("; ")
            ),
        })
    }
}

enum CreateError {
    Running(ChaosError),
    Io(std::io::Error),
}

/// Creates the instance file; a stale file of the same name (its process gone) is
/// replaced, a live one refuses the run.
fn create_once(
    dir: &StateDir,
    name: &str,
    body: &[u8],
    tool: &str,
    run_id: &str,
) -> std::result::Result<(), CreateError> {
    for _ in 0..2 {
        match dir.create(name, body) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if let Some(live) = read_live(dir, name, tool, Some(run_id)) {
                    return Err(CreateError::Running(already_running(&live)));
                }
                // Stale (removed by read_live) or not a trusted file: remove it if it is
                // still there, then try once more. unlinkat never follows a symlink.
                dir.remove(name);
            }
            Err(e) => return Err(CreateError::Io(e)),
        }
    }
    Err(CreateError::Io(std::io::Error::other(format!(
        "{name} keeps appearing"
    ))))
}

fn already_running(live: &Instance) -> ChaosError {
    ChaosError::bad_input(format!(
        "--run-id {}: a {} run with this run id is already running (pid {}); choose another \
         --run-id, or stop that run with `{} --stop {}`",
        live.run_id, live.tool, live.pid, live.tool, live.run_id
    ))
}

/// What a look through the registry found.
#[derive(Debug, Default)]
pub struct Listing {
    /// Live instances.
    pub instances: Vec<Instance>,
    /// Directories that exist but were not read, each with the reason.
    pub skipped: Vec<String>,
    /// How many directories were read.
    pub read: usize,
}

impl Registry {
    /// See [`ensure_not_running`].
    pub fn ensure_not_running(&self, tool: &str, run_id: &str) -> Result<()> {
        match self.list(tool, Some(run_id)).instances.first() {
            Some(live) => Err(already_running(live)),
            None => Ok(()),
        }
    }

    /// See [`list`].
    pub fn list(&self, tool: &str, run_id: Option<&str>) -> Listing {
        let mut listing = Listing::default();
        for path in &self.dirs {
            let dir = match StateDir::open(path, false) {
                Ok(dir) => dir,
                Err(Unusable::Missing) => continue,
                Err(Unusable::Refused(why)) => {
                    warn!("not reading state directory {}: {why}", path.display());
                    listing.skipped.push(format!("{}: {why}", path.display()));
                    continue;
                }
            };
            listing.read += 1;
            for name in dir.names() {
                if let Some(instance) = read_live(&dir, &name, tool, run_id) {
                    listing.instances.push(instance);
                }
            }
        }
        listing
    }
}

fn read_live(dir: &StateDir, name: &str, tool: &str, run_id: Option<&str>) -> Option<Instance> {
    if !name.starts_with(&format!("{tool}-")) || !name.ends_with(".json") {
        return None;
    }
    let instance: Instance = serde_json::from_slice(&dir.read(name)?).ok()?;
    if instance.tool != tool
        || run_id.is_some_and(|id| id != instance.run_id)
        || name != file_name(tool, &instance.run_id)
    {
        return None;
    }
    if instance.pid_namespace.is_some() && instance.pid_namespace != own_pid_namespace() {
        // Written in another pid namespace: its pid means another process here.
        return None;
    }
    if process_start_time(instance.pid) != Some(instance.start_time) {
        info!(
            "removing stale instance file {}",
            dir.path.join(name).display()
        );
        dir.remove(name);
        // The run was killed before it could say so: it ended all the same.
        ended::remember(dir, &instance.tool, &instance.run_id);
        return None;
    }
    Some(instance)
}

/// True when `pid` runs in the caller's network namespace (a pod, or a test namespace).
/// `--cleanup` acts only there, so sweeping one namespace never stops runs in another;
/// an unreadable namespace link counts as "not ours".
pub fn in_own_network_namespace(pid: i32) -> bool {
    let own = fs::read_link("/proc/self/ns/net");
    let theirs = fs::read_link(format!("/proc/{pid}/ns/net"));
    matches!((own, theirs), (Ok(a), Ok(b)) if a == b)
}

/// Sends SIGTERM to the instance and waits until it has exited (its revert done).
pub fn stop(instance: &Instance, timeout: Duration) -> Result<()> {
    info!(
        "stopping {} run {} (pid {})",
        instance.tool, instance.run_id, instance.pid
    );
    match kill(Pid::from_raw(instance.pid), Signal::SIGTERM) {
        Ok(()) | Err(Errno::ESRCH) => {}
        Err(e) => {
            return Err(ChaosError::fault(format!(
                "cannot signal {} run {} (pid {}): {e}",
                instance.tool, instance.run_id, instance.pid
            )));
        }
    }
    let deadline = Instant::now() + timeout;
    while process_start_time(instance.pid) == Some(instance.start_time) {
        if Instant::now() > deadline {
            return Err(ChaosError::fault(format!(
                "{} run {} (pid {}) did not exit within {}s of SIGTERM; it may be stopped \
                 (SIGSTOP) or hung: check `ps -o stat,cmd -p {}`",
                instance.tool,
                instance.run_id,
                instance.pid,
                timeout.as_secs(),
                instance.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub mod ended;
mod state_dir;

#[cfg(test)]
mod tests;
