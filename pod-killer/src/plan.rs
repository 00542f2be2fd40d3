//! The plan (what `--dry-run` prints): hypothesis, targets, exact steps, warnings. Before
//! the resolve step (`snapshot` None) it names the namespace, which is what the common
//! safety rules (protected namespaces) need.

use chaos_common::Plan;
use chaos_common::duration::HumanDuration;
use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use serde_json::json;

use crate::resolve::Snapshot;
use crate::settings::Settings;

pub fn plan(s: &Settings, snapshot: Option<&Snapshot>) -> Plan {
    let safety = SafetyRequest {
        namespaces: vec![s.namespace.clone()],
        destructive: true,
    };
    let Some(snapshot) = snapshot else {
        return Plan {
            hypothesis: format!("pod-killer in namespace {}", s.namespace),
            targets: vec![Target::new("namespace", s.namespace.clone())],
            safety,
            ..Plan::default()
        };
    };
    let what = snapshot.what();
    let hypothesis = format!(
        "{} {} pod(s) of {what} in namespace {}, one at a time, leaves at least {} Ready pod(s), and after each kill \
         a replacement is Ready and {} pod(s) are Ready again within {}",
        capitalised(s.method.verb()),
        s.count,
        s.namespace,
        s.min_ready,
        snapshot.desired,
        HumanDuration(s.limit())
    );
    let (kind, name) = match &snapshot.workload {
        Some(w) => (w.kind.resource(), w.name.clone()),
        None => ("selector", snapshot.selector.clone()),
    };
    let mut targets = vec![
        Target::new(kind, name).with_details(json!({"namespace": s.namespace,
        "selector": snapshot.selector, "desiredReplicas": snapshot.desired,
        "readyPods": snapshot.available(), "server": snapshot.server})),
    ];
    targets.extend(snapshot.pods.iter().map(|p| {
        Target::new("pod", p.name.clone()).with_details(
            json!({"namespace": s.namespace, "uid": p.uid, "phase": p.phase, "ready": p.ready}),
        )
    }));
    Plan {
        hypothesis,
        targets,
        steps: steps(s, snapshot, &what),
        warnings: warnings(s, snapshot),
        safety,
    }
}

fn steps(s: &Settings, snapshot: &Snapshot, what: &str) -> Vec<String> {
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
            s.run_id,
            HumanDuration(s.recovery_timeout)
        ));
    }
    steps
}

fn warnings(s: &Settings, snapshot: &Snapshot) -> Vec<String> {
    let mut warnings = Vec::new();
    if snapshot.workload.is_none() {
        warnings.push(format!(
            "no Deployment or StatefulSet owns the pods matching '{}': recovery means {} Ready pods again (the count now)",
            snapshot.selector, snapshot.desired
        ));
    }
    if snapshot.available() < snapshot.desired {
        warnings.push(format!(
            "only {} of {} pods are Ready before the run",
            snapshot.available(),
            snapshot.desired
        ));
    }
    if s.grace_period == 0 {
        warnings.push(
            "grace period 0: the pods are removed at once, without their preStop hook or SIGTERM window".into(),
        );
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
