//! Tests of remote.rs (a file of their own: they parse the flags with cli.rs, which uses
//! remote.rs).

use super::*;
use crate::cli::Cli;
use clap::Parser;

/// The remote request of a command line.
fn request_of(args: &[&str]) -> Result<Option<Request>> {
    let cli = Cli::try_parse_from(std::iter::once("latency-injector").chain(args.iter().copied()))
        .unwrap();
    request(&cli.remote_flags())
}

#[test]
fn the_runbook_forms() {
    let r = request_of(&[
        "--service=order-payment-service",
        "--endpoint=/v1/webhooks/stripe",
        "--latency-ms=10000",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(
        r.selection,
        Selection::Service("order-payment-service".into())
    );
    assert!(r.peer.is_none());

    let r = request_of(&["-n", "lomash-wood", "--target", "redis", "-l", "5000"])
        .unwrap()
        .unwrap();
    assert_eq!(r.selection, Selection::Backends("redis".into()));
    assert_eq!(r.skip, ["target", "target_port"]);

    let r = request_of(&["-s", "product-service", "--target", "redis"])
        .unwrap()
        .unwrap();
    assert_eq!(r.selection, Selection::Service("product-service".into()));
    assert!(r.peer.is_none());

    // Local mode: no remote flags, or --target alone (the runbook's local form).
    assert!(
        request_of(&["--target", "redis", "-l", "5000"])
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
