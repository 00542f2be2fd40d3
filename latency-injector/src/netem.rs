//! The netem engine: the kernel delays the targets' packets on the way out of this
//! network namespace, with an owned prio/netem/u32 setup on each egress interface (see
//! `tc.rs` for the exact commands). Nothing sits in the path but the qdiscs: no proxy hop,
//! and connections opened before the fault are delayed too (filters match packets, not
//! new connections).
//!
//! `apply` arms the guard first (`netem_guard.rs`), then sets up each interface, undoing
//! every interface it touched if one step fails. `revert` removes the filters (new
//! packets go direct), waits for the held packets to leave (the longest delay, capped by
//! `--drain-timeout`; a signal ends the wait), then deletes the run's root qdiscs: the
//! interfaces get their default qdisc back, and nothing is left behind.

use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Conclusion, Progress, Result};
use serde::Serialize;
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::guard::Guard;
use crate::netem_guard;
use crate::qdiscs::{self, NetemCounters};
use crate::tc::{self, Matches, NetemDelay};

/// Added to the longest delay when waiting for held packets at the end: netem releases
/// a packet at its time, and the interface sends it right after.
const HOLD_MARGIN: Duration = Duration::from_millis(20);
/// An hour of 1 Hz samples (the default duration cap).
const MAX_SAMPLES: usize = 3600;

#[derive(Debug, Clone)]
pub struct NetemFault {
    /// The run's root handle major (the netem child is `root + 1`).
    pub(crate) root: u16,
    pub(crate) matches: Matches,
    pub(crate) delay: NetemDelay,
    /// What the plan and targets call the traffic (`redis:6379`).
    pub(crate) label: String,
    /// The interfaces, found by `resolve`.
    pub(crate) devices: Vec<String>,
    pub(crate) drain: Duration,
    pub(crate) run_for: Duration,
}

/// What apply set up.
#[derive(Debug)]
pub struct Handle {
    guard: Option<Guard>,
    devices: Vec<String>,
    started: Instant,
    samples: Vec<Sample>,
}

/// One observation: the netem counters summed over the interfaces.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    pub t_ms: u64,
    pub packets: u64,
    pub backlog_packets: u64,
    pub drops: u64,
}

/// The observations of a netem run (`engine` and `engineReason` are added beside them).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// Each interface with the run's root and netem handles.
    pub interfaces: Vec<Value>,
    /// Netem's counters at the end of the observation: packets and bytes it let go,
    /// drops at its limit, packets `--probability` sent at once.
    pub packets: u64,
    pub bytes: u64,
    pub drops: u64,
    pub packets_not_delayed: u64,
    pub peak_backlog_packets: u64,
    /// Set when the counters could not be read at the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counters_error: Option<String>,
    pub samples: Vec<Sample>,
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| ChaosError::fault(format!("tc printed invalid JSON: {e}")))
}

