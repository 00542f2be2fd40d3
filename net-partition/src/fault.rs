//! The fault: one owned nftables table that drops or rejects traffic to the targets.

use std::time::{Duration, Instant};

use chaos_common::report::round;
use chaos_common::safety::SafetyRequest;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result, Target};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::nft;
use crate::observations::{self, Observations, ProbeSummary};
use crate::probe::{self, ProbeSample, ProbeTarget};
use crate::render;
use crate::rules::{self, Direction, Protocol, RuleSpec, Verdict};
use crate::target::{self, Cidr, ResolvedTarget};
use crate::watch::{self, Sample};
use crate::watchdog::Watchdog;

/// A validated partition (built by `cli.rs`).
#[derive(Debug)]
pub struct Partition {
    /// `chaos-net-partition-<run id>`.
    pub table: String,
    /// The `-H` values; host names get their addresses in `resolve`.
    pub targets: Vec<ResolvedTarget>,
    /// What goes in the sets: `targets` without duplicates and nested blocks (set by
    /// `resolve`).
    pub elements: Vec<Cidr>,
    pub spec: RuleSpec,
    /// `--probe`, resolved in `resolve`.
    pub probe: Option<ProbeTarget>,
    /// How long the table stays: the watchdog removes it this long (plus a grace) after
    /// apply even if this process hangs.
    pub run_for: Duration,
    /// The baseline probe, carried to the handle by apply (a measurement, not config).
    pub before: Option<ProbeSample>,
}

/// What apply created: the table (named here) and its watchdog, plus the samples.
#[derive(Debug)]
pub struct Handle {
    table: String,
    watchdog: Option<Watchdog>,
    applied_at: Instant,
    apply_ms: f64,
    samples: Vec<Sample>,
    probes: Vec<ProbeSample>,
    before: Option<ProbeSample>,
}

impl Partition {
    /// A partition of `targets` (literal blocks now; names once resolved).
    pub fn new(
        table: String,
        targets: Vec<ResolvedTarget>,
        spec: RuleSpec,
        probe: Option<ProbeTarget>,
        run_for: Duration,
    ) -> Partition {
        let elements = target::set_elements(&targets);
        Partition {
            table,
            targets,
            elements,
            spec,
            probe,
            run_for,
            before: None,
        }
    }

    fn probe_addr(&self) -> Option<std::net::SocketAddr> {
        self.probe.as_ref().and_then(|p| p.addr)
    }

