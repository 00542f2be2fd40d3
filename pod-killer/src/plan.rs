//! The plan (what `--dry-run` prints): hypothesis, targets, exact steps, warnings.

use chaos_common::Plan;
use chaos_common::duration::HumanDuration;
use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use serde_json::json;

use crate::kill::PodKill;

pub fn plan(fault: &PodKill) -> Plan {
    let s = &fault.settings;
    let safety = SafetyRequest {
        namespaces: vec![s.namespace.clone()],
        destructive: true,
    };
    let Some(snapshot) = &fault.snapshot else {
        return Plan {
            hypothesis: format!("pod-killer in namespace {}", s.namespace),
            targets: vec![Target::new("namespace", s.namespace.clone())],
            safety,
            ..Plan::default()
        };
    };
    let what = match &snapshot.deployment {
        Some(d) => format!("deployment/{d}"),
        None => format!("the pods matching '{}'", snapshot.selector),
    };
    let limit = HumanDuration(s.expect_recovery_within.unwrap_or(s.recovery_timeout));
    let hypothesis = format!(
        "{} {} pod(s) of {what} in namespace {}, one at a time, leaves at least {} Ready pod(s), and after each kill \
         a replacement is Ready and {} pod(s) are Ready again within {limit}",
        capitalised(s.method.verb()),
        s.count,
        s.namespace,
        s.min_ready,
        snapshot.desired
    );
    let mut targets = vec![
        match &snapshot.deployment {
            Some(d) => Target::new("deployment", d.clone()),
            None => Target::new("selector", snapshot.selector.clone()),
        }
        .with_details(
            json!({"namespace": s.namespace, "selector": snapshot.selector,
                         "desiredReplicas": snapshot.desired, "readyPods": snapshot.ready(),
                         "server": snapshot.server}),
        ),
    ];
    targets.extend(snapshot.pods.iter().map(|p| {
        Target::new("pod", p.name.clone())
            .with_details(json!({"namespace": s.namespace, "phase": p.phase, "ready": p.ready}))
    }));
    let mut steps = vec![format!(
        "watch pods matching '{}' in namespace {}",
        snapshot.selector, s.namespace
    )];
    if !s.delay.is_zero() {
        steps.push(format!(
            "wait {} before the first kill",
            HumanDuration(s.delay)
        ));
    }
    for i in 1..=s.count {
        if i > 1 {
            steps.push(format!(
                "wait until {} after the previous kill",
                HumanDuration(s.interval)
            ));
        }
        steps.push(format!(
            "{} a random Ready pod matching '{}' in namespace {} (kill {i} of {}, grace period {} s), unless that leaves fewer than {} Ready",
            s.method.verb(), snapshot.selector, s.namespace, s.count, s.grace_period, s.min_ready
        ));
        steps.push(format!(
            "record Event chaos-pod-killer-{}-{i} (reason ChaosPodKilled) on {what}, then wait up to {} for recovery",
            s.run_id, HumanDuration(s.recovery_timeout)
        ));
    }
    Plan {
        hypothesis,
        targets,
        steps,
        warnings: warnings(fault),
        safety,
    }
}

fn warnings(fault: &PodKill) -> Vec<String> {
    let s = &fault.settings;
    let mut warnings = Vec::new();
    if let Some(snapshot) = &fault.snapshot {
        if snapshot.deployment.is_none() {
            warnings.push(format!(
                "no Deployment owns the pods matching '{}': recovery means {} Ready pods again (the count now)",
                snapshot.selector, snapshot.desired
            ));
        }
        if snapshot.ready() < snapshot.desired {
            warnings.push(format!(
                "only {} of {} pods are Ready before the run",
                snapshot.ready(),
                snapshot.desired
            ));
        }
    }
    if s.grace_period == 0 {
        warnings.push("grace period 0: the pods are removed at once, without their preStop hook or SIGTERM window".into());
    }
    warnings
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
