//! The fault's own safety rule (memory headroom) and the test of whether a run is
//! expected to end in an OOM kill. Pure: they take the figures they judge.

use chaos_common::{ChaosError, Result};

use crate::units::mib;

/// Without a cgroup limit, the target may take at most this share of MemAvailable.
pub const HEADROOM_SHARE: f64 = 0.8;

/// True when growing to the target reaches the cgroup's limit: an OOM kill is expected.
pub fn reaches_limit(target: u64, limit: Option<u64>, usage: Option<u64>) -> bool {
    limit.is_some_and(|l| target >= l.saturating_sub(usage.unwrap_or(0)))
}

/// True when the target goes above `memory.high` (after what the cgroup already uses):
/// the kernel throttles the allocator there, before any limit.
pub fn crosses_high(target: u64, high: Option<u64>, usage: Option<u64>) -> bool {
    high.is_some_and(|h| target > h.saturating_sub(usage.unwrap_or(0)))
}

/// Refuses a run that could take the machine down: what the allocator can grow to (the
/// target, or the cgroup limit if that is lower) must stay within 80% of MemAvailable.
pub fn check_headroom(target: u64, limit: Option<u64>, available: u64) -> Result<()> {
    let reachable = limit.map_or(target, |l| target.min(l));
    let allowed = (available as f64 * HEADROOM_SHARE) as u64;
    if reachable <= allowed {
        return Ok(());
    }
    let bound = match limit {
        None => "there is no cgroup memory limit to stop it".to_owned(),
        Some(l) => format!("the cgroup limit ({} MiB) is no lower", mib(l)),
    };
    Err(ChaosError::Refused {
        rule: "memory-headroom",
        message: format!(
            "target {} MiB is above 80% of the machine's available memory ({} MiB of {} MiB) and \
             {bound}; lower --limit-mb or run inside a memory-limited cgroup (--cgroup)",
            mib(target),
            mib(allowed),
            mib(available)
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::MIB;

    #[test]
    fn oom_is_expected_when_the_target_reaches_the_headroom() {
        assert!(reaches_limit(512 * MIB, Some(128 * MIB), Some(0)));
        assert!(reaches_limit(100 * MIB, Some(128 * MIB), Some(30 * MIB)));
        assert!(!reaches_limit(100 * MIB, Some(128 * MIB), Some(10 * MIB)));
        assert!(!reaches_limit(100 * MIB, None, Some(10 * MIB)));
    }

    #[test]
    fn memory_high_is_crossed_above_its_headroom() {
        assert!(crosses_high(64 * MIB, Some(32 * MIB), Some(0)));
        assert!(crosses_high(30 * MIB, Some(32 * MIB), Some(4 * MIB)));
        assert!(!crosses_high(16 * MIB, Some(32 * MIB), Some(4 * MIB)));
        assert!(!crosses_high(16 * MIB, None, None));
    }

    #[test]
    fn headroom_rule() {
        let gib = 1024 * MIB;
        assert!(check_headroom(gib, None, 10 * gib).is_ok());
        assert!(check_headroom(8 * gib, None, 10 * gib).is_ok());
        assert!(matches!(
            check_headroom(9 * gib, None, 10 * gib),
            Err(ChaosError::Refused {
                rule: "memory-headroom",
                ..
            })
        ));
        // A limit below the headroom bounds what can be allocated: allowed.
        assert!(check_headroom(100 * gib, Some(gib), 10 * gib).is_ok());
        // A limit above the machine does not protect it.
        assert!(check_headroom(100 * gib, Some(50 * gib), 10 * gib).is_err());
    }
}
