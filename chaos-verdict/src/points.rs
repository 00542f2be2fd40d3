//! k6's NDJSON output (`k6 run --out json=points.ndjson`), read as a stream.
//!
//! k6 writes one JSON object per line: `Metric` lines declare a metric, `Point` lines
//! carry one sample. Every HTTP request produces one point of each `http_req_*` metric
//! with the same time and tags; this reader takes one request per `http_req_duration`
//! point (its value is the request's duration in ms; k6 stamps it when the response
//! completed) and reads from its tags:
//! - `status`: the HTTP status (`0` when no response came: refused, reset, timed out);
//! - `expected_response`: `"false"` marks a failed request (k6's default: a status
//!   outside 200-399 or no response; a script's `responseCallback` changes it). Without
//!   that tag (a script that disabled it) a request failed when its status is 0 or >= 400;
//! - `name`: the request's name, which our k6 scripts set on every request (`products`,
//!   `auth-login`, ...), so checks can look at one endpoint.
//!
//! Lines are read one at a time into a reused buffer and only lines that mention
//! `http_req_duration` are parsed, so a file of several GB streams through in a few MB.
//! Other lines are checked to be JSON objects (`{...}`) so that a wrong file is refused
//! rather than read as "no requests". A last line without its newline is a write in
//! progress (k6 still running, or killed mid-write): it is not consumed, and the offset
//! returned stops before it, so a follower reads it whole next time.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Result, VerdictError};
use crate::time::{self, Millis};

const DURATION_METRIC: &[u8] = b"\"http_req_duration\"";

/// One HTTP request, as k6 reported it. Borrowed from the line being read.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestPoint<'a> {
    pub at: Millis,
    pub duration_ms: f64,
    pub status: u16,
    pub failed: bool,
    pub name: Option<&'a str>,
}

/// What a read went through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadSummary {
    /// Complete lines read.
    pub lines: u64,
    /// Requests found (`http_req_duration` points).
    pub requests: u64,
    /// Byte offset just after the last complete line: where the next read starts.
    pub offset: u64,
    /// A last line without its newline was left for later.
    pub partial_tail: bool,
}

#[derive(Deserialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    metric: Cow<'a, str>,
    #[serde(borrow)]
    data: Option<PointData<'a>>,
}

#[derive(Deserialize)]
struct PointData<'a> {
    #[serde(borrow)]
    time: Option<Cow<'a, str>>,
    value: Option<f64>,
    #[serde(borrow)]
    tags: Option<Tags<'a>>,
}

#[derive(Deserialize, Default)]
struct Tags<'a> {
    #[serde(borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow)]
    expected_response: Option<Cow<'a, str>>,
}

/// Reads `path` from byte `offset` to its last complete line, calling `sink` for every
/// request. A missing file is bad input naming the path.
pub fn read_file(
    path: &Path,
    offset: u64,
    mut sink: impl FnMut(&RequestPoint<'_>),
) -> Result<ReadSummary> {
    let mut file = File::open(path).map_err(|e| {
        VerdictError::bad(format!(
            "cannot open the k6 points file {}: {e} (it is written by `k6 run --out json=FILE`)",
            path.display()
        ))
    })?;
    file.seek(SeekFrom::Start(offset))
        .map_err(|e| VerdictError::io("cannot seek in", path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut summary = ReadSummary {
        offset,
        ..ReadSummary::default()
    };
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let n = reader
            .read_until(b'\n', &mut buf)
            .map_err(|e| VerdictError::io("cannot read", path, e))?;
        if n == 0 {
            break;
        }
        if buf.last() != Some(&b'\n') {
            summary.partial_tail = true;
            break;
        }
        summary.lines += 1;
        let line_no = summary.lines;
        if let Some(point) = parse_line(&buf).map_err(|e| at_line(path, offset, line_no, &e))? {
            summary.requests += 1;
            sink(&point.borrowed());
        }
        summary.offset += n as u64;
    }
    Ok(summary)
}

fn at_line(path: &Path, offset: u64, line: u64, message: &str) -> VerdictError {
    let from = if offset == 0 {
        String::new()
    } else {
        format!(" (counting from byte {offset})")
    };
    VerdictError::bad(format!(
        "{} line {line}{from}: {message}; is this k6's JSON output (`k6 run --out json=FILE`)?",
        path.display()
    ))
}

/// An owned request point (the borrowed form is handed to the sink).
struct Parsed<'a> {
    at: Millis,
    duration_ms: f64,
    status: u16,
    failed: bool,
    name: Option<Cow<'a, str>>,
}

impl Parsed<'_> {
    fn borrowed(&self) -> RequestPoint<'_> {
        RequestPoint {
            at: self.at,
            duration_ms: self.duration_ms,
            status: self.status,
            failed: self.failed,
            name: self.name.as_deref(),
        }
    }
}

