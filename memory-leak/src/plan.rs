//! The plan `--dry-run` prints and every report records, from the run's configuration.

use chaos_common::Plan;
use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use serde_json::json;

use crate::allocator::ARG;
use crate::config::{GroupKill, LeakConfig};
use crate::rules::{crosses_high, reaches_limit};
use crate::units::{mib, round};

pub fn plan(config: &LeakConfig) -> Plan {
    let s = &config.sizing;
    let cg = &config.cgroup;
    let rate = round(s.rate_mb_per_second(), 2);
    let oom_expected = reaches_limit(s.target_bytes, cg.limit_bytes, cg.usage_bytes);
    let hypothesis = if oom_expected {
        format!(
            "resident memory grows at {rate} MiB/s until the cgroup's limit of {} MiB, where the kernel \
             OOM-kills the allocator (EXP-006)",
            cg.limit_bytes.map_or(0.0, mib)
        )
    } else {
        format!(
            "resident memory grows at {rate} MiB/s to {} MiB, is held, and is released at the end",
            mib(s.target_bytes)
        )
    };
    let cgroup_name = cg.dir.as_ref().map_or_else(
        || "none (no memory controller found)".to_owned(),
        |d| d.display().to_string(),
    );
    let cgroup = Target::new("memory-cgroup", cgroup_name).with_details(json!({
        "joined": config.join.is_some(),
        "limitMib": cg.limit_bytes.map(mib),
        "usageMib": cg.usage_bytes.map(mib),
        "headroomMib": cg.limit_bytes.map(|l| mib(l.saturating_sub(cg.usage_bytes.unwrap_or(0)))),
        "memoryHighMib": cg.high_bytes.map(mib),
        "oomGroup": cg.oom_group,
    }));
    Plan {
        hypothesis,
        targets: vec![
            cgroup,
            Target::new("process", "allocator child of memory-leak"),
        ],
        steps: steps(config),
        warnings: warnings(config, oom_expected),
        safety: SafetyRequest {
            namespaces: Vec::new(),
            destructive: oom_expected,
        },
    }
}

fn steps(config: &LeakConfig) -> Vec<String> {
    let s = &config.sizing;
    let target = mib(s.target_bytes);
    let mut steps = Vec::new();
    if config.group_kill == GroupKill::Shielded {
        steps.push(
            "set this process's oom_score_adj to -1000, so that a group OOM kill \
             (memory.oom.group = 1) spares it and the report comes out"
                .to_owned(),
        );
    }
    steps.push(format!(
        "start the allocator child (memory-leak {ARG}), which dies with this process (PR_SET_PDEATHSIG)"
    ));
    if let Some(dir) = &config.join {
        steps.push(format!(
            "move the allocator into memory cgroup {} before it allocates",
            dir.display()
        ));
    }
    steps.push(format!(
        "grow anonymous memory, every page written, at {} MiB/s in 50 ms steps to {target} MiB ({} s)",
        round(s.rate_mb_per_second(), 2),
        round(s.ramp.as_secs_f64(), 1)
    ));
    steps.push(format!(
        "hold {target} MiB until the run ends after {} s",
        round(config.duration.as_secs_f64(), 1)
    ));
    steps.push(
        "release: SIGTERM the allocator (SIGKILL after 2 s); the kernel frees its memory".into(),
    );
    if config.group_kill == GroupKill::Shielded {
        steps.push("restore this process's oom_score_adj".into());
    }
    steps
}