impl NetemFault {
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.delay.latency_ms + self.delay.jitter_ms) + HOLD_MARGIN
    }

    pub fn interfaces(&self) -> Vec<Value> {
        self.devices
            .iter()
            .map(|dev| json!({"device": dev, "root": tc::handle(self.root), "netem": tc::handle(self.root + 1)}))
            .collect()
    }

    /// One interface: root, netem, filters.
    async fn setup(&self, dev: &str) -> Result<()> {
        tc::run(&tc::root_add(dev, self.root), &[]).await.map_err(|e| match e {
            ChaosError::Command { stderr, .. }
                if stderr.contains("NLM_F_REPLACE") || stderr.contains("Exclusivity") =>
            {
                ChaosError::Precondition(format!(
                    "{dev} has a root qdisc of its own now (it had none at the check): the netem \
                     engine never replaces one ({stderr})"
                ))
            }
            other => other,
        })?;
        tc::run(&tc::netem_add(dev, self.root, &self.delay), &[])
            .await
            .map_err(|e| match e {
                ChaosError::Command { stderr, .. } if stderr.contains("kind is unknown") => {
                    ChaosError::Precondition(format!(
                        "the kernel has no sch_netem ({stderr}): use --engine proxy"
                    ))
                }
                other => other,
            })?;
        for argv in tc::filters_add(dev, self.root, &self.matches) {
            tc::run(&argv, &[]).await?;
        }
        Ok(())
    }

    /// The counters of the run's netem on every interface.
    async fn counters(&self, devices: &[String]) -> Result<NetemCounters> {
        let mut total = NetemCounters::default();
        for dev in devices {
            let listing = parse(&tc::run(&tc::stats(dev), &[]).await?)?;
            total.add(qdiscs::netem_counters(&listing, self.root).unwrap_or_default());
        }
        Ok(total)
    }

    fn counters_blocking(&self, devices: &[String]) -> Result<NetemCounters> {
        let mut total = NetemCounters::default();
        for dev in devices {
            let listing = parse(&tc::run_blocking(&tc::stats(dev), &[])?)?;
            total.add(qdiscs::netem_counters(&listing, self.root).unwrap_or_default());
        }
        Ok(total)
    }

    async fn delete_roots(&self, devices: &[String]) -> Result<()> {
        let mut first_error = None;
        for dev in devices {
            if let Err(e) = tc::run(&tc::root_del(dev, self.root), tc::GONE).await {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    #[instrument(skip_all)]
    pub async fn apply(&mut self) -> Result<Handle> {
        // The guard first: a kill after any qdisc exists still removes it.
        let guard = netem_guard::start(self.root, &self.devices, self.run_for).await?;
        for (i, dev) in self.devices.iter().enumerate() {
            if let Err(e) = self.setup(dev).await {
                // The kernel deletes only a root with our handle: never someone else's.
                if let Err(undo) = self.delete_roots(&self.devices[..=i]).await {
                    warn!("undoing the netem setup failed: {undo}; the guard removes it");
                    std::mem::forget(guard);
                } else {
                    guard.stop().await;
                }
                return Err(e);
            }
            info!(
                "{dev}: root qdisc {} with netem {} in place",
                tc::handle(self.root),
                tc::handle(self.root + 1)
            );
        }
        Ok(Handle {
            guard: Some(guard),
            devices: self.devices.clone(),
            started: Instant::now(),
            samples: Vec::new(),
        })
    }

    pub async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        let t_ms = u64::try_from(handle.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        match self.counters(&handle.devices).await {
            Ok(c) if handle.samples.len() < MAX_SAMPLES => handle.samples.push(Sample {
                t_ms,
                packets: c.packets,
                backlog_packets: c.backlog_packets,
                drops: c.drops,
            }),
            Ok(_) => {}
            Err(e) => warn!("cannot read the netem counters: {e}"),
        }
        Ok(Progress::Running)
    }

    pub fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        let (end, counters_error) = match self.counters_blocking(&handle.devices) {
            Ok(counters) => (counters, None),
            Err(e) => (NetemCounters::default(), Some(e.to_string())),
        };
        let peak = handle
            .samples
            .iter()
            .map(|s| s.backlog_packets)
            .max()
            .unwrap_or(0);
        let observations = Observations {
            interfaces: self.interfaces(),
            packets: end.packets,
            bytes: end.bytes,
            drops: end.drops,
            packets_not_delayed: end.not_delayed,
            peak_backlog_packets: peak.max(end.backlog_packets),
            counters_error,
            samples: std::mem::take(&mut handle.samples),
        };
        Conclusion {
            observations: serde_json::to_value(observations).unwrap_or(Value::Null),
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all)]
    pub async fn revert(&mut self, mut handle: Handle) -> Result<Value> {
        let interrupt = crate::proxy_fault::stop_signal();
        let mut filters_removed = true;
        for dev in &handle.devices {
            if let Err(e) = tc::run(&tc::filters_del(dev, self.root), tc::GONE).await {
                warn!("{dev}: cannot remove the filters: {e}");
                filters_removed = false;
            }
        }
        let wait = self.hold().min(self.drain);
        let started = Instant::now();
        let ended_by = tokio::select! {
            () = tokio::time::sleep(wait) => if wait < self.hold() { "timeout" } else { "all-released" },
            () = interrupt => "signal",
        };
        let drain_ms = chaos_common::report::round(started.elapsed().as_secs_f64() * 1000.0, 3);
        let held = self
            .counters(&handle.devices)
            .await
            .map(|c| c.backlog_packets)
            .ok();
        info!("new packets go direct; waited {drain_ms} ms for held ones ({ended_by})");
        let deleted = self.delete_roots(&handle.devices).await;
        let guard = match handle.guard.take() {
            Some(guard) if deleted.is_ok() => guard.stop().await,
            Some(guard) => {
                // Left armed: it deletes the roots when this process exits.
                std::mem::forget(guard);
                "left-armed"
            }
            None => "none",
        };
        deleted.map_err(|e| {
            ChaosError::fault(format!(
                "cannot delete the netem root qdisc {}: {e}",
                tc::handle(self.root)
            ))
        })?;
        Ok(json!({
            "engine": "netem",
            "interfaces": self.interfaces(),
            "filtersRemoved": filters_removed,
            "drainMs": drain_ms,
            "endedBy": ended_by,
            "heldAtEnd": held,
            "deleted": true,
            "guard": guard,
        }))
    }

    pub fn manual_revert_steps(&self) -> Vec<String> {
        let mut steps: Vec<String> = self
            .devices
            .iter()
            .map(|dev| tc::root_del(dev, self.root).join(" "))
            .collect();
        steps.push("latency-injector --cleanup".to_owned());
        steps
    }
}

/// `--cleanup`: deletes every root qdisc of ours in this network namespace (with
/// `dry_run`, lists them). Without `tc`, no netem run can have left one.
pub fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
    let text = match tc::run_blocking(&tc::show_all(), &[]) {
        Ok(text) => text,
        Err(ChaosError::Precondition(e)) if e.contains("not found") => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for (dev, root) in qdiscs::owned_roots(&parse(&text)?) {
        if !dry_run {
            tc::run_blocking(&tc::root_del(&dev, root), tc::GONE)?;
        }
        removed.push(format!(
            "tc root qdisc prio {} (netem engine) on {dev}",
            tc::handle(root)
        ));
    }
    Ok(removed)
}
