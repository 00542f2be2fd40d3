//! Flags (the original script's, the runbook's, and chaos-tools' common ones) and their
//! validation into a [`PodKill`].

use std::path::PathBuf;
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::HumanDuration;
use chaos_common::kube::ClientOptions;
use chaos_common::kube::targets::TargetSpec;
use chaos_common::tool::{Prepared, Tool};
use clap::Parser;
use serde_json::json;

use crate::kill::{Method, PodKill, Settings};

/// Deletes (or evicts) pods of a Deployment one at a time through the Kubernetes API and
/// times each recovery with watches: old pod gone, replacement created, scheduled,
/// Ready, and the Deployment back to its desired ready count.
#[derive(Debug, Parser)]
#[command(name = "pod-killer", version)]
pub struct Cli {
    /// Namespace of the target.
    #[arg(short = 'n', long, default_value = "lomash-wood", value_name = "NS")]
    pub namespace: String,

    /// Target the pods labelled app=SERVICE.
    #[arg(short = 's', long, value_name = "SERVICE", group = "target")]
    pub service: Option<String>,

    /// Target the pods of this Deployment (its own selector).
    #[arg(long, value_name = "NAME", group = "target")]
    pub deployment: Option<String>,

    /// Target the pods matching this label selector.
    #[arg(short = 'l', long, value_name = "SELECTOR", group = "target")]
    pub selector: Option<String>,

    /// How many pods to kill, one after the other.
    #[arg(short = 'c', long, default_value_t = 3, value_name = "N")]
    pub count: u32,

    /// Time between kills (a bare number is seconds); a kill also waits for the previous
    /// one to recover or time out.
    #[arg(short = 'i', long, default_value = "30", value_name = "DURATION")]
    pub interval: HumanDuration,

    /// Grace period of each deletion, in seconds (0: at once).
    #[arg(short = 'g', long, default_value_t = 0, value_name = "SECONDS")]
    pub grace_period: u32,

    /// Wait this long before the first kill.
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub delay: HumanDuration,

    /// Use the Eviction API so PodDisruptionBudgets are honoured (a refused eviction is
    /// reported as "blocked by PDB `<name>`").
    #[arg(long)]
    pub evict: bool,

    /// Never leave fewer Ready pods than this: such a kill is refused (exit 3).
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub min_ready: u32,

    /// How long to wait for each kill to recover.
    #[arg(long, default_value = "120", value_name = "DURATION")]
    pub recovery_timeout: HumanDuration,

    /// Pass criterion: every kill recovered within this (EXP-001 uses 30s); exit 1 if not.
    #[arg(long, value_name = "DURATION")]
    pub expect_recovery_within: Option<HumanDuration>,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,
}

/// A DNS-1123 label, as Kubernetes names Deployments and label values here.
pub fn check_name(flag: &str, value: &str) -> Result<(), ChaosError> {
    let valid = !value.is_empty()
        && value.len() <= 63
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !value.starts_with('-')
        && !value.ends_with('-');
    if valid {
        Ok(())
    } else {
        Err(ChaosError::bad_input(format!(
            "{flag} '{value}' is not a valid Kubernetes name (lowercase letters, digits and '-', at most 63)"
        )))
    }
}

impl Cli {
    fn target(&self) -> Result<TargetSpec, ChaosError> {
        if let Some(s) = &self.service {
            check_name("--service", s)?;
            return Ok(TargetSpec::Service(s.clone()));
        }
        if let Some(d) = &self.deployment {
            check_name("--deployment", d)?;
            return Ok(TargetSpec::Deployment(d.clone()));
        }
        if let Some(l) = &self.selector {
            if l.trim().is_empty() || l.contains(['\n', '\0']) {
                return Err(ChaosError::bad_input(
                    "--selector needs a label selector such as app=product-service",
                ));
            }
            return Ok(TargetSpec::Selector(l.trim().to_owned()));
        }
        Ok(TargetSpec::RandomDeployment)
    }

    /// Validates every flag except the ones that need the cluster.
    pub fn settings(&self, run_id: &str) -> Result<Settings, ChaosError> {
        check_name("--namespace", &self.namespace)?;
        if self.count == 0 || self.count > 100 {
            return Err(ChaosError::bad_input("--count must be between 1 and 100"));
        }
        for (flag, value) in [
            ("--interval", self.interval),
            ("--recovery-timeout", self.recovery_timeout),
        ] {
            if value.as_duration().is_zero() {
                return Err(ChaosError::bad_input(format!(
                    "{flag} must be greater than zero"
                )));
            }
        }
        if self
            .expect_recovery_within
            .is_some_and(|e| e.as_duration().is_zero())
        {
            return Err(ChaosError::bad_input(
                "--expect-recovery-within must be greater than zero",
            ));
        }
        if self.kubeconfig.as_ref().is_some_and(|p| !p.is_file()) {
            let path = self
                .kubeconfig
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default();
            return Err(ChaosError::bad_input(format!(
                "--kubeconfig {path}: no such file"
            )));
        }
        Ok(Settings {
            namespace: self.namespace.clone(),
            target: self.target()?,
            count: self.count,
            interval: self.interval.as_duration(),
            grace_period: self.grace_period,
            delay: self.delay.as_duration(),
            method: if self.evict {
                Method::Evict
            } else {
                Method::Delete
            },
            min_ready: self.min_ready,
            recovery_timeout: self.recovery_timeout.as_duration(),
            expect_recovery_within: self.expect_recovery_within.map(HumanDuration::as_duration),
            client: ClientOptions {
                kubeconfig: self.kubeconfig.clone(),
                context: self.context.clone(),
            },
            run_id: run_id.to_owned(),
        })
    }
}

/// The longest a run can take: the delay, every interval, every recovery, and 10 s slack.
pub fn default_duration(s: &Settings) -> Duration {
    let kills = s.count.max(1);
    s.delay + s.interval * (kills - 1) + s.recovery_timeout * kills + Duration::from_secs(10)
}

impl Tool for Cli {
    const NAME: &'static str = "pod-killer";
    type Fault = PodKill;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn prepare(self, run_id: &str) -> chaos_common::Result<Prepared<PodKill>> {
        let settings = self.settings(run_id)?;
        let duration = self.common.duration_or(default_duration(&settings))?;
        let parameters = json!({
            "namespace": settings.namespace,
            "service": self.service,
            "deployment": self.deployment,
            "selector": self.selector,
            "count": settings.count,
            "intervalSeconds": settings.interval.as_secs_f64(),
            "gracePeriodSeconds": settings.grace_period,
            "delaySeconds": settings.delay.as_secs_f64(),
            "evict": self.evict,
            "minReady": settings.min_ready,
            "recoveryTimeoutSeconds": settings.recovery_timeout.as_secs_f64(),
            "expectRecoveryWithinSeconds": settings.expect_recovery_within.map(|d| d.as_secs_f64()),
            "kubeconfig": settings.client.kubeconfig,
            "context": settings.client.context,
        });
        Ok(Prepared {
            fault: PodKill::new(settings, None),
            duration,
            parameters,
        })
    }
}

#[cfg(test)]
mod tests;
