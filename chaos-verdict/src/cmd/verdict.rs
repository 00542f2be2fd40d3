//! `verdict` and `gate`.

use std::path::Path;

use crate::chart::{self, Marks};
use crate::checks::{self, CheckSpec, Kind};
use crate::cli::{BandArgs, GateArgs, Inputs, VerdictArgs};
use crate::error::{Exit, Result, VerdictError};
use crate::evaluate::{Run, Status};
use crate::per_second;
use crate::recovery::BandSettings;
use crate::resultlog;
use crate::series::Series;
use crate::time::{self, Millis};
use crate::timeline::Timeline;
use crate::verdict::{self, Identity, PointsInfo};

struct Loaded {
    series: Series,
    summary: crate::points::ReadSummary,
    timeline: Timeline,
    specs: Vec<CheckSpec>,
}

fn load(inputs: &Inputs) -> Result<Loaded> {
    let specs = checks::read(&inputs.checks)?;
    for name in &inputs.confirm {
        if !specs
            .iter()
            .any(|c| c.kind == Kind::Manual && c.name == *name)
        {
            let manual: Vec<String> = specs
                .iter()
                .filter(|c| c.kind == Kind::Manual)
                .map(|c| format!("'{}'", c.name))
                .collect();
            return Err(VerdictError::bad(format!(
                "--confirm '{name}' names no manual check (manual checks: {})",
                if manual.is_empty() {
                    "none".to_owned()
                } else {
                    manual.join(", ")
                }
            )));
        }
    }
    let timeline = Timeline::read(&inputs.timeline)?;
    let (series, summary) = Series::from_files(&inputs.points)?;
    Ok(Loaded {
        series,
        summary,
        timeline,
        specs,
    })
}

fn band(args: &BandArgs) -> BandSettings {
    // Seconds given on the command line to whole milliseconds (at least one).
    #[allow(clippy::cast_possible_truncation)]
    let window_ms = ((args.band_window_seconds * 1000.0).round() as Millis).max(1);
    BandSettings {
        p95_factor: args.band_p95_factor,
        p95_slack_ms: args.band_p95_slack_ms,
        error_points: args.band_error_points,
        window_ms,
        windows: args.band_windows,
    }
}

/// The longest run a verdict covers; a longer span means a bad timestamp somewhere.
const MAX_RUN_MS: Millis = 7 * 24 * 3600 * 1000;

/// Where the data ends: after the last request, or the timeline's last event if later.
/// Refuses a run spanning more than 7 days (a bad timestamp would make the per-second
/// outputs enormous).
fn checked_data_end(series: &Series, timeline: &Timeline) -> Result<Millis> {
    let end = data_end(series, timeline);
    let first_phase = timeline.phases.iter().map(|p| p.start).min();
    let start = series
        .first_at()
        .into_iter()
        .chain(first_phase)
        .min()
        .unwrap_or(end);
    if end - start > MAX_RUN_MS {
        return Err(VerdictError::bad(format!(
            "the run spans {} to {}, more than 7 days: is a timestamp in the timeline or the points wrong?",
            time::format(start),
            time::format(end)
        )));
    }
    Ok(end)
}

fn data_end(series: &Series, timeline: &Timeline) -> Millis {
    let phases = timeline
        .phases
        .iter()
        .flat_map(|p| [Some(p.start), p.end])
        .flatten();
    let faults = timeline.faults.iter().flat_map(|f| {
        let (s, e) = f.window();
        [s, e]
    });
    let marks = timeline.marks.iter().map(|m| Some(m.at));
    let last_event = phases.chain(faults.flatten()).chain(marks.flatten()).max();
    series
        .last_at()
        .map(|t| t + 1)
        .into_iter()
        .chain(last_event)
        .max()
        .unwrap_or_else(time::now)
}

