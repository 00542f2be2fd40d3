//! The [`MemoryLeak`] fault: an allocator child grows resident memory; the parent
//! samples it at 10 Hz, notices an OOM kill, and ends the child on revert.

use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant, SystemTime};

use chaos_common::cgroup::{self, Cgroup, MemoryEvents};
use chaos_common::report::Criterion;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::Value;
use tracing::{info, instrument, warn};

use crate::allocator::Params;
use crate::child::Child;
use crate::config::{GroupKill, LeakConfig};
use crate::observations::{Baseline, Observations, Released, Seen};
use crate::stats::Sample;
use crate::units::{mib, round};
use crate::watch::{self, Death, DeathRecord};

/// SIGTERM grace before SIGKILL on revert.
const STOP_GRACE: Duration = Duration::from_secs(2);
/// The `oom_score_adj` the kernel's group kill spares.
const OOM_SCORE_ADJ_MIN: i32 = -1000;

/// The fault: its configuration, and the cgroup whose counters it reads.
#[derive(Debug)]
pub struct MemoryLeak {
    pub config: LeakConfig,
    /// The memory cgroup the allocator is charged to.
    pub cgroup: Cgroup,
}

/// What apply created: the running allocator and what was seen of it.
#[derive(Debug)]
pub struct Allocation {
    child: Child,
    started: Instant,
    events_before: MemoryEvents,
    samples: Vec<Sample>,
    peak_resident: u64,
    death: Option<DeathRecord>,
    /// This process's `oom_score_adj` before it shielded itself (restored on revert).
    oom_score_adj_before: Option<i32>,
}

impl MemoryLeak {
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
        let (Some(limit), Some(last)) = (self.config.cgroup.limit_bytes, a.samples.last()) else {
            return false;
        };
        let slack = (self.config.sizing.rate_bytes_per_second * 0.2) as u64;
        last.cgroup_usage
            .unwrap_or(last.resident)
            .saturating_add(slack)
            >= limit
    }

    async fn record_death(&self, a: &mut Allocation, status: ExitStatus) -> Progress {
        let at = SystemTime::now();
        let after = a.started.elapsed();
        let mut events_after = self.cgroup.memory_events();
        let before = a.events_before.oom_kill;
        if events_after.oom_kill == before && status.signal().is_some() {
            // The counter is raised as the kill is sent; one late re-read covers a race.
            tokio::time::sleep(Duration::from_millis(100)).await;
            events_after = self.cgroup.memory_events();
        }
        let death = watch::classify(
            status.code(),
            status.signal(),
            (before, events_after.oom_kill),
            self.was_at_limit(a),
        );
        a.death = Some(DeathRecord {
            death: death.clone(),
            at,
            after,
            events_after,
        });
        let peak = mib(a.peak_resident);
        let seconds = round(after.as_secs_f64(), 1);
        let counter = format!(
            "oom_kill counter {} -> {}",
            before.map_or("?".into(), |v| v.to_string()),
            events_after.oom_kill.map_or("?".into(), |v| v.to_string())
        );
        match death {
            Death::OomKilled if self.config.watch_oom => {
                info!(
                    "allocator was OOM-killed at {peak} MiB after {seconds} s ({counter}), as expected"
                );
                Progress::Finished("oom-killed".into())
            }
            Death::OomKilled => Progress::Failed(format!(
                "allocator was OOM-killed at {peak} MiB resident after {seconds} s (cgroup limit {} MiB, \
                 {counter}); pass --watch-oom if that is the expected outcome",
                self.config.cgroup.limit_bytes.map_or(0.0, mib)
            )),
            Death::Signalled(signal) => Progress::Failed(format!(
                "allocator was killed by {signal} at {peak} MiB after {seconds} s, not by memory-leak \
                 and not by the OOM killer ({counter})"
            )),
            Death::Exited(code) => Progress::Failed(format!(
                "allocator exited with code {code} after {seconds} s{}",
                a.child.stderr_text().await
            )),
        }
    }
}

impl Fault for MemoryLeak {
    type Handle = Allocation;

    fn plan(&self) -> Plan {
        crate::plan::plan(&self.config)
    }

