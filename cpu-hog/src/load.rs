//! The load to hold, resolved from the flags and what the machine allows: how many
//! workers, and which fraction of one CPU each of them holds. Pure, so every rule is a
//! table test.

use std::fmt;

use chaos_common::{ChaosError, Result};

/// Most workers accepted by `--cores` (each is a thread).
pub const MAX_WORKERS: u32 = 1024;

/// The `--cores` value: a count, or `all` (also `0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cores {
    All,
    Count(u32),
}

impl fmt::Display for Cores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cores::All => f.write_str("all"),
            Cores::Count(n) => write!(f, "{n}"),
        }
    }
}

/// clap value parser for `--cores`.
pub fn parse_cores(text: &str) -> std::result::Result<Cores, String> {
    let text = text.trim();
    if text.eq_ignore_ascii_case("all") {
        return Ok(Cores::All);
    }
    match text.parse::<u32>() {
        Ok(0) => Ok(Cores::All),
        Ok(n) if n <= MAX_WORKERS => Ok(Cores::Count(n)),
        Ok(_) => Err(format!("at most {MAX_WORKERS} workers")),
        Err(_) => Err("expected a number of workers, 0 or 'all'".into()),
    }
}

/// clap value parser for `--cpu-percent`: 1 to 100, fractions allowed.
pub fn parse_percent(text: &str) -> std::result::Result<f64, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| "expected a percentage from 1 to 100, e.g. 80 or 12.5".to_owned())?;
    if !(1.0..=100.0).contains(&value) {
        return Err("must be from 1 to 100".into());
    }
    Ok(value)
}

/// What the workers hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub workers: usize,
    /// Fraction of one CPU each worker holds, in (0, 1].
    pub share: f64,
    /// `--cpu-percent` as given.
    pub requested_percent: f64,
    pub of_limit: bool,
    /// The cgroup's CPU quota in cores, None when unlimited or unreadable.
    pub quota_cores: Option<f64>,
    /// CPUs this process may run on (affinity mask).
    pub cpus: usize,
}

impl Load {
    /// Per-worker target in percent of one CPU (the unit of `achievedCpuPercent`).
    pub fn target_percent(&self) -> f64 {
        self.share * 100.0
    }

    /// Total CPU the workers hold together, in cores.
    pub fn total_cores(&self) -> f64 {
        self.share * self.workers as f64
    }

    /// Things the operator should know: the load cannot be held as asked.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        if self.workers > self.cpus {
            warnings.push(format!(
                "{} workers on {} CPU(s): they compete with each other and may not reach their share",
                self.workers, self.cpus
            ));
        }
        if let Some(quota) = self.quota_cores {
            if !self.of_limit && self.total_cores() > quota + 1e-9 {
                warnings.push(format!(
                    "the cgroup's CPU quota is {quota:.2} cores, below the {:.2} cores asked for: \
                     the workers will be throttled and hold less (--of-limit takes the percentage \
                     of the quota instead)",
                    self.total_cores()
                ));
            }
        }
        warnings
    }
}

