//! Transparent egress (`--target`) in network namespaces: a "pod" namespace whose
//! outbound connections to redis (in its own namespace) are redirected into the proxy,
//! and echo servers on another port of the same host and on the same port of another
//! host, which must not be touched. The tool runs inside the pod namespace
//! (`ip netns exec`), as it would inside a debug container.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use common::injector::{Injector, REDIRECTING, TOOL, drain_of};
use common::netlab::{self, Lab};
use common::redis::Redis;
use nix::sys::signal::Signal;

struct EgressLab {
    lab: Lab,
    pod: String,
    redis: Redis,
    other_port: SocketAddr,
    other_host: SocketAddr,
    _servers: Vec<netlab::Server>,
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// One PING on an open connection: its round trip.
fn ping(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.write_all(b"PING\r\n").unwrap();
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"+PONG\r\n");
    started.elapsed()
}

impl EgressLab {
    fn new() -> EgressLab {
        let mut lab = Lab::new("le");
        let pod = lab.namespace("p");
        let redis_ns = lab.namespace("r");
        let other_ns = lab.namespace("o");
        let (_, redis_ip) = lab.link(&pod, &redis_ns);
        let (_, other_ip) = lab.link(&pod, &other_ns);
        let redis = Redis::in_namespace(&redis_ns, SocketAddr::new(redis_ip, 6379));
        let other_port = SocketAddr::new(redis_ip, 7000);
        let other_host = SocketAddr::new(other_ip, 6379);
        let servers = vec![
            lab.tcp_echo(&redis_ns, other_port),
            lab.tcp_echo(&other_ns, other_host),
        ];
        EgressLab {
            lab,
            pod,
            redis,
            other_port,
            other_host,
            _servers: servers,
        }
    }

    /// A connection from the pod to redis.
    fn redis_connection(&self) -> TcpStream {
        let redis = self.redis.addr;
        self.lab.in_namespace(&self.pod, move || connect(redis))
    }

    /// The round trip of one PING on a fresh connection from the pod.
    fn redis_rtt(&self) -> Duration {
        ping(&mut self.redis_connection())
    }

    fn echo_rtt(&self, addr: SocketAddr) -> Duration {
        let mut stream = self.lab.in_namespace(&self.pod, move || connect(addr));
        let started = Instant::now();
        netlab::echo_roundtrip(&mut stream, b"hello", Duration::from_secs(5)).unwrap();
        started.elapsed()
    }

    /// The injector in the pod namespace; returns once its table redirects.
    fn injector(&self, run_id: &str, extra: &[&str]) -> Injector {
        let mut cmd = self.lab.command(&self.pod, common::bin(TOOL));
        // The proxy engine's egress: on a kernel with sch_netem, auto would pick netem.
        cmd.args(["--engine", "proxy", "--run-id", run_id, "-d", "60"])
            .args(extra);
        let mut injector = Injector::spawn(&mut cmd);
        injector.wait_log(REDIRECTING, Duration::from_secs(20));
        injector
    }

    fn tables(&self) -> String {
        self.lab.exec_ok(&self.pod, &["nft", "list", "tables"])
    }
}

