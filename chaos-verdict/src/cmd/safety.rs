//! `safety`: the seed's safety rules that a runbook checks before touching anything.
//!
//! - Protected namespaces and production peak hours (08:00-20:00 GMT) are the tools' own
//!   rules (`chaos_common::safety`), so a runbook refuses exactly what its tools would.
//! - Destructive experiments (EXP-008, EXP-009: `--destructive`) need `--approved-by`
//!   in every environment: the seed asks for the Engineering Manager's prior approval
//!   without limiting it to production.
//! - Production needs `--observer NAME`: the second engineer watching Grafana.
//!
//! The clock is the system's; debug builds (the test suite's) honour `CHAOS_TEST_NOW`
//! (seconds since the epoch), as the tools do.

use std::time::{Duration, SystemTime};

use chaos_common::safety::{
    Environment as ToolEnvironment, SafetyPolicy, SafetyRequest, validate_namespace,
};

use crate::cli::{Environment, SafetyArgs};
use crate::error::{Exit, Result, VerdictError};

pub fn safety(args: &SafetyArgs) -> Result<Exit> {
    let named = |flag: &str, v: &Option<String>| -> Result<Option<String>> {
        match v.as_deref().map(str::trim) {
            Some("") => Err(VerdictError::bad(format!("{flag} needs a name"))),
            other => Ok(other.map(str::to_owned)),
        }
    };
    let approved_by = named("--approved-by", &args.approved_by)?;
    let observer = named("--observer", &args.observer)?;
    let peak = named("--allow-peak-hours", &args.allow_peak_hours)?;
    let namespaces = valid_namespaces(&args.namespace, "--namespace")?;
    let extra = valid_namespaces(&args.protected_namespace, "--protected-namespace")?;
    let policy = SafetyPolicy {
        environment: match args.environment {
            Environment::Development => ToolEnvironment::Development,
            Environment::Staging => ToolEnvironment::Staging,
            Environment::Production => ToolEnvironment::Production,
        },
        approved_by: approved_by.clone(),
        peak_hours_override: peak,
        extra_protected_namespaces: extra,
    };
    let request = SafetyRequest {
        namespaces,
        destructive: false,
    };
    policy.check(&request, now()?).map_err(|e| match e {
        chaos_common::error::ChaosError::Refused { rule, message } => {
            VerdictError::Refused { rule, message }
        }
        other => VerdictError::bad(other.to_string()),
    })?;
    if args.destructive && approved_by.is_none() {
        return Err(VerdictError::Refused {
            rule: "approval",
            message: format!(
                "{} is destructive: it needs --approved-by NAME (the Engineering Manager's prior approval)",
                args.experiment
            ),
        });
    }
    if args.environment == Environment::Production && observer.is_none() {
        return Err(VerdictError::Refused {
            rule: "observer",
            message: "production experiments need a second engineer watching the dashboards: --observer NAME".into(),
        });
    }
    println!(
        "safety rules passed for {} in {}",
        args.experiment,
        args.environment.as_str()
    );
    Ok(Exit::Pass)
}

fn valid_namespaces(names: &[String], flag: &str) -> Result<Vec<String>> {
    names
        .iter()
        .filter(|n| !n.trim().is_empty() || flag == "--namespace")
        .map(|n| validate_namespace(n).map_err(|e| VerdictError::bad(format!("{flag}: {e}"))))
        .collect()
}

fn now() -> Result<SystemTime> {
    if cfg!(debug_assertions) {
        if let Some(value) = std::env::var_os("CHAOS_TEST_NOW") {
            let secs: u64 = value.to_str().and_then(|v| v.parse().ok()).ok_or_else(|| {
                VerdictError::bad("CHAOS_TEST_NOW must be seconds since the epoch")
            })?;
            return Ok(SystemTime::UNIX_EPOCH + Duration::from_secs(secs));
        }
    }
    Ok(SystemTime::now())
}
