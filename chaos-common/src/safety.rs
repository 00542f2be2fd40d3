//! The safety rules of the platform team's runbook, enforced before anything is touched.
//!
//! - Protected namespaces (kube-system, kube-public, kube-node-lease and a configurable
//!   list) are refused.
//! - Production runs are refused during peak hours, 08:00-20:00 GMT (taken as UTC: the
//!   seed says GMT and does not follow British Summer Time), unless overridden with a
//!   reason, which the report records.
//! - Destructive faults in production need `--approved-by`.
//!
//! Durations are capped in [`crate::cli::check_duration`] (bad input, not a refusal).

use std::time::{SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde::Serialize;

use crate::error::{ChaosError, Result};

pub const DEFAULT_PROTECTED_NAMESPACES: [&str; 3] =
    ["kube-system", "kube-public", "kube-node-lease"];
pub const PEAK_START_HOUR_UTC: u64 = 8;
pub const PEAK_END_HOUR_UTC: u64 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    #[value(alias = "dev")]
    Development,
    Staging,
    #[value(alias = "prod")]
    Production,
    /// Not given: treated like a non-production environment.
    #[value(skip)]
    Unspecified,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SafetyPolicy {
    pub environment: Environment,
    pub approved_by: Option<String>,
    pub peak_hours_override: Option<String>,
    pub extra_protected_namespaces: Vec<String>,
}

impl Default for SafetyPolicy {
    fn default() -> Self {
        SafetyPolicy {
            environment: Environment::Unspecified,
            approved_by: None,
            peak_hours_override: None,
            extra_protected_namespaces: Vec::new(),
        }
    }
}

/// What a fault asks of the safety rules.
#[derive(Debug, Clone, Default)]
pub struct SafetyRequest {
    /// Kubernetes namespaces the run touches (empty for purely local faults).
    pub namespaces: Vec<String>,
    /// Whether the fault is destructive (kills, OOMs, partitions) rather than degrading.
    pub destructive: bool,
}

impl SafetyPolicy {
    /// Checks every rule; `now` is injected so tests can pick the hour.
    pub fn check(&self, request: &SafetyRequest, now: SystemTime) -> Result<()> {
        for namespace in &request.namespaces {
            if self.is_protected(namespace) {
                return Err(ChaosError::Refused {
                    rule: "protected-namespace",
                    message: format!(
                        "namespace '{namespace}' is protected; chaos runs there are never allowed"
                    ),
                });
            }
        }
        if self.environment != Environment::Production {
            return Ok(());
        }
        if is_peak_hour(now) && self.peak_hours_override.is_none() {
            return Err(ChaosError::Refused {
                rule: "production-peak-hours",
                message: format!(
                    "production runs are not allowed between {PEAK_START_HOUR_UTC:02}:00 and {PEAK_END_HOUR_UTC:02}:00 GMT; \
                     pass --allow-peak-hours REASON to override"
                ),
            });
        }
        if request.destructive && self.approved_by.is_none() {
            return Err(ChaosError::Refused {
                rule: "production-approval",
                message: "destructive experiments in production need --approved-by NAME (the Engineering Manager's approval)".into(),
            });
        }
        Ok(())
    }

    pub fn is_protected(&self, namespace: &str) -> bool {
        DEFAULT_PROTECTED_NAMESPACES.contains(&namespace)
            || self
                .extra_protected_namespaces
                .iter()
                .any(|n| n == namespace)
    }
}

/// Trims `name` and checks it is a valid Kubernetes namespace name (an RFC 1123 DNS
/// label: at most 63 lowercase letters, digits and '-', starting and ending with a letter
/// or digit), as the API server does. Names are compared exactly, so a name that is not
/// valid could never match a namespace: it is rejected instead of protecting nothing.
pub fn validate_namespace(name: &str) -> Result<String> {
    let trimmed = name.trim();
    let valid = !trimmed.is_empty()
        && trimmed.len() <= 63
        && trimmed
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !trimmed.starts_with('-')
        && !trimmed.ends_with('-');
    if valid {
        Ok(trimmed.to_owned())
    } else {
        Err(ChaosError::bad_input(format!(
            "'{name}' is not a valid namespace name (lowercase letters, digits and '-', at \
             most 63, starting and ending with a letter or digit)"
        )))
    }
}

/// True from 08:00:00 up to 19:59:59 UTC.
pub fn is_peak_hour(now: SystemTime) -> bool {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let hour = (secs % 86_400) / 3600;
    (PEAK_START_HOUR_UTC..PEAK_END_HOUR_UTC).contains(&hour)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at_utc_hour(hour: u64) -> SystemTime {
        // 2026-11-26 00:00:00 UTC
        UNIX_EPOCH + Duration::from_secs(1_795_651_200 + hour * 3600 + 59)
    }

    fn production() -> SafetyPolicy {
        SafetyPolicy {
            environment: Environment::Production,
            ..SafetyPolicy::default()
        }
    }

    fn rule_of(result: Result<()>) -> Option<&'static str> {
        match result {
            Err(ChaosError::Refused { rule, .. }) => Some(rule),
            _ => None,
        }
    }

    #[test]
    fn peak_hours_are_eight_to_twenty_gmt() {
        let peak: Vec<u64> = (0..24).filter(|h| is_peak_hour(at_utc_hour(*h))).collect();
        assert_eq!(peak, (8..20).collect::<Vec<_>>());
    }

    #[test]
    fn production_in_peak_hours_is_refused_unless_overridden() {
        let req = SafetyRequest::default();
        assert_eq!(
            rule_of(production().check(&req, at_utc_hour(12))),
            Some("production-peak-hours")
        );
        assert!(production().check(&req, at_utc_hour(22)).is_ok());
        let overridden = SafetyPolicy {
            peak_hours_override: Some("incident drill".into()),
            ..production()
        };
        assert!(overridden.check(&req, at_utc_hour(12)).is_ok());
        let staging = SafetyPolicy {
            environment: Environment::Staging,
            ..SafetyPolicy::default()
        };
        assert!(staging.check(&req, at_utc_hour(12)).is_ok());
    }

    #[test]
    fn destructive_production_needs_approval() {
        let req = SafetyRequest {
            destructive: true,
            ..SafetyRequest::default()
        };
        assert_eq!(
            rule_of(production().check(&req, at_utc_hour(22))),
            Some("production-approval")
        );
        let approved = SafetyPolicy {
            approved_by: Some("eng-manager".into()),
            ..production()
        };
        assert!(approved.check(&req, at_utc_hour(22)).is_ok());
    }

    #[test]
    fn protected_namespaces_are_refused_everywhere() {
        let policy = SafetyPolicy {
            extra_protected_namespaces: vec!["monitoring".into()],
            ..SafetyPolicy::default()
        };
        for ns in [
            "kube-system",
            "kube-public",
            "kube-node-lease",
            "monitoring",
        ] {
            let req = SafetyRequest {
                namespaces: vec![ns.into()],
                ..SafetyRequest::default()
            };
            assert_eq!(
                rule_of(policy.check(&req, at_utc_hour(2))),
                Some("protected-namespace"),
                "{ns}"
            );
        }
        let req = SafetyRequest {
            namespaces: vec!["lomash-wood".into()],
            ..SafetyRequest::default()
        };
        assert!(policy.check(&req, at_utc_hour(2)).is_ok());
    }

    #[test]
    fn namespace_names_are_trimmed_and_validated_as_kubernetes_does() {
        assert_eq!(
            validate_namespace(" lomash-wood ").ok().as_deref(),
            Some("lomash-wood")
        );
        assert_eq!(validate_namespace("a").ok().as_deref(), Some("a"));
        assert_eq!(validate_namespace("0-9").ok().as_deref(), Some("0-9"));
        let long = "a".repeat(64);
        for bad in [
            "",
            " ",
            "LOMASH-WOOD",
            "-a",
            "a-",
            "a.b",
            "a_b",
            "lomash wood",
            long.as_str(),
        ] {
            assert!(
                matches!(validate_namespace(bad), Err(ChaosError::BadInput(_))),
                "{bad:?}"
            );
        }
    }
}
