//! The plan of a run (what `--dry-run` prints and every report records), from the
//! fault's configuration only.

use std::time::Duration;

use chaos_common::Plan;
use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use serde_json::json;

use crate::placement::Placement;
use crate::proxy::ProxyConfig;
use crate::rules::{self, Redirect};

fn delay_text(config: &ProxyConfig) -> String {
    let m = &config.model;
    let (what, share) = match &config.http {
        Some(delays) => (
            format!(
                "each request matching {} (its head read within {} s, or passed through as it is)",
                delays.rules.describe(),
                delays.header_timeout.as_secs()
            ),
            "of matching requests",
        ),
        None => (
            format!("each chunk travelling {:?}", m.direction).to_lowercase(),
            "of connections",
        ),
    };
    format!(
        "hold {what} for {} ms ± {} ms from its arrival ({}% {share}), bytes unchanged",
        m.latency.as_millis(),
        m.jitter.as_millis(),
        m.probability
    )
}

fn transparent_steps(
    run_id: &str,
    config: &ProxyConfig,
    redirect: &Redirect,
    reset_existing: bool,
    routes: bool,
    label: &str,
    kind: &str,
) -> Vec<String> {
    let table = rules::table_name(run_id);
    let mut steps = vec![format!(
        "listen on {} (an ephemeral port, backlog 4096)",
        config.listen
    )];
    match redirect {
        Redirect::Egress { mark, .. } => steps.push(format!(
            "create table inet {table} redirecting outbound TCP connections to {label} into the proxy \
             (nat output; the proxy's own, marked {mark:#x}, are excluded)"
        )),
        Redirect::Ingress { app_port } => {
            if routes {
                steps.push(format!(
                    "add a policy rule and route table so the application's replies from 127.0.0.1:{app_port} \
                     reach the proxy (clients keep their own address), guarded by a second process"
                ));
            }
            steps.push(format!(
                "create table inet {table} handing inbound IPv4 connections to port {app_port} to the proxy \
                 (tproxy in prerouting)"
            ));
        }
    }
    steps.push(format!(
        "start a watchdog that deletes table inet {table} if this process dies"
    ));
    steps.push(match redirect {
        Redirect::Egress { .. } => {
            format!("forward each to its original destination (SO_ORIGINAL_DST) ({kind})")
        }
        Redirect::Ingress { app_port } if routes => format!(
            "forward each to the application on 127.0.0.1:{app_port} from the client's own address ({kind})"
        ),
        Redirect::Ingress { app_port } => format!(
            "forward each to the application on 127.0.0.1:{app_port} (it sees 127.0.0.1: --allow-source-rewrite) ({kind})"
        ),
    });
    steps.push(if reset_existing {
        "count established connections that bypass the redirect and close them (ss -K)".to_owned()
    } else {
        "count established connections that bypass the redirect (bypassingConnections)".to_owned()
    });
    steps
}

fn end_step(placement: &Placement, drain: Duration) -> String {
    let first = match placement {
        Placement::Explicit => "stop accepting (taking in what the kernel already accepted)",
        Placement::Transparent {
            redirect: Redirect::Egress { .. },
            ..
        } => "empty the table's targets (new connections go direct)",
        Placement::Transparent { .. } => "delete the table (new connections go direct)",
    };
    format!(
        "at the end: {first}, let the connections in flight finish for up to {} ms (HTTP ones close \
         once answered; a signal ends the drain), close the rest{}",
        drain.as_millis(),
        if placement.is_transparent() {
            ", then remove the table and routes"
        } else {
            ""
        }
    )
}

pub fn plan(
    run_id: &str,
    config: &ProxyConfig,
    placement: &Placement,
    label: &str,
    drain: Duration,
) -> Plan {
    let kind = if config.http.is_some() { "http" } else { "tcp" };
    let mut steps = match placement {
        Placement::Explicit => vec![
            format!("check that {label} accepts connections"),
            format!("listen on {} (backlog 4096)", config.listen),
            format!("forward each connection to {label} ({kind})"),
        ],
        Placement::Transparent {
            redirect,
            reset_existing,
            routes,
        } => transparent_steps(
            run_id,
            config,
            redirect,
            *reset_existing,
            routes.is_some(),
            label,
            kind,
        ),
    };
    steps.push(delay_text(config));
    steps.push(end_step(placement, drain));
    let transparent = placement.is_transparent();
    Plan {
        hypothesis: format!(
            "clients of {label} see {} ms more latency (± {} ms) and keep working",
            config.model.latency.as_millis(),
            config.model.jitter.as_millis()
        ),
        targets: vec![Target::new("upstream", label).with_details(json!({
            "listen": config.listen.to_string(),
            "protocol": kind,
            "table": transparent.then(|| rules::table_name(run_id)),
        }))],
        steps,
        warnings: Vec::new(),
        // Explicit: only clients pointed at the proxy are affected. Transparent: every
        // matching connection of the network namespace is.
        safety: SafetyRequest {
            destructive: transparent,
            namespaces: Vec::new(),
        },
    }
}
