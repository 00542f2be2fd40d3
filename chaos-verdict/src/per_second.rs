//! The run second by second: what the CSV holds and the chart draws.

use crate::series::{Series, Stats, Window};
use crate::time::{self, Millis};
use crate::timeline::Timeline;

#[derive(Debug, Clone, PartialEq)]
pub struct SecondRow {
    /// Start of the second.
    pub at: Millis,
    pub stats: Stats,
    /// The phase running at the start of the second ("" before the first).
    pub phase: String,
    /// Names of the faults in place during any part of the second.
    pub faults: Vec<String>,
}

/// One row per second from the first request's second to the end of the data,
/// including seconds without requests (they show the gaps).
pub fn rows(series: &Series, timeline: &Timeline, data_end: Millis) -> Vec<SecondRow> {
    let Some(first) = series.first_at() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = first.div_euclid(1000) * 1000;
    while at < data_end {
        let window = Window {
            from: at,
            to: at + 1000,
        };
        let phase = timeline
            .phases
            .iter()
            .rev()
            .find(|p| p.start <= at)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let faults = timeline
            .faults
            .iter()
            .filter(|f| match f.window() {
                (Some(s), e) => s < window.to && e.unwrap_or(data_end) > window.from,
                _ => false,
            })
            .map(|f| f.name.clone())
            .collect();
        out.push(SecondRow {
            at,
            stats: series.stats(window, None),
            phase,
            faults,
        });
        at += 1000;
    }
    out
}

/// The per-second CSV (header documented in docs/runbooks.md).
pub fn csv(rows: &[SecondRow]) -> String {
    let mut out = String::from(
        "time,requests,errors,errorRatePercent,p50Ms,p95Ms,p99Ms,status2xx,status3xx,status4xx,status5xx,statusNoResponse,phase,faults\n",
    );
    let opt = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for r in rows {
        let class = |c: char| -> u64 {
            r.stats
                .status_counts
                .iter()
                .filter(|(k, _)| k.len() == 3 && k.starts_with(c))
                .map(|(_, n)| n)
                .sum()
        };
        let none = r.stats.status_counts.get("0").copied().unwrap_or(0);
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
            time::format(r.at),
            r.stats.requests,
            r.stats.errors,
            opt(r.stats.error_rate_percent),
            opt(r.stats.p50_ms),
            opt(r.stats.p95_ms),
            opt(r.stats.p99_ms),
            class('2'),
            class('3'),
            class('4'),
            class('5'),
            none,
            r.phase,
            r.faults.join(";"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_second_gets_a_row_with_its_phase_and_faults() {
        let mut s = Series::default();
        s.push(1_000, 5.0, 200, false, None);
        s.push(1_500, 7.0, 503, true, None);
        s.push(3_200, 9.0, 0, true, None);
        s.finish();
        let tl = Timeline::parse(
            "chaos-verdict-timeline\t1\nphase-start\tbaseline\t1970-01-01T00:00:00.5Z\nphase-start\tinjection\t1970-01-01T00:00:02Z\nfault-start\tflip\t1970-01-01T00:00:02.5Z\nfault-end\tflip\t1970-01-01T00:00:03.1Z\n",
        )
        .unwrap();
        let r = rows(&s, &tl, 4_000);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].stats.requests, r[1].stats.requests), (2, 0));
        assert_eq!(
            (r[0].phase.as_str(), r[1].phase.as_str()),
            ("baseline", "injection")
        );
        assert_eq!(
            (r[0].faults.len(), r[1].faults.len(), r[2].faults.len()),
            (0, 1, 1)
        );
        let text = csv(&r);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            "1970-01-01T00:00:01.000Z,2,1,50,5,7,7,1,0,0,1,0,baseline,"
        );
        assert_eq!(
            lines[2],
            "1970-01-01T00:00:02.000Z,0,0,,,,,0,0,0,0,0,injection,flip"
        );
        assert!(lines[3].ends_with(",1,injection,flip"), "{}", lines[3]);
    }
}
