//! The report's `baseline`, `observations` and `revert.details` of memory-leak, typed
//! and documented field by field (docs/memory-leak.md, docs/report.schema.json).
//! Built from the run's configuration and what the supervisor saw, nothing else.

use chaos_common::cgroup::{MemoryEvents, Snapshot};
use chaos_common::report::rfc3339;
use serde::{Deserialize, Serialize};

use crate::config::{GroupKill, LeakConfig};
use crate::stats::{self, Sample};
use crate::units::{mib, round};
use crate::watch::{Death, DeathRecord};

/// The steady state before apply.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    /// Effective memory limit of the allocator's cgroup; null when unlimited.
    pub cgroup_limit_mib: Option<f64>,
    /// Its usage before the run (in a pod: the application's own memory).
    pub cgroup_usage_mib: Option<f64>,
    /// Effective `memory.high` (cgroup v2); null when unset or on v1.
    pub cgroup_memory_high_mib: Option<f64>,
    /// `memory.oom.group` along the path (v2); null on v1.
    pub oom_group: Option<bool>,
    /// The cgroup's OOM-kill counter before the run.
    pub oom_kills: Option<u64>,
    /// MemAvailable of the machine.
    pub mem_available_mib: Option<f64>,
}

impl Baseline {
    pub fn new(snapshot: &Snapshot, mem_available: Option<u64>) -> Baseline {
        Baseline {
            cgroup_limit_mib: snapshot.memory_limit_bytes.map(mib),
            cgroup_usage_mib: snapshot.memory_usage_bytes.map(mib),
            cgroup_memory_high_mib: snapshot.memory_high_bytes.map(mib),
            oom_group: snapshot.oom_group,
            oom_kills: snapshot.oom_kills,
            mem_available_mib: mem_available.map(mib),
        }
    }
}

/// One sample of the report, about one per second.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SampleOut {
    /// Milliseconds since apply completed (the allocator said it was ready).
    pub t_ms: f64,
    /// The allocator's VmRSS.
    pub resident_mib: f64,
    /// The cgroup's usage (`memory.current` / `memory.usage_in_bytes`).
    pub cgroup_usage_mib: Option<f64>,
}

/// What the supervisor saw of the run, lent to [`Observations::new`].
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    pub samples: &'a [Sample],
    pub peak_resident: u64,
    pub allocator_pid: i32,
    pub death: Option<&'a DeathRecord>,
    pub events_before: MemoryEvents,
    /// The counters now (used when the allocator did not die).
    pub events_now: MemoryEvents,
}

/// What was measured while the fault was in place.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// What was asked: target, rate, and the ramp time that follows from them.
    pub target_mib: f64,
    pub rate_mib_per_second: f64,
    pub ramp_seconds: f64,
    /// Highest resident memory of the allocator (VmHWM/VmRSS, 10 Hz), its binary included.
    pub peak_resident_mib: f64,
    /// Highest usage of the cgroup (everything in it).
    pub peak_cgroup_usage_mib: Option<f64>,
    /// Least-squares slope of the allocator's resident memory over the ramp; null when
    /// the ramp window holds under half a second of samples.
    pub achieved_rate_mib_per_second: Option<f64>,
    /// (achieved - requested) / requested x 100.
    pub rate_error_percent: Option<f64>,
    /// The allocator's CPU time while growing, in percent of one core.
    pub allocator_cpu_percent: Option<f64>,
    pub allocator_pid: i32,
    /// Whether, when and how long after apply the kernel OOM-killed the allocator.
    pub oom_killed: bool,
    pub oom_killed_at: Option<String>,
    pub oom_killed_after_ms: Option<f64>,
    /// The cgroup's `oom_kill` counter before apply and after the death (or at the end).
    pub oom_kills_before: Option<u64>,
    pub oom_kills_after: Option<u64>,
    /// `memory.oom.group` in effect (v2; null on v1).
    pub oom_group: Option<bool>,
    /// The whole group was killed (`oom_group_kill` rose; v2, Linux 5.16+).
    pub oom_group_killed: bool,
    /// Whether this process lowered its `oom_score_adj` to -1000 to outlive a group kill.
    pub shielded_from_group_kill: bool,
    /// Effective `memory.high` (v2), and how many times the kernel throttled allocations
    /// above it during the run (`memory.events` `high`); null where not counted.
    pub cgroup_memory_high_mib: Option<f64>,
    pub memory_high_events: Option<u64>,
    /// `oom-killed`, `killed by SIGx` or `exited with code N` if it died during the run.
    pub allocator_ended: Option<String>,
    /// The cgroup the allocator was charged to, and its limit (null when unlimited).
    pub cgroup: Option<String>,
    pub cgroup_limit_mib: Option<f64>,
    pub samples: Vec<SampleOut>,
}

