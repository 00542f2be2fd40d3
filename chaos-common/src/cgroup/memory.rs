//! The memory controller's readers, v1 and v2: limit, usage, `memory.high`, the event
//! counters (`memory.events` on v2, `memory.oom_control` on v1) and `memory.oom.group`.
//!
//! Limits are effective limits: the smallest along the path from the cgroup up to its
//! hierarchy's mount point (a pod-level cgroup can be stricter than the container's).

use std::fs;

use super::{Cgroup, Controller, Version, parse};

/// The memory event counters of a cgroup, each None where the kernel does not count it
/// (v1 counts only `oom_kill`, and only since Linux 4.13).
///
/// On v2 they are `memory.events`, which counts the cgroup and its descendants:
/// `high` (allocations throttled above `memory.high`), `max` (allocations that hit
/// `memory.max`), `oom` (the limit was reached and reclaim failed), `oom_kill`
/// (processes the OOM killer killed) and `oom_group_kill` (times the whole group was
/// killed because `memory.oom.group` is 1; Linux 5.16 and later).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEvents {
    pub high: Option<u64>,
    pub max: Option<u64>,
    pub oom: Option<u64>,
    pub oom_kill: Option<u64>,
    pub oom_group_kill: Option<u64>,
}

impl Controller {
    /// The smallest limit in `file` from this directory up to the mount point; None
    /// when every level is unlimited or unreadable.
    fn smallest_along_path(&self, file: &str) -> Option<u64> {
        self.ancestors()
            .filter_map(|dir| fs::read_to_string(dir.join(file)).ok())
            .filter_map(|text| parse::limit_bytes(&text).flatten())
            .min()
    }
}

impl Cgroup {
    /// Effective memory limit in bytes; None when unlimited or unknown.
    pub fn memory_limit(&self) -> Option<u64> {
        let c = self.memory.as_ref()?;
        match c.version {
            Version::V1 => {
                let own = c.smallest_along_path("memory.limit_in_bytes");
                // v1 also reports the limit inherited from levels this process cannot see.
                let hierarchical = c
                    .read("memory.stat")
                    .and_then(|s| {
                        parse::flat_keyed(&s)
                            .get("hierarchical_memory_limit")
                            .copied()
                    })
                    .and_then(|v| parse::limit_bytes(&v.to_string()).flatten());
                own.into_iter().chain(hierarchical).min()
            }
            Version::V2 => c.smallest_along_path("memory.max"),
        }
    }

    /// Effective `memory.high` (v2 only): above it the kernel throttles allocations and
    /// reclaims, before the limit is reached. None when unset (`max`) or on v1.
    pub fn memory_high(&self) -> Option<u64> {
        let c = self.memory.as_ref()?;
        match c.version {
            Version::V1 => None,
            Version::V2 => c.smallest_along_path("memory.high"),
        }
    }

    /// Current usage in bytes (`memory.usage_in_bytes` / `memory.current`).
    pub fn memory_usage(&self) -> Option<u64> {
        let c = self.memory.as_ref()?;
        let file = match c.version {
            Version::V1 => "memory.usage_in_bytes",
            Version::V2 => "memory.current",
        };
        c.read(file)?.trim().parse().ok()
    }

    /// The memory event counters (see [`MemoryEvents`]); all None without a controller.
    pub fn memory_events(&self) -> MemoryEvents {
        let Some(c) = self.memory.as_ref() else {
            return MemoryEvents::default();
        };
        match c.version {
            Version::V1 => MemoryEvents {
                oom_kill: c
                    .read("memory.oom_control")
                    .and_then(|text| parse::flat_keyed(&text).get("oom_kill").copied()),
                ..MemoryEvents::default()
            },
            Version::V2 => {
                let events = c
                    .read("memory.events")
                    .map(|text| parse::flat_keyed(&text))
                    .unwrap_or_default();
                MemoryEvents {
                    high: events.get("high").copied(),
                    max: events.get("max").copied(),
                    oom: events.get("oom").copied(),
                    oom_kill: events.get("oom_kill").copied(),
                    oom_group_kill: events.get("oom_group_kill").copied(),
                }
            }
        }
    }

    /// How many times the kernel's OOM killer has acted in this cgroup.
    pub fn oom_kills(&self) -> Option<u64> {
        self.memory_events().oom_kill
    }

    /// Whether an OOM kill in this cgroup kills the whole group (v2 `memory.oom.group`
    /// set to 1 here or on an ancestor up to the mount point, as the kubelet sets it on
    /// containers): every process in it dies, except those whose `oom_score_adj` is
    /// -1000. None on v1 or when unreadable.
    pub fn oom_group(&self) -> Option<bool> {
        let c = self.memory.as_ref()?;
        if c.version == Version::V1 {
            return None;
        }
        let values: Vec<bool> = c
            .ancestors()
            .filter_map(|dir| fs::read_to_string(dir.join("memory.oom.group")).ok())
            .map(|text| text.trim() == "1")
            .collect();
        (!values.is_empty()).then(|| values.contains(&true))
    }
}
