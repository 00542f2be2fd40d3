//! Which engine delays the traffic: the user-space proxy, or the kernel's netem qdisc.
//!
//! `--engine auto` (the default) picks netem for TCP-level egress faults (`--target`,
//! `-H/-p`, or no target at all) when the kernel has `sch_netem` and `sch_prio` and every
//! interface the engine would go on has the kernel's default root qdisc; otherwise the
//! proxy, saying why. What only the proxy does keeps it: HTTP matching (`--endpoint`,
//! `--method`, `--http`), the explicit and ingress placements, `--direction downstream` or
//! `both` (netem delays what leaves the namespace), `--reset-existing`. Without a target
//! (every outgoing connection) only netem can do it: where it cannot, the run ends with
//! the reason, as `--engine netem` does: exit 2 (bad input) on a kernel without sch_netem
//! or sch_prio, exit 3 (refused, rule `foreign-root-qdisc`) when an interface has a root
//! qdisc that is not the default, exit 1 when there is no route to a target.
//!
//! The decision ([`decide`]) is pure over the facts [`gather`] reads in `resolve` (so a
//! dry run prints the same choice): the kernel's answer about the qdisc kinds
//! (`probe.rs`, which creates nothing), the interfaces and their root qdiscs.

use chaos_common::{ChaosError, Result};
use serde::Serialize;

use crate::devices::{self, Device};
use crate::probe::{self, Kind};
use crate::qdiscs::Root;
use crate::tc::Matches;

/// `--engine`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum EngineFlag {
    /// netem where the kernel and the interfaces allow it for a TCP egress fault, else the proxy.
    Auto,
    /// The user-space proxy (every mode).
    Proxy,
    /// The kernel's netem qdisc on the egress interfaces (TCP egress only).
    Netem,
}

/// The engine a run uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Engine {
    Proxy,
    Netem,
}

/// The choice and its reason (the report's `engine` and `engineReason`); the interfaces
/// netem goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choice {
    pub engine: Engine,
    pub reason: String,
    pub devices: Vec<String>,
    /// Something the operator should know (a check that could not be made).
    pub warning: Option<String>,
}

/// What the flags allow: `proxy_only` says why netem cannot do this run, `netem_only`
/// that the proxy cannot (no target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub proxy_only: Option<&'static str>,
    pub netem_only: bool,
}

/// What [`gather`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    pub netem: Kind,
    pub prio: Kind,
    pub devices: std::result::Result<Vec<Device>, String>,
}

/// Why netem cannot run here.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unfit {
    /// The kernel has no sch_netem or sch_prio: the engine does not exist here.
    Missing(String),
    /// An interface has a root qdisc that is not the default: never replaced.
    Taken(String),
    /// The interfaces could not be found (no route to a target).
    NoDevices(String),
    /// The kernel could not be asked (no CAP_NET_ADMIN in a dry run).
    CannotTell(String),
}

impl Unfit {
    fn why(&self) -> &str {
        match self {
            Unfit::Missing(why)
            | Unfit::Taken(why)
            | Unfit::NoDevices(why)
            | Unfit::CannotTell(why) => why,
        }
    }

    /// The error of a run that only netem can serve (`--engine netem`, or no target),
    /// `what` naming it: a kernel without the engine is bad input (exit 2: this kernel
    /// cannot serve the command, like a target that does not exist), a root qdisc that
    /// is not the default is refused (exit 3: the engine never replaces one), no route
    /// to a target a failed precondition (exit 1). `CannotTell` is not an error.
    fn error(self, what: &str, instead: &str) -> ChaosError {
        match self {
            Unfit::Missing(why) => ChaosError::bad_input(format!("{what}: {why}; {instead}")),
            Unfit::Taken(why) => ChaosError::Refused {
                rule: "foreign-root-qdisc",
                message: format!("{what}: {why}; {instead}"),
            },
            Unfit::NoDevices(why) | Unfit::CannotTell(why) => {
                ChaosError::Precondition(format!("{what}: {why}"))
            }
        }
    }
}

fn kind_fits(name: &str, module: &str, kind: &Kind) -> std::result::Result<(), Unfit> {
    match kind {
        Kind::Available => Ok(()),
        Kind::Missing => Err(Unfit::Missing(format!(
            "the kernel has no {module} (qdisc kind {name} is unknown to it)"
        ))),
        Kind::Unknown(why) => Err(Unfit::CannotTell(format!(
            "cannot tell whether the kernel has {module}: {why}"
        ))),
    }
}

