//! The report's `observations` for a partition: what the counters and the probe saw while
//! the table was in place (docs/net-partition.md, `netPartitionObservations` in
//! docs/report.schema.json).

use serde::Serialize;

use crate::nft::Count;
use crate::probe::ProbeSample;
use crate::rules::{Direction, Verdict};
use crate::target::{Cidr, ResolvedTarget};
use crate::watch::Sample;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// The table the run owned: `chaos-net-partition-<run id>`.
    pub table: String,
    pub verdict: Verdict,
    /// How long the one `nft` transaction took.
    pub apply_ms: f64,
    /// Each `-H` value and the addresses it stood for.
    pub resolved_targets: Vec<ResolvedTarget>,
    /// What went into the sets (duplicates and nested blocks removed).
    pub set_elements: Vec<Cidr>,
    /// Packets and bytes the egress rules cut (to the targets).
    pub egress_packets: u64,
    pub egress_bytes: u64,
    /// Packets and bytes the ingress rules cut (from the targets): `--bidirectional` only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_packets: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress_bytes: Option<u64>,
    /// Cumulative counters once a second, `tMs` after apply.
    pub samples: Vec<Sample>,
    /// `--probe`: connect attempts before, during and (in `revert.details`) after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub probe: Option<ProbeSummary>,
}

/// The totals of `direction` in the last sample.
pub fn total(last: &Sample, direction: Direction) -> Option<Count> {
    last.counts.get(direction.name()).copied()
}

/// The probe part of the observations: before, every sample during, and a summary.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProbeSummary {
    /// `HOST:PORT` as given.
    pub target: String,
    pub before: Option<ProbeSample>,
    pub during: Vec<ProbeSample>,
    pub during_ok: usize,
    pub during_failed: usize,
}

impl ProbeSummary {
    pub fn new(target: &str, before: Option<&ProbeSample>, during: &[ProbeSample]) -> Self {
        let failed = during.iter().filter(|p| !p.ok).count();
        ProbeSummary {
            target: target.to_owned(),
            before: before.cloned(),
            during: during.to_vec(),
            during_ok: during.len() - failed,
            during_failed: failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_summary_counts_failures() {
        let p = |ok| ProbeSample {
            t_ms: Some(1),
            ok,
            connect_ms: 1.0,
            error: None,
        };
        let v = serde_json::to_value(ProbeSummary::new(
            "a:1",
            None,
            &[p(true), p(false), p(false)],
        ))
        .unwrap();
        assert_eq!(v["duringOk"], 1);
        assert_eq!(v["duringFailed"], 2);
        assert!(v["before"].is_null());
    }
}
