//! The human summary printed on stdout without `--output json`: the report in sentences.
//!
//! The common part says what every report has (the header with the result, a dry run's
//! plan once, why a run was refused, failed criteria, errors, how to remove a fault whose
//! revert failed, what `--stop` and `--cleanup` did). What the fault achieved is said by
//! the tool itself: each tool crate has a `summary.rs` whose function ([`Describe`])
//! reads its typed observations from the report and returns sentences such as
//! `held 50.0% of one CPU for 3.0 s on pid 4242 (asked 50%, off by +0.003 points);
//! reverted in 0.31 ms`. Remote mode's aggregated report becomes a table with one row
//! per pod, each saying that pod's own sentence (its `table` module).
//!
//! The renderer works on the report's JSON form ([`ReportView`]), so the same text comes
//! from a run just finished, from a saved report (`TOOL summary FILE`) and from a pod's
//! report inside an aggregated one.

mod say;
mod table;
mod view;

pub use say::{
    Style, clock, configured, count, list, mib, ms, percent, plural, right_aligned, secs, signed,
};
pub use view::{CriterionView, ErrorView, PhaseView, ReportView, RevertView, TargetView};

use serde_json::Value;

/// What a tool says about a run: its sentences, and whether they already judge every
/// criterion of the report (pod-killer's `(limit 30 s: pass)`), so that the criteria are
/// not listed twice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Said {
    pub sentences: Vec<String>,
    pub covers_criteria: bool,
}

impl Said {
    pub fn new(sentences: Vec<String>) -> Said {
        Said {
            sentences,
            covers_criteria: false,
        }
    }
}

/// A tool's summary hook: its sentences for a run report whose fault was applied; None
/// when the observations are not the tool's (the generic sentence is used instead).
pub type Describe = fn(&ReportView, &Style) -> Option<Said>;

/// The hook of a tool that says nothing of its own.
pub fn say_nothing(_: &ReportView, _: &Style) -> Option<Said> {
    None
}

/// The summary of a report in its JSON form.
pub fn render_value(report: &Value, describe: Describe, style: &Style) -> String {
    match ReportView::from_value(report) {
        Some(view) => render(&view, describe, style),
        None => "not a chaos-tools report\n".into(),
    }
}

