//! Transparent ingress (`--app-port`, `--endpoint`) in network namespaces: a "pod"
//! namespace with the application on port 3000 and a client namespace. The application
//! must see each client's own address through the injector, as direct; after the run no
//! table, rule or route of the injector is left; requests in flight at the end finish.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Read;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::fidelity::{Client, ClientSide, Peer, Run, Server};
use common::http_app::{HttpApp, HttpClient};
use common::injector::{Injector, REDIRECTING, TOOL, drain_of};
use common::netlab::{self, Lab};
use nix::sys::signal::Signal;

const HOLD: Duration = Duration::from_millis(500);
const WEBHOOK: &str = "/v1/webhooks/stripe";

struct IngressLab {
    lab: Lab,
    pod: String,
    client: String,
    pod_ip: IpAddr,
    client_ip: IpAddr,
}

static RUNS: AtomicUsize = AtomicUsize::new(0);

impl IngressLab {
    fn new() -> IngressLab {
        let mut lab = Lab::new("lg");
        let pod = lab.namespace("p");
        let client = lab.namespace("c");
        let (pod_ip, client_ip) = lab.link(&pod, &client);
        IngressLab {
            lab,
            pod,
            client,
            pod_ip,
            client_ip,
        }
    }

    fn app_addr(&self) -> SocketAddr {
        SocketAddr::new(self.pod_ip, 3000)
    }

    /// The HTTP application on 0.0.0.0:3000 in the pod.
    fn app(&self) -> HttpApp {
        let listener = self
            .lab
            .in_namespace(&self.pod, || TcpListener::bind("0.0.0.0:3000"));
        HttpApp::serve(listener.unwrap())
    }

    /// Runs `f` in the client namespace.
    fn in_client<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                netlab::enter(&self.client);
                f()
            })
            .join()
            .unwrap()
        })
    }

    /// The injector in the pod; returns once its redirect is in place.
    fn injector(&self, extra: &[&str]) -> Injector {
        self.injector_with(&[], extra)
    }

    /// With `env` (`NAME=VALUE`) set for the tool.
    fn injector_with(&self, env: &[String], extra: &[&str]) -> Injector {
        let run_id = format!(
            "ing{}-{}",
            std::process::id(),
            RUNS.fetch_add(1, Ordering::Relaxed)
        );
        let mut cmd = self.lab.command(&self.pod, "env");
        cmd.args(env).arg(common::bin(TOOL));
        cmd.args(["--run-id", &run_id, "-d", "60", "--app-port", "3000"])
            .args(extra);
        let mut injector = Injector::spawn(&mut cmd);
        injector.wait_log(REDIRECTING, Duration::from_secs(20));
        injector
    }

    /// What of the injector is left in the pod: tables, policy rules, routes.
    fn leftovers(&self) -> String {
        let tables = self.lab.exec_ok(&self.pod, &["nft", "list", "tables"]);
        let rules = self.lab.exec_ok(&self.pod, &["ip", "-4", "rule", "list"]);
        let ours = |l: &&str| l.contains("chaos-latency-injector") || l.contains("lookup 12798");
        tables
            .lines()
            .chain(rules.lines())
            .filter(ours)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

#[test]
fn root_ingress_keeps_clients_addresses_and_delays_only_the_webhook() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let app = lab.app();
    let addr = lab.app_addr();
    // A keep-alive client connected before the fault bypasses it (and is counted).
    let mut early = lab.in_client(|| HttpClient::connect(addr));
    let injector = lab.injector(&["--endpoint", WEBHOOK, "-l", "500"]);
    let bypassed = early.request("POST", WEBHOOK, "{}");
    let replies = lab.in_client(|| {
        let mut client = HttpClient::connect(addr);
        [
            client.request("GET", "/health", ""),
            client.request("POST", WEBHOOK, "{}"),
        ]
    });
    let seen = app.seen();
    assert_eq!(seen.len(), 3);
    for s in &seen {
        assert_eq!(
            s.peer.ip(),
            lab.client_ip,
            "the application saw {} instead of the client",
            s.peer
        );
    }
    assert!(
        seen[0].at - bypassed.sent < HOLD / 2,
        "the bypassing connection was held"
    );
    assert!(seen[1].at - replies[0].sent < HOLD / 2, "/health was held");
    assert!(
        seen[2].at - replies[1].sent >= HOLD,
        "the webhook was not held"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["sourceAddress"], "preserved", "{obs}");
    assert_eq!(obs["bypassingConnections"], 1, "{obs}");
    assert_eq!(
        (obs["requests"].as_u64(), obs["requestsDelayed"].as_u64()),
        (Some(2), Some(1)),
        "{obs}"
    );
    assert_eq!(lab.leftovers(), "", "left behind");
}