    fn describe_match(&self) -> String {
        let proto = match (self.spec.protocol, self.spec.port) {
            (Protocol::All, None) => "all traffic".to_owned(),
            (Protocol::All, Some(p)) => format!("TCP and UDP port {p}"),
            (Protocol::Tcp, p) => {
                format!("TCP{}", p.map(|p| format!(" port {p}")).unwrap_or_default())
            }
            (Protocol::Udp, p) => {
                format!("UDP{}", p.map(|p| format!(" port {p}")).unwrap_or_default())
            }
        };
        let share = if self.spec.drop_percent < 100 {
            format!("{}% of ", self.spec.drop_percent)
        } else {
            String::new()
        };
        let to: Vec<String> = self
            .targets
            .iter()
            .map(|t| match t.addresses.as_slice() {
                [] => format!("{} (resolved at start)", t.input),
                [one] if one.to_string() == t.input => t.input.clone(),
                _ => format!(
                    "{} ({})",
                    t.input,
                    t.addresses
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
            .collect();
        let direction = if self.spec.bidirectional {
            "between this network namespace and"
        } else {
            "from this network namespace to"
        };
        format!("{share}{proto} {direction} {}", to.join(", "))
    }

    fn steps(&self) -> Vec<String> {
        let (v4, v6): (Vec<&Cidr>, Vec<&Cidr>) = self.elements.iter().partition(|c| c.is_v4());
        let list = |v: &[&Cidr]| match v {
            [] => "{}".to_owned(),
            v => format!(
                "{{ {} }}",
                v.iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        let mut steps = vec![
            format!(
                "start a watchdog process that deletes table inet {} if net-partition dies, or \
                 {} s after its planned end if it hangs",
                self.table,
                crate::watchdog::GRACE.as_secs()
            ),
            format!(
                "create nftables table inet {} with set {} {} and set {} {}",
                self.table,
                rules::SET_V4,
                list(&v4),
                rules::SET_V6,
                list(&v6)
            ),
        ];
        for direction in self.spec.directions() {
            let hook = if direction == Direction::Egress {
                "output"
            } else {
                "input"
            };
            steps.push(format!(
                "add counter {0} and chain {0} (filter hook {hook} priority 0) to table inet {1}",
                direction.name(),
                self.table
            ));
            for expr in rules::rule_exprs(&self.spec, direction) {
                steps.push(format!(
                    "add rule to chain {}: {}",
                    direction.name(),
                    render::rule(&expr)
                ));
            }
        }
        let probe = self
            .probe
            .as_ref()
            .map(|p| format!(" and probe {}", p.text))
            .unwrap_or_default();
        steps.push(format!("sample counters{probe} every second"));
        steps.push(format!(
            "delete table inet {} (`{}`)",
            self.table,
            rules::delete_argv(&self.table).join(" ")
        ));
        steps
    }

    fn warnings(&self) -> Vec<String> {
        let mut warnings = vec![
            "established connections to the targets are cut too (no conntrack exception)"
                .to_owned(),
        ];
        if self.elements.iter().any(|c| c.len == 0) {
            warnings.push(
                "a /0 target partitions ALL traffic of that address family, DNS included".into(),
            );
        }
        if self.spec.drop_percent < 100 {
            warnings.push(format!(
                "--drop-percent {} acts per packet: TCP retransmits, so connections slow down rather than fail",
                self.spec.drop_percent
            ));
        }
        warnings
    }
}

impl Fault for Partition {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        let (verb, effect) = match self.spec.verdict {
            Verdict::Drop => ("dropped", "clients time out"),
            Verdict::Reject => (
                "rejected",
                "clients fail fast (TCP reset / ICMP unreachable)",
            ),
        };
        Plan {
            hypothesis: format!(
                "{} is {verb}: {effect}; traffic passes again once table inet {} is deleted",
                self.describe_match(),
                self.table
            ),
            targets: self
                .targets
                .iter()
                .map(|t| {
                    Target::new("network-target", &t.input)
                        .with_details(json!({ "addresses": t.addresses }))
                })
                .collect(),
            steps: self.steps(),
            warnings: self.warnings(),
            safety: SafetyRequest {
                namespaces: Vec::new(),
                destructive: true,
            },
        }
    }

    async fn resolve(&mut self) -> Result<()> {
        target::resolve_names(&mut self.targets)
            .await
            .map_err(|e| ChaosError::bad_input(format!("-H/--target-host: {e}")))?;
        self.elements = target::set_elements(&self.targets);
        if let Some(probe) = &mut self.probe {
            probe::resolve_probe(probe)
                .await
                .map_err(|e| ChaosError::bad_input(format!("--probe: {e}")))?;
        }
        Ok(())
    }

    fn check_access(&self) -> Result<()> {
        nft::check_access()
    }

    async fn baseline(&mut self) -> Result<Value> {
        let (Some(probe), Some(addr)) = (&self.probe, self.probe_addr()) else {
            return Ok(Value::Null);
        };
        let text = probe.text.clone();
        let before = probe::probe(addr, None).await;
        self.before = Some(before.clone());
        Ok(json!({ "probe": { "target": text, "result": before } }))
    }

    #[instrument(skip_all)]
    async fn apply(&mut self) -> Result<Handle> {
        let document = rules::apply_document(&self.table, &self.spec, &self.elements);
        // The watchdog first: from the moment the transaction starts, a kill of this
        // process cannot leave the table behind.
        let watchdog = Watchdog::start(&self.table, self.run_for).await?;
        let started = Instant::now();
        if let Err(e) = nft::apply(&document).await {
            // The transaction is atomic: nothing to undo but the watchdog.
            watchdog.stop().await;
            return Err(e);
        }
        let apply_ms = started.elapsed().as_secs_f64() * 1000.0;
        let applied_at = Instant::now();
        info!(
            "partition applied in {:.1} ms: {}",
            apply_ms,
            self.describe_match()
        );
        Ok(Handle {
            table: self.table.clone(),
            watchdog: Some(watchdog),
            applied_at,
            apply_ms,
            samples: Vec::new(),
            probes: Vec::new(),
            before: self.before.take(),
        })
    }

    #[instrument(skip_all)]
    async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        let t_ms = elapsed_ms(handle.applied_at);
        let counters = nft::counters(&handle.table).await?;
        handle
            .samples
            .push(watch::sample(t_ms, &self.spec.directions(), &counters));
        if let Some(addr) = self.probe_addr() {
            let result = probe::probe(addr, Some(t_ms)).await;
            handle.probes.push(result);
        }
        Ok(Progress::Running)
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        // One last reading, right before revert, so the totals cover the whole run.
        match nft::counters_blocking(&handle.table) {
            Ok(c) => handle.samples.push(watch::sample(
                elapsed_ms(handle.applied_at),
                &self.spec.directions(),
                &c,
            )),
            Err(e) => warn!("final counter reading failed: {e}"),
        }
        let last = handle
            .samples
            .last()
            .cloned()
            .unwrap_or_else(|| watch::sample(0, &self.spec.directions(), &[]));
        let egress = observations::total(&last, Direction::Egress).unwrap_or_default();
        let ingress = observations::total(&last, Direction::Ingress);
        let observations = Observations {
            table: handle.table.clone(),
            verdict: self.spec.verdict,
            apply_ms: round(handle.apply_ms, 3),
            resolved_targets: self.targets.clone(),
            set_elements: self.elements.clone(),
            egress_packets: egress.packets,
            egress_bytes: egress.bytes,
            ingress_packets: ingress.map(|c| c.packets),
            ingress_bytes: ingress.map(|c| c.bytes),
            samples: std::mem::take(&mut handle.samples),
            probe: self
                .probe
                .as_ref()
                .map(|p| ProbeSummary::new(&p.text, handle.before.as_ref(), &handle.probes)),
        };
        Conclusion {
            observations: serde_json::to_value(observations).unwrap_or(Value::Null),
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all)]
    async fn revert(&mut self, mut handle: Handle) -> Result<Value> {
        let started = Instant::now();
        nft::delete_table(&handle.table).await?;
        let revert_ms = round(started.elapsed().as_secs_f64() * 1000.0, 3);
        let watchdog = match handle.watchdog.take() {
            Some(w) => w.stop().await,
            None => "none",
        };
        let mut details =
            json!({ "table": handle.table, "revertMs": revert_ms, "watchdog": watchdog });
        if let (Some(probe), Some(addr)) = (&self.probe, self.probe_addr()) {
            details["probeAfter"] =
                json!({ "target": probe.text, "result": probe::probe(addr, None).await });
        }
        Ok(details)
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        vec![rules::delete_argv(&self.table).join(" ")]
    }
}

fn elapsed_ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}
