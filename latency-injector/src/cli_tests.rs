//! Table tests of the command line's validation and mode selection.

use super::*;

fn prepare(args: &[&str]) -> Result<Prepared<Latency>> {
    let argv = std::iter::once("latency-injector").chain(args.iter().copied());
    match Cli::try_parse_from(argv) {
        Ok(cli) => cli.prepare("t1"),
        Err(e) => Err(ChaosError::bad_input(e.to_string())),
    }
}

const BASE: [&str; 4] = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:6379"];

#[test]
fn bad_values_name_their_flag() {
    let table: [(&[&str], &str); 14] = [
        (&["--probability", "101"], "--probability"),
        (&["--probability", "-1"], "--probability"),
        (&["--probability", "0"], "not a fault"),
        (&["--drain-timeout", "601s"], "--drain-timeout"),
        (&["--buffer-limit", "1023"], "--buffer-limit"),
        (
            &["--endpoint", "/x", "--direction", "downstream"],
            "--direction",
        ),
        (&["--allow-source-rewrite"], "--allow-source-rewrite"),
        (&["-l", "600001"], "--latency-ms"),
        (&["-j", "700000"], "--jitter-ms"),
        (&["--endpoint", "v1/x"], "--endpoint"),
        (&["--method", "P0ST"], "--method"),
        (&["-d", "0"], "--duration"),
        (&["--listen", "127.0.0.1:1"], "--upstream"),
        (&["--upstream", "127.0.0.1:6379"], "--listen"),
    ];
    for (args, flag) in table {
        let mut argv: Vec<&str> = Vec::new();
        if !args.contains(&"--listen") && !args.contains(&"--upstream") {
            argv.extend(BASE);
        }
        argv.extend(args);
        match prepare(&argv) {
            Err(ChaosError::BadInput(message)) => {
                assert!(message.contains(flag), "{argv:?}: {message}");
            }
            other => panic!("{argv:?} should be bad input, got {other:?}"),
        }
    }
}

#[test]
fn upstream_needs_a_port_and_a_resolvable_host() {
    for upstream in ["127.0.0.1", "127.0.0.1:0", "no-such-host.invalid:80"] {
        let argv = ["--listen", "127.0.0.1:0", "--upstream", upstream];
        assert!(
            matches!(prepare(&argv), Err(ChaosError::BadInput(_))),
            "{upstream}"
        );
    }
}

#[test]
fn endpoint_or_method_switches_to_http() -> Result<()> {
    let mut argv = BASE.to_vec();
    argv.extend(["--endpoint", "/v1/webhooks/stripe", "--method", "post"]);
    let prepared = prepare(&argv)?;
    assert_eq!(prepared.parameters["mode"], "explicit-http");
    assert_eq!(prepared.parameters["http"]["methods"][0], "POST");
    assert_eq!(prepare(&BASE)?.parameters["mode"], "explicit-tcp");
    Ok(())
}

#[test]
fn runbook_spellings_are_accepted() -> Result<()> {
    let mut argv = BASE.to_vec();
    argv.extend(["--latency-ms=5000", "--jitter-ms=10", "--duration=60"]);
    let prepared = prepare(&argv)?;
    assert_eq!(prepared.parameters["latencyMs"], 5000);
    assert_eq!(prepared.parameters["jitterMs"], 10);
    assert_eq!(prepared.duration, Duration::from_secs(60));
    Ok(())
}

#[test]
fn modes_do_not_mix() {
    let table: [&[&str]; 7] = [
        &[
            "--listen",
            "127.0.0.1:1",
            "--upstream",
            "127.0.0.1:2",
            "--target",
            "10.0.0.1",
        ],
        &["--target", "10.0.0.1", "--app-port", "3000"],
        &["--target", "10.0.0.1", "-H", "10.0.0.2"],
        &["--target", "10.0.0.1:6379", "-p", "6380"],
        &["-p", "6379", "--endpoint", "/x"],
        &[
            "--listen",
            "127.0.0.1:1",
            "--upstream",
            "127.0.0.1:2",
            "--reset-existing",
        ],
        &["--target", "127.0.0.1:6379"],
    ];
    for argv in table {
        assert!(
            matches!(prepare(argv), Err(ChaosError::BadInput(_))),
            "{argv:?}"
        );
    }
}

#[test]
fn transparent_modes_are_chosen_from_their_flags() -> Result<()> {
    let egress = prepare(&["--target=198.51.100.2:6379", "--reset-existing"])?;
    assert_eq!(egress.parameters["mode"], "egress-tcp");
    assert_eq!(egress.parameters["targetPort"], 6379);
    let hosts = prepare(&["-H", "198.51.100.2", "-H", "198.51.100.6", "-p", "80"])?;
    assert_eq!(
        hosts.parameters["targetAddresses"].as_array().map(Vec::len),
        Some(2)
    );
    let ingress = prepare(&["--endpoint", "/v1/webhooks/stripe", "--latency-ms=10000"])?;
    assert_eq!(ingress.parameters["mode"], "ingress-http");
    assert_eq!(ingress.parameters["appPort"], 3000);
    assert_eq!(ingress.parameters["allowSourceRewrite"], false);
    let rewrite = prepare(&["--app-port", "8080", "--allow-source-rewrite"])?;
    assert_eq!(rewrite.parameters["allowSourceRewrite"], true);
    let tcp_ingress = prepare(&["--app-port", "8080"])?;
    assert_eq!(tcp_ingress.parameters["mode"], "ingress-tcp");
    Ok(())
}

#[test]
fn endpoints_are_normalised_and_limits_recorded() -> Result<()> {
    let mut argv = BASE.to_vec();
    argv.extend([
        "--endpoint",
        "/v1//hooks/./x/../stripe",
        "--buffer-limit",
        "64KiB",
        "--drain-timeout",
        "10m",
    ]);
    let prepared = prepare(&argv)?;
    assert_eq!(
        prepared.parameters["http"]["endpoints"][0],
        "/v1/hooks/stripe"
    );
    assert_eq!(prepared.parameters["bufferLimitBytes"], 65536);
    assert_eq!(prepared.parameters["drainTimeoutMs"], 600_000);
    assert_eq!(prepared.parameters["headerTimeoutMs"], 60_000);
    Ok(())
}
