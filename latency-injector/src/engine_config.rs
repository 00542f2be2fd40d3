//! From validated flags to what the engines can do: which flags only the proxy serves,
//! whether only netem can (no target), the `--engine` checks (bad input, before anything
//! is touched), and netem's configuration.

use chaos_common::{ChaosError, Result};

use crate::engine::{EngineFlag, Shape};
use crate::model::Direction;
use crate::netem::NetemFault;
use crate::settings::Settings;
use crate::target::Chosen;
use crate::tc::{self, Matches, NetemDelay};

/// Why netem cannot do what the flags ask, if it cannot.
fn proxy_only(settings: &Settings) -> Option<&'static str> {
    let placement = match settings.chosen {
        Chosen::Explicit { .. } => Some("the explicit proxy (--listen/--upstream)"),
        Chosen::Ingress { .. } => Some("transparent ingress (--app-port, or --endpoint alone)"),
        Chosen::Egress { .. } | Chosen::Everything { .. } => None,
    };
    placement
        .or(settings
            .rules
            .is_some()
            .then_some("HTTP endpoint matching (--endpoint, --method, --http)"))
        .or((settings.model.direction != Direction::Upstream)
            .then_some("--direction downstream or both (netem delays what leaves the namespace)"))
        .or(settings.reset_existing.then_some(
            "--reset-existing (netem delays established connections too: nothing to reset)",
        ))
        // netem's reorder, which makes --probability, needs some delay.
        .or(
            (settings.latency_ms == 0 && settings.model.probability < 100.0)
                .then_some("--probability with --latency-ms 0"),
        )
}

/// What the flags allow; bad input when `--engine` names an engine they exclude.
pub fn shape(settings: &Settings) -> Result<Shape> {
    let shape = Shape {
        proxy_only: proxy_only(settings),
        netem_only: matches!(settings.chosen, Chosen::Everything { .. }),
    };
    match (settings.engine, shape.proxy_only) {
        (_, Some(why)) if shape.netem_only => Err(ChaosError::bad_input(format!(
            "{why} needs the proxy, and the proxy needs a target: --target HOST[:PORT], \
             --listen/--upstream or --endpoint (without one, every outgoing connection is \
             delayed with netem)"
        ))),
        (EngineFlag::Netem, Some(why)) => Err(ChaosError::bad_input(format!(
            "--engine netem delays TCP packets leaving this network namespace (--target, -H/-p, \
             or no target): {why} needs --engine proxy (or auto)"
        ))),
        (EngineFlag::Proxy, None) if shape.netem_only => Err(ChaosError::bad_input(
            "--engine proxy needs a target: --target HOST[:PORT], --listen/--upstream or \
             --endpoint (delaying every outgoing connection needs --engine netem or auto)",
        )),
        _ => Ok(shape),
    }
}

/// netem's configuration (its interfaces are found by `resolve`), for the egress forms.
pub fn netem(settings: &Settings, run_id: &str) -> Option<NetemFault> {
    let (matches, label) = match &settings.chosen {
        Chosen::Egress {
            label,
            targets,
            port,
        } => (
            Matches::Hosts {
                addrs: targets.clone(),
                port: *port,
            },
            label.clone(),
        ),
        Chosen::Everything { port } => (
            Matches::Everything { port: *port },
            match port {
                Some(p) => format!("every outgoing TCP connection to port {p}"),
                None => "every outgoing TCP connection".to_owned(),
            },
        ),
        Chosen::Explicit { .. } | Chosen::Ingress { .. } => return None,
    };
    Some(NetemFault {
        root: tc::root_for(run_id),
        matches,
        delay: NetemDelay {
            latency_ms: settings.latency_ms,
            jitter_ms: settings.jitter_ms,
            probability: settings.model.probability,
        },
        label,
        devices: Vec::new(),
        drain: settings.drain,
        run_for: settings.duration + settings.drain,
    })
}
