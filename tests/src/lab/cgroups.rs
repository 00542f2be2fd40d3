//! The cgroups of lab containers: `<hierarchy>/chaos-lab-<id>/<pod uid>/<container>`,
//! with the spec's limits, read for OOM kills, CPU and memory, and removed with every
//! process inside killed first.
//!
//! cgroup v1 (this machine: memory, cpu and cpuacct hierarchies, found from
//! /proc/self/mountinfo, co-mounted or not) and v2 (when /sys/fs/cgroup is a cgroup2
//! mount with the memory and cpu controllers enabled at its root; the lab enables them
//! in its own directories only). Limits as the kubelet writes them:
//!
//! | spec | v1 | v2 |
//! |---|---|---|
//! | limits.memory | memory.limit_in_bytes | memory.max |
//! | limits.cpu (m) | cpu.cfs_quota_us = m × 100, cpu.cfs_period_us = 100000 | cpu.max = "m×100 100000" |
//! | requests.cpu (m) | cpu.shares = max(2, m × 1024 / 1000) | cpu.weight = 1 + (shares − 2) × 9999 / 262142 |
//! | group OOM kill | (done by the kubelet, see pod.rs) | memory.oom.group = 1 |
//!
//! Where the shims (lab-init's first stage, containerd-shim's part) live: the pod's
//! cgroup on v1; on v2 a leaf below it, [`SHIM_LEAF`], because v2 refuses processes in a
//! cgroup that hands controllers to its children (the pod's, once a container cgroup
//! exists below it): a write to its `cgroup.procs` fails with EBUSY, and a shim left in
//! the container's cgroup is charged to it and dies with it when `memory.oom.group` kills
//! the group.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::lab::mountinfo::parse_mountinfo;

const CFS_PERIOD_US: u64 = 100_000;

/// The v2 leaf of a pod's cgroup that holds its shims: `_` never appears in a container
/// name (a DNS-1123 label), so it cannot collide with a container's cgroup.
pub const SHIM_LEAF: &str = "_shims";

