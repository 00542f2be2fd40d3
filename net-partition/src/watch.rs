//! Observation: the named counters sampled once a second, and the probe series, folded
//! into the report's `observations`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};

use crate::nft::Count;
use crate::probe::ProbeSample;
use crate::rules::Direction;

/// Cumulative counter values at one moment after apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub t_ms: u64,
    /// Direction name (`egress`, `ingress`) to its counter.
    #[serde(flatten)]
    pub counts: BTreeMap<String, Count>,
}

/// Keeps the counters of the given directions, zero for any nft did not list.
pub fn sample(t_ms: u64, directions: &[Direction], counters: &[(String, Count)]) -> Sample {
    let counts = directions
        .iter()
        .map(|d| {
            let count = counters
                .iter()
                .find(|(name, _)| name == d.name())
                .map(|(_, c)| *c)
                .unwrap_or_default();
            (d.name().to_owned(), count)
        })
        .collect();
    Sample { t_ms, counts }
}

/// Per-direction totals as flat keys (`egressPackets`, `egressBytes`, ...), which the text
/// report prints, plus the same under `counters`.
pub fn totals(last: &Sample) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    for (direction, count) in &last.counts {
        out.insert(format!("{direction}Packets"), json!(count.packets));
        out.insert(format!("{direction}Bytes"), json!(count.bytes));
    }
    out.insert("counters".into(), json!(last.counts));
    out
}

/// The probe part of the observations: before, every sample during, and a summary.
pub fn probe_summary(target: &str, before: Option<&ProbeSample>, during: &[ProbeSample]) -> Value {
    let failed = during.iter().filter(|p| !p.ok).count();
    json!({
        "target": target,
        "before": before,
        "during": during,
        "duringOk": during.len() - failed,
        "duringFailed": failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_counters_read_as_zero() {
        let counters = vec![(
            "egress".to_owned(),
            Count {
                packets: 3,
                bytes: 180,
            },
        )];
        let s = sample(1000, &[Direction::Egress, Direction::Ingress], &counters);
        let value = serde_json::to_value(&s).unwrap_or_default();
        assert_eq!(
            value,
            json!({"tMs": 1000, "egress": {"packets": 3, "bytes": 180}, "ingress": {"packets": 0, "bytes": 0}})
        );
        let t = totals(&s);
        assert_eq!(t["egressPackets"], 3);
        assert_eq!(t["ingressBytes"], 0);
    }

    #[test]
    fn probe_summary_counts_failures() {
        let p = |ok| ProbeSample {
            t_ms: Some(1),
            ok,
            connect_ms: 1.0,
            error: None,
        };
        let v = probe_summary("a:1", None, &[p(true), p(false), p(false)]);
        assert_eq!(v["duringOk"], 1);
        assert_eq!(v["duringFailed"], 2);
        assert!(v["before"].is_null());
    }
}
