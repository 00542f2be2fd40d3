//! latency-injector's sentences in the text summary (chaos-common's `summary`):
//!
//! ```text
//! delayed 1,204 chunks on 12 of 12 connections by 200 ms (applied p50 200.4 ms, p99 201.0 ms) through 127.0.0.1:6380 to 127.0.0.1:6379 for 60.0 s; proxy stopped in 3.1 ms
//! delayed 40 of 120 requests by 10000 ms (applied p50 10000.2 ms, p99 10000.9 ms) on application port 3000 for 120 s; proxy stopped in 5.0 s
//! 3 upstream errors: connect: connection refused (3)
//! delayed 1,204 packets by 200 ms ± 50 ms with netem on eth0 (connections to redis:6379) for 30.0 s; stopped by SIGTERM; netem removed in 251 ms
//! ```
//!
//! The observations are read through [`Seen`] (the proxy) or [`NetemSeen`] (netem), the
//! fields the sentence needs; unit tests read real `Observations` values through them.

use std::collections::BTreeMap;

use chaos_common::summary::{ReportView, Said, Style, count, ending, ms, plural, secs};
use serde::Deserialize;
use serde_json::Value;

/// The part of [`crate::observations::Observations`] the summary reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub listen: String,
    pub connections: u64,
    pub connections_delayed: u64,
    pub chunks_delayed: u64,
    pub requests: u64,
    pub requests_delayed: u64,
    pub applied_delay: DelaySeen,
    pub upstream_errors: TallySeen,
    #[serde(default)]
    pub redirected_connections: Option<u64>,
    #[serde(default)]
    pub bypassing_connections: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DelaySeen {
    pub count: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TallySeen {
    pub total: u64,
    pub by_cause: BTreeMap<String, u64>,
}

fn text<'a>(report: &'a ReportView, key: &str) -> Option<&'a str> {
    report.parameters.get(key).and_then(Value::as_str)
}

/// Where the proxy sat, from the parameters of the mode.
fn place(report: &ReportView, seen: &Seen) -> String {
    let mode = text(report, "mode").unwrap_or("");
    if mode.starts_with("egress") {
        let port = report
            .parameters
            .get("targetPort")
            .and_then(Value::as_u64)
            .map(|p| format!(" port {p}"))
            .unwrap_or_default();
        let redirected = seen
            .redirected_connections
            .map(|n| format!(", {} redirected", plural(n, "connection", "connections")))
            .unwrap_or_default();
        format!(
            "on connections to {}{port}{redirected}",
            text(report, "target").unwrap_or("the target")
        )
    } else if mode.starts_with("ingress") {
        let port = report.parameters.get("appPort").and_then(Value::as_u64);
        format!("on application port {}", port.unwrap_or(0))
    } else {
        format!(
            "through {} to {}",
            seen.listen,
            text(report, "upstream").unwrap_or("the upstream")
        )
    }
}

/// The part of [`crate::netem::Observations`] the summary reads (a netem run).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetemSeen {
    pub engine: String,
    pub interfaces: Vec<InterfaceSeen>,
    pub packets: u64,
    pub drops: u64,
    pub packets_not_delayed: u64,
}

#[derive(Debug, Deserialize)]
pub struct InterfaceSeen {
    pub device: String,
}

/// `200 ms`, or `200 ms ± 50 ms`.
fn by(report: &ReportView) -> String {
    let latency = report.parameter_f64("latencyMs").unwrap_or(0.0);
    let jitter = report.parameter_f64("jitterMs").unwrap_or(0.0);
    if jitter > 0.0 {
        format!("{latency} ms ± {jitter} ms")
    } else {
        format!("{latency} ms")
    }
}

fn held(report: &ReportView) -> String {
    report
        .phase_ms("observe")
        .map(|m| format!(" for {}", secs(m / 1000.0)))
        .unwrap_or_default()
}

/// A netem run: what netem let go, to what, on which interfaces.
fn describe_netem(report: &ReportView, seen: &NetemSeen, style: &Style) -> Said {
    let devices: Vec<&str> = seen.interfaces.iter().map(|i| i.device.as_str()).collect();
    let to = text(report, "target").map_or_else(
        || "every outgoing TCP connection".to_owned(),
        |t| format!("connections to {t}"),
    );
    let mut sentences = vec![format!(
        "delayed {} by {} with netem on {} ({to}){}; {}",
        plural(seen.packets, "packet", "packets"),
        by(report),
        devices.join(", "),
        held(report),
        ending(report, "netem removed", style),
    )];
    if seen.packets_not_delayed > 0 {
        sentences.push(format!(
            "{} went at once (--probability)",
            plural(seen.packets_not_delayed, "packet", "packets")
        ));
    }
    if seen.drops > 0 {
        sentences.push(style.warn(&format!(
            "{} dropped at netem's limit",
            plural(seen.drops, "packet was", "packets were")
        )));
    }
    Said::new(sentences)
}

