//! `timeline.svg`: p95 latency (top) and error rate (bottom) per second, fault windows
//! shaded, phase boundaries, the baseline band, the guard trip and the recovery marked.
//!
//! Drawn with plotters' SVG backend only, built without its `ttf` feature: plotters then
//! lays text out with a built-in estimate and writes it as SVG `<text>` elements that the
//! viewer renders with its own fonts. Nothing reads a font file or fontconfig, so CI and
//! a bare container render the same chart.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::per_second::SecondRow;
use crate::time::{self, Millis};

const SIZE: (u32, u32) = (1100, 640);
const FAULT_FILL: RGBColor = RGBColor(230, 80, 60);
const P95_LINE: RGBColor = RGBColor(40, 90, 200);
const ERROR_LINE: RGBColor = RGBColor(200, 40, 40);
const BAND_LINE: RGBColor = RGBColor(120, 120, 120);
const RECOVERY_LINE: RGBColor = RGBColor(20, 150, 60);

/// Everything the chart shows besides the per-second rows.
#[derive(Debug, Clone, Default)]
pub struct Marks {
    pub title: String,
    pub faults: Vec<(String, Millis, Millis)>,
    pub phases: Vec<(String, Millis)>,
    /// (label, time): recovery, guard trip, faults removed.
    pub events: Vec<(String, Millis, bool)>,
    pub band_p95_ms: Option<f64>,
    pub band_error_percent: Option<f64>,
}

/// Renders the chart to an SVG string.
pub fn render(rows: &[SecondRow], marks: &Marks) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let root = root.titled(&marks.title, ("sans-serif", 20)).map_err(err)?;
        let (top, bottom) = root.split_vertically(SIZE.1 / 2 - 20);
        let (origin, end) = span(rows, marks);
        let x = |t: Millis| time::seconds_between(origin, t);
        let p95: Vec<(f64, Option<f64>)> = rows
            .iter()
            .map(|r| (x(r.at) + 0.5, r.stats.p95_ms))
            .collect();
        let errors: Vec<(f64, Option<f64>)> = rows
            .iter()
            .map(|r| (x(r.at) + 0.5, r.stats.error_rate_percent))
            .collect();
        let p95_max = p95
            .iter()
            .filter_map(|(_, v)| *v)
            .chain(marks.band_p95_ms)
            .fold(1.0, f64::max)
            * 1.15;
        let panel = Panel {
            x_max: x(end).max(1.0),
            origin,
            marks,
        };
        panel.draw(
            &top,
            "p95 latency per second (ms)",
            &p95,
            p95_max,
            marks.band_p95_ms,
            P95_LINE,
        )?;
        panel.draw(
            &bottom,
            "error rate per second (%)",
            &errors,
            105.0,
            marks.band_error_percent,
            ERROR_LINE,
        )?;
        root.present().map_err(err)?;
    }
    Ok(svg)
}

struct Panel<'a> {
    x_max: f64,
    origin: Millis,
    marks: &'a Marks,
}

impl Panel<'_> {
    fn draw(
        &self,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
        caption: &str,
        values: &[(f64, Option<f64>)],
        y_max: f64,
        band: Option<f64>,
        colour: RGBColor,
    ) -> Result<(), String> {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 15))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..self.x_max, 0f64..y_max)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first request")
            .light_line_style(WHITE)
            .draw()
            .map_err(err)?;
        // Clamped: a mark outside the chart must not overflow the backend's pixel maths.
        let x = |t: Millis| time::seconds_between(self.origin, t).clamp(0.0, self.x_max);
        let faults = self.marks.faults.iter().map(|(_, s, e)| {
            Rectangle::new(
                [(x(*s), 0.0), (x(*e), y_max)],
                FAULT_FILL.mix(0.18).filled(),
            )
        });
        chart.draw_series(faults).map_err(err)?;
        for (i, (name, at)) in self.marks.phases.iter().enumerate() {
            let line = PathElement::new(vec![(x(*at), 0.0), (x(*at), y_max)], BLACK.mix(0.3));
            chart.draw_series(std::iter::once(line)).map_err(err)?;
            let label = Text::new(
                name.clone(),
                (x(*at) + 0.2, y_max * if i % 2 == 0 { 0.97 } else { 0.92 }),
                ("sans-serif", 11).into_font().color(&BLACK.mix(0.6)),
            );
            // Alternate rows: phases a fraction of a second apart would overlap.
            chart.draw_series(std::iter::once(label)).map_err(err)?;
        }
        if let Some(b) = band {
            let line = PathElement::new(vec![(0.0, b), (self.x_max, b)], BAND_LINE.stroke_width(1));
            chart.draw_series(std::iter::once(line)).map_err(err)?;
        }
        for segment in segments(values) {
            chart
                .draw_series(LineSeries::new(segment, colour.stroke_width(2)))
                .map_err(err)?;
        }
        for (label, at, good) in &self.marks.events {
            let c = if *good { RECOVERY_LINE } else { ERROR_LINE };
            let line = PathElement::new(vec![(x(*at), 0.0), (x(*at), y_max)], c.stroke_width(2));
            chart.draw_series(std::iter::once(line)).map_err(err)?;
            let text = Text::new(
                label.clone(),
                (x(*at) + 0.2, y_max * 0.88),
                ("sans-serif", 12).into_font().color(&c),
            );
            chart.draw_series(std::iter::once(text)).map_err(err)?;
        }
        Ok(())
    }
}