/// The cgroup of the shims of the pod whose cgroup is `pod_rel` (see the module doc).
pub fn shim_rel(layout: &Layout, pod_rel: &Path) -> PathBuf {
    match layout {
        Layout::V1 { .. } => pod_rel.to_path_buf(),
        Layout::V2 { .. } => pod_rel.join(SHIM_LEAF),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    V1 {
        memory: PathBuf,
        cpu: PathBuf,
        cpuacct: PathBuf,
    },
    V2 {
        root: PathBuf,
    },
}

impl Layout {
    /// The host's layout, from /proc/self/mountinfo.
    pub fn detect() -> Result<Layout> {
        let text = fs::read_to_string("/proc/self/mountinfo").context("read mountinfo")?;
        Layout::from_mountinfo(&text)
    }

    pub fn from_mountinfo(text: &str) -> Result<Layout> {
        let mounts = parse_mountinfo(text);
        let v1 = |controller: &str| {
            mounts
                .iter()
                .find(|m| {
                    m.fs_type == "cgroup" && m.super_options.split(',').any(|o| o == controller)
                })
                .map(|m| m.mount_point.clone())
        };
        if let (Some(memory), Some(cpu), Some(cpuacct)) = (v1("memory"), v1("cpu"), v1("cpuacct")) {
            return Ok(Layout::V1 {
                memory,
                cpu,
                cpuacct,
            });
        }
        if let Some(m) = mounts.iter().find(|m| m.fs_type == "cgroup2") {
            let controllers =
                fs::read_to_string(m.mount_point.join("cgroup.controllers")).unwrap_or_default();
            let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
            if has("memory") && has("cpu") {
                return Ok(Layout::V2 {
                    root: m.mount_point.clone(),
                });
            }
        }
        bail!(
            "no usable cgroups: need the v1 memory, cpu and cpuacct hierarchies, or cgroup v2 with memory and cpu"
        )
    }

    /// The distinct directories for `rel` in each hierarchy.
    fn dirs(&self, rel: &Path) -> Vec<PathBuf> {
        let mut dirs = match self {
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => vec![memory.join(rel), cpu.join(rel), cpuacct.join(rel)],
            Layout::V2 { root } => vec![root.join(rel)],
        };
        dirs.dedup();
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// Limits of one container.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub cpu_limit_millis: Option<u64>,
    pub cpu_request_millis: Option<u64>,
    /// cgroup v2 `memory.oom.group`.
    pub oom_group: bool,
}

/// The files and values to write for `limits` (pure; see the table above).
pub fn limit_files(layout: &Layout, limits: &Limits) -> Vec<(&'static str, String)> {
    let shares = limits.cpu_request_millis.map(|m| (m * 1024 / 1000).max(2));
    let mut out = Vec::new();
    match layout {
        Layout::V1 { .. } => {
            if let Some(b) = limits.memory_bytes {
                out.push(("memory.limit_in_bytes", b.to_string()));
            }
            if let Some(m) = limits.cpu_limit_millis {
                out.push(("cpu.cfs_period_us", CFS_PERIOD_US.to_string()));
                out.push((
                    "cpu.cfs_quota_us",
                    (m * CFS_PERIOD_US / 1000).max(1000).to_string(),
                ));
            }
            if let Some(s) = shares {
                out.push(("cpu.shares", s.to_string()));
            }
        }
        Layout::V2 { .. } => {
            if let Some(b) = limits.memory_bytes {
                out.push(("memory.max", b.to_string()));
            }
            if let Some(m) = limits.cpu_limit_millis {
                let quota = (m * CFS_PERIOD_US / 1000).max(1000);
                out.push(("cpu.max", format!("{quota} {CFS_PERIOD_US}")));
            }
            if let Some(s) = shares {
                out.push(("cpu.weight", (1 + (s - 2) * 9999 / 262_142).to_string()));
            }
            if limits.oom_group {
                out.push(("memory.oom.group", "1".to_owned()));
            }
        }
    }
    out
}

/// One cgroup (a lab, a pod or a container) in every hierarchy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    pub layout: Layout,
    /// Relative to each hierarchy's root: `chaos-lab-l123/<pod uid>/<container>`.
    pub rel: PathBuf,
}

impl Cgroup {
    /// Creates the directories (and their parents), then writes `limits`.
    pub fn create(layout: &Layout, rel: &Path, limits: &Limits) -> Result<Cgroup> {
        let cgroup = Cgroup {
            layout: layout.clone(),
            rel: rel.to_path_buf(),
        };
        if let Layout::V2 { root } = layout {
            enable_v2_controllers(root, rel)?;
        }
        for dir in layout.dirs(rel) {
            fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        }
        for (file, value) in limit_files(layout, limits) {
            cgroup.write(file, &value)?;
        }
        Ok(cgroup)
    }

    pub fn dirs(&self) -> Vec<PathBuf> {
        self.layout.dirs(&self.rel)
    }

    /// The `cgroup.procs` file of each hierarchy (what lab-init joins).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.dirs()
            .into_iter()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// `CONTROLLER PATH` lines, as `lab.sh cgroup` prints them.
    pub fn describe(&self) -> Vec<(String, PathBuf)> {
        match &self.layout {
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => vec![
                ("memory".to_owned(), memory.join(&self.rel)),
                ("cpu".to_owned(), cpu.join(&self.rel)),
                ("cpuacct".to_owned(), cpuacct.join(&self.rel)),
            ],
            Layout::V2 { root } => vec![("unified".to_owned(), root.join(&self.rel))],
        }
    }

    fn file_for(&self, file: &str) -> PathBuf {
        let root = match &self.layout {
            Layout::V1 {
                memory,
                cpu,
                cpuacct,
            } => {
                if file.starts_with("memory.") {
                    memory
                } else if file.starts_with("cpuacct.") {
                    cpuacct
                } else {
                    cpu
                }
            }
            Layout::V2 { root } => root,
        };
        root.join(&self.rel).join(file)
    }

    fn write(&self, file: &str, value: &str) -> Result<()> {
        let path = self.file_for(file);
        fs::write(&path, value).with_context(|| format!("write {value} to {}", path.display()))
    }

    fn read(&self, file: &str) -> Result<String> {
        let path = self.file_for(file);
        fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))
    }

    /// The kernel's OOM-kill counter of this cgroup (and below).
    pub fn oom_kills(&self) -> Result<u64> {
        let (file, text) = match self.layout {
            Layout::V1 { .. } => ("memory.oom_control", self.read("memory.oom_control")?),
            Layout::V2 { .. } => ("memory.events", self.read("memory.events")?),
        };
        keyed(&text, "oom_kill").with_context(|| format!("no oom_kill counter in {file}"))
    }

    /// CPU time used so far, in nanoseconds.
    pub fn cpu_usage_ns(&self) -> Result<u64> {
        match self.layout {
            Layout::V1 { .. } => {
                let text = self.read("cpuacct.usage")?;
                text.trim().parse().context("cpuacct.usage is not a number")
            }
            Layout::V2 { .. } => {
                let text = self.read("cpu.stat")?;
                Ok(keyed(&text, "usage_usec").context("no usage_usec in cpu.stat")? * 1000)
            }
        }
    }

    /// The working set (usage minus inactive file pages), as `kubectl top` reports it.
    pub fn memory_working_set(&self) -> Result<u64> {
        let (usage, stat, inactive_key) = match self.layout {
            Layout::V1 { .. } => (
                self.read("memory.usage_in_bytes")?,
                self.read("memory.stat")?,
                "total_inactive_file",
            ),
            Layout::V2 { .. } => (
                self.read("memory.current")?,
                self.read("memory.stat")?,
                "inactive_file",
            ),
        };
        let usage: u64 = usage
            .trim()
            .parse()
            .context("memory usage is not a number")?;
        let inactive = keyed(&stat, inactive_key).unwrap_or(0);
        Ok(usage.saturating_sub(inactive))
    }

    /// Every pid in this cgroup and below (all hierarchies).
    pub fn pids(&self) -> Vec<i32> {
        let mut pids = Vec::new();
        for dir in self.dirs() {
            collect_pids(&dir, &mut pids);
        }
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// SIGKILLs every process in this cgroup and below, until none is left (at most 5 s).
    pub fn kill_all(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let pids = self.pids();
            if pids.is_empty() {
                return Ok(());
            }
            for pid in pids {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
            if Instant::now() > deadline {
                bail!("processes survive in cgroup {}", self.rel.display());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kills what is inside, then removes the directories (children first).
    pub fn remove(&self) -> Result<()> {
        self.kill_all()?;
        for dir in self.dirs() {
            remove_tree(&dir)?;
        }
        Ok(())
    }
}

fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

fn collect_pids(dir: &Path, out: &mut Vec<i32>) {
    if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
        out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    }
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                collect_pids(&entry.path(), out);
            }
        }
    }
}