fn warnings(config: &LeakConfig, oom_expected: bool) -> Vec<String> {
    let s = &config.sizing;
    let cg = &config.cgroup;
    let mut warnings = Vec::new();
    if oom_expected {
        // With --watch-oom the kill is what the run asks for: no hint to pass it.
        let hint = if config.watch_oom {
            "; --watch-oom counts that as success"
        } else {
            "; pass --watch-oom to treat that as success"
        };
        warnings.push(format!(
            "the target reaches the cgroup limit ({} MiB): the process is expected to be OOM-killed \
             (EXP-006){hint}",
            cg.limit_bytes.map_or(0.0, mib)
        ));
    }
    if crosses_high(s.target_bytes, cg.high_bytes, cg.usage_bytes) {
        warnings.push(format!(
            "the target is above the cgroup's memory.high ({} MiB): the kernel throttles the allocator \
             there (growth slows below the requested rate; memory.events counts it as `high`)",
            cg.high_bytes.map_or(0.0, mib)
        ));
    }
    if config.group_kill == GroupKill::Exposed {
        warnings.push(
            "memory.oom.group is 1 and this process shares the allocator's cgroup without \
             CAP_SYS_RESOURCE to shield itself: an OOM kill ends it too, with no report (exit 137, \
             SIGKILL); the cgroup's memory.events counts it as oom_group_kill"
                .into(),
        );
    }
    if config.duration < s.ramp {
        warnings.push(format!(
            "the run ends after {} s, before the target is reached ({} s)",
            round(config.duration.as_secs_f64(), 1),
            round(s.ramp.as_secs_f64(), 1)
        ));
    }
    if config.watch_oom && !oom_expected {
        warnings.push(
            "--watch-oom expects an OOM kill, but the target stays below the cgroup limit: the run will fail \
             unless something else fills the cgroup"
                .into(),
        );
    }
    warnings
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::CgroupFacts;
    use crate::sizing::Sizing;
    use crate::units::MIB;

    fn config(limit: Option<u64>, high: Option<u64>, group_kill: GroupKill) -> LeakConfig {
        LeakConfig {
            sizing: Sizing {
                target_bytes: 64 * MIB,
                rate_bytes_per_second: 32.0 * MIB as f64,
                ramp: Duration::from_secs(2),
                hold: Duration::from_secs(1),
            },
            duration: Duration::from_secs(3),
            watch_oom: false,
            join: None,
            cgroup: CgroupFacts {
                dir: Some("/sys/fs/cgroup/x".into()),
                limit_bytes: limit,
                usage_bytes: Some(0),
                high_bytes: high,
                oom_group: Some(group_kill != GroupKill::NotApplicable),
            },
            group_kill,
        }
    }

    #[test]
    fn plan_of_a_plain_run() {
        let plan = plan(&config(None, None, GroupKill::NotApplicable));
        assert!(plan.warnings.is_empty(), "{:?}", plan.warnings);
        assert!(!plan.safety.destructive);
        assert!(plan.steps[1].contains("32 MiB/s"), "{:?}", plan.steps);
    }

    #[test]
    fn plan_warns_of_oom_high_and_an_exposed_group_kill() {
        let plan = plan(&config(Some(32 * MIB), Some(16 * MIB), GroupKill::Exposed));
        let text = plan.warnings.join("\n");
        assert!(text.contains("expected to be OOM-killed"), "{text}");
        assert!(text.contains("memory.high (16 MiB)"), "{text}");
        assert!(text.contains("no report (exit 137"), "{text}");
        assert!(plan.safety.destructive);
    }

    #[test]
    fn a_shielded_run_says_so_and_restores() {
        let plan = plan(&config(Some(32 * MIB), None, GroupKill::Shielded));
        assert!(
            plan.steps[0].contains("oom_score_adj to -1000"),
            "{:?}",
            plan.steps
        );
        assert!(plan.steps.last().is_some_and(|s| s.contains("restore")));
        assert!(!plan.warnings.join(" ").contains("exit 137"));
    }

    #[test]
    fn the_watch_oom_hint_is_shown_only_without_watch_oom() {
        let without = plan(&config(Some(32 * MIB), None, GroupKill::NotApplicable));
        assert!(
            without.warnings.join(" ").contains("pass --watch-oom"),
            "{:?}",
            without.warnings
        );
        let mut watching = config(Some(32 * MIB), None, GroupKill::NotApplicable);
        watching.watch_oom = true;
        let text = plan(&watching).warnings.join(" ");
        assert!(text.contains("expected to be OOM-killed"), "{text}");
        assert!(!text.contains("pass --watch-oom"), "{text}");
    }
}
