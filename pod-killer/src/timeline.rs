//! The recovery timeline: pod changes seen by the watch, turned into per-kill
//! timestamps (deletion accepted, old pod gone, replacement created, scheduled, Ready,
//! Deployment back to its desired ready count). Pure: the watch task feeds it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Instant, SystemTime};

use chaos_common::kube::targets::{is_ready, is_terminating};
use k8s_openapi::api::core::v1::Pod;

/// A moment, on the wall clock (for the report) and the monotonic one (for durations).
#[derive(Debug, Clone, Copy)]
pub struct Stamp {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl Stamp {
    pub fn now() -> Stamp {
        Stamp {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Deleted; waiting for recovery.
    Pending,
    Recovered,
    NotRecovered,
    /// The eviction was refused by this PodDisruptionBudget; nothing was deleted.
    BlockedByPdb(String),
    /// Not attempted: it would have broken `--min-ready`.
    Skipped(String),
    /// The delete call failed.
    Failed(String),
    /// The run stopped (signal, duration cap) before the kill recovered.
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Kill {
    pub index: usize,
    pub pod: String,
    pub requested: Stamp,
    pub accepted: Option<Stamp>,
    pub gone: Option<Stamp>,
    pub replacement: Option<String>,
    pub created: Option<Stamp>,
    pub scheduled: Option<Stamp>,
    pub ready: Option<Stamp>,
    pub recovered: Option<Stamp>,
    pub outcome: Outcome,
    pub event: Option<String>,
    /// Pods that existed when the kill was requested: anything else is a replacement.
    known: BTreeSet<String>,
}

impl Kill {
    /// Whether a delete was (or is being) sent for this kill, so its pods are tracked.
    /// Watch events can arrive before the DELETE response does.
    pub fn deleted(&self) -> bool {
        matches!(
            self.outcome,
            Outcome::Pending | Outcome::Recovered | Outcome::NotRecovered | Outcome::Interrupted
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct PodState {
    scheduled: bool,
    ready: bool,
    terminating: bool,
}

#[derive(Debug, Default)]
pub struct Timeline {
    pub kills: Vec<Kill>,
    pods: BTreeMap<String, PodState>,
    /// The ready count that means "recovered" (the Deployment's replicas).
    pub desired: usize,
    /// Whether the watch has delivered its initial list.
    pub synced: bool,
    relist: Option<BTreeSet<String>>,
}

fn is_scheduled(pod: &Pod) -> bool {
    let by_condition = pod
        .status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| {
            c.iter()
                .any(|c| c.type_ == "PodScheduled" && c.status == "True")
        });
    by_condition
        || pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some()
}

impl Timeline {
    pub fn new(desired: usize) -> Timeline {
        Timeline {
            desired,
            ..Timeline::default()
        }
    }

    /// Ready pods that are not terminating.
    pub fn ready_count(&self) -> usize {
        self.pods
            .values()
            .filter(|p| p.ready && !p.terminating)
            .count()
    }

    /// Pods that may be killed: Ready and not already terminating, by name.
    pub fn candidates(&self) -> Vec<String> {
        self.pods
            .iter()
            .filter(|(_, p)| p.ready && !p.terminating)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// Starts the record of a kill of `pod`; returns its index in `kills`.
    pub fn start_kill(&mut self, pod: &str, now: Stamp) -> usize {
        let index = self.kills.len();
        self.kills.push(Kill {
            index: index + 1,
            pod: pod.to_owned(),
            requested: now,
            accepted: None,
            gone: None,
            replacement: None,
            created: None,
            scheduled: None,
            ready: None,
            recovered: None,
            outcome: Outcome::Pending,
            event: None,
            known: self.pods.keys().cloned().collect(),
        });
        index
    }

    /// A kill that was not attempted (min-ready) or did not delete anything (PDB).
    pub fn record_unattempted(&mut self, pod: &str, outcome: Outcome, now: Stamp) {
        let index = self.start_kill(pod, now);
        self.kills[index].outcome = outcome;
    }

    pub fn on_init(&mut self) {
        self.relist = Some(BTreeSet::new());
    }

    /// The end of a (re-)list: pods not in it are gone.
    pub fn on_init_done(&mut self, now: Stamp) {
        if let Some(seen) = self.relist.take() {
            let vanished: Vec<String> = self
                .pods
                .keys()
                .filter(|n| !seen.contains(*n))
                .cloned()
                .collect();
            for name in vanished {
                self.on_deleted(&name, now);
            }
        }
        self.synced = true;
    }

    /// An added or modified pod.
    pub fn on_pod(&mut self, pod: &Pod, now: Stamp) {
        let Some(name) = pod.metadata.name.clone() else {
            return;
        };
        if let Some(seen) = self.relist.as_mut() {
            seen.insert(name.clone());
        }
        let state = PodState {
            scheduled: is_scheduled(pod),
            ready: is_ready(pod),
            terminating: is_terminating(pod),
        };
        self.pods.insert(name.clone(), state);
        for kill in self.kills.iter_mut().filter(|k| k.deleted()) {
            if kill.replacement.is_none() && !kill.known.contains(&name) && !state.terminating {
                kill.replacement = Some(name.clone());
                kill.created = Some(now);
            }
            if kill.replacement.as_deref() == Some(name.as_str()) {
                if state.scheduled && kill.scheduled.is_none() {
                    kill.scheduled = Some(now);
                }
                if state.ready && kill.ready.is_none() {
                    kill.ready = Some(now);
                }
            }
        }
        self.check_recovery(now);
    }

    pub fn on_deleted(&mut self, name: &str, now: Stamp) {
        self.pods.remove(name);
        for kill in self
            .kills
            .iter_mut()
            .filter(|k| k.pod == name && k.gone.is_none() && k.deleted())
        {
            kill.gone = Some(now);
        }
        self.check_recovery(now);
    }

    /// A pending kill has recovered once its replacement is Ready and the ready count
    /// is back to `desired`.
    fn check_recovery(&mut self, now: Stamp) {
        let back = self.ready_count() >= self.desired;
        for kill in self
            .kills
            .iter_mut()
            .filter(|k| k.outcome == Outcome::Pending)
        {
            if kill.ready.is_some() && back {
                kill.recovered = Some(now);
                kill.outcome = Outcome::Recovered;
            }
        }
    }
}

#[cfg(test)]
mod tests;
