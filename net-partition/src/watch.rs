//! Observation: the named counters sampled once a second (folded into the report's
//! `observations` by `observations.rs`).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::nft::Count;
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
    }
}