#[test]
fn root_ingress_refuses_to_rewrite_addresses_unless_allowed() {
    common::require_root("network namespaces and nftables");
    let lab = IngressLab::new();
    let app = lab.app();
    // An `ip` that fails: the policy routing cannot be set up here.
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("ip");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'RTNETLINK answers: Operation not supported' >&2\nexit 2\n",
    )
    .unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!(
        "PATH={}:/usr/sbin:/usr/bin:/sbin:/bin",
        dir.path().display()
    );
    let mut cmd = lab.lab.command(&lab.pod, "env");
    cmd.arg(&path).arg(common::bin(TOOL));
    cmd.args(["--app-port", "3000", "-d", "30", "-y", "--output", "json"]);
    let out = common::run(&mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["errors"][0]["kind"], "precondition", "{report}");
    assert!(
        report["errors"][0]["message"]
            .to_string()
            .contains("--allow-source-rewrite"),
        "{report}"
    );
    assert_eq!(report["revert"]["status"], "not-applied");
    assert_eq!(lab.leftovers(), "");

    let injector = lab.injector_with(&[path], &["--allow-source-rewrite", "--http", "-l", "100"]);
    let addr = lab.app_addr();
    lab.in_client(|| HttpClient::connect(addr).request("GET", "/x", ""));
    assert_eq!(
        app.seen()[0].peer.ip(),
        IpAddr::from([127, 0, 0, 1]),
        "rewritten, as asked"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["observations"]["sourceAddress"], "rewritten");
}

#[test]
fn root_sigkill_leaves_no_table_and_no_routes() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let _app = lab.app();
    let injector = lab.injector(&["--http"]);
    assert_ne!(lab.leftovers(), "", "nothing in place");
    injector.kill();
    common::wait_until(
        "the watchdog and the guard clean up",
        Duration::from_secs(5),
        || lab.leftovers().is_empty(),
    );
}

#[test]
fn root_cleanup_removes_leftover_routes_and_spares_foreign_rules() {
    common::require_root("network namespaces and policy routing");
    let lab = IngressLab::new();
    let ip = |args: &str| {
        lab.lab
            .exec_ok(&lab.pod, &args.split(' ').collect::<Vec<_>>())
    };
    ip("ip -4 route add local 0.0.0.0/0 dev lo table 1279852545");
    ip(
        "ip -4 rule add from 127.0.0.1 iif lo ipproto tcp sport 3000 lookup 1279852545 priority 100",
    );
    ip("ip -4 rule add from 127.0.0.1 ipproto tcp sport 3000 lookup 133 priority 101");
    let cleanup = |dry: bool| {
        let mut cmd = lab.lab.command(&lab.pod, common::bin(TOOL));
        cmd.args(["--cleanup", "--output", "json"]);
        if dry {
            cmd.arg("--dry-run");
        }
        let out = common::run(&mut cmd);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let listed = cleanup(true);
    assert!(listed.to_string().contains("table 1279852545"), "{listed}");
    assert!(
        lab.leftovers().contains("lookup 1279852545"),
        "a dry run removed it"
    );
    cleanup(false);
    cleanup(false);
    assert_eq!(lab.leftovers(), "");
    assert!(
        ip("ip -4 rule list").contains("lookup 133"),
        "a foreign rule went too"
    );
}

#[test]
fn root_the_end_of_ingress_lets_requests_in_flight_finish() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let app = lab.app();
    let addr = lab.app_addr();
    let mut injector = lab.injector(&[
        "--endpoint",
        WEBHOOK,
        "-l",
        "1000",
        "--drain-timeout",
        "30s",
    ]);
    let mut idle = lab.in_client(|| HttpClient::connect(addr));
    idle.request("GET", "/health", "");
    let mut held = lab.in_client(|| HttpClient::connect(addr));
    let request = format!("POST {WEBHOOK} HTTP/1.1\r\nhost: a\r\ncontent-length: 2\r\n\r\n{{}}");
    std::io::Write::write_all(&mut held.writer, request.as_bytes()).unwrap();
    let sent = std::time::Instant::now();
    injector.signal(Signal::SIGTERM);
    injector.wait_log("draining 2 connection(s)", Duration::from_secs(10));
    // New connections reach the application directly at once.
    let direct = lab.in_client(|| HttpClient::connect(addr).request("POST", WEBHOOK, "{}"));
    assert!(
        direct.elapsed() < HOLD,
        "a new connection was held: {:?}",
        direct.elapsed()
    );
    // The held request completes.
    let head = common::http_app::read_head(&mut held.reader).expect("the held request was cut");
    assert!(head[0].starts_with("HTTP/1.1 200"), "{head:?}");
    common::http_app::read_body(&mut held.reader, &head).unwrap();
    assert!(sent.elapsed() >= Duration::from_millis(1000));
    // Both connections, once answered, are closed as a server closes idle ones; the
    // clients close their side in turn.
    for mut client in [idle, held] {
        let mut rest = Vec::new();
        assert_eq!(
            client.reader.read_to_end(&mut rest).map_err(|e| e.kind()),
            Ok(0)
        );
    }
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    let drain = drain_of(&report);
    assert_eq!(drain["inFlightAtStop"], 2, "{drain}");
    assert_eq!(drain["closedIdle"], 2, "{drain}");
    assert_eq!(drain["cutAfterDrain"], 0, "{drain}");
    assert_eq!(drain["endedBy"], "all-finished", "{drain}");
    assert_eq!(app.seen().len(), 3);
    assert_eq!(lab.leftovers(), "");
}

