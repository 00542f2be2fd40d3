//! Evaluating checks against a run: the window each check names, its observed value,
//! sample count and status. "No data" (no requests in the window, a phase that never
//! ran, a value that is missing) and "not recovered" are failures, never passes.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::checks::{CheckSpec, Kind, kind_name};
use crate::recovery::BandSettings;
use crate::series::{Series, Stats, Window};
use crate::time::{self, Millis};
use crate::timeline::Timeline;

/// Everything a check can look at.
#[derive(Debug)]
pub struct Run<'a> {
    pub series: &'a Series,
    pub timeline: &'a Timeline,
    /// Relative `source=` paths are resolved here (the run directory).
    pub base_dir: PathBuf,
    pub band: BandSettings,
    /// Where the data ends: open phases and faults end here.
    pub data_end: Millis,
    pub confirmed: &'a [String],
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Manual,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NamedWindow {
    pub name: String,
    pub started_at: String,
    pub ended_at: String,
    /// False when the phase or fault had not ended: the window runs to the end of the data.
    pub ended: bool,
    #[serde(skip)]
    pub window: Window,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckResult {
    pub name: String,
    pub kind: &'static str,
    pub window: Option<NamedWindow>,
    pub metric: Option<String>,
    pub request: Option<String>,
    /// The criterion, e.g. `< 5 requests`.
    pub expected: String,
    pub observed: Option<f64>,
    pub unit: String,
    /// Requests the observed value was computed from (metric checks).
    pub samples: Option<u64>,
    pub status: Status,
    pub detail: String,
}

impl Run<'_> {
    /// Resolves a window name: `run`, a phase, `fault`, `fault+SECONDS`, `fault:NAME`,
    /// `after-fault`.
    pub fn window(&self, name: &str) -> Result<NamedWindow, String> {
        if let Some(extra) = name.strip_prefix("fault+") {
            return self.fault_extended(name, extra);
        }
        let start = self.series.first_at().unwrap_or(self.data_end);
        let (from, to) = match name {
            "run" => (Some(start), Some(self.data_end)),
            "fault" => match self.timeline.fault_span() {
                Some((s, e)) => (Some(s), e),
                None => return Err("no fault started in this run".into()),
            },
            "after-fault" => match self.timeline.fault_span() {
                Some((_, Some(e))) => (Some(e), Some(self.data_end)),
                Some((_, None)) => return Err("the faults never ended".into()),
                None => return Err("no fault started in this run".into()),
            },
            _ => match name.strip_prefix("fault:") {
                Some(f) => match self.timeline.faults.iter().find(|x| x.name == f) {
                    Some(fault) => fault.window(),
                    None => return Err(format!("no fault named '{f}' in the timeline")),
                },
                None => match self.timeline.phase(name) {
                    Some(p) => (Some(p.start), p.end),
                    None => {
                        return Err(format!(
                            "phase '{name}' is not in the timeline (it did not run)"
                        ));
                    }
                },
            },
        };
        let from = from.ok_or(format!("'{name}' never started"))?;
        let to_or_end = to.unwrap_or(self.data_end.max(from));
        Ok(NamedWindow {
            name: name.to_owned(),
            started_at: time::format(from),
            ended_at: time::format(to_or_end),
            ended: to.is_some(),
            window: Window {
                from,
                to: to_or_end,
            },
        })
    }

    /// `fault+S`: the faults' window and S seconds after it (what a fault leaves behind:
    /// a replacement pod that answers errors once Ready), cut at the end of the data; the
    /// window counts as ended only when the data reached its end.
    fn fault_extended(&self, name: &str, extra: &str) -> Result<NamedWindow, String> {
        let seconds: u32 = extra
            .parse()
            .map_err(|_| format!("window {name}: expected fault+SECONDS, e.g. fault+30"))?;
        let (from, end) = self
            .timeline
            .fault_span()
            .ok_or("no fault started in this run")?;
        let wanted = end.map(|e| e + Millis::from(seconds) * 1000);
        let to = wanted
            .map_or(self.data_end, |w| w.min(self.data_end))
            .max(from);
        Ok(NamedWindow {
            name: name.to_owned(),
            started_at: time::format(from),
            ended_at: time::format(to),
            ended: wanted.is_some_and(|w| w <= self.data_end),
            window: Window { from, to },
        })
    }

    pub fn baseline(&self, request: Option<&str>) -> Option<Stats> {
        let w = self.window("baseline").ok()?;
        Some(self.series.stats(w.window, request)).filter(|s| s.requests > 0)
    }

    pub fn evaluate(&self, spec: &CheckSpec) -> CheckResult {
        let mut result = CheckResult {
            name: spec.name.clone(),
            kind: kind_name(spec.kind),
            window: None,
            metric: spec.metric.as_ref().map(|(m, _)| m.clone()),
            request: spec.request.clone(),
            expected: spec
                .op
                .map(|(op, t)| format!("{} {} {}", op.symbol(), t, spec.unit))
                .unwrap_or_default(),
            observed: None,
            unit: spec.unit.clone(),
            samples: None,
            status: Status::Fail,
            detail: String::new(),
        };
        match spec.kind {
            Kind::Manual => self.manual(spec, &mut result),
            Kind::Outcome => outcome(spec, &mut result),
            Kind::Value => self.value(spec, &mut result),
            Kind::Metric => self.metric(spec, &mut result),
        }
        result
    }

    fn manual(&self, spec: &CheckSpec, r: &mut CheckResult) {
        r.expected = "confirmed by the operator (--confirm)".into();
        if self.confirmed.contains(&spec.name) {
            r.status = Status::Pass;
            r.detail = "confirmed by the operator with --confirm".into();
        } else {
            r.status = Status::Manual;
            r.detail = "not measurable from here: confirm it with --confirm NAME".into();
        }
    }

    fn value(&self, spec: &CheckSpec, r: &mut CheckResult) {
        let observed = match (&spec.observed, &spec.source, &spec.pointer) {
            (Some(text), _, _) if !text.trim().is_empty() => text
                .trim()
                .parse::<f64>()
                .map_err(|_| format!("observed value '{text}' is not a number")),
            (_, Some(source), Some(pointer)) => read_pointer(&self.base_dir.join(source), pointer),
            _ => Err("no data: the value was never observed".into()),
        };
        match observed {
            Ok(v) => judge(r, spec, v * spec.scale, String::new()),
            Err(why) => r.detail = why,
        }
    }
}