/// One line: `Ok(None)` for anything that is not an `http_req_duration` point.
fn parse_line(raw: &[u8]) -> std::result::Result<Option<Parsed<'_>>, String> {
    let trimmed = raw.trim_ascii();
    if trimmed.is_empty() {
        return Ok(None);
    }
    if !(trimmed.starts_with(b"{") && trimmed.ends_with(b"}")) {
        return Err("not a JSON object".into());
    }
    if !mentions_duration(trimmed) {
        return Ok(None);
    }
    let line: Line<'_> =
        serde_json::from_slice(trimmed).map_err(|e| format!("not a k6 JSON line ({e})"))?;
    if line.kind != "Point" || line.metric != "http_req_duration" {
        return Ok(None);
    }
    let data = line.data.ok_or("a Point without data")?;
    let time_text = data.time.ok_or("a Point without a time")?;
    let at = time::parse(&time_text).map_err(|e| e.to_string())?;
    let duration_ms = data.value.ok_or("a Point without a value")?;
    let tags = data.tags.unwrap_or_default();
    let status = match tags.status.as_deref() {
        None | Some("") => 0,
        Some(s) => s
            .parse()
            .map_err(|_| format!("status tag '{s}' is not a number"))?,
    };
    let failed = match tags.expected_response.as_deref() {
        Some("true") => false,
        Some("false") => true,
        _ => status == 0 || status >= 400,
    };
    Ok(Some(Parsed {
        at,
        duration_ms,
        status,
        failed,
        name: tags.name,
    }))
}

