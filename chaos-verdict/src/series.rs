//! Every request of a run, compact and sorted by time, and the statistics of any window.
//!
//! A request takes 24 bytes (time, duration, status, name id, failed), so a run of a
//! million requests needs 24 MB whatever the size of k6's file. Windows are exact
//! (millisecond bounds, found by binary search) and percentiles are exact over the
//! window's requests (nearest rank, see [`percentile`]), not a sketch.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::Result;
use crate::points::{self, ReadSummary};
use crate::time::Millis;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Request {
    pub at: Millis,
    pub duration_ms: f32,
    pub status: u16,
    /// Index into [`Series::names`]; `u16::MAX` when the request had no name tag.
    pub name: u16,
    pub failed: bool,
}

const UNNAMED: u16 = u16::MAX;

#[derive(Debug, Default)]
pub struct Series {
    requests: Vec<Request>,
    names: Vec<String>,
}

/// A half-open time window `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: Millis,
    pub to: Millis,
}

/// Statistics of the requests in a window (the JSON shape is part of result.json).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    pub requests: u64,
    pub errors: u64,
    /// `null` when the window holds no request ("no data", never 0%).
    pub error_rate_percent: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Requests per HTTP status; `"0"` is no response (refused, reset, timed out).
    pub status_counts: BTreeMap<String, u64>,
}

impl Series {
    /// Reads a whole k6 points file.
    pub fn from_file(path: &Path) -> Result<(Series, ReadSummary)> {
        Self::from_files(&[path.to_owned()])
    }

    /// Reads several points files (k6 runs side by side) into one series.
    pub fn from_files(paths: &[PathBuf]) -> Result<(Series, ReadSummary)> {
        let mut series = Series::default();
        let mut total = ReadSummary::default();
        for path in paths {
            let summary = points::read_file(path, 0, |p| {
                series.push(p.at, p.duration_ms, p.status, p.failed, p.name);
            })?;
            total.lines += summary.lines;
            total.requests += summary.requests;
            total.offset += summary.offset;
            total.partial_tail |= summary.partial_tail;
        }
        series.finish();
        Ok((series, total))
    }

    pub fn push(
        &mut self,
        at: Millis,
        duration_ms: f64,
        status: u16,
        failed: bool,
        name: Option<&str>,
    ) {
        let name = name.map_or(UNNAMED, |n| self.intern(n));
        // Durations are kept as f32: 24 bits of mantissa are 0.001 ms at 10 s.
        #[allow(clippy::cast_possible_truncation)]
        let duration_ms = duration_ms as f32;
        self.requests.push(Request {
            at,
            duration_ms,
            status,
            name,
            failed,
        });
    }

    /// Sorts by time (k6's VUs write slightly out of order). Call after the last push.
    pub fn finish(&mut self) {
        self.requests.sort_by_key(|r| r.at);
    }

    fn intern(&mut self, name: &str) -> u16 {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            return u16::try_from(i).unwrap_or(UNNAMED);
        }
        // More than 65 534 distinct names cannot come from our scripts; the rest share
        // "unnamed" rather than failing the run.
        match u16::try_from(self.names.len()) {
            Ok(i) if i < UNNAMED => {
                self.names.push(name.to_owned());
                i
            }
            _ => UNNAMED,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    pub fn len(&self) -> usize {
        self.requests.len()
    }

    pub fn first_at(&self) -> Option<Millis> {
        self.requests.first().map(|r| r.at)
    }

    pub fn last_at(&self) -> Option<Millis> {
        self.requests.last().map(|r| r.at)
    }

    /// Request names seen, in order of first appearance.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The requests in `window`, optionally only those named `name`.
    pub fn slice<'s>(
        &'s self,
        window: Window,
        name: Option<&str>,
    ) -> impl Iterator<Item = &'s Request> + 's {
        let start = self.requests.partition_point(|r| r.at < window.from);
        let end = self.requests.partition_point(|r| r.at < window.to);
        // None: every request; Some(None): a name never seen, so none.
        let id = name.map(|n| {
            self.names
                .iter()
                .position(|x| x == n)
                .map(|i| u16::try_from(i).unwrap_or(UNNAMED))
        });
        self.requests[start..end.max(start)]
            .iter()
            .filter(move |r| match id {
                None => true,
                Some(None) => false,
                Some(Some(id)) => r.name == id,
            })
    }

    pub fn stats(&self, window: Window, name: Option<&str>) -> Stats {
        Stats::of(self.slice(window, name))
    }
}

impl Stats {
    pub fn of<'r>(requests: impl Iterator<Item = &'r Request>) -> Stats {
        let mut durations = Vec::new();
        let mut stats = Stats::default();
        for r in requests {
            durations.push(r.duration_ms);
            stats.errors += u64::from(r.failed);
            *stats.status_counts.entry(r.status.to_string()).or_insert(0) += 1;
        }
        stats.requests = durations.len() as u64;
        if stats.requests > 0 {
            stats.error_rate_percent = Some(percent(stats.errors, stats.requests));
            stats.p50_ms = percentile(&mut durations, 50.0);
            stats.p95_ms = percentile(&mut durations, 95.0);
            stats.p99_ms = percentile(&mut durations, 99.0);
        }
        stats
    }

    /// Requests whose status matches `spec`: codes and classes, comma-separated
    /// (`503`, `5xx`, `401,503`, `0` for no response).
    pub fn count_status(&self, spec: &StatusSpec) -> u64 {
        self.status_counts
            .iter()
            .filter(|(code, _)| spec.matches(code))
            .map(|(_, n)| n)
            .sum()
    }
}