/// Resolves workers and share; bad combinations are bad input naming the flag.
pub fn resolve(
    cpu_percent: f64,
    cores: Cores,
    of_limit: bool,
    quota_cores: Option<f64>,
    cpus: usize,
) -> Result<Load> {
    let cpus = cpus.max(1);
    let workers = match cores {
        Cores::Count(n) => n as usize,
        // A quota of 1.5 cores needs two workers to be used; more workers than CPUs in the
        // affinity mask would only compete with each other.
        Cores::All => quota_cores
            .map(|q| (q.ceil() as usize).clamp(1, cpus))
            .unwrap_or(cpus),
    };
    let share = if of_limit {
        let quota = quota_cores.ok_or_else(|| {
            ChaosError::bad_input(
                "--of-limit needs a CPU quota on this process's cgroup and there is none \
                 (cpu.cfs_quota_us is -1 or cpu.max is 'max'); drop --of-limit to take \
                 --cpu-percent of whole CPUs",
            )
        })?;
        let share = cpu_percent / 100.0 * quota / workers as f64;
        if share > 1.0 + 1e-9 {
            return Err(ChaosError::bad_input(format!(
                "--of-limit: {cpu_percent}% of the {quota:.2}-core quota split across {workers} \
                 worker(s) is {:.1}% of one CPU each, over 100%; raise --cores",
                share * 100.0
            )));
        }
        share.min(1.0)
    } else {
        cpu_percent / 100.0
    };
    Ok(Load {
        workers,
        share,
        requested_percent: cpu_percent,
        of_limit,
        quota_cores,
        cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_values() {
        let table: [(&str, Option<Cores>); 9] = [
            ("1", Some(Cores::Count(1))),
            ("2", Some(Cores::Count(2))),
            ("0", Some(Cores::All)),
            ("all", Some(Cores::All)),
            ("ALL", Some(Cores::All)),
            ("-1", None),
            ("1.5", None),
            ("many", None),
            ("1025", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_cores(text).ok(), expected, "--cores {text}");
        }
    }

    #[test]
    fn percent_values() {
        let table: [(&str, Option<f64>); 9] = [
            ("80", Some(80.0)),
            ("12.5", Some(12.5)),
            ("1", Some(1.0)),
            ("100", Some(100.0)),
            ("0", None),
            ("0.5", None),
            ("101", None),
            ("abc", None),
            ("NaN", None),
        ];
        for (text, expected) in table {
            assert_eq!(parse_percent(text).ok(), expected, "--cpu-percent {text}");
        }
    }

    #[test]
    fn worker_count_for_all() -> Result<()> {
        // (quota, cpus, workers)
        let table = [
            (None, 2, 2),
            (Some(0.5), 2, 1),
            (Some(1.5), 2, 2),
            (Some(8.0), 2, 2),
            (Some(1.0), 4, 1),
        ];
        for (quota, cpus, workers) in table {
            let load = resolve(80.0, Cores::All, false, quota, cpus)?;
            assert_eq!(load.workers, workers, "quota {quota:?} cpus {cpus}");
        }
        Ok(())
    }

    #[test]
    fn of_limit_splits_the_quota_across_workers() -> Result<()> {
        let load = resolve(80.0, Cores::Count(1), true, Some(0.5), 2)?;
        assert!((load.target_percent() - 40.0).abs() < 1e-9);
        let load = resolve(80.0, Cores::Count(2), true, Some(1.5), 2)?;
        assert!((load.target_percent() - 60.0).abs() < 1e-9);
        let load = resolve(100.0, Cores::All, true, Some(1.5), 2)?;
        assert_eq!(load.workers, 2);
        assert!((load.target_percent() - 75.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn of_limit_is_refused_without_quota_or_over_one_cpu() {
        for (quota, cores) in [(None, Cores::Count(1)), (Some(2.0), Cores::Count(1))] {
            match resolve(80.0, cores, true, quota, 2) {
                Err(e) => {
                    assert!(matches!(e, ChaosError::BadInput(_)));
                    assert!(e.to_string().contains("--of-limit"), "{e}");
                }
                Ok(load) => panic!("accepted {load:?}"),
            }
        }
    }

    #[test]
    fn warnings_name_throttling_and_oversubscription() -> Result<()> {
        assert!(
            resolve(50.0, Cores::Count(2), false, None, 2)?
                .warnings()
                .is_empty()
        );
        let w = resolve(80.0, Cores::Count(1), false, Some(0.5), 2)?.warnings();
        assert!(w.len() == 1 && w[0].contains("throttled"), "{w:?}");
        let w = resolve(50.0, Cores::Count(4), false, None, 2)?.warnings();
        assert!(w.len() == 1 && w[0].contains("compete"), "{w:?}");
        assert!(
            resolve(80.0, Cores::Count(1), true, Some(0.5), 2)?
                .warnings()
                .is_empty()
        );
        Ok(())
    }
}
