//! The fault: `CpuBurn` holds a CPU load in worker threads of this process.

use std::time::Duration;

use chaos_common::cgroup::{Cgroup, Snapshot};
use chaos_common::duration::HumanDuration;
use chaos_common::fault::{Conclusion, Fault, Plan, Progress};
use chaos_common::report::{Target, round};
use chaos_common::safety::SafetyRequest;
use chaos_common::{ChaosError, Result};
use serde_json::{Value, json};
use tracing::{debug, info, instrument};

use crate::load::Load;
use crate::observations::{Baseline, Observations, Seen};
use crate::watch::Sampler;
use crate::worker::Workers;

/// How long revert waits for the workers before giving up.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Configuration only: what to hold, for how long, and where (this process).
#[derive(Debug, Clone)]
pub struct CpuBurn {
    pub load: Load,
    pub duration: Duration,
    /// The cgroup this process runs in, when it could be found.
    pub cgroup: Option<Cgroup>,
    pub pid: u32,
    pub hostname: String,
}

/// What apply started: the workers, and what revert and conclude need to know.
#[derive(Debug)]
pub struct Burn {
    workers: Workers,
    sampler: Sampler,
    cgroup_at_apply: Option<Snapshot>,
}

impl CpuBurn {
    pub fn new(load: Load, duration: Duration, cgroup: Option<Cgroup>) -> CpuBurn {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_default();
        CpuBurn {
            load,
            duration,
            cgroup,
            pid: std::process::id(),
            hostname,
        }
    }

    fn snapshot(&self) -> Option<Snapshot> {
        self.cgroup.as_ref().map(Cgroup::snapshot)
    }

    /// "50.0% of one CPU each", and where the figure came from with --of-limit.
    fn describe_share(&self) -> String {
        let load = &self.load;
        let mut text = format!("{:.1}% of one CPU each", load.target_percent());
        if let (true, Some(quota)) = (load.of_limit, load.quota_cores) {
            text.push_str(&format!(
                " ({}% of the {quota:.2}-core cgroup quota)",
                load.requested_percent
            ));
        }
        text
    }
}

impl Fault for CpuBurn {
    type Handle = Burn;

    fn plan(&self) -> Plan {
        let load = &self.load;
        let duration = HumanDuration(self.duration);
        let workers = match load.workers {
            1 => "1 worker".to_owned(),
            n => format!("{n} workers"),
        };
        Plan {
            hypothesis: format!(
                "this process holds {} in {workers} ({:.2} CPU in total) for {duration}",
                self.describe_share(),
                load.total_cores()
            ),
            targets: vec![
                Target::new("process", format!("pid {} (this machine)", self.pid)).with_details(
                    json!({
                        "hostname": self.hostname,
                        "cpus": load.cpus,
                        "cgroupCpuQuotaCores": load.quota_cores,
                    }),
                ),
            ],
            steps: vec![
                format!(
                    "start {workers} holding {} for {duration}",
                    self.describe_share()
                ),
                "sample each worker's thread CPU time every 1 s".into(),
                "stop the workers and join their threads".into(),
            ],
            warnings: load.warnings(),
            safety: SafetyRequest {
                namespaces: Vec::new(),
                destructive: false,
            },
        }
    }

    async fn baseline(&mut self) -> Result<Value> {
        let baseline = Baseline::new(self.snapshot().as_ref(), load_average());
        serde_json::to_value(baseline)
            .map_err(|e| ChaosError::fault(format!("cannot record the baseline: {e}")))
    }

    #[instrument(skip_all)]
    async fn apply(&mut self) -> Result<Burn> {
        let cgroup_at_apply = self.snapshot();
        let workers = Workers::start(self.load.workers, self.load.share)?;
        info!(
            "started {} worker(s) holding {}",
            workers.count(),
            self.describe_share()
        );
        Ok(Burn {
            sampler: Sampler::new(workers.count()),
            workers,
            cgroup_at_apply,
        })
    }

