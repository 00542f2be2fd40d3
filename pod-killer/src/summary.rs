//! pod-killer's sentences in the text summary (chaos-common's `summary`), one per kill,
//! their figures aligned, then the totals:
//!
//! ```text
//! killed product-service-7d9c-abc12 at 10:04:05 UTC; replacement Ready after 11.2 s; deployment whole after 11.4 s (limit 30 s: pass)
//! killed product-service-7d9c-def34 at 10:04:35 UTC; replacement Ready after  9.8 s; deployment whole after 10.1 s (limit 30 s: pass)
//! 2 of 2 kills recovered; the slowest in 11.4 s
//! ```
//!
//! They judge every criterion of the report (each kill against its limit, and the kills
//! attempted). The observations are read through [`Seen`], the fields of
//! `observations.rs` the sentences need; a unit test reads real observations through it.

use chaos_common::summary::{
    CriterionView, ReportView, Said, Style, clock, configured, ending, ms, right_aligned,
};
use serde::Deserialize;

/// The part of [`crate::observations::Observations`] the summary reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub workload: Option<String>,
    pub desired_replicas: usize,
    pub method: String,
    pub kills_requested: u32,
    pub kills_attempted: usize,
    pub recovered: usize,
    pub slowest_recovery_ms: Option<f64>,
    pub kills: Vec<KillSeen>,
}

/// The part of [`crate::observations::KillRecord`] the summary reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KillSeen {
    pub index: usize,
    pub pod: String,
    pub outcome: String,
    pub message: Option<String>,
    pub requested_at: String,
    pub replacement_ready_ms: Option<f64>,
    pub recovered_ms: Option<f64>,
}

/// `deployment whole`, `statefulset whole`, or `back to 3 pods`.
fn whole(seen: &Seen) -> String {
    match seen.workload.as_deref().and_then(|w| w.split_once('/')) {
        Some((kind, _)) => format!("{kind} whole"),
        None => format!("back to {} pods", seen.desired_replicas),
    }
}

fn criterion(report: &ReportView, index: usize) -> Option<&CriterionView> {
    let prefix = format!("kill {index} (");
    report.criteria.iter().find(|c| c.name.starts_with(&prefix))
}

/// The recovery limit, as configured.
fn limit(report: &ReportView) -> String {
    let within = report
        .parameter_f64("expectRecoveryWithinSeconds")
        .or_else(|| report.parameter_f64("recoveryTimeoutSeconds"));
    within.map_or_else(|| "?".into(), configured)
}