fn delta(before: Option<u64>, after: Option<u64>) -> Option<u64> {
    Some(after?.saturating_sub(before?))
}

impl Observations {
    pub fn new(config: &LeakConfig, seen: Seen<'_>) -> Observations {
        let s = &config.sizing;
        let ramp = s.ramp.as_secs_f64();
        let achieved = stats::achieved_rate(seen.samples, ramp);
        let (achieved_mib, error) = stats::rate_figures(achieved, s.rate_bytes_per_second);
        let oom = seen.death.filter(|d| d.death == Death::OomKilled);
        let after = seen.death.map_or(seen.events_now, |d| d.events_after);
        let before = seen.events_before;
        Observations {
            target_mib: mib(s.target_bytes),
            rate_mib_per_second: round(s.rate_mb_per_second(), 2),
            ramp_seconds: round(ramp, 1),
            peak_resident_mib: mib(seen.peak_resident),
            peak_cgroup_usage_mib: seen
                .samples
                .iter()
                .filter_map(|x| x.cgroup_usage)
                .max()
                .map(mib),
            achieved_rate_mib_per_second: achieved_mib,
            rate_error_percent: error,
            allocator_cpu_percent: stats::cpu_percent(seen.samples, ramp).map(|p| round(p, 1)),
            allocator_pid: seen.allocator_pid,
            oom_killed: oom.is_some(),
            oom_killed_at: oom.map(|d| rfc3339::format(d.at)),
            oom_killed_after_ms: oom.map(|d| round(d.after.as_secs_f64() * 1000.0, 1)),
            oom_kills_before: before.oom_kill,
            oom_kills_after: after.oom_kill,
            oom_group: config.cgroup.oom_group,
            oom_group_killed: delta(before.oom_group_kill, after.oom_group_kill)
                .is_some_and(|d| d > 0),
            shielded_from_group_kill: config.group_kill == GroupKill::Shielded,
            cgroup_memory_high_mib: config.cgroup.high_bytes.map(mib),
            memory_high_events: delta(before.high, after.high),
            allocator_ended: seen.death.map(|d| match &d.death {
                Death::OomKilled => "oom-killed".to_owned(),
                Death::Signalled(signal) => format!("killed by {signal}"),
                Death::Exited(code) => format!("exited with code {code}"),
            }),
            cgroup: config.cgroup.dir.as_ref().map(|d| d.display().to_string()),
            cgroup_limit_mib: config.cgroup.limit_bytes.map(mib),
            samples: stats::downsample(seen.samples, 1.0)
                .iter()
                .map(|x| SampleOut {
                    t_ms: round(x.t * 1000.0, 0),
                    resident_mib: mib(x.resident),
                    cgroup_usage_mib: x.cgroup_usage.map(mib),
                })
                .collect(),
        }
    }
}

/// `revert.details`: how the memory was released.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Released {
    /// The allocator had already exited (e.g. OOM-killed): nothing was signalled.
    pub already_exited: bool,
    /// It ignored SIGTERM for 2 s and was SIGKILLed.
    pub needed_sigkill: bool,
    /// From the first signal until it was reaped, i.e. its memory freed.
    pub release_ms: f64,
    /// Always 0: the allocator is gone.
    pub resident_after_release_mib: f64,
    pub cgroup_usage_before_release_mib: Option<f64>,
    pub cgroup_usage_after_release_mib: Option<f64>,
    /// The `oom_score_adj` this process had before the run, put back (shielded runs).
    pub oom_score_adj_restored: Option<i32>,
}
