//! The flags: the runbook's (`--rate-mb-per-second`, `--limit-mb`) and the TypeScript
//! original's (`-m, --target-mb`, `-r, --ramp-seconds`, `--hold-seconds`, `--watch-oom`),
//! plus `--limit-percent` and `--cgroup`. All validation happens in [`Tool::prepare`],
//! before anything is touched.

use std::path::PathBuf;
use std::time::Duration;

use chaos_common::cgroup::Cgroup;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::HumanDuration;
use chaos_common::remote::{Delivery, RemoteArgs, Request};
use chaos_common::size::{parse_mib, parse_mib_rate};
use chaos_common::summary::{ReportView, Said, Style};
use chaos_common::tool::{Hidden, Prepared, Tool};
use chaos_common::{ChaosError, Result};
use clap::Parser;
use serde_json::json;
use tracing::warn;

use crate::config::{CgroupFacts, GroupKill, LeakConfig};
use crate::fault::MemoryLeak;
use crate::sizing::{self, SizingFlags};
use crate::units::{mib, round};
use crate::watch::may_lower_oom_score_adj;

/// Grow resident memory at a set rate, hold it, release it; report OOM kills.
///
/// All sizes are MiB (1 MB = 1,048,576 bytes). The memory is allocated by a child
/// process; every page is written, so it is resident. Defaults: 256 MiB over 30 s, held
/// for 60 s. Remote mode (--pod pod/X, -s SERVICE, ...) runs it inside each target
/// container, so that container's memory cgroup pays (docs/remote.md).
#[derive(Debug, Parser)]
#[command(name = "memory-leak", version, about, long_about = None, after_help = crate::help::AFTER_HELP)]
pub struct Cli {
    /// Growth rate in MiB per second: 50, 50MB/s, 1GiB/s (the ramp time follows from the
    /// target).
    #[arg(
        long,
        value_name = "MB",
        allow_negative_numbers = true,
        conflicts_with = "ramp_seconds",
        value_parser = parse_mib_rate
    )]
    pub rate_mb_per_second: Option<f64>,

    /// Stop growing at this size: a bare number is MiB; 512MB, 512MiB, 512Mi, 1GB, 1GiB
    /// (MB means MiB) [default: 256].
    #[arg(long, value_name = "MB", allow_negative_numbers = true, value_parser = parse_mib)]
    pub limit_mb: Option<u64>,

    /// Same as --limit-mb (the original's name).
    #[arg(
        short = 'm',
        long,
        value_name = "MB",
        allow_negative_numbers = true,
        conflicts_with = "limit_mb",
        value_parser = parse_mib
    )]
    pub target_mb: Option<u64>,

    /// Time to reach the target (rate = target / ramp): a bare number is seconds; 30s,
    /// 2m [default: 30].
    #[arg(short = 'r', long, value_name = "SECONDS")]
    pub ramp_seconds: Option<HumanDuration>,

    /// Time to hold the peak before release (seconds, or 30s, 2m); the run lasts ramp +
    /// hold unless -d is given [default: 60]. Long form only: -h is help.
    #[arg(long, value_name = "SECONDS")]
    pub hold_seconds: Option<HumanDuration>,

    /// Expect the allocator to be OOM-killed: an OOM kill ends the run as ok, and a run
    /// without one fails.
    #[arg(long)]
    pub watch_oom: bool,

    /// Target = this percentage (1-100) of the cgroup's memory limit; refused without a
    /// limit.
    #[arg(long, value_name = "PERCENT", allow_negative_numbers = true, conflicts_with_all = ["limit_mb", "target_mb"])]
    pub limit_percent: Option<u32>,

    /// Memory cgroup directory the allocator joins before allocating (limit, usage and
    /// OOM kills are read there) [default: the tool's own cgroup].
    #[arg(long, value_name = "DIR")]
    pub cgroup: Option<PathBuf>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