/// k6 writes points as `{"metric":"NAME",...}`: the name is compared in place, and only
/// other lines (the few `Metric` declarations) are searched.
fn mentions_duration(line: &[u8]) -> bool {
    match line.strip_prefix(br#"{"metric":"#) {
        Some(rest) if rest.first() == Some(&b'"') => rest.starts_with(DURATION_METRIC),
        _ => contains(line, DURATION_METRIC),
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const METRIC: &str = r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":[],"submetrics":null},"metric":"http_req_duration"}"#;

    fn point(metric: &str, time: &str, value: f64, status: &str, expected: &str) -> String {
        format!(
            r#"{{"metric":"{metric}","type":"Point","data":{{"time":"{time}","value":{value},"tags":{{"expected_response":"{expected}","method":"GET","name":"products","status":"{status}","url":"http://x/v1/products"}}}}}}"#
        )
    }

    type Seen = (Millis, f64, u16, bool, Option<String>);

    fn read_all(text: &str) -> (Vec<Seen>, ReadSummary) {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let summary = read_file(file.path(), 0, |p| {
            seen.push((
                p.at,
                p.duration_ms,
                p.status,
                p.failed,
                p.name.map(str::to_owned),
            ));
        })
        .unwrap();
        (seen, summary)
    }

    #[test]
    fn one_request_per_duration_point_with_its_tags() {
        let text = [
            METRIC.to_owned(),
            point("http_reqs", "2026-11-28T07:00:22.279Z", 1.0, "200", "true"),
            point(
                "http_req_duration",
                "2026-11-28T07:00:22.279Z",
                12.5,
                "200",
                "true",
            ),
            point(
                "http_req_failed",
                "2026-11-28T07:00:22.279Z",
                0.0,
                "200",
                "true",
            ),
            point(
                "http_req_duration",
                "2026-11-28T07:00:23.001Z",
                3.0,
                "503",
                "false",
            ),
        ]
        .join("\n")
            + "\n";
        let (seen, summary) = read_all(&text);
        assert_eq!(summary.lines, 5);
        assert_eq!(summary.requests, 2);
        assert_eq!(summary.offset, text.len() as u64);
        assert_eq!(seen[0].1, 12.5);
        assert_eq!((seen[0].2, seen[0].3), (200, false));
        assert_eq!((seen[1].2, seen[1].3), (503, true));
        assert_eq!(seen[1].4.as_deref(), Some("products"));
    }

    #[test]
    fn without_expected_response_a_failure_is_no_response_or_4xx_5xx() {
        let line = r#"{"metric":"http_req_duration","type":"Point","data":{"time":"2026-11-28T07:00:22Z","value":1,"tags":{"status":"0"}}}"#;
        let ok = r#"{"metric":"http_req_duration","type":"Point","data":{"time":"2026-11-28T07:00:22Z","value":1,"tags":{"status":"302"}}}"#;
        let (seen, _) = read_all(&format!("{line}\n{ok}\n"));
        assert!(seen[0].3, "status 0 is a failure");
        assert!(!seen[1].3, "a redirect is not");
        assert_eq!(seen[0].4, None);
    }

    #[test]
    fn json_written_with_spaces_is_read_too() {
        let line = r#"{"metric": "http_req_duration", "type": "Point", "data": {"time": "2026-11-28T07:00:00Z", "value": 20, "tags": {"status": "200"}}}"#;
        let (seen, _) = read_all(&format!("{line}\n"));
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].1, 20.0);
    }

    #[test]
    fn a_partial_last_line_is_left_for_the_next_read() {
        let whole = point(
            "http_req_duration",
            "2026-11-28T07:00:22Z",
            1.0,
            "200",
            "true",
        );
        let text = format!("{whole}\n{}", &whole[..40]);
        let (seen, summary) = read_all(&text);
        assert_eq!(seen.len(), 1);
        assert!(summary.partial_tail);
        assert_eq!(summary.offset, whole.len() as u64 + 1);
    }

    #[test]
    fn reading_from_an_offset_sees_only_what_came_after() {
        let a = point(
            "http_req_duration",
            "2026-11-28T07:00:22Z",
            1.0,
            "200",
            "true",
        );
        let b = point(
            "http_req_duration",
            "2026-11-28T07:00:23Z",
            2.0,
            "500",
            "false",
        );
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{a}\n{b}\n").unwrap();
        let mut seen = Vec::new();
        let summary = read_file(file.path(), a.len() as u64 + 1, |p| seen.push(p.status)).unwrap();
        assert_eq!(seen, vec![500]);
        assert_eq!(summary.offset, (a.len() + b.len() + 2) as u64);
    }

    #[test]
    fn a_file_that_is_not_k6_output_is_bad_input_with_the_line() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        write!(file, "{METRIC}\ntime,value\n").unwrap();
        let err = read_file(file.path(), 0, |_| {}).unwrap_err();
        assert!(matches!(err, VerdictError::BadInput(_)));
        assert!(err.to_string().contains("line 2"), "{err}");
    }

    #[test]
    fn a_broken_duration_point_is_bad_input() {
        let bad =
            r#"{"metric":"http_req_duration","type":"Point","data":{"time":"soon","value":1}}"#;
        let mut file = tempfile::NamedTempFile::new().unwrap();
        writeln!(file, "{bad}").unwrap();
        let err = read_file(file.path(), 0, |_| {}).unwrap_err().to_string();
        assert!(err.contains("'soon'"), "{err}");
    }

    #[test]
    fn a_missing_file_names_the_path_and_how_it_is_made() {
        let err = read_file(Path::new("/nonexistent/points.ndjson"), 0, |_| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/points.ndjson") && err.contains("--out json="),
            "{err}"
        );
    }
}
