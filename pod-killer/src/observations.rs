//! The report's observations (per kill: pod, replacement, timestamps, durations,
//! outcome) and pass criteria (one per kill, plus the number of kills done).

use std::time::Duration;

use chaos_common::duration::HumanDuration;
use chaos_common::report::rfc3339;
use chaos_common::{Conclusion, Criterion};
use serde_json::{Value, json};

use crate::kill::Settings;
use crate::resolve::Snapshot;
use crate::timeline::{Kill, Outcome, Stamp, Timeline};

fn at(stamp: Option<Stamp>) -> Value {
    stamp.map_or(Value::Null, |s| Value::String(rfc3339_ms(s)))
}

fn rfc3339_ms(stamp: Stamp) -> String {
    rfc3339::format(stamp.wall)
}

fn ms_after(start: Stamp, stamp: Option<Stamp>) -> Value {
    stamp.map_or(Value::Null, |s| {
        json!(
            (s.mono.saturating_duration_since(start.mono).as_secs_f64() * 1000.0 * 10.0).round()
                / 10.0
        )
    })
}

fn outcome(kill: &Kill) -> (&'static str, Option<String>) {
    match &kill.outcome {
        Outcome::Pending => ("pending", None),
        Outcome::Recovered => ("recovered", None),
        Outcome::NotRecovered => ("not-recovered", None),
        Outcome::BlockedByPdb(pdb) => ("blocked-by-pdb", Some(format!("blocked by PDB {pdb}"))),
        Outcome::Skipped(why) => ("skipped-min-ready", Some(why.clone())),
        Outcome::Failed(why) => ("failed", Some(why.clone())),
        Outcome::Interrupted => (
            "interrupted",
            Some("the run stopped before the pod recovered".into()),
        ),
    }
}

fn kill_json(kill: &Kill) -> Value {
    let r = kill.requested;
    let (name, message) = outcome(kill);
    json!({
        "index": kill.index,
        "pod": kill.pod,
        "replacement": kill.replacement,
        "outcome": name,
        "recovered": kill.outcome == Outcome::Recovered,
        "message": message,
        "event": kill.event,
        "requestedAt": rfc3339_ms(r),
        "deletionAcceptedAt": at(kill.accepted),
        "oldPodGoneAt": at(kill.gone),
        "replacementCreatedAt": at(kill.created),
        "replacementScheduledAt": at(kill.scheduled),
        "replacementReadyAt": at(kill.ready),
        "deploymentRecoveredAt": at(kill.recovered),
        "msAfterRequest": {
            "deletionAccepted": ms_after(r, kill.accepted),
            "oldPodGone": ms_after(r, kill.gone),
            "replacementCreated": ms_after(r, kill.created),
            "replacementScheduled": ms_after(r, kill.scheduled),
            "replacementReady": ms_after(r, kill.ready),
            "deploymentRecovered": ms_after(r, kill.recovered),
        },
    })
}

fn recovery_time(kill: &Kill) -> Option<Duration> {
    kill.recovered
        .map(|s| s.mono.saturating_duration_since(kill.requested.mono))
}

fn criterion(kill: &Kill, limit: Duration) -> Criterion {
    let (passed, actual) = match (&kill.outcome, recovery_time(kill)) {
        (Outcome::Recovered, Some(took)) => (
            took <= limit,
            format!("recovered in {:.3} s", took.as_secs_f64()),
        ),
        (Outcome::BlockedByPdb(pdb), _) => (true, format!("blocked by PDB {pdb}: nothing deleted")),
        (Outcome::Skipped(why), _) => (true, format!("skipped: {why}")),
        (Outcome::Failed(why), _) => (false, format!("failed: {why}")),
        (Outcome::Interrupted, _) => (false, "interrupted before recovery".into()),
        _ => (
            false,
            format!("not recovered within {}", HumanDuration(limit)),
        ),
    };
    Criterion {
        name: format!("kill {} ({}) recovery", kill.index, kill.pod),
        expected: format!("recovered within {}", HumanDuration(limit)),
        actual,
        passed,
    }
}

pub fn conclude(
    s: &Settings,
    snapshot: Option<&Snapshot>,
    timeline: &Timeline,
    limit: Duration,
) -> Conclusion {
    let kills: Vec<Value> = timeline.kills.iter().map(kill_json).collect();
    let recovered = timeline
        .kills
        .iter()
        .filter(|k| k.outcome == Outcome::Recovered)
        .count();
    let slowest = timeline.kills.iter().filter_map(recovery_time).max();
    let mut criteria: Vec<Criterion> = timeline.kills.iter().map(|k| criterion(k, limit)).collect();
    let done = timeline.kills.len();
    criteria.push(Criterion {
        name: "kills attempted".into(),
        expected: format!("{}", s.count),
        actual: format!("{done}"),
        passed: done == usize::try_from(s.count).unwrap_or(usize::MAX),
    });
    let observations = json!({
        "namespace": s.namespace,
        "deployment": snapshot.and_then(|x| x.deployment.clone()),
        "selector": snapshot.map(|x| x.selector.clone()),
        "desiredReplicas": timeline.desired,
        "method": s.method.verb(),
        "killsRequested": s.count,
        "killsAttempted": done,
        "recovered": recovered,
        "slowestRecoveryMs": slowest.map(|d| d.as_secs_f64() * 1000.0),
        "kills": kills,
    });
    Conclusion {
        observations,
        criteria,
    }
}
