//! latency-injector end to end, with real peers: redis-server (Debian) as the TCP
//! upstream and a small HTTP server as the HTTP upstream.
//!
//! Explicit proxy tests need no privilege. Timing tests carry `alone` in their names
//! (nextest runs them with nothing beside them) and assert with tolerances a busy 2-core
//! CI machine keeps; the accuracy goals are measured by scripts/bench/latency.sh.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const TOOL: &str = "latency-injector";

/// A loopback port nobody listens on (bound, then released).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
    listener.local_addr().map(|a| a.port()).unwrap_or_default()
}

fn wait_for_port(addr: SocketAddr, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not listen on {addr} within 10 s"
        );
        thread::sleep(Duration::from_millis(20));
    }
}

/// redis-server on a free loopback port, killed on drop.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Redis {
    fn start() -> Redis {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--maxclients", "10000"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server (Debian package redis-server): {e}")
            });
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let redis = Redis { child, addr };
        wait_for_port(addr, "redis-server");
        redis
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running latency-injector; stopped with SIGTERM, killed on drop if still running.
struct Injector {
    child: Option<Child>,
}

impl Injector {
    fn start(args: &[&str]) -> Injector {
        let child = Command::new(common::bin(TOOL))
            .args(args)
            .args(["-y", "--output", "json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TOOL}: {e}"));
        Injector { child: Some(child) }
    }

    /// An explicit proxy on a free port in front of `upstream`; waits until it listens.
    fn explicit(upstream: SocketAddr, extra: &[&str]) -> (Injector, SocketAddr) {
        let listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let (l, u) = (listen.to_string(), upstream.to_string());
        let mut args = vec!["--listen", &l, "--upstream", &u, "-d", "60"];
        args.extend(extra);
        let injector = Injector::start(&args);
        wait_for_port(listen, TOOL);
        (injector, listen)
    }

    fn pid(&self) -> Pid {
        let id = self.child.as_ref().map_or(0, Child::id);
        Pid::from_raw(i32::try_from(id).unwrap_or_default())
    }

    /// SIGTERM, then the exit code and the report.
    fn stop(mut self) -> (i32, Value, String) {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let Some(child) = self.child.take() else {
            panic!("injector already stopped");
        };
        let out = child
            .wait_with_output()
            .unwrap_or_else(|e| panic!("wait for {TOOL}: {e}"));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("report is not JSON ({e}): {stdout}\n{stderr}"));
        (out.status.code().unwrap_or(-1), report, stderr)
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One PING over an open connection: the round-trip time.
fn ping(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream
        .write_all(b"PING\r\n")
        .unwrap_or_else(|e| panic!("write PING: {e}"));
    let mut reply = [0u8; 7];
    stream
        .read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("read PONG: {e}"));
    assert_eq!(&reply, b"+PONG\r\n");
    started.elapsed()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let _ = stream.set_nodelay(true);
    stream
}