    #[instrument(skip_all)]
    async fn observe(&mut self, burn: &mut Burn) -> Result<Progress> {
        if let Some(index) = burn.workers.exited_early() {
            return Ok(Progress::Failed(format!(
                "worker {index} ended before it was stopped"
            )));
        }
        let at = burn.workers.started().elapsed();
        if let Some(sample) = burn.sampler.record(at, &burn.workers.cpu_ns()) {
            debug!(
                t_ms = sample.t_ms,
                cpu_percent = sample.cpu_percent,
                "sample"
            );
        }
        Ok(Progress::Running)
    }

    fn conclude(&mut self, burn: &mut Burn) -> Conclusion {
        let now = self.snapshot();
        let observations = Observations::new(
            &self.load,
            Seen {
                cpu_ns: &burn.workers.cpu_ns(),
                wall: burn.workers.started().elapsed(),
                samples: burn.sampler.samples(),
                at_apply: burn.cgroup_at_apply.as_ref(),
                now: now.as_ref(),
            },
        );
        Conclusion {
            observations: serde_json::to_value(observations).unwrap_or(Value::Null),
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all)]
    async fn revert(&mut self, burn: Burn) -> Result<Value> {
        let mut workers = burn.workers;
        let stopped = tokio::task::spawn_blocking(move || workers.stop(STOP_TIMEOUT))
            .await
            .map_err(|e| ChaosError::fault(format!("stopping the workers failed: {e}")))??;
        let ms = stopped.as_secs_f64() * 1000.0;
        info!("workers stopped in {ms:.1} ms");
        Ok(json!({ "workersStoppedMs": round(ms, 2) }))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        // The workers are threads of this process: they cannot outlive it.
        vec![format!(
            "kill -TERM {} (then -KILL if it does not exit)",
            self.pid
        )]
    }
}

/// The 1-minute load average of the machine.
fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{Cores, resolve};

    fn burn(percent: f64, cores: Cores, of_limit: bool, quota: Option<f64>) -> Result<CpuBurn> {
        let load = resolve(percent, cores, of_limit, quota, 2)?;
        Ok(CpuBurn::new(load, Duration::from_secs(10), None))
    }

    #[test]
    fn plan_names_workers_share_and_duration() -> Result<()> {
        let plan = burn(50.0, Cores::Count(2), false, None)?.plan();
        assert_eq!(
            plan.steps[0],
            "start 2 workers holding 50.0% of one CPU each for 10s"
        );
        assert!(!plan.safety.destructive);
        assert!(plan.safety.namespaces.is_empty());
        assert_eq!(plan.targets[0].kind, "process");
        assert!(plan.targets[0].name.ends_with("(this machine)"));
        assert!(
            plan.hypothesis.contains("1.00 CPU in total"),
            "{}",
            plan.hypothesis
        );
        Ok(())
    }

    #[test]
    fn plan_with_of_limit_says_where_the_share_comes_from() -> Result<()> {
        let plan = burn(80.0, Cores::Count(1), true, Some(0.5))?.plan();
        assert_eq!(
            plan.steps[0],
            "start 1 worker holding 40.0% of one CPU each (80% of the 0.50-core cgroup quota) for 10s"
        );
        Ok(())
    }

    #[tokio::test]
    async fn alone_apply_observe_conclude_revert_holds_and_stops_the_load() -> Result<()> {
        let mut fault = burn(50.0, Cores::Count(1), false, None)?;
        let mut handle = fault.apply().await?;
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(fault.observe(&mut handle).await?, Progress::Running);
        let conclusion = fault.conclude(&mut handle);
        let obs = &conclusion.observations;
        assert_eq!(obs["workers"], 1);
        assert_eq!(obs["targetCpuPercent"], 50.0);
        assert_eq!(obs["samples"].as_array().map(Vec::len), Some(1));
        assert!(
            obs["samples"][0]["tMs"]
                .as_f64()
                .is_some_and(|t| t >= 500.0),
            "{obs}"
        );
        // The workers' own figure; tests/tests/cpu_hog.rs measures it independently.
        let achieved = obs["achievedCpuPercent"].as_f64().unwrap_or_default();
        assert!(
            (achieved - 50.0).abs() <= 3.0,
            "{achieved}% for a 50% target"
        );
        assert_eq!(obs["perWorkerCpuPercent"][0], obs["achievedCpuPercent"]);
        let details = fault.revert(handle).await?;
        assert!(details["workersStoppedMs"].as_f64().is_some());
        Ok(())
    }
}
