//! Shared by chaos-verdict's integration tests: the binary, synthetic k6 points and
//! timelines, and the result.json schema.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod standin;
pub mod toy;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_chaos-verdict")
}

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

pub fn run(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .env_remove("CHAOS_PROTECTED_NAMESPACES")
        .output()
        .unwrap()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// An RFC 3339 time `ms` milliseconds after `epoch_ms` (UTC, nanoseconds as k6 writes).
pub fn ts(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let nanos = ms.rem_euclid(1000) * 1_000_000 + 123;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// k6-like NDJSON: for each request, the lines k6 writes (reqs, duration, failed, and
/// `extra` unrelated metric lines).
pub fn k6_lines(requests: &[(i64, f64, u16, &str)], extra: usize) -> String {
    let mut out = String::from(
        r#"{"type":"Metric","data":{"name":"http_req_duration","type":"trend","contains":"time","thresholds":[],"submetrics":null},"metric":"http_req_duration"}"#,
    );
    out.push('\n');
    for (at, dur, status, name) in requests {
        let t = ts(*at);
        let expected = (200..400).contains(status);
        let tags = format!(
            r#"{{"expected_response":"{expected}","group":"","method":"GET","name":"{name}","proto":"HTTP/1.1","scenario":"default","status":"{status}","url":"http://127.0.0.1/{name}"}}"#
        );
        for metric in ["http_reqs", "http_req_duration", "http_req_failed"] {
            let value = match metric {
                "http_reqs" => 1.0,
                "http_req_duration" => *dur,
                _ => f64::from(u8::from(!expected)),
            };
            writeln!(out, r#"{{"metric":"{metric}","type":"Point","data":{{"time":"{t}","value":{value},"tags":{tags}}}}}"#).unwrap();
        }
        for _ in 0..extra {
            writeln!(out, r#"{{"metric":"http_req_blocked","type":"Point","data":{{"time":"{t}","value":0.01,"tags":{tags}}}}}"#).unwrap();
        }
    }
    out
}

/// A standard synthetic run starting at `t0`: baseline 0-10 s, fault 10-15 s, recovery
/// 15-30 s, 10 requests a second. `fault` says what each fault-second request looks like.
pub struct Synthetic {
    pub t0: i64,
    pub fault_status: u16,
    pub fault_ms: f64,
    /// Seconds after the fault's end that still behave like the fault.
    pub lingering: i64,
}

impl Synthetic {
    pub fn points(&self) -> String {
        let mut reqs = Vec::new();
        for sec in 0..30i64 {
            for i in 0..10i64 {
                let bad = (10..15 + self.lingering).contains(&sec);
                let (status, ms) = if bad {
                    (self.fault_status, self.fault_ms)
                } else {
                    (200, 8.0 + (i % 3) as f64)
                };
                reqs.push((self.t0 + sec * 1000 + i * 100, ms, status, "products"));
            }
        }
        k6_lines(&reqs, 2)
    }

    pub fn timeline(&self, extra: &str) -> String {
        let t = |s: i64| ts(self.t0 + s * 1000);
        format!(
            "chaos-verdict-timeline\t1\nphase-start\tbaseline\t{}\nphase-end\tbaseline\t{}\n\
             phase-start\tinjection\t{}\nfault-start\tflip\t{}\nphase-end\tinjection\t{}\n\
             phase-start\tobservation\t{}\nfault-end\tflip\t{}\ncleanup\tflip\t{}\tverified\nphase-end\tobservation\t{}\n\
             phase-start\trecovery\t{}\nphase-end\trecovery\t{}\n{extra}",
            t(0),
            t(10),
            t(10),
            t(10),
            t(10),
            t(10),
            t(15),
            t(15),
            t(15),
            t(15),
            t(30)
        )
    }
}

pub const CHECKS: &str = "chaos-verdict-checks\t1\n\
    name=baseline error rate < 1%\twindow=baseline\tmetric=error-rate\tlt=1\n\
    name=error rate in the fault < 5%\twindow=fault\tmetric=error-rate\tlt=5\n\
    name=p95 back to baseline within 5 s\tmetric=recovery-seconds\tle=5\n";

/// Writes points, timeline and checks into `dir`; returns their paths.
pub fn write_run(dir: &Path, syn: &Synthetic, timeline_extra: &str, checks: &str) -> [PathBuf; 3] {
    let p = dir.join("points.ndjson");
    let t = dir.join("timeline.tsv");
    let c = dir.join("checks.tsv");
    std::fs::write(&p, syn.points()).unwrap();
    std::fs::write(&t, syn.timeline(timeline_extra)).unwrap();
    std::fs::write(&c, checks).unwrap();
    [p, t, c]
}

/// `chaos-verdict verdict` on a run directory, with extra arguments.
pub fn verdict(dir: &Path, files: &[PathBuf; 3], extra: &[&str]) -> Output {
    let mut args: Vec<String> = [
        "verdict",
        "--points",
        &files[0].display().to_string(),
        "--timeline",
        &files[1].display().to_string(),
        "--checks",
        &files[2].display().to_string(),
        "--out",
        &dir.display().to_string(),
        "--experiment",
        "EXP-001",
        "--run-id",
        "r1",
        "--environment",
        "staging",
        "--band-window-seconds",
        "1",
        "--band-windows",
        "2",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    Command::new(bin()).args(&args).output().unwrap()
}

pub fn result_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("result.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_valid(&value);
    value
}

/// Fails the test unless `value` matches docs/verdict.schema.json.
pub fn assert_valid(value: &serde_json::Value) {
    static SCHEMA: OnceLock<jsonschema::Validator> = OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let text = std::fs::read_to_string(repo().join("docs/verdict.schema.json")).unwrap();
        let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
        jsonschema::validator_for(&schema).unwrap_or_else(|e| panic!("schema is invalid: {e}"))
    });
    let errors: Vec<String> = schema
        .iter_errors(value)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result.json does not match docs/verdict.schema.json:\n{}\n{value:#}",
        errors.join("\n")
    );
}
