//! Flags (the original script's, the runbook's, and chaos-tools' common ones) and their
//! validation into [`Settings`] and a [`PodKill`]. Nothing here touches the cluster:
//! target resolution is the fault's resolve step.

use std::path::PathBuf;
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::{HumanDuration, parse_whole_seconds};
use chaos_common::kube::freeze::FreezeSwitch;
use chaos_common::kube::namespace;
use chaos_common::kube::targets::TargetSpec;
use chaos_common::kube::{ClientOptions, selector};
use chaos_common::summary::{ReportView, Said, Style};
use chaos_common::tool::{Prepared, Tool};
use clap::Parser;
use serde_json::json;

use crate::fault::PodKill;
use crate::settings::{Method, Settings};

/// `--recovery-timeout` when not given (the original waited 120 s).
const DEFAULT_RECOVERY_TIMEOUT: Duration = Duration::from_secs(120);

/// Deletes (or evicts) pods of a Deployment or StatefulSet one at a time through the
/// Kubernetes API and times each recovery with watches: old pod gone, replacement
/// created, scheduled, Ready, and the workload back to its desired ready count.
#[derive(Debug, Parser)]
#[command(name = "pod-killer", version, after_help = crate::help::AFTER_HELP)]
pub struct Cli {
    /// Namespace of the target [default: CHAOS_NAMESPACE, else the kubeconfig context's
    /// namespace, else lomash-wood].
    #[arg(short = 'n', long, value_name = "NS")]
    pub namespace: Option<String>,

    /// Target the pods labelled app=SERVICE.
    #[arg(short = 's', long, value_name = "SERVICE", group = "target")]
    pub service: Option<String>,

    /// Target the pods of this Deployment (its own selector).
    #[arg(long, value_name = "NAME", group = "target")]
    pub deployment: Option<String>,

    /// Target the pods of this StatefulSet (its own selector).
    #[arg(long, value_name = "NAME", group = "target")]
    pub statefulset: Option<String>,

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

    /// Grace period of each deletion, in whole seconds: 0 (at once), 5, 5s, 1m.
    #[arg(short = 'g', long, default_value_t = 0, value_name = "SECONDS", value_parser = parse_whole_seconds)]
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

    /// How long to wait for each kill to recover [default: 120, or
    /// --expect-recovery-within when that is longer].
    #[arg(long, value_name = "DURATION")]
    pub recovery_timeout: Option<HumanDuration>,

    /// Pass criterion: every kill recovered within this (EXP-001 uses 30s); exit 1 if not.
    #[arg(long, value_name = "DURATION")]
    pub expect_recovery_within: Option<HumanDuration>,

    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Also refuse to start, and stop, while a ConfigMap chaos-freeze exists in this
    /// namespace (it is always checked in the target namespace; docs/remote.md).
    #[arg(long, value_name = "NS")]
    pub freeze_namespace: Option<String>,

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

fn positive(flag: &str, value: Duration) -> Result<Duration, ChaosError> {
    if value.is_zero() {
        Err(ChaosError::bad_input(format!(
            "{flag} must be greater than zero"
        )))
    } else {
        Ok(value)
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
        if let Some(s) = &self.statefulset {
            check_name("--statefulset", s)?;
            return Ok(TargetSpec::StatefulSet(s.clone()));
        }
        if let Some(l) = &self.selector {
            let l = l.trim();
            selector::validate(l).map_err(|why| {
                ChaosError::bad_input(format!(
                    "--selector '{l}' is not a valid label selector: {why} (e.g. app=product-service or 'tier in (web,api)')"
                ))
            })?;
            return Ok(TargetSpec::Selector(l.to_owned()));
        }
        Ok(TargetSpec::RandomDeployment)
    }

    /// How long each kill waits for recovery. Never shorter than the pass criterion:
    /// the default is raised to it; two explicit flags that contradict are bad input
    /// (the run would give up before the criterion's limit and report a failure it
    /// never measured).
    fn recovery_timeout(&self, expect: Option<Duration>) -> Result<Duration, ChaosError> {
        match (
            self.recovery_timeout.map(HumanDuration::as_duration),
            expect,
        ) {
            (Some(timeout), Some(expect)) if timeout < expect => {
                Err(ChaosError::bad_input(format!(
                    "--recovery-timeout {} is shorter than --expect-recovery-within {}: pod-killer would stop \
                 waiting before the pass criterion's limit; give --recovery-timeout of at least {} or leave it out",
                    HumanDuration(timeout),
                    HumanDuration(expect),
                    HumanDuration(expect)
                )))
            }
            (Some(timeout), _) => positive("--recovery-timeout", timeout),
            (None, expect) => Ok(expect.map_or(DEFAULT_RECOVERY_TIMEOUT, |e| {
                e.max(DEFAULT_RECOVERY_TIMEOUT)
            })),
        }
    }

    /// Validates every flag; nothing here needs the cluster.
    pub fn settings(&self, run_id: &str) -> Result<Settings, ChaosError> {
        if let Some(path) = self.kubeconfig.as_ref().filter(|p| !p.is_file()) {
            return Err(ChaosError::bad_input(format!(
                "--kubeconfig {}: no such file",
                path.display()
            )));
        }
        let client = ClientOptions {
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        };
        let (namespace, from) = namespace::choose(self.namespace.as_deref(), &client)?;
        if self.count == 0 || self.count > 100 {
            return Err(ChaosError::bad_input("--count must be between 1 and 100"));
        }
        let interval = positive("--interval", self.interval.as_duration())?;
        let expect = self
            .expect_recovery_within
            .map(|e| positive("--expect-recovery-within", e.as_duration()))
            .transpose()?;
        let recovery_timeout = self.recovery_timeout(expect)?;
        let freeze_namespaces =
            chaos_common::kube::freeze::namespaces(&namespace, self.freeze_namespace.as_deref())?;
        Ok(Settings {
            namespace,
            namespace_from: from.to_string(),
            target: self.target()?,
            count: self.count,
            interval,
            grace_period: self.grace_period,
            delay: self.delay.as_duration(),
            method: if self.evict {
                Method::Evict
            } else {
                Method::Delete
            },
            min_ready: self.min_ready,
            recovery_timeout,
            expect_recovery_within: expect,
            client,
            run_id: run_id.to_owned(),
            freeze_namespaces,
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

    /// The freeze switch: a run stops within seconds of `chaos-freeze` appearing.
    fn freeze_switch(&self) -> Option<FreezeSwitch> {
        let settings = self.settings("freeze").ok()?;
        Some(FreezeSwitch {
            client: settings.client,
            namespaces: settings.freeze_namespaces,
        })
    }

    fn summarize(report: &ReportView, style: &Style) -> Option<Said> {
        crate::summary::describe(report, style)
    }

    fn prepare(self, run_id: &str) -> chaos_common::Result<Prepared<PodKill>> {
        let settings = self.settings(run_id)?;
        let duration = self.common.duration_or(default_duration(&settings))?;
        let parameters = json!({
            "namespace": settings.namespace,
            "service": self.service,
            "deployment": self.deployment,
            "statefulset": self.statefulset,
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
            fault: PodKill::new(settings),
            duration,
            parameters,
        })
    }
}

#[cfg(test)]
mod tests;
