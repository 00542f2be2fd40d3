//! The verdict of a run: every check evaluated, every phase compared with the baseline,
//! the time to recover, the abort, and the result (PASS / FAIL / PARTIAL / ABORTED).
//! Serialised as `result.json` (docs/verdict.schema.json).

use serde::Serialize;

use crate::checks::CheckSpec;
use crate::evaluate::{CheckResult, NamedWindow, Run, Status};
use crate::recovery::{self, Band, BandSettings, Recovery};
use crate::resultlog::{Figures, Previous, Row};
use crate::series::{Stats, Window};
use crate::time::{self, Millis};

pub use crate::faults::{AbortInfo, FaultInfo};
use crate::faults::{abort_info, fault_info, removal_check};

pub const SCHEMA_VERSION: &str = "1.0";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    Fail,
    Partial,
    Aborted,
}

impl Outcome {
    pub fn exit(self) -> crate::error::Exit {
        use crate::error::Exit;
        match self {
            Outcome::Pass => Exit::Pass,
            Outcome::Fail => Exit::Fail,
            Outcome::Partial => Exit::Partial,
            Outcome::Aborted => Exit::Aborted,
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Partial => "PARTIAL",
            Outcome::Aborted => "ABORTED",
        }
    }
}

/// What the run is (given on the command line).
#[derive(Debug, Clone)]
pub struct Identity {
    pub experiment: String,
    pub run_id: String,
    pub environment: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseStats {
    pub name: String,
    pub started_at: String,
    pub ended_at: String,
    pub ended: bool,
    pub duration_ms: Millis,
    #[serde(flatten)]
    pub stats: Stats,
    pub p95_delta_ms: Option<f64>,
    pub p95_ratio: Option<f64>,
    pub error_rate_delta_percent: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PointsInfo {
    pub files: Vec<String>,
    pub lines: u64,
    pub requests: u64,
    pub partial_tail: bool,
    pub first_at: Option<String>,
    pub last_at: Option<String>,
    pub request_names: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Verdict {
    pub schema_version: &'static str,
    pub experiment: String,
    pub run_id: String,
    pub environment: String,
    pub result: Outcome,
    pub exit_code: u8,
    pub summary: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub abort: Option<AbortInfo>,
    pub checks: Vec<CheckResult>,
    pub phases: Vec<PhaseStats>,
    pub faults: Vec<FaultInfo>,
    pub baseline: Option<Stats>,
    pub band_settings: BandSettings,
    pub band: Option<Band>,
    pub recovery: Recovery,
    pub figures: Figures,
    pub previous: Option<Previous>,
    pub comparison: String,
    pub result_log_row: Row,
    pub points: PointsInfo,
}

/// Builds the verdict. `previous` is the experiment's previous run from the result log.
pub fn build(
    id: &Identity,
    run: &Run<'_>,
    specs: &[CheckSpec],
    points: PointsInfo,
    previous: Option<Previous>,
) -> Verdict {
    let mut checks: Vec<CheckResult> = specs.iter().map(|s| run.evaluate(s)).collect();
    checks.extend(run.timeline.faults.iter().map(removal_check));
    let baseline = run.baseline(None);
    let band = baseline
        .as_ref()
        .and_then(|b| Band::from_baseline(b, &run.band));
    let recovery = main_recovery(run, band.as_ref());
    let phases = phase_stats(run, baseline.as_ref());
    let abort = abort_info(run.timeline);
    let result = outcome(&checks, abort.is_some());
    let fault_stats = run
        .window("fault")
        .ok()
        .map(|w| run.series.stats(w.window, None));
    let figures = Figures {
        recovery_seconds: recovery.recovery_seconds,
        fault_p95_ms: fault_stats.as_ref().and_then(|s| s.p95_ms),
        fault_error_rate_percent: fault_stats.as_ref().and_then(|s| s.error_rate_percent),
    };
    let summary = summary_line(result, &checks, abort.as_ref());
    let comparison = crate::resultlog::comparison(&id.experiment, &figures, previous.as_ref());
    let figures_text = crate::resultlog::figures_text(
        &figures,
        baseline.as_ref().and_then(|b| b.p95_ms),
        baseline.as_ref().and_then(|b| b.error_rate_percent),
    );
    let started = run
        .timeline
        .phases
        .first()
        .map(|p| p.start)
        .or(run.series.first_at());
    let result_log_row = Row {
        date: started.map_or_else(|| time::date(time::now()), time::date),
        experiment: id.experiment.clone(),
        environment: capitalised(&id.environment),
        result: result.word().to_owned(),
        notes: format!("{summary}; {figures_text}; run {}", id.run_id),
    };
    Verdict {
        schema_version: SCHEMA_VERSION,
        experiment: id.experiment.clone(),
        run_id: id.run_id.clone(),
        environment: id.environment.clone(),
        result,
        exit_code: result.exit() as u8,
        summary,
        started_at: started.map(time::format),
        ended_at: Some(time::format(run.data_end)),
        abort,
        checks,
        phases,
        faults: run.timeline.faults.iter().map(fault_info).collect(),
        baseline,
        band_settings: run.band,
        band,
        recovery,
        figures,
        previous,
        comparison,
        result_log_row,
        points,
    }
}

fn outcome(checks: &[CheckResult], aborted: bool) -> Outcome {
    if aborted {
        Outcome::Aborted
    } else if checks.iter().any(|c| c.status == Status::Fail) {
        Outcome::Fail
    } else if checks.iter().any(|c| c.status == Status::Manual) {
        Outcome::Partial
    } else {
        Outcome::Pass
    }
}

fn summary_line(result: Outcome, checks: &[CheckResult], abort: Option<&AbortInfo>) -> String {
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Fail)
        .map(|c| c.name.as_str())
        .collect();
    let manual: Vec<&str> = checks
        .iter()
        .filter(|c| c.status == Status::Manual)
        .map(|c| c.name.as_str())
        .collect();
    let passed = checks.iter().filter(|c| c.status == Status::Pass).count();
    let mut parts = vec![format!("{passed}/{} checks passed", checks.len())];
    if let Some(a) = abort {
        parts.insert(0, format!("aborted by {}: {}", a.by, a.reason));
    }
    if !failed.is_empty() {
        parts.push(format!(
            "failed: {}",
            failed
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if !manual.is_empty() {
        parts.push(format!(
            "to confirm: {}",
            manual
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    format!("{}: {}", result.word(), parts.join("; "))
}

fn main_recovery(run: &Run<'_>, band: Option<&Band>) -> Recovery {
    let Some(band) = band else {
        return Recovery::unknown(
            "fault-end",
            None,
            "no baseline requests: the band is undefined",
        );
    };
    match run.timeline.fault_span() {
        None => Recovery::unknown("fault-end", None, "no fault in this run"),
        Some((_, None)) => {
            Recovery::unknown("fault-end", None, "not recovered: the faults never ended")
        }
        Some((_, Some(end))) => {
            let found =
                recovery::time_to_recover(run.series, None, band, &run.band, end, run.data_end);
            Recovery::measured("fault-end", end, found, &run.band)
        }
    }
}

fn phase_stats(run: &Run<'_>, baseline: Option<&Stats>) -> Vec<PhaseStats> {
    let mut named: Vec<NamedWindow> = run
        .timeline
        .phases
        .iter()
        .map(|p| {
            // Each run of a phase with its own bounds; an open phase ends with the data.
            let end = p.end.unwrap_or(run.data_end.max(p.start));
            NamedWindow {
                name: p.name.clone(),
                started_at: time::format(p.start),
                ended_at: time::format(end),
                ended: p.end.is_some(),
                window: Window {
                    from: p.start,
                    to: end,
                },
            }
        })
        .collect();
    named.extend(run.window("fault").ok());
    let base_p95 = baseline.and_then(|b| b.p95_ms);
    let base_err = baseline.and_then(|b| b.error_rate_percent);
    let round = chaos_common::report::round;
    named
        .into_iter()
        .map(|w| {
            let stats = run.series.stats(w.window, None);
            PhaseStats {
                p95_delta_ms: stats.p95_ms.zip(base_p95).map(|(a, b)| round(a - b, 3)),
                p95_ratio: stats
                    .p95_ms
                    .zip(base_p95)
                    .filter(|(_, b)| *b > 0.0)
                    .map(|(a, b)| round(a / b, 3)),
                error_rate_delta_percent: stats
                    .error_rate_percent
                    .zip(base_err)
                    .map(|(a, b)| round(a - b, 4)),
                name: w.name,
                started_at: w.started_at,
                ended_at: w.ended_at,
                ended: w.ended,
                duration_ms: w.window.to - w.window.from,
                stats,
            }
        })
        .collect()
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map_or_else(String::new, |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
#[path = "verdict_tests.rs"]
mod tests;