/// rmdir children first; a missing directory is fine. Retries briefly: a cgroup whose
/// last process just died can be busy for a moment.
fn remove_tree(dir: &Path) -> Result<()> {
    if let Ok(entries) = fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path())?;
            }
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if Instant::now() > deadline => {
                return Err(e).with_context(|| format!("rmdir {}", dir.display()));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// cgroup v2: `+memory +cpu` in the subtree_control of every lab directory above `rel`
/// (the root's is the host's business and must already delegate them).
fn enable_v2_controllers(root: &Path, rel: &Path) -> Result<()> {
    let mut dir = root.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        fs::create_dir_all(&dir).with_context(|| format!("mkdir {}", dir.display()))?;
        let control = dir.join("cgroup.subtree_control");
        fs::write(&control, "+memory +cpu")
            .with_context(|| format!("enable memory and cpu in {}", control.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Layout {
        Layout::V1 {
            memory: "/sys/fs/cgroup/memory".into(),
            cpu: "/sys/fs/cgroup/cpu".into(),
            cpuacct: "/sys/fs/cgroup/cpuacct".into(),
        }
    }

    #[test]
    fn detects_v1_hierarchies_even_when_cpu_and_cpuacct_share_one() {
        let text = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                    32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n";
        let layout = Layout::from_mountinfo(text).unwrap();
        let Layout::V1 { cpu, cpuacct, .. } = &layout else {
            panic!("not v1: {layout:?}")
        };
        assert_eq!(cpu, cpuacct);
        assert_eq!(layout.dirs(Path::new("x")).len(), 2);
    }

    #[test]
    fn v1_limits_follow_the_kubelet() {
        let limits = Limits {
            memory_bytes: Some(512 << 20),
            cpu_limit_millis: Some(500),
            cpu_request_millis: Some(100),
            oom_group: true,
        };
        let files = limit_files(&v1(), &limits);
        assert!(files.contains(&("memory.limit_in_bytes", "536870912".into())));
        assert!(files.contains(&("cpu.cfs_quota_us", "50000".into())));
        assert!(files.contains(&("cpu.shares", "102".into())));
        assert!(!files.iter().any(|(f, _)| *f == "memory.oom.group"));
    }

    #[test]
    fn v2_limits_follow_the_kubelet() {
        let layout = Layout::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        let limits = Limits {
            memory_bytes: Some(128 << 20),
            cpu_limit_millis: Some(250),
            cpu_request_millis: Some(1000),
            oom_group: true,
        };
        let files = limit_files(&layout, &limits);
        assert!(files.contains(&("memory.max", "134217728".into())));
        assert!(files.contains(&("cpu.max", "25000 100000".into())));
        assert!(files.contains(&("cpu.weight", "39".into())));
        assert!(files.contains(&("memory.oom.group", "1".into())));
    }

    #[test]
    fn v2_shims_live_in_a_leaf_that_no_container_name_can_take() {
        let pod = Path::new("chaos-lab-l1/uid");
        assert_eq!(shim_rel(&v1(), pod), pod);
        let v2 = Layout::V2 {
            root: "/sys/fs/cgroup".into(),
        };
        let shims = shim_rel(&v2, pod);
        assert_eq!(shims, Path::new("chaos-lab-l1/uid/_shims"));
        assert_ne!(
            shims, pod,
            "v2 refuses processes in the pod's (inner) cgroup"
        );
        let is_dns_label = |s: &str| {
            s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        };
        assert!(!is_dns_label(SHIM_LEAF));
    }

    #[test]
    fn keyed_counters() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(keyed(text, "oom_kill"), Some(3));
        assert_eq!(keyed(text, "missing"), None);
    }
}