/// The summary of `report`: a header line, then indented sentences.
pub fn render(report: &ReportView, describe: Describe, style: &Style) -> String {
    let mut lines = vec![header(report, style)];
    let body = match report.action.as_str() {
        "stop" => stop_lines(report),
        "cleanup" => cleanup_lines(report),
        _ if report.is_aggregate() => table::lines(report, describe, style),
        _ => run_lines(report, describe, style),
    };
    lines.extend(body.into_iter().map(|l| format!("  {l}")));
    lines.extend(
        closing_lines(report, style)
            .into_iter()
            .map(|l| format!("  {l}")),
    );
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

fn header(report: &ReportView, style: &Style) -> String {
    let what = match (report.action.as_str(), report.result.as_str()) {
        ("stop", _) => "--stop",
        ("cleanup", "dry-run") => "--cleanup dry run",
        ("cleanup", _) => "--cleanup",
        (_, "dry-run") => "dry run",
        _ => "run",
    };
    format!(
        "{} {what} {}: {}",
        report.tool,
        report.run_id,
        outcome(report, style)
    )
}

/// The result in words, coloured.
pub fn outcome(report: &ReportView, style: &Style) -> String {
    if report.revert.status == "failed" {
        return style.bad("REVERT FAILED: the fault may still be in place");
    }
    match report.result.as_str() {
        "ok" => style.good("ok"),
        "dry-run" => style.good("nothing was touched"),
        "aborted" => style.warn("stopped early, fault reverted"),
        "refused" => style.bad("refused, nothing was touched"),
        "bad-input" => style.bad("bad input, nothing was touched"),
        "failed" => style.bad("FAILED"),
        other => other.to_owned(),
    }
}

fn run_lines(report: &ReportView, describe: Describe, style: &Style) -> Vec<String> {
    let mut lines = Vec::new();
    match report.result.as_str() {
        "dry-run" => {
            lines.extend(targets_line(report));
            lines.extend(plan_lines(report));
            return lines;
        }
        "refused" | "bad-input" => return lines,
        _ => {}
    }
    let said = if applied(report) {
        describe(report, style).unwrap_or_else(|| generic(report, style))
    } else {
        Said::new(vec![format!(
            "nothing was applied ({})",
            report
                .stop_reason
                .as_deref()
                .unwrap_or("failed before apply")
        )])
    };
    lines.extend(said.sentences);
    if !said.covers_criteria {
        lines.extend(report.criteria.iter().map(|c| criterion_line(c, style)));
    }
    lines
}

/// `pass: name: expected X, got Y` (or `FAIL`).
pub fn criterion_line(c: &CriterionView, style: &Style) -> String {
    format!(
        "{}: {}: expected {}, got {}",
        style.verdict(c.passed),
        c.name,
        c.expected,
        c.actual
    )
}

/// True when the fault's apply step completed.
pub fn applied(report: &ReportView) -> bool {
    report
        .phases
        .iter()
        .any(|p| p.name == "apply" && p.status == "completed")
}

/// The sentence of a run whose tool said nothing: how long, and how it ended.
fn generic(report: &ReportView, style: &Style) -> Said {
    let held = report
        .phase_ms("observe")
        .map(|ms| format!(" for {}", self::ms(ms)))
        .unwrap_or_default();
    Said::new(vec![format!(
        "the fault was in place{held}; {}",
        ending(report, "reverted", style)
    )])
}

/// How the run ended, for the end of a tool's sentence: `reverted in 0.31 ms`,
/// `stopped by SIGTERM; reverted in 4.3 ms`. `undone` names the revert in the tool's
/// words (`table removed`, `memory released`).
pub fn ending(report: &ReportView, undone: &str, style: &Style) -> String {
    let stopped = match report.stop_reason.as_deref() {
        None | Some("duration") => None,
        Some(reason) => Some(match reason.strip_prefix("signal:") {
            Some(signal) => format!("stopped by {signal}"),
            None => match reason.split_once(": ") {
                Some(("overran", _)) => style.bad("overran its duration"),
                Some(("failed", why)) => style.bad(&format!("failed: {why}")),
                _ => reason.to_owned(),
            },
        }),
    };
    let revert = match report.revert.status.as_str() {
        "reverted" => match report.revert.duration_ms {
            Some(took) => format!("{undone} in {}", ms(took)),
            None => undone.to_owned(),
        },
        "failed" => style.bad("REVERT FAILED"),
        _ => "nothing to revert".to_owned(),
    };
    match stopped {
        Some(stopped) => format!("{stopped}; {revert}"),
        None => revert,
    }
}

fn targets_line(report: &ReportView) -> Option<String> {
    let names: Vec<String> = report
        .targets
        .iter()
        .map(|t| format!("{} {}", t.kind, t.name))
        .collect();
    (!names.is_empty()).then(|| format!("on {}", list(&names)))
}

fn plan_lines(report: &ReportView) -> Vec<String> {
    if report.plan.is_empty() {
        return vec!["would do nothing".into()];
    }
    let mut lines = vec!["would:".to_owned()];
    let width = report.plan.len().to_string().len();
    for (i, step) in report.plan.iter().enumerate() {
        lines.push(format!("  {:>width$}. {step}", i + 1, width = width));
    }
    lines
}

/// Warnings, errors (each once) and, when the revert failed, the commands that remove
/// what may remain.
fn closing_lines(report: &ReportView, style: &Style) -> Vec<String> {
    let mut lines: Vec<String> = report
        .warnings
        .iter()
        .map(|w| format!("{} {w}", style.warn("warning:")))
        .collect();
    let mut seen: Vec<&str> = Vec::new();
    for e in &report.errors {
        if seen.contains(&e.message.as_str()) {
            continue;
        }
        seen.push(&e.message);
        let label = match e.kind.as_str() {
            "refused" | "bad-input" => "why:",
            _ => "error:",
        };
        lines.push(format!("{} {}", style.bad(label), e.message));
    }
    if report.revert.status == "failed" {
        lines.push(style.bad("remove what may remain with:"));
        lines.extend(report.revert.manual_steps.iter().map(|s| format!("  {s}")));
    }
    lines
}

fn stop_lines(report: &ReportView) -> Vec<String> {
    let running = report.observations.get("running").and_then(Value::as_bool);
    match (report.result.as_str(), running) {
        ("ok", Some(true)) => {
            let pids: Vec<String> = report.targets.iter().map(|t| t.name.clone()).collect();
            vec![format!(
                "stopped {}: it reverted its fault and exited",
                list(&pids)
            )]
        }
        ("ok", _) => vec!["not running: the run has already ended; nothing to stop".into()],
        _ => Vec::new(),
    }
}

fn cleanup_lines(report: &ReportView) -> Vec<String> {
    if report.result == "dry-run" {
        return if report.plan.is_empty() {
            vec!["nothing to stop or remove".into()]
        } else {
            plan_lines(report)
        };
    }
    let strings = |key: &str| -> Vec<String> {
        report
            .observations
            .get(key)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (stopped, removed) = (strings("stopped"), strings("removed"));
    let mut lines = Vec::new();
    if !stopped.is_empty() {
        lines.push(format!(
            "stopped {}: {}",
            plural(stopped.len() as u64, "run", "runs"),
            list(&stopped)
        ));
    }
    if !removed.is_empty() {
        lines.push(format!(
            "removed {}:",
            plural(removed.len() as u64, "leftover", "leftovers")
        ));
        lines.extend(removed.iter().map(|r| format!("  {r}")));
    }
    if lines.is_empty() && report.result == "ok" {
        lines.push("nothing to clean up: no run was running and nothing was left".into());
    }
    lines
}

#[cfg(test)]
mod tests;
