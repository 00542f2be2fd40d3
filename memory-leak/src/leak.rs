//! The [`MemoryLeak`] fault: an allocator child grows resident memory; the parent
//! samples it at 10 Hz, notices an OOM kill, and ends the child on revert.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use chaos_common::cgroup::{self, Cgroup};
use chaos_common::report::{Criterion, rfc3339};
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::allocator::Params;
use crate::child::Child;
use crate::sizing::Sizing;
use crate::stats::{self, Sample};
use crate::watch::{self, Death};
use crate::{mib, round1, round2};

/// SIGTERM grace before SIGKILL on revert.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Configuration only: what to grow, how fast, where.
#[derive(Debug)]
pub struct MemoryLeak {
    pub sizing: Sizing,
    pub duration: Duration,
    pub watch_oom: bool,
    /// The memory cgroup the allocator is charged to; its counters are the ones read.
    pub cgroup: Cgroup,
    /// `--cgroup DIR`: the allocator joins it before allocating.
    pub join: Option<PathBuf>,
    /// Limit and usage read at prepare time, for the plan.
    pub limit_bytes: Option<u64>,
    pub usage_bytes: Option<u64>,
}

/// What apply created: the running allocator and what was seen of it.
#[derive(Debug)]
pub struct Allocation {
    child: Child,
    started: Instant,
    oom_kills_before: Option<u64>,
    samples: Vec<Sample>,
    peak_resident: u64,
    death: Option<DeathRecord>,
}

#[derive(Debug, Clone)]
struct DeathRecord {
    death: Death,
    at: SystemTime,
    after_seconds: f64,
    oom_kills_after: Option<u64>,
}

impl MemoryLeak {
    pub fn cgroup_dir(&self) -> Option<&Path> {
        self.cgroup.memory.as_ref().map(|c| c.dir.as_path())
    }

    fn sample(&self, a: &mut Allocation) {
        let Some(resident) = watch::vm_rss(a.child.pid) else {
            return;
        };
        let peak = watch::vm_hwm(a.child.pid).unwrap_or(resident);
        a.peak_resident = a.peak_resident.max(peak).max(resident);
        a.samples.push(Sample {
            t: a.started.elapsed().as_secs_f64(),
            resident,
            cgroup_usage: self.cgroup.memory_usage(),
            cpu_ticks: watch::cpu_ticks(a.child.pid),
        });
    }

    /// Whether the last sample was close enough to the limit for a SIGKILL to be the OOM
    /// killer's (used only when the oom_kill counter cannot be read).
    fn was_at_limit(&self, a: &Allocation) -> bool {
        let (Some(limit), Some(last)) = (self.limit_bytes, a.samples.last()) else {
            return false;
        };
        let slack = (self.sizing.rate_bytes_per_second * 0.2) as u64;
        last.cgroup_usage
            .unwrap_or(last.resident)
            .saturating_add(slack)
            >= limit
    }

    async fn record_death(&self, a: &mut Allocation, status: ExitStatus) -> Progress {
        let at = SystemTime::now();
        let after_seconds = a.started.elapsed().as_secs_f64();
        let mut oom_after = self.cgroup.oom_kills();
        if oom_after == a.oom_kills_before && status.signal().is_some() {
            // The counter is raised as the kill is sent; one late re-read covers a race.
            tokio::time::sleep(Duration::from_millis(100)).await;
            oom_after = self.cgroup.oom_kills();
        }
        let death = watch::classify(
            status.code(),
            status.signal(),
            (a.oom_kills_before, oom_after),
            self.was_at_limit(a),
        );
        a.death = Some(DeathRecord {
            death: death.clone(),
            at,
            after_seconds,
            oom_kills_after: oom_after,
        });
        let peak = mib(a.peak_resident);
        let counter = format!(
            "oom_kill counter {} -> {}",
            a.oom_kills_before.map_or("?".into(), |v| v.to_string()),
            oom_after.map_or("?".into(), |v| v.to_string())
        );
        match death {
            Death::OomKilled if self.watch_oom => {
                info!(
                    "allocator was OOM-killed at {peak} MiB after {after_seconds:.1} s ({counter}), as expected"
                );
                Progress::Finished("oom-killed".into())
            }
            Death::OomKilled => Progress::Failed(format!(
                "allocator was OOM-killed at {peak} MiB resident after {after_seconds:.1} s (cgroup limit {} MiB, \
                 {counter}); pass --watch-oom if that is the expected outcome",
                self.limit_bytes.map_or(0.0, mib)
            )),
            Death::Signalled(signal) => Progress::Failed(format!(
                "allocator was killed by {signal} at {peak} MiB after {after_seconds:.1} s, not by memory-leak \
                 and not by the OOM killer ({counter})"
            )),
            Death::Exited(code) => Progress::Failed(format!(
                "allocator exited with code {code} after {after_seconds:.1} s{}",
                a.child.stderr_text().await
            )),
        }
    }
}

impl Fault for MemoryLeak {
    type Handle = Allocation;

    fn plan(&self) -> Plan {
        crate::plan::plan(self)
    }

    fn preflight(&self) -> Result<()> {
        crate::plan::check_headroom(
            self.sizing.target_bytes,
            self.limit_bytes,
            cgroup::mem_available()?,
        )
    }

    fn check_access(&self) -> Result<()> {
        if let Some(dir) = &self.join {
            let procs = dir.join("cgroup.procs");
            nix::unistd::access(&procs, nix::unistd::AccessFlags::W_OK).map_err(|e| {
                ChaosError::Precondition(format!(
                    "--cgroup {}: cannot write {} ({e}); joining a cgroup needs root or a delegated cgroup",
                    dir.display(),
                    procs.display()
                ))
            })?;
        }
        Ok(())
    }