/// A fidelity case in the pod: directly, then through `--app-port 3000` with `args`.
fn ingress_run(
    lab: &IngressLab,
    args: Option<&[&str]>,
    script: impl Fn(&mut Peer) + Send + Sync + 'static,
    client: Client<'_>,
) -> Run {
    let listener = lab
        .lab
        .in_namespace(&lab.pod, || TcpListener::bind("0.0.0.0:3000"))
        .unwrap();
    let mut server = Server::start(listener, std::sync::Arc::new(script));
    let injector = args.map(|args| lab.injector(args));
    server.arm(1);
    let addr = lab.app_addr();
    let client = lab.in_client(|| client(addr));
    let servers = server.sides();
    let report = injector.map(|injector| {
        let (code, report, stderr) = injector.stop();
        assert_eq!(code, 0, "{stderr}");
        report
    });
    Run {
        client,
        servers,
        report,
    }
}

fn echo_twice(peer: &mut Peer) {
    for n in 0..2 {
        let Some(head) = peer.head() else { return };
        peer.note(&format!("req{n}"));
        peer.body(&head, false);
        peer.send(b"HTTP/1.1 200 OK\r\nX-Case: Kept\r\nContent-Length: 2\r\n\r\nok");
    }
    peer.half_close();
}

#[test]
fn root_ingress_changes_nothing_but_the_delay() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let client = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send_noted("req0", b"GET /a HTTP/1.1\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n");
        assert_eq!(peer.response("GET"), Some(200));
        peer.send_noted("req1", b"POST /held HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n");
        assert_eq!(peer.response("POST"), Some(200));
        peer.half_close();
        ClientSide::of(peer)
    };
    let direct = ingress_run(&lab, None, echo_twice, &client);
    let through = ingress_run(
        &lab,
        Some(&["-l", "500", "--endpoint", "/held"]),
        echo_twice,
        &client,
    );
    assert_eq!(through.client.transcript, direct.client.transcript);
    assert_eq!(through.servers[0].transcript, direct.servers[0].transcript);
    assert_eq!(
        through.servers[0].peer.ip(),
        direct.servers[0].peer.ip(),
        "the client's address"
    );
    let transit = |run: &Run, what: &str| run.servers[0].when(what) - run.client.when(what);
    assert!(transit(&through, "req0") < HOLD / 2);
    assert!(transit(&through, "req1") >= HOLD);
}