fn redis_cli_ping(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let out = common::run(Command::new("redis-cli").args([
        "-h",
        "127.0.0.1",
        "-p",
        &addr.port().to_string(),
        "PING",
    ]));
    let elapsed = started.elapsed();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
    elapsed
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[test]
fn redis_through_the_proxy_shows_the_latency_and_direct_does_not_alone() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "300"]);
    let through = redis_cli_ping(listen);
    let direct = redis_cli_ping(redis.addr);
    assert!(
        through >= Duration::from_millis(300),
        "redis-cli through: {through:?}"
    );
    assert!(
        through < Duration::from_millis(800),
        "redis-cli through: {through:?}"
    );
    assert!(
        direct < Duration::from_millis(200),
        "redis-cli direct: {direct:?}"
    );

    // Pipelined on one connection: each PING is held 300 ms from its own arrival, so
    // three PINGs sent 100 ms apart all come back within ~300 ms of being sent.
    let mut stream = connect(listen);
    let started = Instant::now();
    for _ in 0..3 {
        stream
            .write_all(b"PING\r\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
        thread::sleep(Duration::from_millis(100));
    }
    let mut reader = BufReader::new(stream.try_clone().unwrap_or_else(|e| panic!("{e}")));
    for _ in 0..3 {
        let mut line = String::new();
        reader
            .read_line(&mut line)
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(line, "+PONG\r\n");
    }
    let pipelined = started.elapsed();
    assert!(
        pipelined >= Duration::from_millis(500),
        "pipelined: {pipelined:?}"
    );
    assert!(
        pipelined < Duration::from_millis(900),
        "serialised? {pipelined:?}"
    );
    let single = ping(&mut stream);
    assert!(single >= Duration::from_millis(300), "{single:?}");
    drop((stream, reader));

    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    assert_eq!(report["revert"]["status"], "reverted");
    common::assert_valid_report(&report);
    let obs = &report["observations"];
    assert!(obs["connections"].as_u64() >= Some(2), "{obs}");
    assert!(obs["chunksDelayed"].as_u64() >= Some(5), "{obs}");
    let p50 = obs["appliedDelayMs"]["p50"].as_f64().unwrap_or_default();
    assert!((300.0..350.0).contains(&p50), "applied p50 {p50}: {obs}");
    assert!(obs["bytesUpstream"].as_u64() >= Some(5 * 6), "{obs}");
    assert_eq!(obs["upstreamErrors"]["total"], 0, "{obs}");
}

#[test]
fn downstream_direction_delays_replies() {
    let redis = Redis::start();
    let (injector, listen) =
        Injector::explicit(redis.addr, &["-l", "200", "--direction", "downstream"]);
    let rtt = ping(&mut connect(listen));
    assert!(rtt >= Duration::from_millis(200), "{rtt:?}");
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(report["observations"]["chunksDelayed"].as_u64() >= Some(1));
}

#[test]
fn a_thousand_connections_through_500ms_complete_together_alone() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "500"]);
    let started = Instant::now();
    let mut streams: Vec<TcpStream> = (0..1000).map(|_| connect(listen)).collect();
    for stream in &mut streams {
        stream
            .write_all(b"PING\r\n")
            .unwrap_or_else(|e| panic!("write: {e}"));
    }
    for stream in &mut streams {
        let mut reply = [0u8; 7];
        stream
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("read: {e}"));
        assert_eq!(&reply, b"+PONG\r\n");
    }
    let all = started.elapsed();
    eprintln!(
        "1000 connections through 500 ms: all replies after {:.0} ms",
        ms(all)
    );
    drop(streams);
    // Serialised, this would take 1000 × 500 ms; the goal (bench) is well under 1 s.
    assert!(all >= Duration::from_millis(500), "{all:?}");
    assert!(
        all < Duration::from_millis(1000),
        "1000 connections took {:.0} ms",
        ms(all)
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert!(obs["connections"].as_u64() >= Some(1000), "{obs}");
    assert!(obs["peakActiveConnections"].as_u64() >= Some(900), "{obs}");
    let max = obs["appliedDelayMs"]["max"].as_f64().unwrap_or_default();
    assert!(max < 900.0, "a chunk waited {max} ms: {obs}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "1000"]);
    let mut stream = connect(listen);
    stream
        .write_all(b"PING\r\n")
        .unwrap_or_else(|e| panic!("write: {e}"));
    thread::sleep(Duration::from_millis(200));
    let pid = injector.pid();
    let _ = kill(pid, Signal::SIGTERM);
    // The PING was in flight: the drain forwards it and its reply comes back.
    let mut reply = [0u8; 7];
    stream
        .read_exact(&mut reply)
        .unwrap_or_else(|e| panic!("in-flight PING was cut: {e}"));
    assert_eq!(&reply, b"+PONG\r\n");
    drop(stream);
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    assert_eq!(
        report["revert"]["details"]["proxy"]["cutAfterDrain"], 0,
        "{report}"
    );
    // New connections are refused once the proxy has stopped.
    assert!(TcpStream::connect(listen).is_err());
}
