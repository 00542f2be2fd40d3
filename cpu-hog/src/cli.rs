//! The command line: cpu-hog's own flags plus the shared ones, and their validation
//! into a [`CpuBurn`]. Every check happens here, before anything is started.

use std::time::Duration;

use chaos_common::cgroup::Cgroup;
use chaos_common::cli::CommonArgs;
use chaos_common::remote::{Delivery, RemoteArgs, Request};
use chaos_common::report::round;
use chaos_common::summary::{ReportView, Said, Style};
use chaos_common::tool::{Prepared, Tool};
use chaos_common::{ChaosError, Result};
use clap::Parser;
use serde_json::json;

use crate::fault::CpuBurn;
use crate::load::{self, Cores, parse_cores, parse_percent};

const DEFAULT_DURATION: Duration = Duration::from_secs(60);

/// Holds a precise CPU load in this process: each worker thread keeps its own CPU time
/// at the requested share of one CPU with a feedback loop, then stops.
#[derive(Debug, Parser)]
#[command(name = "cpu-hog", version, after_help = crate::help::AFTER_HELP)]
pub struct Cli {
    /// Load each worker holds, in percent of one CPU (1-100, fractions allowed); with
    /// --of-limit, in percent of the cgroup's CPU quota.
    #[arg(
        short = 'c',
        long,
        default_value = "80",
        value_parser = parse_percent,
        value_name = "PERCENT",
        allow_negative_numbers = true
    )]
    pub cpu_percent: f64,

    /// Worker threads: a number, or 0 / all for as many as the cgroup's CPU quota allows
    /// (rounded up), else one per CPU this process may run on.
    #[arg(
        short = 'k',
        long,
        default_value = "1",
        value_parser = parse_cores,
        value_name = "N|all",
        allow_negative_numbers = true
    )]
    pub cores: Cores,

    /// Take --cpu-percent of the cgroup's CPU quota instead of whole CPUs, split evenly
    /// across the workers (quota 0.5 core, -c 80, 1 worker: the worker holds 40%).
    /// Refused when the cgroup has no quota.
    #[arg(long)]
    pub of_limit: bool,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// CPUs in this process's affinity mask. Not `std::thread::available_parallelism`,
/// which also divides the cgroup's CPU quota rounding down (1 for a 1.5-core quota), so
/// `-k all` would get one worker where the quota needs two.
fn available_cpus() -> usize {
    use nix::sched::{CpuSet, sched_getaffinity};
    use nix::unistd::Pid;
    match sched_getaffinity(Pid::from_raw(0)) {
        Ok(set) => (0..CpuSet::count())
            .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
            .count()
            .max(1),
        Err(_) => std::thread::available_parallelism().map_or(1, usize::from),
    }
}

impl Tool for Cli {
    const NAME: &'static str = "cpu-hog";
    type Fault = CpuBurn;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn summarize(report: &ReportView, style: &Style) -> Option<Said> {
        crate::summary::describe(report, style)
    }

    fn prepare(self, _run_id: &str) -> Result<Prepared<CpuBurn>> {
        let duration = self.common.duration_or(DEFAULT_DURATION)?;
        let cgroup = Cgroup::current().ok();
        let quota = cgroup.as_ref().and_then(Cgroup::cpu_quota_cores);
        let load = load::resolve(
            self.cpu_percent,
            self.cores,
            self.of_limit,
            quota,
            available_cpus(),
        )?;
        if !load.share.is_finite() || load.share <= 0.0 {
            return Err(ChaosError::bad_input(
                "--cpu-percent gives no load for these --cores",
            ));
        }
        let parameters = json!({
            "cpuPercent": self.cpu_percent,
            "cores": self.cores.to_string(),
            "ofLimit": self.of_limit,
            "workers": load.workers,
            "targetCpuPercent": round(load.target_percent(), 3),
            "durationSeconds": duration.as_secs_f64(),
        });
        Ok(Prepared {
            fault: CpuBurn::new(load, duration, cgroup),
            duration,
            parameters,
        })
    }

    /// Remote mode: cpu-hog runs inside each target container, so its cgroup pays.
    fn remote(&self) -> Result<Option<Request>> {
        let request = Request::from_args(Self::NAME, &self.remote, Delivery::Exec)?;
        if request.is_some() {
            // The load itself depends on the container's quota: the pod's run checks it.
            self.common.duration_or(DEFAULT_DURATION)?;
        }
        Ok(request)
    }

    /// The workers are threads: nothing of a run outlives its process, so there is no
    /// leftover to remove. `--cleanup` still stops every running instance (tool::main
    /// does that before calling this).
    fn cleanup_leftovers(_dry_run: bool) -> Result<Vec<String>> {
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("cpu-hog").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_the_originals() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&[])?;
        assert_eq!(cli.cpu_percent, 80.0);
        assert_eq!(cli.cores, Cores::Count(1));
        assert!(!cli.of_limit);
        assert_eq!(
            cli.common.duration_or(DEFAULT_DURATION)?,
            Duration::from_secs(60)
        );
        Ok(())
    }

    #[test]
    fn flags_parse() -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&["-c", "12.5", "-k", "all", "--of-limit", "-d", "2m"])?;
        assert_eq!(cli.cpu_percent, 12.5);
        assert_eq!(cli.cores, Cores::All);
        assert!(cli.of_limit);
        let cli = parse(&["--cpu-percent=50", "--cores=2", "--duration=10"])?;
        assert_eq!((cli.cpu_percent, cli.cores), (50.0, Cores::Count(2)));
        Ok(())
    }

    #[test]
    fn bad_values_are_rejected() {
        for args in [
            &["-c", "0"][..],
            &["-c", "101"],
            &["-c", "abc"],
            &["-c", "-5"],
            &["-k", "-1"],
            &["-k", "x"],
            &["-d", "10days"],
            &["--max-pods", "0"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn remote_flags_select_remote_mode_and_local_mode_refuses_them()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let cli = parse(&[
            "--pod=pod/product-service-1",
            "-c",
            "80",
            "--of-limit",
            "-d",
            "180",
        ])?;
        let request = cli.remote()?.ok_or("no remote request")?;
        assert_eq!(request.delivery, Delivery::Exec);
        assert!(parse(&["-c", "50"])?.remote()?.is_none());
        assert!(parse(&["-n", "lomash-wood"])?.remote().is_err());
        assert!(
            parse(&["-s", "product-service", "-d", "0"])?
                .remote()
                .is_err()
        );
        assert!(parse(&["--pod", "x", "-s", "y"])?.remote().is_err());
        Ok(())
    }

    #[test]
    fn zero_and_over_cap_durations_are_bad_input()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        for args in [&["-d", "0"][..], &["-d", "2h"]] {
            match parse(args)?.prepare("test") {
                Err(e) => assert!(matches!(e, ChaosError::BadInput(_)), "{e}"),
                Ok(_) => panic!("{args:?} was accepted"),
            }
        }
        Ok(())
    }
}