impl Cli {
    fn sizing_flags(&self) -> SizingFlags {
        SizingFlags {
            target_mb: self.limit_mb.or(self.target_mb),
            limit_percent: self.limit_percent,
            rate_mb_per_second: self.rate_mb_per_second,
            ramp: self.ramp_seconds.map(HumanDuration::as_duration),
            hold: self.hold_seconds.map(HumanDuration::as_duration),
        }
    }

    /// The cgroup the allocator is charged to: `--cgroup`, else our own.
    fn cgroup(&self) -> Result<Cgroup> {
        match &self.cgroup {
            Some(dir) => {
                let dir = std::path::absolute(dir)
                    .map_err(|e| ChaosError::bad_input(format!("--cgroup {}: {e}", dir.display())))?;
                Cgroup::memory_at(&dir)
            }
            None => Ok(Cgroup::current().unwrap_or_else(|e| {
                warn!("cannot find this process's cgroup ({e}): no limit, usage or OOM counter will be read");
                Cgroup::default()
            })),
        }
    }

    /// The run's duration: `-d` if given, else ramp + hold, within `--max-duration`.
    fn duration(&self, ramp: Duration, hold: Duration) -> Result<Duration> {
        let default = ramp + hold;
        if self.common.duration.is_none() && default > self.common.max_duration.as_duration() {
            return Err(ChaosError::bad_input(format!(
                "ramp ({:.0} s) + --hold-seconds ({:.0} s) is over the cap of {}: pass a shorter --duration \
                 or raise --max-duration",
                ramp.as_secs_f64(),
                hold.as_secs_f64(),
                self.common.max_duration
            )));
        }
        self.common.duration_or(default)
    }
}

impl Tool for Cli {
    const NAME: &'static str = "memory-leak";
    type Fault = MemoryLeak;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn summarize(report: &ReportView, style: &Style) -> Option<Said> {
        crate::summary::describe(report, style)
    }

    const ORIGINAL_SHORT_H: Option<&'static str> = Some("--hold-seconds");

    /// The allocator child: `memory-leak __allocate ...`.
    const HIDDEN: &'static [Hidden] = &[Hidden {
        name: crate::allocator::ARG,
        run: crate::allocator::main,
    }];

    fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
        crate::sweep::kill_orphans(dry_run)
    }

    /// Remote mode: memory-leak runs inside each target container, so its memory cgroup
    /// pays; with --watch-oom the pods are watched for the container's OOM kill, restart
    /// and return to Ready.
    fn remote(&self) -> Result<Option<Request>> {
        let Some(mut request) = Request::from_args(Self::NAME, &self.remote, Delivery::Exec)?
        else {
            return Ok(None);
        };
        if self.cgroup.is_some() {
            return Err(ChaosError::bad_input(
                "--cgroup names a directory on this machine; in remote mode the run uses its \
                 container's own cgroup",
            ));
        }
        // Sizing against the container's limit happens in the pod; what does not depend
        // on the limit is checked here, before any pod is touched.
        if self.limit_percent.is_none() {
            let sizing = sizing::size(&self.sizing_flags(), None)?;
            self.duration(sizing.ramp, sizing.hold)?;
        }
        request.watch_oom = self.watch_oom;
        request.destructive = self.watch_oom;
        Ok(Some(request))
    }

    fn prepare(self, _run_id: &str) -> Result<Prepared<MemoryLeak>> {
        let cgroup = self.cgroup()?;
        let limit_bytes = cgroup.memory_limit();
        let sizing = sizing::size(&self.sizing_flags(), limit_bytes)?;
        let duration = self.duration(sizing.ramp, sizing.hold)?;
        let dir = cgroup.memory.as_ref().map(|c| c.dir.clone());
        let join = self.cgroup.is_some().then(|| dir.clone()).flatten();
        let oom_group = cgroup.oom_group();
        let supervisor_in_group = match &join {
            None => true,
            Some(dir) => own_memory_dir().is_some_and(|own| own.starts_with(dir)),
        };
        let parameters = json!({
            "targetMib": mib(sizing.target_bytes),
            "rateMibPerSecond": round(sizing.rate_mb_per_second(), 2),
            "rampSeconds": round(sizing.ramp.as_secs_f64(), 1),
            "holdSeconds": round(sizing.hold.as_secs_f64(), 1),
            "durationSeconds": round(duration.as_secs_f64(), 1),
            "limitPercent": self.limit_percent,
            "watchOom": self.watch_oom,
            "cgroup": join.as_ref().map(|d| d.display().to_string()),
        });
        let config = LeakConfig {
            sizing,
            duration,
            watch_oom: self.watch_oom,
            join,
            cgroup: CgroupFacts {
                dir,
                limit_bytes,
                usage_bytes: cgroup.memory_usage(),
                high_bytes: cgroup.memory_high(),
                oom_group,
            },
            group_kill: GroupKill::decide(
                oom_group,
                supervisor_in_group,
                may_lower_oom_score_adj(),
            ),
        };
        Ok(Prepared {
            fault: MemoryLeak { config, cgroup },
            duration,
            parameters,
        })
    }
}