#[test]
fn root_egress_delays_only_the_target_port_and_address() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let injector = lab.injector(
        "egress-a",
        &["--target", &lab.redis.addr.to_string(), "-l", "500"],
    );
    let delayed = lab.redis_rtt();
    let (other_port, other_host) = (lab.echo_rtt(lab.other_port), lab.echo_rtt(lab.other_host));
    eprintln!("redis {delayed:?}, other port {other_port:?}, other host {other_host:?}");
    assert!(delayed >= Duration::from_millis(500), "{delayed:?}");
    assert!(
        other_port < delayed / 2 && other_host < delayed / 2,
        "an untargeted peer was delayed"
    );
    // redis-benchmark, a real client, from the pod namespace.
    let out = common::run(lab.lab.command(&lab.pod, "redis-benchmark").args([
        "-h",
        &lab.redis.addr.ip().to_string(),
        "-p",
        "6379",
        "-t",
        "ping",
        "-n",
        "20",
        "-c",
        "5",
        "-q",
    ]));
    assert!(out.status.success(), "{out:?}");
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    // No bypassing connection, so no warning about them.
    assert!(!stderr.contains("bypass the proxy"), "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["bypassingConnections"], 0, "{obs}");
    assert!(obs["redirectedConnections"].as_u64() >= Some(6), "{obs}");
    assert_eq!(obs["upstreamErrors"]["total"], 0, "{obs}");
    assert_eq!(
        report["revert"]["details"]["redirect"]["deleted"], true,
        "{report}"
    );
    assert!(
        !lab.tables().contains("chaos-latency-injector"),
        "{}",
        lab.tables()
    );
    assert!(
        lab.redis_rtt() < delayed / 2,
        "still delayed after the revert"
    );
}

#[test]
fn root_egress_counts_bypassing_connections_and_resets_them_on_request() {
    common::require_root("network namespaces, nftables and sock_destroy");
    let lab = EgressLab::new();
    let target = lab.redis.addr.to_string();
    // Opened before the fault: the redirect cannot catch it.
    let mut early = lab.redis_connection();
    let injector = lab.injector("bypass-a", &["--target", &target, "-l", "500"]);
    assert!(
        ping(&mut early) < Duration::from_millis(250),
        "the early connection bypasses"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        report["observations"]["bypassingConnections"], 1,
        "{report}"
    );
    assert!(stderr.contains("--reset-existing"), "{stderr}");

    let mut injector = lab.injector(
        "bypass-b",
        &["--target", &target, "-l", "500", "--reset-existing"],
    );
    injector.wait_log(
        "bypassing connection(s) with ss -K",
        Duration::from_secs(10),
    );
    // sock_destroy closed it: its next read fails or ends.
    let _ = early.write_all(b"PING\r\n");
    let mut buf = [0u8; 16];
    let read = early.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "early connection still open: {read:?}"
    );
    // A client reconnecting goes through the proxy.
    assert!(lab.redis_rtt() >= Duration::from_millis(500));
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(
        (obs["bypassingConnections"].as_u64(), obs["closed"].as_u64()),
        (Some(1), Some(1)),
        "{obs}"
    );
    assert_eq!(obs["remaining"], 0, "{obs}");
}

#[test]
fn root_sigkill_leaves_no_table_thanks_to_the_watchdog() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let injector = lab.injector(
        "kill-a",
        &["--target", &lab.redis.addr.to_string(), "-l", "100"],
    );
    injector.kill();
    common::wait_until(
        "the watchdog deletes the table",
        Duration::from_secs(5),
        || !lab.tables().contains("chaos-latency-injector-kill-a"),
    );
    assert!(lab.redis_rtt() < Duration::from_millis(100) * 5);
}

