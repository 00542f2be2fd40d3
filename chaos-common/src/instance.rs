//! Running instances, found by run id: what `--stop RUN_ID` and `--cleanup` act on.
//!
//! Each live run writes `<dir>/<tool>-<run id>.json` holding its pid and the process
//! start time (field 22 of /proc/PID/stat), and removes it when it ends. The start time
//! guards against pid reuse: a file whose process is gone or whose start time differs is
//! stale and is removed, never acted on. Pids and start times only mean something in the
//! pid namespace that wrote them: the file also names that namespace, and a file written
//! in another one (a container sharing the directory) is neither acted on nor removed.
//! The directory is `$CHAOS_STATE_DIR`, else
//! `/run/chaos-tools`, else `/tmp/chaos-tools` (writable in pods whose root filesystem is
//! read-only, where /tmp is an emptyDir).

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::error::{ChaosError, Result};

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

/// Removes the instance file when the run ends.
#[derive(Debug)]
pub struct Registration {
    path: PathBuf,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn state_dirs() -> Vec<PathBuf> {
    match std::env::var_os("CHAOS_STATE_DIR") {
        Some(dir) => vec![PathBuf::from(dir)],
        None => vec![
            "/run/chaos-tools".into(),
            std::env::temp_dir().join("chaos-tools"),
        ],
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

pub fn register(tool: &str, run_id: &str) -> Result<Registration> {
    let pid = std::process::id() as i32;
    let instance = Instance {
        tool: tool.into(),
        run_id: run_id.into(),
        pid,
        start_time: process_start_time(pid)
            .ok_or_else(|| ChaosError::Precondition("cannot read /proc/self/stat".into()))?,
        pid_namespace: own_pid_namespace(),
    };
    let body = serde_json::to_vec(&instance).map_err(|e| ChaosError::fault(e.to_string()))?;
    let mut last_error = None;
    for dir in state_dirs() {
        let path = dir.join(file_name(tool, run_id));
        match fs::create_dir_all(&dir).and_then(|()| fs::write(&path, &body)) {
            Ok(()) => return Ok(Registration { path }),
            Err(e) => last_error = Some(ChaosError::io("write instance file", path, e)),
        }
    }
    Err(last_error.unwrap_or_else(|| ChaosError::Precondition("no state directory".into())))
}

/// Live instances of `tool` (all of them with `run_id` None); stale files are removed.
pub fn list(tool: &str, run_id: Option<&str>) -> Vec<Instance> {
    let mut found = Vec::new();
    for dir in state_dirs() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if let Some(instance) = read_live(&path, tool, run_id) {
                found.push(instance);
            }
        }
    }
    found
}

fn read_live(path: &Path, tool: &str, run_id: Option<&str>) -> Option<Instance> {
    let name = path.file_name()?.to_str()?;
    if !name.starts_with(&format!("{tool}-")) || !name.ends_with(".json") {
        return None;
    }
    let instance: Instance = serde_json::from_slice(&fs::read(path).ok()?).ok()?;
    if instance.tool != tool || run_id.is_some_and(|id| id != instance.run_id) {
        return None;
    }
    if instance.pid_namespace.is_some() && instance.pid_namespace != own_pid_namespace() {
        // Written in another pid namespace: its pid means another process here.
        return None;
    }
    if process_start_time(instance.pid) != Some(instance.start_time) {
        info!("removing stale instance file {}", path.display());
        let _ = fs::remove_file(path);
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
    info!(run_id = %instance.run_id, pid = instance.pid, "stopping {}", instance.tool);
    match kill(Pid::from_raw(instance.pid), Signal::SIGTERM) {
        Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
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
            warn!(
                "run {} is still reverting after {timeout:?}",
                instance.run_id
            );
            return Err(ChaosError::fault(format!(
                "{} run {} (pid {}) did not exit within {}s of SIGTERM",
                instance.tool,
                instance.run_id,
                instance.pid,
                timeout.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_time_survives_odd_command_names() {
        let stat = "1234 (a (weird) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 1 0 987654 1000 50";
        assert_eq!(parse_stat(stat), Some(("S", 987654)));
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_shares_its_own_network_namespace() {
        assert!(in_own_network_namespace(std::process::id() as i32));
        assert!(!in_own_network_namespace(i32::MAX));
    }

    #[test]
    fn own_process_has_a_start_time() {
        assert!(process_start_time(std::process::id() as i32).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