pub fn verdict(args: &VerdictArgs) -> Result<Exit> {
    let loaded = load(&args.inputs)?;
    let previous = match &args.result_log {
        Some(path) => match std::fs::read_to_string(path) {
            Ok(text) => resultlog::previous(&text, &args.experiment),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(VerdictError::io("cannot read the result log", path, e)),
        },
        None => None,
    };
    let base_dir = args
        .inputs
        .timeline
        .parent()
        .unwrap_or(Path::new("."))
        .to_owned();
    let run = Run {
        series: &loaded.series,
        timeline: &loaded.timeline,
        base_dir,
        band: band(&args.inputs.band),
        data_end: checked_data_end(&loaded.series, &loaded.timeline)?,
        confirmed: &args.inputs.confirm,
    };
    let points = PointsInfo {
        files: args
            .inputs
            .points
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        lines: loaded.summary.lines,
        requests: loaded.summary.requests,
        partial_tail: loaded.summary.partial_tail,
        first_at: loaded.series.first_at().map(time::format),
        last_at: loaded.series.last_at().map(time::format),
        request_names: loaded.series.names().to_vec(),
    };
    let id = Identity {
        experiment: args.experiment.clone(),
        run_id: args.run_id.clone(),
        environment: args.environment.as_str().to_owned(),
    };
    let v = verdict::build(&id, &run, &loaded.specs, points, previous);

    std::fs::create_dir_all(&args.out)
        .map_err(|e| VerdictError::io("cannot create", &args.out, e))?;
    let json = serde_json::to_string_pretty(&v)
        .map_err(|e| VerdictError::bad(format!("cannot serialise the verdict: {e}")))?;
    super::write(&args.out.join("result.json"), &(json + "\n"))?;
    let rows = per_second::rows(&loaded.series, &loaded.timeline, run.data_end);
    super::write(&args.out.join("seconds.csv"), &per_second::csv(&rows))?;
    super::write(&args.out.join("summary.md"), &crate::summary::markdown(&v))?;
    let svg = chart::render(&rows, &marks(&v, &loaded.timeline, run.data_end))
        .map_err(VerdictError::bad)?;
    super::write(&args.out.join("timeline.svg"), &svg)?;

    println!("{}", v.summary);
    println!("{}", v.comparison);
    Ok(v.result.exit())
}

fn marks(v: &verdict::Verdict, timeline: &Timeline, data_end: Millis) -> Marks {
    let faults = timeline
        .faults
        .iter()
        .filter_map(|f| match f.window() {
            (Some(s), e) => Some((f.name.clone(), s, e.unwrap_or(data_end))),
            _ => None,
        })
        .collect();
    let mut events = Vec::new();
    if let (Some(at), Some(secs)) = (v.recovery.recovered_ms, v.recovery.recovery_seconds) {
        events.push((format!("recovered +{secs} s"), at, true));
    }
    for m in &timeline.marks {
        if matches!(m.kind.as_str(), "guard-trip" | "faults-removed") {
            events.push((m.kind.replace('-', " "), m.at, false));
        }
    }
    if let Some(a) = &timeline.abort {
        if a.by != "guard" {
            events.push((format!("aborted ({})", a.by), a.at, false));
        }
    }
    Marks {
        title: format!("{} run {}: {}", v.experiment, v.run_id, v.result.word()),
        faults,
        phases: timeline
            .phases
            .iter()
            .map(|p| (p.name.clone(), p.start))
            .collect(),
        events,
        band_p95_ms: v.band.map(|b| b.p95_max_ms),
        band_error_percent: v.band.map(|b| b.error_rate_max_percent),
    }
}

pub fn gate(args: &GateArgs) -> Result<Exit> {
    let loaded = load(&args.inputs)?;
    let run = Run {
        series: &loaded.series,
        timeline: &loaded.timeline,
        base_dir: args
            .inputs
            .timeline
            .parent()
            .unwrap_or(Path::new("."))
            .to_owned(),
        band: band(&args.inputs.band),
        data_end: checked_data_end(&loaded.series, &loaded.timeline)?,
        confirmed: &args.inputs.confirm,
    };
    let mut failed = false;
    let specs = loaded
        .specs
        .iter()
        .filter(|c| c.kind == Kind::Metric && c.window == args.phase);
    let mut any = false;
    for spec in specs {
        any = true;
        let r = run.evaluate(spec);
        failed |= r.status == Status::Fail;
        let status = match r.status {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Manual => "manual",
        };
        println!("{status}\t{}\t{}", r.name, r.detail);
    }
    if !any {
        println!("pass\t(no checks on phase '{}')\t", args.phase);
    }
    Ok(if failed { Exit::Fail } else { Exit::Pass })
}
