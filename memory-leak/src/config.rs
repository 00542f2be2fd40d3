//! What a run will do, decided by `cli.rs` before anything starts: plain data that the
//! fault, its plan, its rules and its observations all read, so none of them needs to
//! import the fault (`fault.rs`) to know its settings.

use std::path::PathBuf;
use std::time::Duration;

use crate::sizing::Sizing;

/// The configuration of one run.
#[derive(Debug, Clone, PartialEq)]
pub struct LeakConfig {
    pub sizing: Sizing,
    pub duration: Duration,
    /// `--watch-oom`: an OOM kill is the expected end.
    pub watch_oom: bool,
    /// `--cgroup DIR`, verified to be a memory cgroup: the allocator joins it before it
    /// allocates. None: the allocator stays in this process's cgroup.
    pub join: Option<PathBuf>,
    /// The cgroup the allocator is charged to, as read at prepare time.
    pub cgroup: CgroupFacts,
    /// What a whole-group OOM kill would do to this process.
    pub group_kill: GroupKill,
}

/// The allocator's memory cgroup as read before the run (all None without one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CgroupFacts {
    pub dir: Option<PathBuf>,
    /// Effective `memory.max` / `memory.limit_in_bytes`.
    pub limit_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
    /// Effective `memory.high` (v2): the kernel throttles growth above it.
    pub high_bytes: Option<u64>,
    /// `memory.oom.group` (v2): an OOM kill kills every process of the group.
    pub oom_group: Option<bool>,
}

/// With `memory.oom.group = 1` (what the kubelet sets on every container of a cgroup v2
/// node) the OOM killer kills the whole group, the supervisor included when it shares
/// the allocator's cgroup, and a SIGKILLed supervisor prints no report. The kernel
/// spares only processes whose `oom_score_adj` is -1000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupKill {
    /// No group kill in effect, or this process is not in the allocator's group.
    NotApplicable,
    /// This process may lower its `oom_score_adj` (CAP_SYS_RESOURCE): it sets -1000 for
    /// the run, so a group kill spares it and the report comes out; restored on revert.
    Shielded,
    /// It may not: a group kill ends this process too, with no report (its caller sees
    /// SIGKILL, exit 137, and `memory.events` counts `oom_group_kill`).
    Exposed,
}

impl GroupKill {
    /// Decides from what the cgroup says and what this process may do.
    pub fn decide(oom_group: Option<bool>, supervisor_in_group: bool, may_shield: bool) -> Self {
        match (oom_group, supervisor_in_group, may_shield) {
            (Some(true), true, true) => GroupKill::Shielded,
            (Some(true), true, false) => GroupKill::Exposed,
            _ => GroupKill::NotApplicable,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_kill_shields_only_a_supervisor_inside_the_group() {
        let table = [
            (Some(true), true, true, GroupKill::Shielded),
            (Some(true), true, false, GroupKill::Exposed),
            (Some(true), false, false, GroupKill::NotApplicable),
            (Some(false), true, false, GroupKill::NotApplicable),
            (None, true, true, GroupKill::NotApplicable),
        ];
        for (group, inside, may, expected) in table {
            assert_eq!(GroupKill::decide(group, inside, may), expected);
        }
    }
}