#[test]
fn root_nginx_logs_the_client_s_own_address_through_the_injector() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let prefix = ["ip", "netns", "exec", lab.pod.as_str()];
    let nginx = common::nginx::Nginx::start(Some(SocketAddr::from(([0, 0, 0, 0], 3000))), &prefix);
    let addr = lab.app_addr();
    let curl = |path: &str| {
        let url = format!("http://{addr}{path}");
        let out = common::run(lab.lab.command(&lab.client, "curl").args([
            "-s",
            "--retry-connrefused",
            "--retry",
            "20",
            "--retry-delay",
            "0",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &url,
        ]));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(curl("/small.txt"), "200");
    let injector = lab.injector(&["--endpoint", "/held", "-l", "300"]);
    assert_eq!(curl("/held"), "200");
    let (code, _, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let log = nginx.access_log();
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(lines.len(), 2, "{log}");
    for line in lines {
        assert!(
            line.starts_with(&format!("{}:", lab.client_ip)),
            "nginx logged {line}"
        );
    }
}

fn idle_close(peer: &mut Peer) {
    peer.head();
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    std::thread::sleep(Duration::from_millis(300));
    peer.half_close();
}

fn reset_after_partial(peer: &mut Peer) {
    peer.head();
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
    std::thread::sleep(Duration::from_millis(100));
    peer.abort_at_end();
}

fn until_reset(peer: &mut Peer) {
    peer.wait_for_bytes();
}

#[test]
fn root_ingress_passes_closes_and_resets_as_they_came() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let get = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send(b"GET /held HTTP/1.1\r\n\r\n");
        ClientSide::of(peer)
    };
    let resets = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send(b"POST /held HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
        ClientSide::aborted(peer)
    };
    let args: &[&str] = &["-l", "300", "--endpoint", "/held"];
    type Script = fn(&mut Peer);
    let cases: [(&str, Script, Client<'_>); 3] = [
        ("upstream idle close", idle_close, &get),
        ("upstream reset", reset_after_partial, &get),
        ("client reset during the hold", until_reset, &resets),
    ];
    for (name, script, client) in cases {
        let direct = ingress_run(&lab, None, script, client);
        let through = ingress_run(&lab, Some(args), script, client);
        assert_eq!(
            through.client.transcript, direct.client.transcript,
            "{name}"
        );
        assert_eq!(
            through.servers[0].transcript, direct.servers[0].transcript,
            "{name}"
        );
    }
}

fn half_close_answered(peer: &mut Peer) {
    peer.head();
    peer.note("req0");
    peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    peer.half_close();
}

fn continue_then_answer(peer: &mut Peer) {
    let head = peer.head().unwrap_or_default();
    peer.send(b"HTTP/1.1 100 Continue\r\n\r\n");
    peer.body(&head, false);
    peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    peer.half_close();
}

fn h2c_settings(peer: &mut Peer) {
    if peer.read_exact(33) {
        peer.send(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    }
    peer.half_close();
}

#[test]
fn root_ingress_passes_half_closes_interim_responses_and_h2c_as_they_came() {
    common::require_root("network namespaces, nftables, policy routing");
    let lab = IngressLab::new();
    let half_close = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send_noted("req0", b"GET /held HTTP/1.1\r\n\r\n");
        peer.half_close();
        ClientSide::of(peer)
    };
    let expect = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send(b"POST /held HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
        if peer.response("POST") == Some(100) {
            peer.send(b"body");
        }
        ClientSide::of(peer)
    };
    let h2c = |addr: SocketAddr| {
        let mut peer = Peer::connect(addr).unwrap();
        peer.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        ClientSide::of(peer)
    };
    let args: &[&str] = &["-l", "300", "--endpoint", "/held"];
    type Script = fn(&mut Peer);
    let cases: [(&str, Script, Client<'_>); 3] = [
        ("request then half-close", half_close_answered, &half_close),
        ("100-continue and 103", continue_then_answer, &expect),
        ("h2c prior knowledge", h2c_settings, &h2c),
    ];
    for (name, script, client) in cases {
        let direct = ingress_run(&lab, None, script, client);
        let through = ingress_run(&lab, Some(args), script, client);
        assert_eq!(
            through.client.transcript, direct.client.transcript,
            "{name}"
        );
        assert_eq!(
            through.servers[0].transcript, direct.servers[0].transcript,
            "{name}"
        );
        assert_eq!(through.servers[0].peer.ip(), lab.client_ip, "{name}");
    }
}