    async fn baseline(&mut self) -> Result<Value> {
        let snapshot = self.cgroup.snapshot();
        Ok(json!({
            "cgroupLimitMb": snapshot.memory_limit_bytes.map(mib),
            "cgroupUsageMb": snapshot.memory_usage_bytes.map(mib),
            "oomKills": snapshot.oom_kills,
            "memAvailableMb": cgroup::mem_available().ok().map(mib),
        }))
    }

    #[instrument(skip(self), fields(target_mb = mib(self.sizing.target_bytes)))]
    async fn apply(&mut self) -> Result<Allocation> {
        let params = Params {
            rate_bytes_per_second: self.sizing.rate_bytes_per_second,
            limit_bytes: self.sizing.target_bytes,
            parent: std::process::id() as i32,
            cgroup_procs: self.join.as_ref().map(|d| d.join("cgroup.procs")),
        };
        let oom_kills_before = self.cgroup.oom_kills();
        let child = Child::spawn(&params).await?;
        info!(pid = child.pid, "allocator started");
        let mut allocation = Allocation {
            child,
            started: Instant::now(),
            oom_kills_before,
            samples: Vec::new(),
            peak_resident: 0,
            death: None,
        };
        self.sample(&mut allocation);
        Ok(allocation)
    }

    fn observe_interval(&self) -> Duration {
        Duration::from_millis(100)
    }

    #[instrument(level = "trace", skip_all)]
    async fn observe(&mut self, a: &mut Allocation) -> Result<Progress> {
        if a.death.is_some() {
            return Ok(Progress::Running);
        }
        match a.child.try_wait()? {
            None => {
                self.sample(a);
                Ok(Progress::Running)
            }
            Some(status) => Ok(self.record_death(a, status).await),
        }
    }

    fn conclude(&mut self, a: &mut Allocation) -> Conclusion {
        let observations = crate::leak::observations(self, a);
        let oom_killed = matches!(a.death.as_ref().map(|d| &d.death), Some(Death::OomKilled));
        let criteria = if self.watch_oom {
            vec![Criterion {
                name: "oomKilled".into(),
                expected: "true".into(),
                actual: oom_killed.to_string(),
                passed: oom_killed,
            }]
        } else {
            Vec::new()
        };
        Conclusion {
            observations,
            criteria,
        }
    }

    #[instrument(skip_all, fields(pid = a.child.pid))]
    async fn revert(&mut self, mut a: Allocation) -> Result<Value> {
        let before = self.cgroup.memory_usage();
        let stopped = a.child.stop(STOP_GRACE).await?;
        let after = self.cgroup.memory_usage();
        if stopped.needed_sigkill {
            warn!("the allocator ignored SIGTERM and was killed");
        }
        info!(
            "allocator ended after {:.0} ms; cgroup usage {} -> {} MiB",
            stopped.took.as_secs_f64() * 1000.0,
            before.map_or(0.0, mib),
            after.map_or(0.0, mib)
        );
        Ok(json!({
            "alreadyExited": stopped.already_exited,
            "neededSigkill": stopped.needed_sigkill,
            "releaseMs": round1(stopped.took.as_secs_f64() * 1000.0),
            "residentAfterReleaseMb": 0.0,
            "cgroupUsageBeforeReleaseMb": before.map(mib),
            "cgroupUsageAfterReleaseMb": after.map(mib),
        }))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        vec![
            "find the allocator: pgrep -a -f 'memory-leak __allocate'".into(),
            "end it by its pid: kill -KILL <pid> (its memory is freed when it exits)".into(),
        ]
    }
}

/// The report's observations.
fn observations(leak: &MemoryLeak, a: &Allocation) -> Value {
    let s = &leak.sizing;
    let ramp = s.ramp.as_secs_f64();
    let achieved = stats::achieved_rate(&a.samples, ramp);
    let (achieved_mb, error) = stats::rate_figures(achieved, s.rate_bytes_per_second);
    let death = a.death.as_ref();
    let oom = death.filter(|d| d.death == Death::OomKilled);
    json!({
        "targetMb": mib(s.target_bytes),
        "rateMbPerSecond": round2(s.rate_mb_per_second()),
        "rampSeconds": round1(ramp),
        "peakResidentMb": mib(a.peak_resident),
        "peakCgroupUsageMb": a.samples.iter().filter_map(|x| x.cgroup_usage).max().map(mib),
        "achievedRateMbPerSecond": achieved_mb,
        "rateErrorPercent": error,
        "allocatorCpuPercent": stats::cpu_percent(&a.samples, ramp).map(round1),
        "allocatorPid": a.child.pid,
        "oomKilled": oom.is_some(),
        "oomKilledAt": oom.map(|d| rfc3339::format(d.at)),
        "oomKilledAfterSeconds": oom.map(|d| round1(d.after_seconds)),
        "oomKillsBefore": a.oom_kills_before,
        "oomKillsAfter": death.map_or_else(|| leak.cgroup.oom_kills(), |d| d.oom_kills_after),
        "allocatorEnded": death.map(|d| match &d.death {
            Death::OomKilled => "oom-killed".to_owned(),
            Death::Signalled(signal) => format!("killed by {signal}"),
            Death::Exited(code) => format!("exited with code {code}"),
        }),
        "cgroup": leak.cgroup_dir().map(|d| d.display().to_string()),
        "cgroupLimitMb": leak.limit_bytes.map(mib),
        "samples": stats::samples_json(&a.samples),
    })
}
