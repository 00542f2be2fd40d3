//! Remote mode (docs/remote.md): latency-injector runs in an ephemeral container with
//! NET_ADMIN in each target pod. The forms, as the issue and the runbooks write them:
//!
//! | command line | pods | in the pod |
//! |---|---|---|
//! | `--service A --endpoint /v1/webhooks/stripe --latency-ms 10000` | A's | transparent HTTP ingress on the app port (the flags as given) |
//! | `-n NS --target redis` (no pod selection) | the pods behind Service `redis` | transparent TCP ingress on its target port, `--reset-existing`: every client is delayed, the connections they already hold too |
//! | `-s A --target redis` | A's | egress to `redis`, resolved in the pod as the application resolves it |
//! | `-s A -l 200 -j 50 [-p PORT]` | A's | every outgoing TCP connection leaving the pod (only to PORT), loopback excluded |

use chaos_common::remote::peers::Peer;
use chaos_common::remote::{Delivery, PeerUse, RemoteArgs, Request, Selection};
use chaos_common::{ChaosError, Result};

/// What remote mode reads of the tool's flags (`Cli::remote_flags` builds it: cli.rs uses
/// this module, so this module does not use cli.rs back).
pub struct Flags<'a> {
    pub remote: &'a RemoteArgs,
    pub target: Option<&'a str>,
    pub target_port: Option<u16>,
    pub reset_existing: bool,
    /// `--app-port`, `-H` or `--listen` given: they place the delay themselves.
    pub placed: bool,
    /// Any flag that says where the delay goes (`--target`, the placing flags, `--http`,
    /// `--endpoint`, `--method`).
    pub aimed: bool,
}

/// `--app-port TARGET_PORT` of the Service port a client uses (`--target NAME[:PORT]`).
fn backend_args(peer: &Peer, port: Option<u16>) -> Result<Vec<String>> {
    let p = peer.port(port)?;
    let target: u16 = p.target_port.parse().map_err(|_| {
        ChaosError::bad_input(format!(
            "service/{} port {} targets the named port '{}': give the number with -s SERVICE --app-port PORT",
            peer.service, p.port, p.target_port
        ))
    })?;
    Ok(vec!["--app-port".into(), target.to_string()])
}

/// `NAME` or `NAME:PORT` of `--target`, when NAME can be a Service name.
fn service_target(target: &str) -> Result<(String, Option<u16>)> {
    let (name, port) = crate::target::split_target(target)?;
    chaos_common::remote::args::check_label("--target (a Service in remote mode)", &name)?;
    Ok((name, port))
}

/// The remote request of these flags, or None for local mode.
pub fn request(cli: &Flags) -> Result<Option<Request>> {
    let remote = cli.remote;
    let backends = !remote.selects_pods() && remote.namespace.is_some() && cli.target.is_some();
    if backends {
        // `-n NS --target SERVICE`: delay at the Service's pods, for every client.
        let target = cli.target.unwrap_or_default();
        let (service, port) = service_target(target)?;
        if cli.target_port.is_some() && port.is_some() {
            return Err(ChaosError::bad_input(
                "--target already has a port: drop -p/--target-port",
            ));
        }
        if cli.placed {
            return Err(ChaosError::bad_input(
                "-n NS --target SERVICE delays at the Service's pods: drop --app-port, -H and --listen",
            ));
        }
        return Ok(Some(Request {
            args: remote.clone(),
            selection: Selection::Backends(service.clone()),
            delivery: Delivery::Ephemeral,
            skip: vec!["target", "target_port"],
            // Every client: the connections they already hold (a Redis client keeps
            // one) are closed so that they reconnect through the delay.
            extra: if cli.reset_existing {
                Vec::new()
            } else {
                vec!["--reset-existing".into()]
            },
            peer: Some(PeerUse {
                service,
                flag: "--target",
                port: port.or(cli.target_port),
                args: backend_args,
                update: None,
            }),
            watch_oom: false,
            destructive: false,
        }));
    }
    let Some(mut request) = Request::from_args(crate::TOOL, remote, Delivery::Ephemeral)? else {
        return Ok(None);
    };
    if !cli.aimed {
        // The originals' `-s A -l 200 -j 50 [-p PORT]`: every outgoing TCP connection of
        // the pod, which only netem can delay (`auto` would choose it; `proxy` is refused
        // by `Cli::remote` before anything is touched). The in-pod argv says so: the
        // plan shows the engine, and a kernel without sch_netem is the pod's own clear
        // refusal (exit 2 naming the module) rather than a guess of `auto`.
        request.skip.push("engine");
        request.extra.push("--engine=netem".into());
    }
    Ok(Some(request))
}

#[cfg(test)]
#[path = "remote_tests.rs"]
mod tests;
