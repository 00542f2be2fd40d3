//! net-partition's sentences in the text summary (chaos-common's `summary`):
//!
//! ```text
//! cut 198.51.100.9:80 for 60.0 s: 1,204 packets dropped out, 0 in; table removed in 17 ms
//! probe 198.51.100.9:80: connected in 0.21 ms before, failed 60 of 60 during, connected in 0.30 ms after
//! ```
//!
//! The observations are read through [`Seen`], the fields of `observations.rs` the
//! sentence needs (its address and counter types serialise by hand); a unit test reads a
//! real `Observations` value through it, so the two cannot drift apart.

use chaos_common::summary::{ReportView, Said, Style, ending, list, ms, plural, secs};
use serde::Deserialize;
use serde_json::Value;

use crate::probe::ProbeSample;

/// The part of [`crate::observations::Observations`] the summary reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    pub verdict: String,
    pub set_elements: Vec<String>,
    pub egress_packets: u64,
    pub ingress_packets: Option<u64>,
    pub probe: Option<ProbeSeen>,
}

/// The part of [`crate::observations::ProbeSummary`] the summary reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSeen {
    pub target: String,
    pub before: Option<ProbeSample>,
    pub during_ok: usize,
    pub during_failed: usize,
}

/// `198.51.100.9:80`, `[2001:db8::1]:80`, or `10.0.0.0/8 and 198.51.100.9 port 80`.
fn what_was_cut(elements: &[String], port: Option<u64>) -> String {
    match (elements, port) {
        ([one], Some(port)) if !one.contains('/') && one.contains(':') => {
            format!("[{one}]:{port}")
        }
        ([one], Some(port)) if !one.contains('/') => format!("{one}:{port}"),
        (many, Some(port)) => format!("{} port {port}", list(many)),
        (many, None) => list(many),
    }
}

fn attempt(sample: Option<&ProbeSample>) -> String {
    match sample {
        Some(s) if s.ok => format!("connected in {}", ms(s.connect_ms)),
        Some(s) => format!("failed ({})", s.error.as_deref().unwrap_or("error")),
        None => "not probed".into(),
    }
}

/// What was cut, for how long, how many packets, and how the table went.
pub fn describe(report: &ReportView, style: &Style) -> Option<Said> {
    let seen: Seen = report.observations()?;
    let port = report.parameters.get("targetPort").and_then(Value::as_u64);
    let mut what = what_was_cut(&seen.set_elements, port);
    let protocol = report.parameters.get("protocol").and_then(Value::as_str);
    if let Some(p) = protocol.filter(|p| *p != "all") {
        what.push_str(&format!(" ({p})"));
    }
    if let Some(share) = report
        .parameters
        .get("dropPercent")
        .and_then(Value::as_u64)
        .filter(|p| *p < 100)
    {
        what = format!("{share}% of the packets to {what}");
    }
    let verb = if seen.verdict == "reject" {
        "rejected"
    } else {
        "dropped"
    };
    let held = report
        .phase_ms("observe")
        .map(|m| format!(" for {}", secs(m / 1000.0)))
        .unwrap_or_default();
    let incoming = match seen.ingress_packets {
        Some(n) => format!("{} in", plural(n, "packet", "packets")),
        None => "incoming traffic not cut".into(),
    };
    let mut sentences = vec![format!(
        "cut {what}{held}: {} {verb} out, {incoming}; {}",
        plural(seen.egress_packets, "packet", "packets"),
        ending(report, "table removed", style)
    )];
    if let Some(probe) = &seen.probe {
        let after: Option<ProbeSample> = report
            .revert
            .details
            .pointer("/probeAfter/result")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        sentences.push(format!(
            "probe {}: {} before, failed {} of {} during, {} after",
            probe.target,
            attempt(probe.before.as_ref()),
            probe.during_failed,
            probe.during_ok + probe.during_failed,
            attempt(after.as_ref())
        ));
    }
    Some(Said::new(sentences))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_read_as_addresses_with_their_port() {
        let e = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            what_was_cut(&e(&["198.51.100.9"]), Some(80)),
            "198.51.100.9:80"
        );
        assert_eq!(
            what_was_cut(&e(&["2001:db8::1"]), Some(80)),
            "[2001:db8::1]:80"
        );
        assert_eq!(
            what_was_cut(&e(&["10.0.0.0/8", "198.51.100.9"]), Some(3000)),
            "10.0.0.0/8 and 198.51.100.9 port 3000"
        );
        assert_eq!(what_was_cut(&e(&["10.0.0.0/8"]), None), "10.0.0.0/8");
    }

    /// A real `Observations` value reads back through [`Seen`]: the view and the type
    /// cannot drift apart.
    #[test]
    fn the_sentence_reads_the_real_observations() {
        use crate::observations::{Observations, ProbeSummary};
        use crate::rules::{Direction, Verdict};
        let ok = |ms: f64| ProbeSample {
            t_ms: None,
            ok: true,
            connect_ms: ms,
            error: None,
        };
        let failed = ProbeSample {
            t_ms: Some(1000),
            ok: false,
            connect_ms: 1000.0,
            error: Some("timeout".into()),
        };
        let observations = Observations {
            table: "chaos-net-partition-t".into(),
            verdict: Verdict::Drop,
            apply_ms: 4.2,
            resolved_targets: vec![crate::target::parse("198.51.100.9").unwrap()],
            set_elements: vec![crate::target::parse_cidr("198.51.100.9/32").unwrap()],
            egress_packets: 1204,
            egress_bytes: 72240,
            ingress_packets: Some(0),
            ingress_bytes: Some(0),
            samples: vec![crate::watch::sample(1000, &[Direction::Egress], &[])],
            probe: Some(ProbeSummary::new(
                "198.51.100.9:80",
                Some(&ok(0.21)),
                &[failed],
            )),
        };
        let report = serde_json::json!({
            "action": "run", "tool": "net-partition", "result": "ok", "stopReason": "duration",
            "parameters": {"targetPort": 80, "protocol": "all", "dropPercent": 100},
            "phases": [{"name": "apply", "status": "completed", "durationMs": 6.0},
                       {"name": "observe", "status": "completed", "durationMs": 60012.0}],
            "observations": observations,
            "revert": {"status": "reverted", "durationMs": 17.2, "manualSteps": [],
                       "details": {"probeAfter": {"target": "198.51.100.9:80", "result": ok(0.3)}}}
        });
        let view = ReportView::from_value(&report).unwrap();
        let said = describe(&view, &Style::plain()).unwrap();
        assert_eq!(
            said.sentences,
            [
                "cut 198.51.100.9:80 for 60.0 s: 1,204 packets dropped out, 0 packets in; table removed in 17 ms",
                "probe 198.51.100.9:80: connected in 0.21 ms before, failed 1 of 1 during, connected in 0.30 ms after"
            ]
        );
    }
}
