//! Pure parsers for /proc and cgroup files, v1 and v2. Tested with fixture text.

use std::collections::HashMap;

/// v1 reports "no limit" as a huge number (PAGE_COUNTER_MAX * page size); anything at or
/// above 2^60 bytes is treated as unlimited.
const V1_UNLIMITED: u64 = 1 << 60;

/// One line of /proc/PID/cgroup: `hierarchy-id:controller,list:/path`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcCgroupLine {
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn proc_cgroup(text: &str) -> Vec<ProcCgroupLine> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            Some(ProcCgroupLine {
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: path.to_owned(),
            })
        })
        .collect()
}

/// A cgroup mount from /proc/PID/mountinfo.
#[derive(Debug, Clone, PartialEq)]
pub struct CgroupMount {
    /// The path inside the hierarchy that is mounted (not "/" inside a cgroup namespace
    /// whose mount was bind-mounted from the host).
    pub root: String,
    pub mount_point: String,
    pub v2: bool,
    /// v1 only: the controllers of this hierarchy (from the super options).
    pub controllers: Vec<String>,
}

pub fn mountinfo(text: &str) -> Vec<CgroupMount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split_whitespace().collect();
            let right: Vec<&str> = right.split_whitespace().collect();
            let fstype = *right.first()?;
            let v2 = match fstype {
                "cgroup2" => true,
                "cgroup" => false,
                _ => return None,
            };
            let controllers = if v2 {
                Vec::new()
            } else {
                right
                    .get(2)
                    .map(|opts| opts.split(',').map(str::to_owned).collect())
                    .unwrap_or_default()
            };
            Some(CgroupMount {
                root: unescape_octal((*left.get(3)?).to_owned()),
                mount_point: unescape_octal((*left.get(4)?).to_owned()),
                v2,
                controllers,
            })
        })
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \040 etc.
fn unescape_octal(s: String) -> String {
    if !s.contains('\\') {
        return s;
    }
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

/// A number, or `max` (v2 for "no limit"), or v1's huge sentinel: None means unlimited.
pub fn limit_bytes(text: &str) -> Option<Option<u64>> {
    let t = text.trim();
    if t == "max" {
        return Some(None);
    }
    let value: u64 = t.parse().ok()?;
    Some((value < V1_UNLIMITED).then_some(value))
}

/// `key value` lines (memory.stat, cpu.stat, memory.events, memory.oom_control).
pub fn flat_keyed(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key.to_owned(), value))
        })
        .collect()
}

/// CPU bandwidth limit in cores (quota / period), None when unlimited.
pub fn cpu_max_v2(text: &str) -> Option<Option<f64>> {
    let mut parts = text.split_whitespace();
    let quota = parts.next()?;
    let period: f64 = parts.next().unwrap_or("100000").parse().ok()?;
    if quota == "max" {
        return Some(None);
    }
    let quota: f64 = quota.parse().ok()?;
    // Only positive, finite numbers are limits ("nan" and "inf" parse as floats).
    (quota.is_finite() && quota > 0.0 && period.is_finite() && period > 0.0)
        .then_some(Some(quota / period))
}

pub fn cpu_quota_v1(quota_us: &str, period_us: &str) -> Option<Option<f64>> {
    let quota: i64 = quota_us.trim().parse().ok()?;
    let period: f64 = period_us.trim().parse().ok()?;
    if quota < 0 {
        return Some(None);
    }
    (period.is_finite() && period > 0.0).then_some(Some(quota as f64 / period))
}

/// MemAvailable from /proc/meminfo, in bytes.
pub fn mem_available(meminfo: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let rest = line.strip_prefix("MemAvailable:")?;
        let kb: u64 = rest.trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kb * 1024)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_PROC_CGROUP: &str =
        "9:name=systemd:/\n4:memory:/process_api/8cb7\n2:cpuacct:/\n1:cpu:/\n0::/\n";

    #[test]
    fn proc_cgroup_lists_controllers_and_paths() {
        let lines = proc_cgroup(HYBRID_PROC_CGROUP);
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[1].controllers, vec!["memory"]);
        assert_eq!(lines[1].path, "/process_api/8cb7");
        assert!(lines[4].controllers.is_empty());
        let v2 =
            proc_cgroup("0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope\n");
        assert_eq!(
            v2[0].path,
            "/kubepods.slice/kubepods-burstable.slice/cri-containerd-abc.scope"
        );
    }

    #[test]
    fn mountinfo_finds_v1_and_v2_mounts() {
        let text = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
41 23 0:38 /kubepods/pod1/c1 /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate
";
        let mounts = mountinfo(text);
        assert_eq!(mounts.len(), 4);
        assert!(mounts[0].controllers.contains(&"cpu".to_owned()));
        assert!(mounts[1].controllers.contains(&"memory".to_owned()));
        assert!(mounts[2].v2);
        assert_eq!(mounts[3].root, "/kubepods/pod1/c1");
        assert_eq!(mounts[3].mount_point, "/sys/fs/cgroup");
    }

    #[test]
    fn limits_distinguish_unlimited_from_values() {
        assert_eq!(limit_bytes("max\n"), Some(None));
        assert_eq!(limit_bytes("536870912\n"), Some(Some(536_870_912)));
        assert_eq!(limit_bytes("9223372036854771712\n"), Some(None));
        assert_eq!(limit_bytes("junk"), None);
    }

    #[test]
    fn v2_cpu_max_parses_quota_and_max() {
        assert_eq!(cpu_max_v2("50000 100000\n"), Some(Some(0.5)));
        assert_eq!(cpu_max_v2("max 100000\n"), Some(None));
        assert_eq!(cpu_max_v2("150000 100000"), Some(Some(1.5)));
        assert_eq!(cpu_max_v2(""), None);
        assert_eq!(cpu_max_v2("nan 100000"), None);
        assert_eq!(cpu_max_v2("inf 100000"), None);
        assert_eq!(cpu_max_v2("0 100000"), None);
        assert_eq!(cpu_max_v2("50000 0"), None);
    }

    #[test]
    fn v1_cpu_quota_parses_minus_one_as_unlimited() {
        assert_eq!(cpu_quota_v1("-1\n", "100000\n"), Some(None));
        assert_eq!(cpu_quota_v1("50000", "100000"), Some(Some(0.5)));
    }

    #[test]
    fn flat_keyed_reads_cpu_stat_and_events() {
        let stat =
            flat_keyed("usage_usec 123\nnr_periods 10\nnr_throttled 4\nthrottled_usec 5000\n");
        assert_eq!(stat.get("nr_throttled"), Some(&4));
        assert_eq!(stat.get("throttled_usec"), Some(&5000));
        let oom = flat_keyed("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
        assert_eq!(oom.get("oom_kill"), Some(&2));
    }

    #[test]
    fn mem_available_is_in_bytes() {
        let meminfo =
            "MemTotal:       24000000 kB\nMemFree:        1000 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(mem_available(meminfo), Some(20_000_000 * 1024));
    }
}
