//! Several targets: remote mode's aggregated report (docs/report.md, "Remote mode") as a
//! table, one row per pod: its name, how its run ended (`details.outcome`), its own
//! result, and what happened there in the tool's own sentence, read from the pod's own
//! report (`details.report`, the same schema). A pod without a report says why
//! (`details.errors`, the OOM watch).

use serde_json::Value;

use super::{Describe, ReportView, Style, applied, ms, outcome};

/// One pod's row.
struct Row {
    pod: String,
    outcome: String,
    result: String,
    said: Vec<String>,
}

fn row(target: &super::TargetView, describe: Describe, style: &Style) -> Row {
    let details = &target.details;
    let text = |key: &str| details.get(key).and_then(Value::as_str).unwrap_or("");
    let report = details.get("report").and_then(ReportView::from_value);
    let (result, said) = match &report {
        Some(pod) => (pod.result.clone(), pod_sentences(pod, describe, style)),
        None => ("none".to_owned(), why_no_report(details)),
    };
    Row {
        pod: target.name.clone(),
        outcome: text("outcome").to_owned(),
        result,
        said,
    }
}

/// What the pod's run said: the tool's sentences once applied, else why not.
fn pod_sentences(pod: &ReportView, describe: Describe, style: &Style) -> Vec<String> {
    if applied(pod) {
        if let Some(said) = describe(pod, style) {
            return said.sentences;
        }
    }
    let mut said: Vec<String> = pod.errors.iter().map(|e| e.message.clone()).collect();
    if said.is_empty() {
        said.push(outcome(pod, &Style::plain()));
    }
    said
}

fn why_no_report(details: &Value) -> Vec<String> {
    let mut said: Vec<String> = details
        .get("errors")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if let Some(oom) = details.get("oom") {
        let killed = oom.get("oomKilled").and_then(Value::as_bool) == Some(true);
        let ready = oom.get("readyAgainMs").and_then(Value::as_f64);
        said.push(match (killed, ready) {
            (true, Some(r)) => format!("container OOM-killed; Ready again after {}", ms(r)),
            (true, None) => "container OOM-killed; not Ready again".to_owned(),
            _ => "no report came back".to_owned(),
        });
    }
    if said.is_empty() {
        said.push("no report came back".into());
    }
    said
}

/// Pads each column to its widest cell.
fn pad(cells: [&str; 3], widths: [usize; 3]) -> String {
    format!(
        "{:<w0$}  {:<w1$}  {:<w2$}  ",
        cells[0],
        cells[1],
        cells[2],
        w0 = widths[0],
        w1 = widths[1],
        w2 = widths[2]
    )
}

/// The table's lines (without the two-space indent the caller adds).
pub fn lines(report: &ReportView, describe: Describe, style: &Style) -> Vec<String> {
    let rows: Vec<Row> = report
        .targets
        .iter()
        .filter(|t| t.details.get("report").is_some())
        .map(|t| row(t, describe, style))
        .collect();
    let head = ["POD", "OUTCOME", "RESULT"];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip([&r.pod, &r.outcome, &r.result]) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut lines = vec![format!("{}WHAT HAPPENED", pad(head, widths))];
    let indent = " ".repeat(widths.iter().sum::<usize>() + 6);
    for r in &rows {
        let prefix = pad([&r.pod, &r.outcome, &r.result], widths);
        let mut said = r.said.iter();
        lines.push(format!(
            "{prefix}{}",
            said.next().map_or("", String::as_str)
        ));
        lines.extend(said.map(|s| format!("{indent}{s}")));
    }
    lines.extend(totals(report));
    lines
}

/// Remote observations in one sentence: pods applied, the slowest, pods left out.
fn totals(report: &ReportView) -> Vec<String> {
    let o = &report.observations;
    let number = |key: &str| o.get(key).and_then(Value::as_u64);
    let mut lines = Vec::new();
    if let (Some(pods), Some(applied)) = (number("pods"), number("applied")) {
        let slowest = o
            .get("maxAppliedMs")
            .and_then(Value::as_f64)
            .map(|m| format!(" (the slowest after {})", ms(m)))
            .unwrap_or_default();
        lines.push(format!(
            "the fault was applied in {applied} of {pods} pods{slowest}"
        ));
    }
    let skipped: Vec<&str> = o
        .get("skippedPods")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !skipped.is_empty() {
        lines.push(format!("left out: {}", skipped.join(", ")));
    }
    lines
}
