//! The report's observations (`podKillerObservations` in docs/report.schema.json,
//! documented in docs/pod-killer.md) and the pass criteria: one per kill, plus the
//! number of kills done.

use std::time::Duration;

use chaos_common::duration::HumanDuration;
use chaos_common::report::{rfc3339, round};
use chaos_common::{Conclusion, Criterion};
use serde::Serialize;

use crate::resolve::Snapshot;
use crate::settings::Settings;
use crate::timeline::{Kill, Outcome, Stamp, Timeline};

/// What a run saw.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    pub namespace: String,
    /// `deployment/NAME` or `statefulset/NAME` owning the pods, if any.
    pub workload: Option<String>,
    /// The label selector the pods were watched with.
    pub selector: Option<String>,
    /// Available pods that mean "recovered".
    pub desired_replicas: usize,
    /// `delete` or `evict`.
    pub method: &'static str,
    pub kills_requested: u32,
    pub kills_attempted: usize,
    pub recovered: usize,
    /// The slowest recovery, request to workload back at its desired count.
    pub slowest_recovery_ms: Option<f64>,
    /// Requests the API server answered 429 (API Priority and Fairness) and that were
    /// retried after `Retry-After`.
    pub throttled_requests: u64,
    /// How often the pod watch listed again after its first list (after 410 Gone).
    pub watch_relists: u32,
    pub kills: Vec<KillRecord>,
}

/// One kill.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KillRecord {
    pub index: usize,
    pub pod: String,
    pub pod_uid: String,
    /// The first new pod (by UID) seen after the request; a StatefulSet's has the
    /// same name as `pod`.
    pub replacement: Option<String>,
    pub replacement_uid: Option<String>,
    pub outcome: &'static str,
    pub recovered: bool,
    pub message: Option<String>,
    /// The Kubernetes Event recorded for the kill.
    pub event: Option<String>,
    pub requested_at: String,
    pub deletion_accepted_at: Option<String>,
    pub old_pod_gone_at: Option<String>,
    pub replacement_created_at: Option<String>,
    pub replacement_scheduled_at: Option<String>,
    pub replacement_ready_at: Option<String>,
    pub recovered_at: Option<String>,
    /// Milliseconds after `requestedAt` (monotonic clock), 0.1 ms resolution.
    pub deletion_accepted_ms: Option<f64>,
    pub old_pod_gone_ms: Option<f64>,
    pub replacement_created_ms: Option<f64>,
    pub replacement_scheduled_ms: Option<f64>,
    pub replacement_ready_ms: Option<f64>,
    pub recovered_ms: Option<f64>,
}

fn at(stamp: Option<Stamp>) -> Option<String> {
    stamp.map(|s| rfc3339::format(s.wall))
}

fn ms_after(start: Stamp, stamp: Option<Stamp>) -> Option<f64> {
    stamp.map(|s| {
        round(
            s.mono.saturating_duration_since(start.mono).as_secs_f64() * 1000.0,
            1,
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
        Outcome::Vanished(why) => ("vanished", Some(why.clone())),
        Outcome::Failed(why) => ("failed", Some(why.clone())),
        Outcome::Interrupted => (
            "interrupted",
            Some("the run stopped before the pod recovered".into()),
        ),
    }
}

fn record(kill: &Kill) -> KillRecord {
    let r = kill.requested;
    let (name, message) = outcome(kill);
    KillRecord {
        index: kill.index,
        pod: kill.pod.name.clone(),
        pod_uid: kill.pod.uid.clone(),
        replacement: kill.replacement.as_ref().map(|p| p.name.clone()),
        replacement_uid: kill.replacement.as_ref().map(|p| p.uid.clone()),
        outcome: name,
        recovered: kill.outcome == Outcome::Recovered,
        message,
        event: kill.event.clone(),
        requested_at: rfc3339::format(r.wall),
        deletion_accepted_at: at(kill.accepted),
        old_pod_gone_at: at(kill.gone),
        replacement_created_at: at(kill.created),
        replacement_scheduled_at: at(kill.scheduled),
        replacement_ready_at: at(kill.ready),
        recovered_at: at(kill.recovered),
        deletion_accepted_ms: ms_after(r, kill.accepted),
        old_pod_gone_ms: ms_after(r, kill.gone),
        replacement_created_ms: ms_after(r, kill.created),
        replacement_scheduled_ms: ms_after(r, kill.scheduled),
        replacement_ready_ms: ms_after(r, kill.ready),
        recovered_ms: ms_after(r, kill.recovered),
    }
}

fn recovery_time(kill: &Kill) -> Option<Duration> {
    kill.recovered
        .map(|s| s.mono.saturating_duration_since(kill.requested.mono))
}

fn criterion(kill: &Kill, s: &Settings) -> Criterion {
    let limit = s.limit();
    let (passed, actual) = match (&kill.outcome, recovery_time(kill)) {
        (Outcome::Recovered, Some(took)) => (
            took <= limit,
            format!("recovered in {:.3} s", took.as_secs_f64()),
        ),
        (Outcome::BlockedByPdb(pdb), _) => (true, format!("blocked by PDB {pdb}: nothing deleted")),
        (Outcome::Skipped(why), _) => (true, format!("skipped: {why}")),
        (Outcome::Vanished(why), _) => (true, format!("nothing deleted: {why}")),
        (Outcome::Failed(why), _) => (false, format!("failed: {why}")),
        (Outcome::Interrupted, _) => (false, "interrupted before recovery".into()),
        // Waited the whole --recovery-timeout, which is at least the limit.
        _ => (
            false,
            format!("not recovered within {}", HumanDuration(s.recovery_timeout)),
        ),
    };
    Criterion {
        name: format!("kill {} ({}) recovery", kill.index, kill.pod.name),
        expected: format!("recovered within {}", HumanDuration(limit)),
        actual,
        passed,
    }
}

/// The observations and criteria of a run that stopped with `timeline`.
pub fn conclude(
    s: &Settings,
    snapshot: Option<&Snapshot>,
    timeline: &Timeline,
    throttled: u64,
) -> Conclusion {
    let kills: Vec<KillRecord> = timeline.kills.iter().map(record).collect();
    let recovered = timeline
        .kills
        .iter()
        .filter(|k| k.outcome == Outcome::Recovered)
        .count();
    let slowest = timeline.kills.iter().filter_map(recovery_time).max();
    let mut criteria: Vec<Criterion> = timeline.kills.iter().map(|k| criterion(k, s)).collect();
    let done = timeline.kills.len();
    criteria.push(Criterion {
        name: "kills attempted".into(),
        expected: s.count.to_string(),
        actual: done.to_string(),
        passed: done == usize::try_from(s.count).unwrap_or(usize::MAX),
    });
    let observations = Observations {
        namespace: s.namespace.clone(),
        workload: snapshot
            .and_then(|x| x.workload.as_ref())
            .map(|w| w.reference()),
        selector: snapshot.map(|x| x.selector.clone()),
        desired_replicas: timeline.desired,
        method: s.method.verb(),
        kills_requested: s.count,
        kills_attempted: done,
        recovered,
        slowest_recovery_ms: slowest.map(|d| round(d.as_secs_f64() * 1000.0, 1)),
        throttled_requests: throttled,
        watch_relists: timeline.relists,
        kills,
    };
    Conclusion {
        // A struct of strings and numbers always serializes.
        observations: serde_json::to_value(observations).unwrap_or_default(),
        criteria,
    }
}