#[test]
fn root_two_injectors_each_remove_only_their_own_and_cleanup_spares_foreign_tables() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    lab.lab
        .exec_ok(&lab.pod, &["nft", "add", "table", "inet", "foreign"]);
    let first = lab.injector(
        "two-a",
        &["--target", &lab.redis.addr.to_string(), "-l", "500"],
    );
    let second = lab.injector(
        "two-b",
        &["--target", &lab.other_host.to_string(), "-l", "500"],
    );
    let (code, _, stderr) = first.stop();
    assert_eq!(code, 0, "{stderr}");
    let tables = lab.tables();
    assert!(
        !tables.contains("chaos-latency-injector-two-a")
            && tables.contains("chaos-latency-injector-two-b"),
        "{tables}"
    );
    // The second still delays its own target only.
    assert!(lab.echo_rtt(lab.other_host) >= Duration::from_millis(500));
    assert!(lab.redis_rtt() < Duration::from_millis(250));
    second.kill();
    common::wait_until("the watchdog deletes two-b", Duration::from_secs(5), || {
        !lab.tables().contains("chaos-latency-injector-two-b")
    });
    // A leftover (as if process and watchdog had died), then --cleanup twice.
    lab.lab.exec_ok(
        &lab.pod,
        &[
            "nft",
            "add",
            "table",
            "inet",
            "chaos-latency-injector-left-1",
        ],
    );
    for _ in 0..2 {
        let out = common::run(
            lab.lab
                .command(&lab.pod, common::bin(TOOL))
                .arg("--cleanup"),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let tables = lab.tables();
    assert!(!tables.contains("chaos-latency-injector"), "{tables}");
    assert!(
        tables.contains("foreign"),
        "--cleanup removed a foreign table: {tables}"
    );
}

#[test]
fn root_the_end_of_egress_lets_redirected_connections_finish_and_new_ones_go_direct() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let args = [
        "--target",
        &lab.redis.addr.to_string(),
        "-l",
        "1000",
        "--drain-timeout",
        "30s",
    ];
    let mut injector = lab.injector("end-a", &args);
    let mut idle = lab.redis_connection();
    let mut held = lab.redis_connection();
    assert!(
        ping(&mut idle) >= Duration::from_millis(1000),
        "not redirected"
    );
    // Held when the run ends.
    held.write_all(b"PING\r\n").unwrap();
    let sent = Instant::now();
    injector.signal(Signal::SIGTERM);
    injector.wait_log("draining 2 connection(s)", Duration::from_secs(10));
    // New connections go direct at once; the redirected ones keep working, delayed.
    assert!(
        lab.redis_rtt() < Duration::from_millis(500),
        "a new connection was redirected"
    );
    let mut reply = [0u8; 7];
    held.read_exact(&mut reply).expect("the held PING was cut");
    assert_eq!(&reply, b"+PONG\r\n");
    assert!(sent.elapsed() >= Duration::from_millis(1000));
    assert!(
        ping(&mut idle) >= Duration::from_millis(1000),
        "the idle connection left the proxy"
    );
    drop((idle, held));
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    let drain = drain_of(&report);
    assert_eq!(drain["inFlightAtStop"], 2, "{drain}");
    assert_eq!(drain["finished"], 2, "{drain}");
    assert_eq!(drain["cutAfterDrain"], 0, "{drain}");
    assert_eq!(drain["endedBy"], "all-finished", "{drain}");
    assert!(!lab.tables().contains("chaos-latency-injector"));
}

#[test]
fn root_connections_left_at_the_end_of_the_drain_are_cut_and_counted() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let args = [
        "--target",
        &lab.redis.addr.to_string(),
        "-l",
        "100",
        "--drain-timeout",
        "1s",
    ];
    let injector = lab.injector("end-b", &args);
    let mut idle = lab.redis_connection();
    ping(&mut idle);
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let drain = drain_of(&report);
    assert_eq!(
        (drain["cutAfterDrain"].as_u64(), drain["endedBy"].as_str()),
        (Some(1), Some("timeout")),
        "{drain}"
    );
    // An idle connection is closed, as a server closes one, not reset.
    let mut rest = Vec::new();
    assert_eq!(idle.read_to_end(&mut rest).map_err(|e| e.kind()), Ok(0));
    assert!(lab.redis_rtt() < Duration::from_millis(250));
}

#[test]
fn root_without_net_admin_transparent_mode_fails_clearly() {
    common::require_root("runuser to drop to an unprivileged user");
    let out = common::run(
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(common::bin(TOOL))
            .args([
                "--engine",
                "proxy",
                "--target",
                "198.51.100.2:6379",
                "-y",
                "-d",
                "2",
                "--output",
                "json",
            ]),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert_eq!(report["errors"][0]["kind"], "precondition", "{report}");
    assert!(
        report["errors"][0]["message"]
            .to_string()
            .contains("NET_ADMIN"),
        "{report}"
    );
    assert_eq!(report["revert"]["status"], "not-applied");
}
