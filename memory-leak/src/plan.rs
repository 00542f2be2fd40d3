//! The plan `--dry-run` prints, and the memory-headroom rule.

use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use chaos_common::{ChaosError, Plan, Result};
use serde_json::json;

use crate::leak::MemoryLeak;
use crate::{mib, round1, round2};

/// Without a cgroup limit, the target may take at most this share of MemAvailable.
pub const HEADROOM_SHARE: f64 = 0.8;

/// True when growing to the target reaches the cgroup's limit: an OOM kill is expected.
pub fn reaches_limit(target: u64, limit: Option<u64>, usage: Option<u64>) -> bool {
    limit.is_some_and(|l| target >= l.saturating_sub(usage.unwrap_or(0)))
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

pub fn plan(leak: &MemoryLeak) -> Plan {
    let s = &leak.sizing;
    let target = mib(s.target_bytes);
    let rate = round2(s.rate_mb_per_second());
    let ramp = round1(s.ramp.as_secs_f64());
    let oom_expected = reaches_limit(s.target_bytes, leak.limit_bytes, leak.usage_bytes);
    let cgroup_name = leak.cgroup_dir().map_or_else(
        || "none (no memory controller found)".to_owned(),
        |d| d.display().to_string(),
    );
    let headroom = leak
        .limit_bytes
        .map(|l| mib(l.saturating_sub(leak.usage_bytes.unwrap_or(0))));

    let hypothesis = if oom_expected {
        format!(
            "resident memory grows at {rate} MiB/s until the cgroup's limit of {} MiB, where the kernel \
             OOM-kills the allocator (EXP-006)",
            leak.limit_bytes.map_or(0.0, mib)
        )
    } else {
        format!(
            "resident memory grows at {rate} MiB/s to {target} MiB, is held, and is released at the end"
        )
    };
    let mut steps = vec![format!(
        "start the allocator child (memory-leak {}), which dies with this process (PR_SET_PDEATHSIG)",
        crate::allocator::ARG
    )];
    if let Some(dir) = &leak.join {
        steps.push(format!(
            "move the allocator into memory cgroup {} before it allocates",
            dir.display()
        ));
    }
    steps.push(format!(
        "grow anonymous memory, every page written, at {rate} MiB/s in 50 ms steps to {target} MiB ({ramp} s)"
    ));
    steps.push(format!(
        "hold {target} MiB until the run ends after {} s",
        round1(leak.duration.as_secs_f64())
    ));
    steps.push(
        "release: SIGTERM the allocator (SIGKILL after 2 s); the kernel frees its memory".into(),
    );

    let mut warnings = Vec::new();
    if oom_expected {
        warnings.push(format!(
            "the target reaches the cgroup limit ({} MiB): the process is expected to be OOM-killed \
             (EXP-006); pass --watch-oom to treat that as success",
            leak.limit_bytes.map_or(0.0, mib)
        ));
    }
    if leak.duration < s.ramp {
        warnings.push(format!(
            "the run ends after {} s, before the target is reached ({ramp} s)",
            round1(leak.duration.as_secs_f64())
        ));
    }
    if leak.watch_oom && !oom_expected {
        warnings.push(
            "--watch-oom expects an OOM kill, but the target stays below the cgroup limit: the run will fail \
             unless something else fills the cgroup"
                .into(),
        );
    }
    let cgroup = Target::new("memory-cgroup", cgroup_name).with_details(json!({
        "joined": leak.join.is_some(),
        "limitMb": leak.limit_bytes.map(mib),
        "usageMb": leak.usage_bytes.map(mib),
        "headroomMb": headroom,
    }));
    Plan {
        hypothesis,
        targets: vec![
            cgroup,
            Target::new("process", "allocator child of memory-leak"),
        ],
        steps,
        warnings,
        safety: SafetyRequest {
            namespaces: Vec::new(),
            destructive: oom_expected,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MIB;

    #[test]
    fn oom_is_expected_when_the_target_reaches_the_headroom() {
        assert!(reaches_limit(512 * MIB, Some(128 * MIB), Some(0)));
        assert!(reaches_limit(100 * MIB, Some(128 * MIB), Some(30 * MIB)));
        assert!(!reaches_limit(100 * MIB, Some(128 * MIB), Some(10 * MIB)));
        assert!(!reaches_limit(100 * MIB, None, Some(10 * MIB)));
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