/// The interfaces netem would go on, or why not.
fn fits(facts: &Facts) -> std::result::Result<Vec<String>, Unfit> {
    let devices = facts
        .devices
        .as_ref()
        .map_err(|e| Unfit::NoDevices(e.clone()))?;
    if let Some(taken) = devices
        .iter()
        .find(|d| !matches!(d.root, Root::Default { .. }))
    {
        return Err(Unfit::Taken(format!(
            "{} has {}: the netem engine never replaces a root qdisc",
            taken.name,
            taken.root.describe()
        )));
    }
    kind_fits("netem", "sch_netem", &facts.netem)?;
    kind_fits("prio", "sch_prio", &facts.prio)?;
    Ok(devices.iter().map(|d| d.name.clone()).collect())
}

fn auto_netem(devices: &[String]) -> String {
    format!(
        "auto: the kernel has sch_netem and {} keep their default qdisc under it",
        devices.join(", ")
    )
}

/// netem for a run only netem can serve, or the error saying why not; where the kernel
/// cannot be asked (a dry run without CAP_NET_ADMIN) it goes ahead with a warning and
/// apply fails cleanly if the kernel lacks it.
fn netem_or_error(
    facts: Facts,
    reason: fn(&[String]) -> String,
    what: &str,
    instead: &str,
) -> Result<Choice> {
    let netem = |devices: Vec<String>, warning: Option<String>| Choice {
        engine: Engine::Netem,
        reason: reason(&devices),
        devices,
        warning,
    };
    match fits(&facts) {
        Ok(devices) => Ok(netem(devices, None)),
        Err(Unfit::CannotTell(why)) => match facts.devices {
            Ok(devices) => Ok(netem(
                devices.into_iter().map(|d| d.name).collect(),
                Some(format!("{why}; apply fails cleanly if it is missing")),
            )),
            Err(e) => Err(Unfit::NoDevices(e).error(what, instead)),
        },
        Err(unfit) => Err(unfit.error(what, instead)),
    }
}

/// The engine for `requested`, given what the flags allow and (lazily) the facts.
pub fn decide(
    requested: EngineFlag,
    shape: Shape,
    facts: impl FnOnce() -> Facts,
) -> Result<Choice> {
    let proxy = |reason: String| Choice {
        engine: Engine::Proxy,
        reason,
        devices: Vec::new(),
        warning: None,
    };
    match requested {
        EngineFlag::Proxy => Ok(proxy("--engine proxy".into())),
        EngineFlag::Netem => netem_or_error(
            facts(),
            |_| "--engine netem".into(),
            "--engine netem",
            "--engine proxy delays through a user-space proxy instead",
        ),
        EngineFlag::Auto => {
            if let Some(why) = shape.proxy_only {
                return Ok(proxy(format!("auto: {why} needs the proxy")));
            }
            let facts = facts();
            if shape.netem_only {
                return netem_or_error(
                    facts,
                    auto_netem,
                    "delaying every outgoing connection (no --target) needs the netem engine",
                    "the proxy delays named targets only (--target HOST[:PORT])",
                );
            }
            match fits(&facts) {
                Ok(devices) => Ok(Choice {
                    engine: Engine::Netem,
                    reason: auto_netem(&devices),
                    devices,
                    warning: None,
                }),
                Err(unfit) => Ok(proxy(format!("auto: {}", unfit.why()))),
            }
        }
    }
}

/// Reads the facts for `matches`: the interfaces and their roots, and the kernel's answer
/// about netem and prio (asked on loopback, or on the first interface if loopback has a
/// root qdisc of its own). Blocking: runs `ip` and `tc`.
pub fn gather(matches: &Matches) -> Facts {
    let names = match matches {
        Matches::Hosts { addrs, .. } => devices::for_targets(addrs),
        Matches::Everything { .. } => devices::every_egress(),
    };
    let devices = names
        .and_then(devices::with_roots)
        .map_err(|e| e.to_string());
    let ask = |kind: &str| {
        let first = probe::kind(kind, probe::LOOPBACK);
        let Kind::Unknown(_) = &first else {
            return first;
        };
        let fallback = devices.as_ref().ok().and_then(|d| d.first()).and_then(|d| {
            nix::net::if_::if_nametoindex(d.name.as_str())
                .ok()
                .and_then(|i| i32::try_from(i).ok())
        });
        match fallback {
            Some(index) => match probe::kind(kind, index) {
                Kind::Unknown(_) => first,
                known => known,
            },
            None => first,
        }
    };
    Facts {
        netem: ask("netem"),
        prio: ask("prio"),
        devices,
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
