//! Pure conversion of the sizing flags into what the allocator does: the target, the
//! growth rate, the ramp time and the hold time. Every rule that rejects input is here,
//! so it is table-tested without touching a cgroup.

use std::time::Duration;

use chaos_common::{ChaosError, Result};

use crate::units::MIB;

pub const DEFAULT_TARGET_MB: u64 = 256;
pub const DEFAULT_RAMP: Duration = Duration::from_secs(30);
pub const DEFAULT_HOLD: Duration = Duration::from_secs(60);
/// Fastest accepted growth: faster than this is not a leak but a spike, and page faults
/// alone would not keep up.
pub const MAX_RATE_MB_PER_SECOND: f64 = 10_000.0;
/// Slowest accepted growth, 1 KiB/s (a 4 KiB page every 4 s): slower is no leak anyone
/// could observe within a run, and keeps the ramp time (target / rate) a finite number
/// of seconds a `Duration` can hold.
pub const MIN_RATE_MB_PER_SECOND: f64 = 1.0 / 1024.0;
/// Largest accepted target (1 PiB), far above any machine; keeps byte counts in u64.
pub const MAX_TARGET_MB: u64 = 1 << 30;

/// The sizing flags as given (None = not given).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SizingFlags {
    /// `--limit-mb` or its alias `-m, --target-mb`.
    pub target_mb: Option<u64>,
    pub limit_percent: Option<u32>,
    pub rate_mb_per_second: Option<f64>,
    pub ramp: Option<Duration>,
    pub hold: Option<Duration>,
}

/// What the allocator will do.
#[derive(Debug, Clone, PartialEq)]
pub struct Sizing {
    pub target_bytes: u64,
    pub rate_bytes_per_second: f64,
    /// Time to reach the target at the rate.
    pub ramp: Duration,
    pub hold: Duration,
}

impl Sizing {
    pub fn rate_mb_per_second(&self) -> f64 {
        self.rate_bytes_per_second / MIB as f64
    }
}

/// Validates the flags; `cgroup_limit` is the memory limit `--limit-percent` refers to.
pub fn size(flags: &SizingFlags, cgroup_limit: Option<u64>) -> Result<Sizing> {
    let target_bytes = target_bytes(flags, cgroup_limit)?;
    let rate_bytes_per_second = match (flags.rate_mb_per_second, flags.ramp) {
        (Some(rate), _) => {
            check_rate(rate, "--rate-mb-per-second")?;
            rate * MIB as f64
        }
        (None, ramp) => {
            let ramp = ramp.unwrap_or(DEFAULT_RAMP);
            if ramp.is_zero() {
                return Err(ChaosError::bad_input(
                    "--ramp-seconds must be greater than 0",
                ));
            }
            let rate = target_bytes as f64 / ramp.as_secs_f64();
            let flag = format!(
                "--ramp-seconds {} (rate = target {} MiB / ramp)",
                ramp.as_secs_f64(),
                target_bytes as f64 / MIB as f64
            );
            check_rate(rate / MIB as f64, &flag)?;
            rate
        }
    };
    let ramp =
        Duration::try_from_secs_f64(target_bytes as f64 / rate_bytes_per_second).map_err(|e| {
            ChaosError::bad_input(format!(
                "the ramp time (target / rate) is out of range: {e}"
            ))
        })?;
    Ok(Sizing {
        target_bytes,
        rate_bytes_per_second,
        ramp,
        hold: flags.hold.unwrap_or(DEFAULT_HOLD),
    })
}

/// A rate in MiB/s must be a finite number within [MIN, MAX]; the error names `flag`.
fn check_rate(rate: f64, flag: &str) -> Result<()> {
    if !rate.is_finite() || rate <= 0.0 {
        return Err(ChaosError::bad_input(format!(
            "{flag} must give a growth rate greater than 0 MiB/s (got {rate})"
        )));
    }
    if rate < MIN_RATE_MB_PER_SECOND {
        return Err(ChaosError::bad_input(format!(
            "{flag}: a growth rate of {rate} MiB/s is below the minimum of {MIN_RATE_MB_PER_SECOND} MiB/s (1 KiB/s)"
        )));
    }
    if rate > MAX_RATE_MB_PER_SECOND {
        return Err(ChaosError::bad_input(format!(
            "{flag}: a growth rate of {rate} MiB/s is above the maximum of {MAX_RATE_MB_PER_SECOND} MiB/s"
        )));
    }
    Ok(())
}

