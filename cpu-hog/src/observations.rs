//! The report's `baseline` and `observations` of cpu-hog, typed and documented field by
//! field (docs/cpu-hog.md, docs/report.schema.json).

use std::time::Duration;

use chaos_common::cgroup::Snapshot;
use chaos_common::report::round;
use serde::{Deserialize, Serialize};

use crate::load::Load;
use crate::watch::{Sample, delta, utilisation_percent};

const MIB: f64 = 1_048_576.0;

/// The steady state before apply: the cgroup and the machine's load.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Baseline {
    /// Effective CPU quota of this process's cgroup in cores; null when unlimited.
    pub cgroup_cpu_quota_cores: Option<f64>,
    /// The cgroup's throttling counters so far (`cpu.stat`): periods, throttled
    /// periods, and time throttled.
    pub cgroup_periods: Option<u64>,
    pub cgroup_throttled_periods: Option<u64>,
    pub cgroup_throttled_ms: Option<f64>,
    /// Effective memory limit and usage of this process's cgroup.
    pub cgroup_memory_limit_mib: Option<f64>,
    pub cgroup_memory_usage_mib: Option<f64>,
    /// The machine's 1-minute load average.
    pub load_average_1m: Option<f64>,
}

fn as_mib(bytes: u64) -> f64 {
    round(bytes as f64 / MIB, 1)
}

impl Baseline {
    pub fn new(snapshot: Option<&Snapshot>, load_average_1m: Option<f64>) -> Baseline {
        let Some(s) = snapshot else {
            return Baseline {
                load_average_1m,
                ..Baseline::default()
            };
        };
        Baseline {
            cgroup_cpu_quota_cores: s.cpu_quota_cores.map(|q| round(q, 3)),
            cgroup_periods: s.cpu_nr_periods,
            cgroup_throttled_periods: s.cpu_nr_throttled,
            cgroup_throttled_ms: s.cpu_throttled_usec.map(|us| round(us as f64 / 1000.0, 3)),
            cgroup_memory_limit_mib: s.memory_limit_bytes.map(as_mib),
            cgroup_memory_usage_mib: s.memory_usage_bytes.map(as_mib),
            load_average_1m,
        }
    }
}

/// What was measured while the load was held.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// What each worker was asked to hold, in percent of one CPU (with `--of-limit`,
    /// already converted from the quota).
    pub target_cpu_percent: f64,
    /// Mean per-worker utilisation over the run: sum of the workers' thread CPU time /
    /// (wall time x workers) x 100.
    pub achieved_cpu_percent: f64,
    /// achieved - target, in percentage points of one CPU.
    pub error_percent_points: f64,
    pub workers: usize,
    /// `--cpu-percent` and `--of-limit` as given.
    pub requested_cpu_percent: f64,
    pub of_limit: bool,
    /// Each worker's utilisation over the run, in percent of one CPU.
    pub per_worker_cpu_percent: Vec<f64>,
    /// Wall time from the first worker's start to the conclusion.
    pub observed_ms: f64,
    /// The effective CPU quota in cores; null when unlimited.
    pub cgroup_cpu_quota_cores: Option<f64>,
    /// Deltas of the cgroup's `cpu.stat` between apply and the conclusion: enforcement
    /// periods, periods in which the cgroup was throttled, and time throttled. Null
    /// when not readable.
    pub cgroup_periods: Option<u64>,
    pub cgroup_throttled_periods: Option<u64>,
    pub cgroup_throttled_ms: Option<f64>,
    /// One per second.
    pub samples: Vec<Sample>,
}

/// What the workers did, lent to [`Observations::new`].
#[derive(Debug, Clone, Copy)]
pub struct Seen<'a> {
    /// Each worker's thread CPU time, ns.
    pub cpu_ns: &'a [u64],
    pub wall: Duration,
    pub samples: &'a [Sample],
    pub at_apply: Option<&'a Snapshot>,
    pub now: Option<&'a Snapshot>,
}

impl Observations {
    pub fn new(load: &Load, seen: Seen<'_>) -> Observations {
        let achieved = utilisation_percent(seen.cpu_ns, seen.wall);
        let target = load.target_percent();
        let counter = |read: fn(&Snapshot) -> Option<u64>| {
            delta(seen.at_apply.and_then(read), seen.now.and_then(read))
        };
        Observations {
            target_cpu_percent: round(target, 3),
            achieved_cpu_percent: round(achieved, 3),
            error_percent_points: round(achieved - target, 3),
            workers: seen.cpu_ns.len(),
            requested_cpu_percent: load.requested_percent,
            of_limit: load.of_limit,
            per_worker_cpu_percent: seen
                .cpu_ns
                .iter()
                .map(|ns| round(utilisation_percent(&[*ns], seen.wall), 3))
                .collect(),
            observed_ms: round(seen.wall.as_secs_f64() * 1000.0, 1),
            cgroup_cpu_quota_cores: load.quota_cores.map(|q| round(q, 3)),
            cgroup_periods: counter(|s| s.cpu_nr_periods),
            cgroup_throttled_periods: counter(|s| s.cpu_nr_throttled),
            cgroup_throttled_ms: counter(|s| s.cpu_throttled_usec)
                .map(|us| round(us as f64 / 1000.0, 3)),
            samples: seen.samples.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Cores, resolve};

    #[test]
    fn observations_are_deltas_in_the_report_units() -> chaos_common::Result<()> {
        let load = resolve(80.0, Cores::Count(2), true, Some(1.0), 2)?;
        let before = Snapshot {
            cpu_nr_periods: Some(10),
            cpu_nr_throttled: Some(4),
            cpu_throttled_usec: Some(1_000),
            ..Snapshot::default()
        };
        let after = Snapshot {
            cpu_nr_periods: Some(40),
            cpu_nr_throttled: Some(9),
            cpu_throttled_usec: Some(251_500),
            ..Snapshot::default()
        };
        let obs = Observations::new(
            &load,
            Seen {
                cpu_ns: &[400_000_000, 420_000_000],
                wall: Duration::from_secs(1),
                samples: &[],
                at_apply: Some(&before),
                now: Some(&after),
            },
        );
        assert_eq!(obs.target_cpu_percent, 40.0);
        assert_eq!(obs.achieved_cpu_percent, 41.0);
        assert_eq!(obs.error_percent_points, 1.0);
        assert_eq!(obs.per_worker_cpu_percent, vec![40.0, 42.0]);
        assert_eq!(obs.observed_ms, 1000.0);
        assert_eq!(obs.cgroup_periods, Some(30));
        assert_eq!(obs.cgroup_throttled_periods, Some(5));
        assert_eq!(obs.cgroup_throttled_ms, Some(250.5));
        let json = serde_json::to_value(&obs)
            .map_err(|e| chaos_common::ChaosError::fault(e.to_string()))?;
        assert!(json.get("errorPercentPoints").is_some(), "{json}");
        assert!(json.get("cgroupThrottledMs").is_some(), "{json}");
        Ok(())
    }
}
