//! From validated flags to the fault: its configuration, its placement and the
//! parameters the report records. No checks here: `cli.rs` made them all.

use std::net::SocketAddr;
use std::sync::Arc;

use chaos_common::Result;
use chaos_common::tool::Prepared;
use serde_json::json;

use crate::dial::Upstream;
use crate::fault::Latency;
use crate::http::Delays;
use crate::placement::Placement;
use crate::proxy::ProxyConfig;
use crate::proxy_fault::LatencyProxy;
use crate::routes::Routes;
use crate::rules::{self, Redirect};
use crate::settings::Settings;
use crate::target::Chosen;

/// Where the proxy listens, where it forwards to, how it is put in the path, and what
/// the plan calls the upstream.
type Place = (SocketAddr, Upstream, Placement, String);

fn strings<T: ToString>(items: &[T]) -> serde_json::Value {
    json!(items.iter().map(ToString::to_string).collect::<Vec<_>>())
}

/// Where the chosen mode puts the proxy (None: no target, the proxy cannot); records
/// the mode's parameters.
fn place(
    settings: &Settings,
    run_id: &str,
    protocol: &str,
    parameters: &mut serde_json::Value,
) -> Option<Place> {
    Some(match settings.chosen.clone() {
        Chosen::Explicit {
            listen,
            upstream,
            addrs,
        } => {
            parameters["mode"] = json!(format!("explicit-{protocol}"));
            parameters["listen"] = json!(listen.to_string());
            parameters["upstream"] = json!(upstream);
            parameters["upstreamAddresses"] = strings(&addrs);
            (
                listen,
                Upstream::Fixed(addrs),
                Placement::Explicit,
                upstream,
            )
        }
        Chosen::Everything { port } => {
            parameters["mode"] = json!("egress-all-tcp");
            parameters["targetPort"] = json!(port);
            return None;
        }
        Chosen::Egress {
            label,
            targets,
            port,
        } => {
            parameters["mode"] = json!(format!("egress-{protocol}"));
            parameters["target"] = json!(label);
            parameters["targetAddresses"] = strings(&targets);
            parameters["targetPort"] = json!(port);
            egress(settings, run_id, label, targets, port)
        }
        Chosen::Ingress { app_port } => {
            parameters["mode"] = json!(format!("ingress-{protocol}"));
            parameters["appPort"] = json!(app_port);
            ingress(settings, run_id, app_port)
        }
    })
}

fn egress(
    settings: &Settings,
    run_id: &str,
    label: String,
    targets: Vec<std::net::Ipv4Addr>,
    port: Option<u16>,
) -> Place {
    let mark = rules::mark_for(run_id);
    let placement = Placement::Transparent {
        redirect: Redirect::Egress {
            targets,
            port,
            mark,
        },
        reset_existing: settings.reset_existing,
        routes: None,
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    (loopback, Upstream::OriginalDst { mark }, placement, label)
}

fn ingress(settings: &Settings, run_id: &str, app_port: u16) -> Place {
    let preserve_source = !settings.allow_source_rewrite;
    let routes = preserve_source.then(|| Routes {
        table: rules::mark_for(run_id),
        app_port,
    });
    let placement = Placement::Transparent {
        redirect: Redirect::Ingress { app_port },
        reset_existing: settings.reset_existing,
        routes,
    };
    let upstream = Upstream::App {
        port: app_port,
        preserve_source,
    };
    // TPROXY hands connections to a transparent listener on loopback.
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    (
        listen,
        upstream,
        placement,
        format!("application port {app_port}"),
    )
}

/// The fault of these settings: the proxy's and netem's configurations (each where the
/// flags allow it), and the parameters the report records. Bad input when `--engine`
/// names an engine the flags exclude.
pub fn build(settings: Settings, run_id: &str) -> Result<Prepared<Latency>> {
    let shape = crate::engine_config::shape(&settings)?;
    let netem = shape
        .proxy_only
        .is_none()
        .then(|| crate::engine_config::netem(&settings, run_id))
        .flatten();
    let requested = settings.engine;
    let duration = settings.duration;
    let (proxy, parameters) = proxy(settings, run_id);
    Ok(Prepared {
        fault: Latency {
            requested,
            shape,
            proxy,
            netem,
            choice: None,
        },
        duration,
        parameters,
    })
}

fn proxy(settings: Settings, run_id: &str) -> (Option<LatencyProxy>, serde_json::Value) {
    let model = settings.model;
    let mut parameters = json!({
        "engine": settings.engine,
        "latencyMs": settings.latency_ms,
        "jitterMs": settings.jitter_ms,
        "probabilityPercent": model.probability,
        "direction": model.direction,
        "http": settings.rules,
        "drainTimeoutMs": settings.drain.as_millis() as u64,
        "headerTimeoutMs": settings.header_timeout.as_millis() as u64,
        "bufferLimitBytes": settings.buffer_limit,
        "durationSeconds": settings.duration.as_secs_f64(),
        "resetExisting": settings.reset_existing,
        "allowSourceRewrite": settings.allow_source_rewrite,
    });
    let protocol = if settings.rules.is_some() {
        "http"
    } else {
        "tcp"
    };
    let Some((listen, upstream, placement, label)) =
        place(&settings, run_id, protocol, &mut parameters)
    else {
        return (None, parameters);
    };
    let header_timeout = settings.header_timeout;
    let config = ProxyConfig {
        listen,
        transparent: matches!(upstream, Upstream::App { .. }),
        upstream,
        model,
        http: settings.rules.map(|rules| Delays {
            rules: Arc::new(rules),
            model,
            header_timeout,
        }),
        buffer_limit: usize::try_from(settings.buffer_limit).unwrap_or(usize::MAX),
    };
    let proxy = LatencyProxy {
        run_id: run_id.to_owned(),
        config,
        placement,
        label,
        drain: settings.drain,
        run_for: settings.duration + settings.drain,
    };
    (Some(proxy), parameters)
}
