//! Readers for the cgroup a process runs in, v1 and v2: memory limit, usage,
//! `memory.high`, event counters and `memory.oom.group` (in `memory.rs`), CPU quota and
//! throttling counters; and the verification of a cgroup directory the operator names
//! (in `place.rs`).
//!
//! The controller directories are found from /proc/PID/cgroup and /proc/PID/mountinfo,
//! which also works inside a cgroup namespace (a container sees its own cgroup as "/").
//! Limits are effective limits: the smallest along the path up to the mount point, since
//! a pod-level cgroup can be stricter than the container's.

pub mod memory;
pub mod parse;
mod place;

pub use memory::MemoryEvents;

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{ChaosError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Version {
    V1,
    V2,
}

/// One controller's directory for a process.
#[derive(Debug, Clone, PartialEq)]
pub struct Controller {
    pub version: Version,
    pub dir: PathBuf,
    /// The hierarchy's mount point: limits are searched from `dir` up to here.
    pub mount_point: PathBuf,
}

impl Controller {
    fn read(&self, file: &str) -> Option<String> {
        fs::read_to_string(self.dir.join(file)).ok()
    }

    /// `dir`, then each parent up to and including the mount point.
    fn ancestors(&self) -> impl Iterator<Item = &Path> {
        self.dir
            .ancestors()
            .take_while(move |p| p.starts_with(&self.mount_point))
    }
}

/// The memory and CPU controllers of one process (either may be absent).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Cgroup {
    pub memory: Option<Controller>,
    pub cpu: Option<Controller>,
}

/// Everything the tools report about a cgroup at one instant.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Snapshot {
    pub memory_limit_bytes: Option<u64>,
    pub memory_usage_bytes: Option<u64>,
    pub oom_kills: Option<u64>,
    /// v2 only: the effective `memory.high`, and how often allocations were throttled
    /// above it (`memory.events` `high`).
    pub memory_high_bytes: Option<u64>,
    pub memory_high_events: Option<u64>,
    /// v2 only: `memory.oom.group` along the path, and whole-group OOM kills.
    pub oom_group: Option<bool>,
    pub oom_group_kills: Option<u64>,
    pub cpu_quota_cores: Option<f64>,
    pub cpu_nr_periods: Option<u64>,
    pub cpu_nr_throttled: Option<u64>,
    pub cpu_throttled_usec: Option<u64>,
}

impl Cgroup {
    /// The cgroup of the calling process.
    pub fn current() -> Result<Cgroup> {
        Cgroup::of_pid_files(
            Path::new("/proc/self/cgroup"),
            Path::new("/proc/self/mountinfo"),
        )
    }

    fn of_pid_files(cgroup_file: &Path, mountinfo_file: &Path) -> Result<Cgroup> {
        let cgroups =
            fs::read_to_string(cgroup_file).map_err(|e| ChaosError::io("read", cgroup_file, e))?;
        let mounts = fs::read_to_string(mountinfo_file)
            .map_err(|e| ChaosError::io("read", mountinfo_file, e))?;
        Ok(Cgroup::resolve(
            &parse::proc_cgroup(&cgroups),
            &parse::mountinfo(&mounts),
        ))
    }

    /// Pure resolution of controller directories; v1 wins where a controller is bound to
    /// a v1 hierarchy (hybrid hosts like this one), v2 otherwise.
    pub fn resolve(lines: &[parse::ProcCgroupLine], mounts: &[parse::CgroupMount]) -> Cgroup {
        let find = |controller: &str, v2_probe: &str| -> Option<Controller> {
            let v1 = lines
                .iter()
                .find(|l| l.controllers.iter().any(|c| c == controller))
                .and_then(|line| {
                    let mount = mounts
                        .iter()
                        .find(|m| !m.v2 && m.controllers.iter().any(|c| c == controller))?;
                    Some(controller_at(Version::V1, mount, &line.path))
                });
            v1.or_else(|| {
                let line = lines.iter().find(|l| l.controllers.is_empty())?;
                let mount = mounts.iter().find(|m| m.v2)?;
                let c = controller_at(Version::V2, mount, &line.path);
                c.dir.join(v2_probe).exists().then_some(c)
            })
        };
        Cgroup {
            memory: find("memory", "memory.max"),
            cpu: find("cpu", "cpu.max"),
        }
    }

    /// Effective CPU bandwidth limit in cores (0.5 for a 500m limit); None if unlimited.
    pub fn cpu_quota_cores(&self) -> Option<f64> {
        let c = self.cpu.as_ref()?;
        c.ancestors()
            .filter_map(|dir| match c.version {
                Version::V1 => {
                    let quota = fs::read_to_string(dir.join("cpu.cfs_quota_us")).ok()?;
                    let period = fs::read_to_string(dir.join("cpu.cfs_period_us")).ok()?;
                    parse::cpu_quota_v1(&quota, &period).flatten()
                }
                Version::V2 => {
                    parse::cpu_max_v2(&fs::read_to_string(dir.join("cpu.max")).ok()?).flatten()
                }
            })
            .min_by(f64::total_cmp)
    }

    pub fn snapshot(&self) -> Snapshot {
        let cpu_stat = self
            .cpu
            .as_ref()
            .and_then(|c| c.read("cpu.stat"))
            .map(|s| parse::flat_keyed(&s))
            .unwrap_or_default();
        let throttled_usec = cpu_stat
            .get("throttled_usec")
            .copied()
            .or_else(|| cpu_stat.get("throttled_time").map(|ns| ns / 1000));
        let events = self.memory_events();
        Snapshot {
            memory_limit_bytes: self.memory_limit(),
            memory_usage_bytes: self.memory_usage(),
            oom_kills: events.oom_kill,
            memory_high_bytes: self.memory_high(),
            memory_high_events: events.high,
            oom_group: self.oom_group(),
            oom_group_kills: events.oom_group_kill,
            cpu_quota_cores: self.cpu_quota_cores(),
            cpu_nr_periods: cpu_stat.get("nr_periods").copied(),
            cpu_nr_throttled: cpu_stat.get("nr_throttled").copied(),
            cpu_throttled_usec: throttled_usec,
        }
    }
}

fn controller_at(version: Version, mount: &parse::CgroupMount, path: &str) -> Controller {
    // Inside a cgroup namespace, or when the host bind-mounts a sub-hierarchy, the mount's
    // root is a prefix of the path /proc reports; strip it.
    let relative = path
        .strip_prefix(mount.root.as_str())
        .unwrap_or(path)
        .trim_start_matches('/');
    let mount_point = PathBuf::from(&mount.mount_point);
    Controller {
        version,
        dir: mount_point.join(relative),
        mount_point,
    }
}

/// MemAvailable of the machine, in bytes.
pub fn mem_available() -> Result<u64> {
    let text = fs::read_to_string("/proc/meminfo")
        .map_err(|e| ChaosError::io("read", "/proc/meminfo", e))?;
    parse::mem_available(&text)
        .ok_or_else(|| ChaosError::Precondition("/proc/meminfo has no MemAvailable".into()))
}

#[cfg(test)]
mod tests;
