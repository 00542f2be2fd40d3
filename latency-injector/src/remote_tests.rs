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

#[test]
fn the_originals_form_runs_netem_in_the_pod() {
    let r = request_of(&[
        "-s",
        "product-service",
        "-l",
        "200",
        "-j",
        "50",
        "-p",
        "5432",
    ])
    .unwrap()
    .unwrap();
    assert_eq!(r.selection, Selection::Service("product-service".into()));
    assert_eq!(r.delivery, Delivery::Ephemeral);
    assert!(r.skip.contains(&"engine"), "{:?}", r.skip);
    assert_eq!(r.extra, ["--engine=netem"]);
    // Aimed forms keep the operator's --engine as given (forwarded, not replaced).
    let r = request_of(&[
        "-s",
        "product-service",
        "--target",
        "redis",
        "--engine",
        "proxy",
    ])
    .unwrap()
    .unwrap();
    assert!(
        !r.skip.contains(&"engine") && r.extra.is_empty(),
        "{:?}",
        r.extra
    );
}

#[test]
fn remote_forms_are_checked_as_the_pod_would_check_them() {
    use chaos_common::tool::Tool;
    let remote = |args: &[&str]| {
        Cli::try_parse_from(std::iter::once("latency-injector").chain(args.iter().copied()))
            .unwrap()
            .remote()
    };
    for (args, needle) in [
        (
            &["-s", "a", "-l", "200", "--engine", "proxy"][..],
            "--engine proxy needs a target",
        ),
        (
            &["-s", "a", "--endpoint", "/x", "--engine", "netem"][..],
            "--engine netem",
        ),
        (
            &["-s", "a", "-p", "5432", "--endpoint", "/x"][..],
            "-p/--target-port alone",
        ),
        (
            &["-s", "a", "-l", "200", "--direction", "both"][..],
            "needs the proxy",
        ),
    ] {
        let e = remote(args)
            .err()
            .unwrap_or_else(|| panic!("{args:?} accepted"));
        assert!(matches!(e, chaos_common::ChaosError::BadInput(_)), "{e:?}");
        assert!(e.to_string().contains(needle), "{args:?}: {e}");
    }
    for args in [
        &["-s", "a", "-l", "200", "-j", "50"][..],
        &["-s", "a", "-l", "200", "--engine", "netem", "-p", "5432"][..],
        &["-s", "a", "--endpoint", "/x", "--engine", "proxy"][..],
    ] {
        assert!(remote(args).unwrap().is_some(), "{args:?}");
    }
}
