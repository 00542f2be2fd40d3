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
use chaos_common::remote::{Delivery, PeerUse, Request, Selection};
use chaos_common::{ChaosError, Result};

use crate::cli::Cli;

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
pub fn request(cli: &Cli) -> Result<Option<Request>> {
    let remote = &cli.remote;
    let backends = !remote.selects_pods() && remote.namespace.is_some() && cli.target.is_some();
    if backends {
        // `-n NS --target SERVICE`: delay at the Service's pods, for every client.
        let target = cli.target.as_deref().unwrap_or_default();
        let (service, port) = service_target(target)?;
        if cli.target_port.is_some() && port.is_some() {
            return Err(ChaosError::bad_input(
                "--target already has a port: drop -p/--target-port",
            ));
        }
        if cli.app_port.is_some() || !cli.target_hosts.is_empty() || cli.listen.is_some() {
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
    let Some(request) = Request::from_args(crate::TOOL, remote, Delivery::Ephemeral)? else {
        return Ok(None);
    };
    let aimed = cli.target.is_some()
        || !cli.target_hosts.is_empty()
        || cli.app_port.is_some()
        || cli.listen.is_some()
        || cli.http
        || !cli.endpoints.is_empty()
        || !cli.methods.is_empty();
    if !aimed {
        // The originals' `-s A -l 200 -j 50 [-p PORT]`.
        return Err(ChaosError::bad_input(
            "remote latency-injector needs a place for the delay: --endpoint PATH or --app-port (ingress), \
             --target SERVICE (egress to it), or -n NS --target SERVICE without -s (at the Service's pods); \
             delaying every outgoing connection of a pod is not available yet",
        ));
    }
    Ok(Some(request))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn cli(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("latency-injector").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn the_runbook_forms() {
        let r = request(&cli(&[
            "--service=order-payment-service",
            "--endpoint=/v1/webhooks/stripe",
            "--latency-ms=10000",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(
            r.selection,
            Selection::Service("order-payment-service".into())
        );
        assert!(r.peer.is_none());

        let r = request(&cli(&[
            "-n",
            "lomash-wood",
            "--target",
            "redis",
            "-l",
            "5000",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(r.selection, Selection::Backends("redis".into()));
        assert_eq!(r.skip, ["target", "target_port"]);

        let r = request(&cli(&["-s", "product-service", "--target", "redis"]))
            .unwrap()
            .unwrap();
        assert_eq!(r.selection, Selection::Service("product-service".into()));
        assert!(r.peer.is_none());

        // Local mode: no remote flags, or --target alone (the runbook's local form).
        assert!(
            request(&cli(&["--target", "redis", "-l", "5000"]))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn backends_need_a_numeric_target_port() {
        use chaos_common::remote::peers::ServicePort;
        let peer = Peer {
            service: "redis".into(),
            cluster_ip: None,
            ports: vec![ServicePort {
                name: None,
                port: 6379,
                target_port: "6379".into(),
                protocol: "TCP".into(),
            }],
            endpoints: Default::default(),
        };
        assert_eq!(backend_args(&peer, None).unwrap(), ["--app-port", "6379"]);
        let mut named = peer.clone();
        named.ports[0].target_port = "redis".into();
        assert!(backend_args(&named, None).is_err());
        assert!(backend_args(&peer, Some(1)).is_err());
    }
}