/// What was delayed, by how much, where, for how long, and how it ended.
pub fn describe(report: &ReportView, style: &Style) -> Option<Said> {
    if let Some(netem) = report
        .observations::<NetemSeen>()
        .filter(|n| n.engine == "netem")
    {
        return Some(describe_netem(report, &netem, style));
    }
    let seen: Seen = report.observations()?;
    let http = text(report, "mode").is_some_and(|m| m.ends_with("http"));
    let what = if http {
        format!(
            "{} of {}",
            count(seen.requests_delayed),
            plural(seen.requests, "request", "requests")
        )
    } else {
        format!(
            "{} on {} of {}",
            plural(seen.chunks_delayed, "chunk", "chunks"),
            count(seen.connections_delayed),
            plural(seen.connections, "connection", "connections")
        )
    };
    let by = by(report);
    let applied = match (seen.applied_delay.p50_ms, seen.applied_delay.p99_ms) {
        (Some(p50), Some(p99)) if seen.applied_delay.count > 0 => {
            format!(" (applied p50 {}, p99 {})", ms(p50), ms(p99))
        }
        _ => String::new(),
    };
    let held = held(report);
    let mut sentences = vec![format!(
        "delayed {what} by {by}{applied} {}{held}; {}",
        place(report, &seen),
        ending(report, "proxy stopped", style)
    )];
    if let Some(cut) = report
        .revert
        .details
        .pointer("/proxy/cutAfterDrain")
        .and_then(Value::as_u64)
        .filter(|n| *n > 0)
    {
        sentences.push(format!(
            "{} still open after the drain {} cut",
            plural(cut, "connection", "connections"),
            if cut == 1 { "was" } else { "were" }
        ));
    }
    if seen.upstream_errors.total > 0 {
        let causes: Vec<String> = seen
            .upstream_errors
            .by_cause
            .iter()
            .map(|(cause, n)| format!("{cause} ({})", count(*n)))
            .collect();
        sentences.push(style.warn(&format!(
            "{}: {}",
            plural(
                seen.upstream_errors.total,
                "upstream error",
                "upstream errors"
            ),
            causes.join(", ")
        )));
    }
    if let Some(n) = seen.bypassing_connections.filter(|n| *n > 0) {
        sentences.push(format!(
            "{} opened before the fault bypassed it (--reset-existing closes them)",
            plural(n, "connection", "connections")
        ));
    }
    Some(Said::new(sentences))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observations::{Counters, Observations, Sample};
    use crate::stats::{Counter, Stats};

    /// A real netem `Observations` value reads back through [`NetemSeen`].
    #[test]
    fn a_netem_run_is_said_in_packets() {
        let observations = crate::netem::Observations {
            interfaces: vec![
                serde_json::json!({"device": "eth0", "root": "4c01:", "netem": "4c02:"}),
            ],
            packets: 1204,
            bytes: 90000,
            drops: 0,
            packets_not_delayed: 12,
            peak_backlog_packets: 3,
            counters_error: None,
            samples: Vec::new(),
        };
        let mut observations = serde_json::to_value(observations).unwrap();
        observations["engine"] = "netem".into();
        observations["engineReason"] = "auto: ...".into();
        let report = serde_json::json!({
            "action": "run", "tool": "latency-injector", "result": "aborted", "stopReason": "signal:SIGTERM",
            "parameters": {"mode": "egress-tcp", "target": "redis:6379", "latencyMs": 200, "jitterMs": 50},
            "phases": [{"name": "observe", "status": "aborted", "durationMs": 30000.0}],
            "observations": observations,
            "revert": {"status": "reverted", "durationMs": 251.0, "manualSteps": [], "details": {"engine": "netem"}}
        });
        let view = ReportView::from_value(&report).unwrap();
        let said = describe(&view, &Style::plain()).unwrap();
        assert_eq!(
            said.sentences,
            [
                "delayed 1,204 packets by 200 ms ± 50 ms with netem on eth0 (connections to redis:6379) for 30.0 s; stopped by SIGTERM; netem removed in 251 ms",
                "12 packets went at once (--probability)"
            ]
        );
    }

    /// A real `Observations` value reads back through [`Seen`].
    #[test]
    fn the_sentence_reads_the_real_observations() {
        let stats = Stats::default();
        stats.add(Counter::Connections, 12);
        stats.add(Counter::ConnectionsDelayed, 12);
        stats.add(Counter::ChunksDelayed, 1204);
        stats.upstream_error("connect: connection refused");
        let observations = Observations {
            listen: "127.0.0.1:6380".into(),
            counters: Counters::of(&stats),
            samples: vec![Sample::of(&stats, 1000)],
            redirect: None,
        };
        let report = serde_json::json!({
            "action": "run", "tool": "latency-injector", "result": "ok", "stopReason": "duration",
            "parameters": {"mode": "explicit-tcp", "upstream": "127.0.0.1:6379", "latencyMs": 200, "jitterMs": 0},
            "phases": [{"name": "apply", "status": "completed", "durationMs": 1.0},
                       {"name": "observe", "status": "completed", "durationMs": 60004.0}],
            "observations": observations,
            "revert": {"status": "reverted", "durationMs": 3.1, "manualSteps": [], "details": {"proxy": {"cutAfterDrain": 0}}}
        });
        let view = ReportView::from_value(&report).unwrap();
        let said = describe(&view, &Style::plain()).unwrap();
        assert_eq!(
            said.sentences,
            [
                "delayed 1,204 chunks on 12 of 12 connections by 200 ms through 127.0.0.1:6380 to 127.0.0.1:6379 for 60.0 s; proxy stopped in 3.1 ms",
                "1 upstream error: connect: connection refused (1)"
            ]
        );
    }
}