/// This process's own memory cgroup directory, if it can be found.
fn own_memory_dir() -> Option<std::path::PathBuf> {
    Cgroup::current().ok()?.memory.map(|c| c.dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("memory-leak").chain(args.iter().copied()))
    }

    #[test]
    fn parse_errors_are_clap_errors() {
        for args in [
            &["--rate-mb-per-second", "abc"][..],
            &["--limit-mb", "-1"],
            &["--limit-mb", "1", "--target-mb", "2"],
            &["--limit-percent", "50", "--limit-mb", "2"],
            &["--rate-mb-per-second", "5", "--ramp-seconds", "2"],
            &["--ramp-seconds", "10days"],
            &["--nope"],
        ] {
            assert!(parse(args).is_err(), "{args:?} should not parse");
        }
    }

    #[test]
    fn short_flags_of_the_original() -> std::result::Result<(), clap::Error> {
        let cli = parse(&["-m", "64", "-r", "4", "--hold-seconds", "2"])?;
        assert_eq!(cli.sizing_flags().target_mb, Some(64));
        assert_eq!(cli.sizing_flags().ramp, Some(Duration::from_secs(4)));
        assert!(
            matches!(parse(&["-h"]), Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelp)
        );
        Ok(())
    }

    #[test]
    fn the_runbook_form_is_remote_and_watches_oom() -> Result<()> {
        let cli = parse(&[
            "--namespace=lomash-wood",
            "--pod=pod/notification-service-1",
            "--rate-mb-per-second=50",
            "--limit-mb=512",
            "--watch-oom",
        ])
        .map_err(|e| ChaosError::bad_input(e.to_string()))?;
        let request = cli.remote()?.ok_or_else(|| ChaosError::fault("local"))?;
        assert!(request.watch_oom && request.destructive);
        let bad = parse(&["--pod", "p", "--rate-mb-per-second", "0"])
            .map_err(|e| ChaosError::bad_input(e.to_string()))?;
        assert!(matches!(bad.remote(), Err(ChaosError::BadInput(_))));
        let cgroup = parse(&["--pod", "p", "--cgroup", "/sys/fs/cgroup/x"])
            .map_err(|e| ChaosError::bad_input(e.to_string()))?;
        assert!(matches!(cgroup.remote(), Err(ChaosError::BadInput(_))));
        Ok(())
    }

    #[test]
    fn duration_is_ramp_plus_hold_unless_given() -> Result<()> {
        let ramp = Duration::from_secs(4);
        let hold = Duration::from_secs(2);
        let cli = parse(&[]).map_err(|e| ChaosError::bad_input(e.to_string()))?;
        assert_eq!(cli.duration(ramp, hold)?, Duration::from_secs(6));
        let cli = parse(&["-d", "10"]).map_err(|e| ChaosError::bad_input(e.to_string()))?;
        assert_eq!(cli.duration(ramp, hold)?, Duration::from_secs(10));
        let cli = parse(&[]).map_err(|e| ChaosError::bad_input(e.to_string()))?;
        assert!(matches!(
            cli.duration(Duration::from_secs(4000), hold),
            Err(ChaosError::BadInput(_))
        ));
        Ok(())
    }
}