/// The time span the chart covers: every row and every mark.
fn span(rows: &[SecondRow], marks: &Marks) -> (Millis, Millis) {
    let times = rows
        .iter()
        .flat_map(|r| [r.at, r.at + 1000])
        .chain(marks.faults.iter().flat_map(|(_, s, e)| [*s, *e]))
        .chain(marks.phases.iter().map(|(_, at)| *at))
        .chain(marks.events.iter().map(|(_, at, _)| *at));
    let (lo, hi) = times.fold((Millis::MAX, Millis::MIN), |(lo, hi), t| {
        (lo.min(t), hi.max(t))
    });
    if lo > hi {
        (0, 1000)
    } else {
        (lo, hi.max(lo + 1000))
    }
}

/// Runs of consecutive seconds that have a value (a second without requests breaks the line).
fn segments(values: &[(f64, Option<f64>)]) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut current = Vec::new();
    for (x, v) in values {
        match v {
            Some(v) => current.push((*x, *v)),
            None if !current.is_empty() => out.push(std::mem::take(&mut current)),
            None => {}
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

fn err(e: impl std::fmt::Display) -> String {
    format!("cannot draw the timeline chart: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::series::Stats;

    fn row(at: Millis, p95: Option<f64>, err: Option<f64>) -> SecondRow {
        let stats = Stats {
            p95_ms: p95,
            error_rate_percent: err,
            requests: u64::from(p95.is_some()),
            ..Stats::default()
        };
        SecondRow {
            at,
            stats,
            phase: String::new(),
            faults: Vec::new(),
        }
    }

    #[test]
    fn gaps_split_the_line() {
        let s = segments(&[
            (0.5, Some(1.0)),
            (1.5, None),
            (2.5, Some(2.0)),
            (3.5, Some(3.0)),
        ]);
        assert_eq!(s, vec![vec![(0.5, 1.0)], vec![(2.5, 2.0), (3.5, 3.0)]]);
    }

    #[test]
    fn the_svg_shows_faults_phases_marks_and_both_panels() {
        let rows: Vec<SecondRow> = (0..20)
            .map(|i| {
                row(
                    i * 1000,
                    if i == 7 { None } else { Some(10.0 + i as f64) },
                    Some(if (8..12).contains(&i) { 50.0 } else { 0.0 }),
                )
            })
            .collect();
        let marks = Marks {
            title: "EXP-001 run r1: PASS".into(),
            faults: vec![("kill".into(), 8_000, 12_000)],
            phases: vec![("baseline".into(), 0), ("injection".into(), 8_000)],
            events: vec![
                ("recovered +2.5 s".into(), 14_500, true),
                ("guard trip".into(), 10_000, false),
            ],
            band_p95_ms: Some(30.0),
            band_error_percent: Some(1.0),
        };
        let svg = render(&rows, &marks).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        assert!(svg.trim_end().ends_with("</svg>"));
        for text in [
            "EXP-001 run r1: PASS",
            "p95 latency per second (ms)",
            "error rate per second (%)",
            "injection",
            "recovered +2.5 s",
            "guard trip",
        ] {
            assert!(svg.contains(text), "missing {text}");
        }
        let p95_lines = svg.matches("stroke=\"#285AC8\"").count();
        let error_lines = svg.matches("stroke=\"#C82828\"").count();
        assert_eq!(
            p95_lines, 2,
            "the p95 line is broken by the second without requests"
        );
        assert_eq!(
            error_lines,
            1 + 2,
            "the error-rate line, and the guard trip in both panels"
        );
        assert!(
            svg.contains("fill=\"#E6503C\""),
            "the fault window is shaded"
        );
    }

    #[test]
    fn an_empty_run_still_renders() {
        let svg = render(&[], &Marks::default()).unwrap();
        assert!(svg.contains("</svg>"));
    }
}