fn judge(r: &mut CheckResult, spec: &CheckSpec, observed: f64, context: String) {
    r.observed = Some(round(observed, 4));
    let Some((op, threshold)) = spec.op else {
        return;
    };
    let holds = op.holds(observed, threshold);
    r.status = if holds { Status::Pass } else { Status::Fail };
    let verdict = if holds { "holds" } else { "does not hold" };
    r.detail = format!(
        "{} {} {} {verdict}",
        round(observed, 4),
        spec.unit,
        r.expected
    )
    .trim()
    .to_owned();
    if !context.is_empty() {
        r.detail = format!("{}; {context}", r.detail);
    }
}

fn outcome(spec: &CheckSpec, r: &mut CheckResult) {
    r.expected = "pass".into();
    r.status = match spec.observed.as_deref() {
        Some("pass") => Status::Pass,
        _ => Status::Fail,
    };
    r.detail = match (spec.observed.as_deref(), spec.detail.is_empty()) {
        (None | Some(""), _) => "no data: the command never ran".into(),
        (_, false) => spec.detail.clone(),
        (Some(o), true) => o.to_owned(),
    };
}

fn read_pointer(path: &Path, pointer: &str) -> Result<f64, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("no data: cannot read {}: {e}", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| format!("no data: {} is not JSON: {e}", path.display()))?;
    match value.pointer(pointer) {
        Some(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("{pointer} is not a finite number")),
        Some(Value::Bool(b)) => Ok(if *b { 1.0 } else { 0.0 }),
        Some(Value::Null) | None => Err(format!(
            "no data: {} has no value at {pointer}",
            path.display()
        )),
        Some(other) => Err(format!(
            "{} at {pointer} is {other}, not a number",
            path.display()
        )),
    }
}

fn round(v: f64, decimals: u32) -> f64 {
    chaos_common::report::round(v, decimals)
}

#[path = "evaluate_metric.rs"]
mod metric;

#[cfg(test)]
#[path = "evaluate_tests.rs"]
mod tests;