/// One line per kill, then the totals.
pub fn describe(report: &ReportView, style: &Style) -> Option<Said> {
    let seen: Seen = report.observations()?;
    let verb = if seen.method == "evict" {
        "evicted"
    } else {
        "killed"
    };
    let figure = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), ms);
    let ready = right_aligned(
        &seen
            .kills
            .iter()
            .map(|k| figure(k.replacement_ready_ms))
            .collect::<Vec<_>>(),
    );
    let back = right_aligned(
        &seen
            .kills
            .iter()
            .map(|k| figure(k.recovered_ms))
            .collect::<Vec<_>>(),
    );
    let names = right_aligned(&seen.kills.iter().map(|k| k.pod.clone()).collect::<Vec<_>>());
    let limit = limit(report);
    let mut sentences = Vec::new();
    for (i, kill) in seen.kills.iter().enumerate() {
        let name = names[i].trim_start();
        let at = clock(&kill.requested_at).unwrap_or("?");
        let verdict = criterion(report, kill.index).map(|c| style.verdict(c.passed));
        let why = kill.message.as_deref().unwrap_or("");
        sentences.push(match kill.outcome.as_str() {
            "recovered" | "not-recovered" | "interrupted" => {
                let end = if kill.outcome == "recovered" {
                    format!("{} after {}", whole(&seen), back[i])
                } else {
                    style.bad(&format!("{} not whole", whole(&seen)))
                };
                format!(
                    "{verb} {name} at {at} UTC; replacement Ready after {}; {end} (limit {limit}: {})",
                    ready[i],
                    verdict.unwrap_or_default()
                )
            }
            "blocked-by-pdb" => format!("kill {}: {name} not evicted, {why}: nothing deleted", kill.index),
            "skipped-min-ready" => format!("kill {} skipped: {why}", kill.index),
            "vanished" => format!("kill {}: {name} was already gone, nothing deleted ({why})", kill.index),
            _ => style.bad(&format!("kill {} of {name} failed: {why}", kill.index)),
        });
    }
    let slowest = seen
        .slowest_recovery_ms
        .map(|m| format!("; the slowest in {}", ms(m)))
        .unwrap_or_default();
    let attempted = if seen.kills_attempted < seen.kills_requested as usize {
        style.bad(&format!(
            " ({} of {} kills attempted: FAIL)",
            seen.kills_attempted, seen.kills_requested
        ))
    } else {
        String::new()
    };
    // Nothing to revert: say how the run ended only when it was not by finishing its kills.
    let ended = match report.stop_reason.as_deref() {
        Some(r) if r.starts_with("all ") => String::new(),
        _ => format!("; {}", ending(report, "watch stopped", style)),
    };
    sentences.push(format!(
        "{} of {} kills recovered{slowest}{attempted}{ended}",
        seen.recovered, seen.kills_attempted,
    ));
    Some(Said {
        sentences,
        covers_criteria: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observations::{KillRecord, Observations};

    fn kill(index: usize, pod: &str, ready: f64, back: f64) -> KillRecord {
        KillRecord {
            index,
            pod: pod.into(),
            pod_uid: "u".into(),
            replacement: Some(format!("{pod}-new")),
            replacement_uid: Some("v".into()),
            outcome: "recovered",
            recovered: true,
            message: None,
            event: None,
            requested_at: "2026-11-28T10:04:05.120Z".into(),
            deletion_accepted_at: None,
            old_pod_gone_at: None,
            replacement_created_at: None,
            replacement_scheduled_at: None,
            replacement_ready_at: None,
            recovered_at: None,
            deletion_accepted_ms: Some(12.0),
            old_pod_gone_ms: None,
            replacement_created_ms: None,
            replacement_scheduled_ms: None,
            replacement_ready_ms: Some(ready),
            recovered_ms: Some(back),
        }
    }

    /// Real observations read back through [`Seen`], figures aligned across kills.
    #[test]
    fn one_aligned_sentence_per_kill_then_the_totals() {
        let observations = Observations {
            namespace: "lomash-wood".into(),
            workload: Some("deployment/product-service".into()),
            selector: Some("app=product-service".into()),
            desired_replicas: 2,
            method: "delete",
            kills_requested: 2,
            kills_attempted: 2,
            recovered: 2,
            slowest_recovery_ms: Some(11_400.0),
            throttled_requests: 0,
            watch_relists: 0,
            kills: vec![
                kill(1, "product-service-7d9c-abc12", 11_200.0, 11_400.0),
                kill(2, "product-service-7d9c-def34", 9_800.0, 10_100.0),
            ],
        };
        let criterion = |i: usize, pod: &str| {
            serde_json::json!({"name": format!("kill {i} ({pod}) recovery"), "expected": "recovered within 30s",
                               "actual": "recovered in 11.4 s", "passed": true})
        };
        let report = serde_json::json!({
            "action": "run", "tool": "pod-killer", "result": "ok", "stopReason": "all 2 kill(s) done",
            "parameters": {"expectRecoveryWithinSeconds": 30.0, "recoveryTimeoutSeconds": 120.0},
            "phases": [{"name": "apply", "status": "completed", "durationMs": 3.0}],
            "observations": observations,
            "criteria": [criterion(1, "product-service-7d9c-abc12"), criterion(2, "product-service-7d9c-def34")],
            "revert": {"status": "reverted", "durationMs": 0.4, "manualSteps": []}
        });
        let view = ReportView::from_value(&report).unwrap();
        let said = describe(&view, &Style::plain()).unwrap();
        assert!(said.covers_criteria);
        assert_eq!(
            said.sentences,
            [
                "killed product-service-7d9c-abc12 at 10:04:05 UTC; replacement Ready after 11.2 s; deployment whole after 11.4 s (limit 30 s: pass)",
                "killed product-service-7d9c-def34 at 10:04:05 UTC; replacement Ready after  9.8 s; deployment whole after 10.1 s (limit 30 s: pass)",
                "2 of 2 kills recovered; the slowest in 11.4 s"
            ]
        );
    }
}