fn target_bytes(flags: &SizingFlags, cgroup_limit: Option<u64>) -> Result<u64> {
    if let Some(percent) = flags.limit_percent {
        if !(1..=100).contains(&percent) {
            return Err(ChaosError::bad_input(format!(
                "--limit-percent must be between 1 and 100 (got {percent})"
            )));
        }
        let Some(limit) = cgroup_limit else {
            return Err(ChaosError::bad_input(
                "--limit-percent needs a memory cgroup limit, and this cgroup has none \
                 (pass --cgroup DIR of a limited cgroup, or use --limit-mb)",
            ));
        };
        // u128: limit × 100 cannot overflow.
        let bytes = u128::from(limit) * u128::from(percent) / 100;
        if bytes > u128::from(MAX_TARGET_MB * MIB) {
            return Err(ChaosError::bad_input(format!(
                "--limit-percent {percent} of the cgroup limit ({limit} bytes) is above the maximum \
                 target of {MAX_TARGET_MB} MiB"
            )));
        }
        return Ok((bytes as u64).max(1));
    }
    let mb = flags.target_mb.unwrap_or(DEFAULT_TARGET_MB);
    if mb == 0 {
        return Err(ChaosError::bad_input(
            "--limit-mb (--target-mb) must be greater than 0",
        ));
    }
    if mb > MAX_TARGET_MB {
        return Err(ChaosError::bad_input(format!(
            "--limit-mb (--target-mb) {mb} is above the maximum of {MAX_TARGET_MB} MiB"
        )));
    }
    Ok(mb * MIB)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(target: Option<u64>, rate: Option<f64>, ramp: Option<u64>) -> SizingFlags {
        SizingFlags {
            target_mb: target,
            rate_mb_per_second: rate,
            ramp: ramp.map(Duration::from_secs),
            ..SizingFlags::default()
        }
    }

    #[test]
    fn defaults_are_the_originals() -> Result<()> {
        let s = size(&SizingFlags::default(), None)?;
        assert_eq!(s.target_bytes, 256 * MIB);
        assert_eq!(s.ramp, Duration::from_secs(30));
        assert_eq!(s.hold, Duration::from_secs(60));
        assert!((s.rate_mb_per_second() - 256.0 / 30.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn rate_sets_the_ramp_and_ramp_sets_the_rate() -> Result<()> {
        let s = size(&flags(Some(512), Some(50.0), None), None)?;
        assert!((s.ramp.as_secs_f64() - 512.0 / 50.0).abs() < 1e-6);
        let s = size(&flags(Some(100), None, Some(10)), None)?;
        assert!((s.rate_mb_per_second() - 10.0).abs() < 1e-9);
        Ok(())
    }

    #[test]
    fn bad_values_are_rejected_naming_the_flag() {
        let year = 365 * 86_400;
        let table: [(SizingFlags, Option<u64>, &str); 14] = [
            // Issue 8: 1e-17 panicked (a ramp of 1e19 s does not fit a Duration).
            (flags(None, Some(1e-17), None), None, "--rate-mb-per-second"),
            (
                flags(None, Some(1e-300), None),
                None,
                "--rate-mb-per-second",
            ),
            (
                flags(None, Some(f64::MIN_POSITIVE), None),
                None,
                "--rate-mb-per-second",
            ),
            (
                flags(None, Some(f64::INFINITY), None),
                None,
                "--rate-mb-per-second",
            ),
            (
                flags(None, Some(f64::MAX), None),
                None,
                "--rate-mb-per-second",
            ),
            // 1 MiB over a year is 0.03 B/s: below the minimum rate.
            (flags(Some(1), None, Some(year)), None, "--ramp-seconds"),
            (flags(None, Some(0.0), None), None, "--rate-mb-per-second"),
            (flags(None, Some(-1.0), None), None, "--rate-mb-per-second"),
            (
                flags(None, Some(f64::NAN), None),
                None,
                "--rate-mb-per-second",
            ),
            (
                flags(None, Some(10_001.0), None),
                None,
                "--rate-mb-per-second",
            ),
            (flags(Some(0), None, None), None, "--limit-mb"),
            (
                flags(Some(MAX_TARGET_MB + 1), Some(1.0), None),
                None,
                "--limit-mb",
            ),
            (flags(None, None, Some(0)), None, "--ramp-seconds"),
            (
                flags(Some(1_000_000), None, Some(1)),
                None,
                "--ramp-seconds",
            ),
        ];
        for (f, limit, flag) in table {
            match size(&f, limit) {
                Err(ChaosError::BadInput(msg)) => {
                    assert!(msg.contains(flag), "{msg} should name {flag}")
                }
                other => panic!("{f:?} should be bad input, got {other:?}"),
            }
        }
    }

    #[test]
    fn the_slowest_and_fastest_rates_size_without_overflow() -> Result<()> {
        let s = size(
            &flags(Some(MAX_TARGET_MB), Some(MIN_RATE_MB_PER_SECOND), None),
            None,
        )?;
        assert_eq!(s.ramp, Duration::from_secs(MAX_TARGET_MB * 1024));
        let s = size(&flags(Some(1), Some(MAX_RATE_MB_PER_SECOND), None), None)?;
        assert!(s.ramp < Duration::from_millis(1));
        // A percentage of a limit beyond the largest target is bad input, not an overflow.
        let pct = SizingFlags {
            limit_percent: Some(100),
            rate_mb_per_second: Some(1.0),
            ..SizingFlags::default()
        };
        assert!(matches!(
            size(&pct, Some(u64::MAX)),
            Err(ChaosError::BadInput(m)) if m.contains("--limit-percent")
        ));
        Ok(())
    }

    #[test]
    fn limit_percent_needs_a_limit_and_a_sane_value() -> Result<()> {
        let pct = |p| SizingFlags {
            limit_percent: Some(p),
            ..SizingFlags::default()
        };
        assert!(matches!(size(&pct(95), None), Err(ChaosError::BadInput(_))));
        assert!(matches!(
            size(&pct(0), Some(MIB)),
            Err(ChaosError::BadInput(_))
        ));
        assert!(matches!(
            size(&pct(101), Some(MIB)),
            Err(ChaosError::BadInput(_))
        ));
        let s = size(&pct(50), Some(512 * MIB))?;
        assert_eq!(s.target_bytes, 256 * MIB);
        Ok(())
    }
}