    fn preflight(&self) -> Result<()> {
        crate::rules::check_headroom(
            self.config.sizing.target_bytes,
            self.config.cgroup.limit_bytes,
            cgroup::mem_available()?,
        )
    }

    fn check_access(&self) -> Result<()> {
        if let Some(dir) = &self.config.join {
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
        let baseline = Baseline::new(&self.cgroup.snapshot(), cgroup::mem_available().ok());
        serde_json::to_value(baseline)
            .map_err(|e| ChaosError::fault(format!("cannot record the baseline: {e}")))
    }

    #[instrument(skip_all)]
    async fn apply(&mut self) -> Result<Allocation> {
        let params = Params {
            rate_bytes_per_second: self.config.sizing.rate_bytes_per_second,
            limit_bytes: self.config.sizing.target_bytes,
            parent: std::process::id() as i32,
            parent_start: chaos_common::instance::process_start_time(std::process::id() as i32)
                .ok_or_else(|| {
                    ChaosError::fault("cannot read this process's start time in /proc/self/stat")
                })?,
            cgroup_procs: self.config.join.as_ref().map(|d| d.join("cgroup.procs")),
        };
        let events_before = self.cgroup.memory_events();
        let mut child = Child::spawn(&params).await?;
        info!("allocator started (pid {})", child.pid);
        // After the child is ready (it has already raised its own score to 1000), so
        // it never inherits -1000, which would make it unkillable.
        let oom_score_adj_before = match self.config.group_kill {
            GroupKill::Shielded => {
                match crate::shield::lower_own_oom_score_adj(OOM_SCORE_ADJ_MIN) {
                    Ok(before) => Some(before),
                    Err(e) => {
                        let _ = child.stop(STOP_GRACE).await;
                        return Err(e);
                    }
                }
            }
            GroupKill::NotApplicable | GroupKill::Exposed => None,
        };
        let mut allocation = Allocation {
            child,
            started: Instant::now(),
            events_before,
            samples: Vec::new(),
            peak_resident: 0,
            death: None,
            oom_score_adj_before,
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
        let observations = Observations::new(
            &self.config,
            Seen {
                samples: &a.samples,
                peak_resident: a.peak_resident,
                allocator_pid: a.child.pid,
                death: a.death.as_ref(),
                events_before: a.events_before,
                events_now: self.cgroup.memory_events(),
            },
        );
        let criteria = if self.config.watch_oom {
            vec![Criterion {
                name: "oomKilled".into(),
                expected: "true".into(),
                actual: observations.oom_killed.to_string(),
                passed: observations.oom_killed,
            }]
        } else {
            Vec::new()
        };
        Conclusion {
            observations: serde_json::to_value(observations).unwrap_or(Value::Null),
            criteria,
        }
    }

    #[instrument(skip_all)]
    async fn revert(&mut self, mut a: Allocation) -> Result<Value> {
        let before = self.cgroup.memory_usage();
        let stopped = a.child.stop(STOP_GRACE).await;
        let after = self.cgroup.memory_usage();
        // Put the score back whatever happened to the child.
        let restored = match a.oom_score_adj_before {
            Some(value) => Some(crate::shield::restore_own_oom_score_adj(value).map(|()| value)?),
            None => None,
        };
        let stopped = stopped?;
        if stopped.needed_sigkill {
            warn!("the allocator ignored SIGTERM and was killed");
        }
        info!(
            "allocator ended after {:.0} ms; cgroup usage {} -> {} MiB",
            stopped.took.as_secs_f64() * 1000.0,
            before.map_or(0.0, mib),
            after.map_or(0.0, mib)
        );
        let released = Released {
            already_exited: stopped.already_exited,
            needed_sigkill: stopped.needed_sigkill,
            release_ms: round(stopped.took.as_secs_f64() * 1000.0, 1),
            resident_after_release_mib: 0.0,
            cgroup_usage_before_release_mib: before.map(mib),
            cgroup_usage_after_release_mib: after.map(mib),
            oom_score_adj_restored: restored,
        };
        serde_json::to_value(released)
            .map_err(|e| ChaosError::fault(format!("cannot record the release: {e}")))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        vec![
            "find the allocator: pgrep -a -f 'memory-leak __allocate'".into(),
            "end it by its pid: kill -KILL <pid> (its memory is freed when it exits)".into(),
        ]
    }
}