/// `100 * part / whole`, rounded to 4 decimals.
pub fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Request counts are far below 2^52: exact in an f64.
    #[allow(clippy::cast_precision_loss)]
    let ratio = part as f64 / whole as f64;
    chaos_common::report::round(100.0 * ratio, 4)
}

/// The `p`th percentile by nearest rank: the smallest observed value with at least `p`%
/// of the values at or below it (rank `ceil(p/100 * n)`). Always a value that was
/// observed; k6's own summary interpolates between neighbours, so it can differ from
/// this by less than the gap between two neighbouring requests.
pub fn percentile(values: &mut [f32], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let n = values.len();
    #[allow(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    let rank = ((p / 100.0) * n as f64).ceil() as usize;
    let index = rank.clamp(1, n) - 1;
    let (_, value, _) = values.select_nth_unstable_by(index, f32::total_cmp);
    Some(chaos_common::report::round(f64::from(*value), 3))
}

/// A set of HTTP statuses: exact codes (`503`) and classes (`5xx`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusSpec {
    parts: Vec<String>,
}

impl StatusSpec {
    pub fn parse(text: &str) -> std::result::Result<StatusSpec, String> {
        let mut parts = Vec::new();
        for part in text.split(',') {
            let part = part.trim().to_ascii_lowercase();
            let class = part.len() == 3
                && part[..1].chars().all(|c| ('1'..='5').contains(&c))
                && &part[1..] == "xx";
            let code =
                !part.is_empty() && part.len() <= 3 && part.bytes().all(|b| b.is_ascii_digit());
            if !(class || code) {
                return Err(format!(
                    "'{part}' is not an HTTP status (e.g. 503, 5xx, 0 for no response)"
                ));
            }
            parts.push(part.trim_start_matches('0').to_owned());
        }
        Ok(StatusSpec { parts })
    }

    fn matches(&self, code: &str) -> bool {
        self.parts.iter().any(|p| {
            if let Some(class) = p.strip_suffix("xx") {
                code.len() == 3 && code.starts_with(class)
            } else {
                // "0" was trimmed to "": it matches the status "0".
                code.trim_start_matches('0') == p
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(reqs: &[(Millis, f64, u16, &str)]) -> Series {
        let mut s = Series::default();
        for (at, d, status, name) in reqs {
            s.push(*at, *d, *status, *status == 0 || *status >= 400, Some(name));
        }
        s.finish();
        s
    }

    #[test]
    fn nearest_rank_percentiles_are_observed_values() {
        let mut v: Vec<f32> = (1..=100).map(|i| i as f32).collect();
        assert_eq!(percentile(&mut v, 50.0), Some(50.0));
        assert_eq!(percentile(&mut v, 95.0), Some(95.0));
        assert_eq!(percentile(&mut v, 99.0), Some(99.0));
        let mut one = vec![7.0];
        assert_eq!(percentile(&mut one, 95.0), Some(7.0));
        let mut few = vec![10.0, 1.0, 5.0];
        assert_eq!(percentile(&mut few, 50.0), Some(5.0));
        assert_eq!(percentile(&mut few, 95.0), Some(10.0));
        assert_eq!(percentile(&mut [], 95.0), None);
    }

    #[test]
    fn windows_are_half_open_and_exact_to_the_millisecond() {
        let s = series(&[
            (999, 1.0, 200, "a"),
            (1000, 2.0, 500, "a"),
            (1999, 3.0, 200, "b"),
            (2000, 4.0, 200, "a"),
        ]);
        let w = Window {
            from: 1000,
            to: 2000,
        };
        let st = s.stats(w, None);
        assert_eq!((st.requests, st.errors), (2, 1));
        assert_eq!(st.error_rate_percent, Some(50.0));
        assert_eq!(st.status_counts.get("500"), Some(&1));
        assert_eq!(s.stats(w, Some("b")).requests, 1);
        assert_eq!(s.stats(w, Some("nobody")).requests, 0);
    }

    #[test]
    fn an_empty_window_has_no_rate_rather_than_zero() {
        let s = series(&[(1000, 1.0, 200, "a")]);
        let st = s.stats(
            Window {
                from: 5000,
                to: 6000,
            },
            None,
        );
        assert_eq!(st.requests, 0);
        assert_eq!(st.error_rate_percent, None);
        assert_eq!(st.p95_ms, None);
    }

    #[test]
    fn out_of_order_points_are_sorted() {
        let s = series(&[(3000, 1.0, 200, "a"), (1000, 1.0, 200, "a")]);
        assert_eq!(s.first_at(), Some(1000));
        assert_eq!(s.last_at(), Some(3000));
    }

    #[test]
    fn status_specs_match_codes_and_classes() {
        let s = series(&[
            (1, 1.0, 200, "a"),
            (2, 1.0, 401, "a"),
            (3, 1.0, 503, "a"),
            (4, 1.0, 0, "a"),
            (5, 1.0, 502, "a"),
        ]);
        let st = s.stats(Window { from: 0, to: 10 }, None);
        assert_eq!(st.count_status(&StatusSpec::parse("5xx").unwrap()), 2);
        assert_eq!(st.count_status(&StatusSpec::parse("401,503").unwrap()), 2);
        assert_eq!(st.count_status(&StatusSpec::parse("0").unwrap()), 1);
        assert_eq!(st.count_status(&StatusSpec::parse("2XX").unwrap()), 1);
        assert!(StatusSpec::parse("teapot").is_err());
        assert!(StatusSpec::parse("6xx").is_err());
        assert!(StatusSpec::parse("").is_err());
    }
}
