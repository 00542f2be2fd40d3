//! latency-injector as an explicit proxy (no privilege), with real peers: redis-server
//! and redis-cli, curl, and the small HTTP application of `common::http_app`, which
//! timestamps each request's arrival so that every test can say which leg carried the
//! delay (a proxy that delayed the wrong direction fails here).
//!
//! Timing assertions are lower bounds (a hold is never shorter than asked) and
//! comparisons between legs (the other leg is not held); the accuracy goals are measured
//! by scripts/bench/latency.sh.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use common::http_app::{HttpApp, HttpClient};
use common::injector::{Injector, drain_of};
use common::redis::Redis;
use nix::sys::signal::Signal;

const HOLD: Duration = Duration::from_millis(500);

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    stream
}

/// Sends one request on a fresh connection: (sent, arrived at the app, reply done).
fn timed_request(listen: SocketAddr, app: &HttpApp, path: &str) -> (Instant, Instant, Instant) {
    let before = app.seen().len();
    let reply = HttpClient::connect(listen).request("GET", path, "");
    let seen = app.seen();
    assert_eq!(seen.len(), before + 1, "{seen:?}");
    (reply.sent, seen[before].at, reply.done)
}

#[test]
fn tcp_mode_delays_the_requests_leg_only() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "500"]);
    let (sent, arrived, done) = timed_request(listen, &app, "/up");
    let (there, back) = (arrived - sent, done - arrived);
    eprintln!("to the app {} ms, back {} ms", ms(there), ms(back));
    assert!(there >= HOLD, "the request was not held: {there:?}");
    assert!(back < there / 2, "the reply was held too: {back:?}");
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["connectionsDelayed"], 1, "{obs}");
    assert!(
        obs["appliedDelay"]["p50Ms"].as_f64() >= Some(500.0),
        "{obs}"
    );
}

#[test]
fn downstream_direction_delays_the_replies_only() {
    let app = HttpApp::start();
    let (injector, listen) =
        Injector::explicit(app.addr, &["-l", "500", "--direction", "downstream"]);
    let (sent, arrived, done) = timed_request(listen, &app, "/down");
    let (there, back) = (arrived - sent, done - arrived);
    eprintln!("to the app {} ms, back {} ms", ms(there), ms(back));
    assert!(back >= HOLD, "the reply was not held: {back:?}");
    assert!(there < back / 2, "the request was held too: {there:?}");
    let (code, _, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn both_directions_delay_each_leg() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "500", "--direction", "both"]);
    let (sent, arrived, done) = timed_request(listen, &app, "/both");
    assert!(arrived - sent >= HOLD && done - arrived >= HOLD);
    let (code, _, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn pipelined_chunks_are_each_held_from_their_own_arrival() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "500"]);
    let mut client = HttpClient::connect(listen);
    for n in 0..3 {
        let request = format!("GET /p{n} HTTP/1.1\r\nhost: a\r\ncontent-length: 0\r\n\r\n");
        client.writer.write_all(request.as_bytes()).unwrap();
        thread::sleep(Duration::from_millis(150));
    }
    common::wait_until("three requests at the app", Duration::from_secs(10), || {
        app.seen().len() == 3
    });
    let seen = app.seen();
    for pair in seen.windows(2) {
        let gap = pair[1].at - pair[0].at;
        // Serialised holds would put 500 ms between arrivals; each from its own arrival
        // keeps the 150 ms the client left between them.
        assert!(
            gap < Duration::from_millis(400),
            "held one after the other: {gap:?}"
        );
    }
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert!(report["observations"]["chunksDelayed"].as_u64() >= Some(3));
}

#[test]
fn redis_cli_sees_the_delay_through_the_proxy() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "300"]);
    let timed = |port: u16| {
        let started = Instant::now();
        let out = common::run(Command::new("redis-cli").args(["-p", &port.to_string(), "PING"]));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "PONG");
        started.elapsed()
    };
    let (through, direct) = (timed(listen.port()), timed(redis.addr.port()));
    assert!(through >= Duration::from_millis(300), "{through:?}");
    assert!(
        direct < through - Duration::from_millis(200),
        "direct {direct:?}"
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    assert_eq!(report["observations"]["upstreamErrors"]["total"], 0);
}

/// Reads until the end: `Ok` with what came before a FIN, `Err` with the error kind.
fn read_to_end(stream: &mut TcpStream) -> Result<Vec<u8>, ErrorKind> {
    let mut all = Vec::new();
    match stream.read_to_end(&mut all) {
        Ok(_) => Ok(all),
        Err(e) => Err(e.kind()),
    }
}

#[test]
fn an_upstream_that_refuses_resets_new_clients_and_is_counted_by_cause() {
    let mut redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "50"]);
    redis.kill();
    for _ in 0..3 {
        let mut stream = connect(listen);
        // Direct, connect() is refused; through a proxy that has accepted, the closest
        // is a reset, never an empty clean close. (The kernel reports it once: to the
        // write if the reset came first, else to the read.)
        let wrote = stream.write_all(b"PING\r\n").map_err(|e| e.kind());
        let first_error = wrote.and_then(|()| read_to_end(&mut stream).map(drop));
        assert_eq!(first_error, Err(ErrorKind::ConnectionReset));
    }
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(
        obs["upstreamErrors"]["byCause"]["connect: connection refused"], 3,
        "{obs}"
    );
    assert_eq!(obs["acceptErrors"]["total"], 0, "{obs}");
}

#[test]
fn sigterm_lets_the_request_in_flight_finish() {
    let redis = Redis::start();
    let (injector, listen) =
        Injector::explicit(redis.addr, &["-l", "1000", "--drain-timeout", "10s"]);
    let clients = redis.connected_clients();
    let mut stream = connect(listen);
    // The proxy dials redis when it accepts: that is the "accepted" signal.
    common::wait_until("the proxy dialled redis", Duration::from_secs(10), || {
        redis.connected_clients() > clients
    });
    stream.write_all(b"PING\r\n").unwrap();
    let sent = Instant::now();
    injector.signal(Signal::SIGTERM);
    let mut reply = [0u8; 7];
    stream
        .read_exact(&mut reply)
        .expect("the PING in flight was cut");
    assert_eq!(&reply, b"+PONG\r\n");
    assert!(
        sent.elapsed() >= Duration::from_millis(1000),
        "not held: {:?}",
        sent.elapsed()
    );
    drop(stream);
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    let drain = drain_of(&report);
    assert_eq!(drain["inFlightAtStop"], 1, "{drain}");
    assert_eq!(drain["finished"], 1, "{drain}");
    assert_eq!(drain["cutAfterDrain"], 0, "{drain}");
    assert_eq!(drain["endedBy"], "all-finished", "{drain}");
}

#[test]
fn a_second_signal_ends_the_drain_and_the_cut_is_counted() {
    let redis = Redis::start();
    let args = ["-l", "5000", "--drain-timeout", "10m"];
    let (mut injector, listen) = Injector::explicit(redis.addr, &args);
    let mut idle = connect(listen);
    let mut busy = connect(listen);
    common::wait_until(
        "the proxy dialled redis twice",
        Duration::from_secs(10),
        || redis.connected_clients() >= 3,
    );
    // Held for 5 s: still held when the drain is cut.
    busy.write_all(b"PING\r\n").unwrap();
    injector.signal(Signal::SIGTERM);
    injector.wait_log("draining 2 connection(s)", Duration::from_secs(10));
    injector.signal(Signal::SIGTERM);
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    let drain = drain_of(&report);
    assert_eq!(drain["endedBy"], "signal", "{drain}");
    assert_eq!(drain["inFlightAtStop"], 2, "{drain}");
    assert_eq!(drain["cutAfterDrain"], 2, "{drain}");
    assert_eq!(drain["drained"], false, "{drain}");
    // The idle connection is closed as a server closes an idle one; the one whose PING
    // was still held is reset, not answered by a clean close.
    assert_eq!(read_to_end(&mut idle), Ok(Vec::new()));
    assert_eq!(read_to_end(&mut busy), Err(ErrorKind::ConnectionReset));
}

#[test]
fn http_mode_delays_only_matching_requests_on_a_kept_alive_connection() {
    let app = HttpApp::start();
    let args = [
        "-l",
        "500",
        "--endpoint",
        "/v1/webhooks/stripe",
        "--method",
        "POST",
    ];
    let (injector, listen) = Injector::explicit(app.addr, &args);
    let mut client = HttpClient::connect(listen);
    let replies = [
        client.request("GET", "/health", ""),
        client.request("POST", "/v1/webhooks/stripe", "{\"id\":\"evt_1\"}"),
        client.request("GET", "/v1/webhooks/stripe", ""),
        client.request("GET", "/health", ""),
    ];
    assert_eq!(replies[1].body, "ok POST /v1/webhooks/stripe 14\n");
    let seen = app.seen();
    assert_eq!(seen.len(), 4);
    assert!(
        seen.iter().all(|s| s.peer == seen[0].peer),
        "one upstream connection for one client connection: {seen:?}"
    );
    for (n, (reply, seen)) in replies.iter().zip(&seen).enumerate() {
        let (there, back) = (seen.at - reply.sent, reply.done - seen.at);
        eprintln!(
            "{} {}: to the app {} ms, back {} ms",
            seen.method,
            seen.path,
            ms(there),
            ms(back)
        );
        assert!(back < HOLD / 2, "a reply was held: {back:?}");
        if n == 1 {
            assert!(there >= HOLD, "the webhook was not held: {there:?}");
        } else {
            assert!(
                there < HOLD / 2,
                "{} {} was held: {there:?}",
                seen.method,
                seen.path
            );
        }
    }
    drop(client);

    // curl, a real client: POST to a path below the endpoint is held, /health is not.
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
    assert!(times[0] >= 0.5 && times[1] < 0.25, "curl times {times:?}");

    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["requests"], 6, "{obs}");
    assert_eq!(obs["requestsDelayed"], 2, "{obs}");
    assert!(
        obs["appliedDelay"]["p50Ms"].as_f64() >= Some(500.0),
        "{obs}"
    );
    // The client connection was idle when the drain started: closed between requests.
    assert_eq!(drain_of(&report)["cutAfterDrain"], 0);
}

#[test]
fn endpoints_match_the_normalised_path() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "500", "--endpoint", "/slow"]);
    let mut client = HttpClient::connect(listen);
    let held = [
        "/slow",
        "/sl%6Fw",
        "//slow",
        "/./slow",
        "/fast/../slow",
        "/slow/x?y=1",
    ];
    let not_held = ["/slower", "/fast", "/fast?next=/slow", "/sl%2Fow"];
    for path in held.iter().chain(&not_held) {
        let reply = client.request("GET", path, "");
        let seen = app.seen().pop().unwrap();
        assert_eq!(
            seen.path, *path,
            "the target reached the app as it was sent"
        );
        let there = seen.at - reply.sent;
        if held.contains(path) {
            assert!(there >= HOLD, "{path} was not held: {there:?}");
        } else {
            assert!(there < HOLD / 2, "{path} was held: {there:?}");
        }
    }
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["observations"]["requestsDelayed"], held.len());
}

#[test]
fn http_mode_streams_response_bodies() {
    let app = HttpApp::start();
    let (injector, listen) = Injector::explicit(app.addr, &["-l", "100", "--http"]);
    let mut stream = connect(listen);
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nhost: app\r\n\r\n")
        .unwrap();
    let mut reader = BufReader::new(stream);
    let started = Instant::now();
    let (mut first_at, mut text) = (None, String::new());
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

#[test]
fn a_head_not_complete_within_the_header_timeout_passes_through_untouched() {
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let args = ["-l", "100", "--http", "--header-timeout", "1s"];
    let (injector, listen) = Injector::explicit(upstream.local_addr().unwrap(), &args);
    // The probes of the baseline and apply were accepted by the kernel already.
    upstream.set_nonblocking(true).unwrap();
    while upstream.accept().is_ok() {}
    upstream.set_nonblocking(false).unwrap();
    let mut client = connect(listen);
    let (mut server, _) = upstream.accept().unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let partial = b"GET /slowloris HTTP/1.1\r\nhost: a\r\n";
    client.write_all(partial).unwrap();
    let sent = Instant::now();
    let mut got = vec![0u8; partial.len()];
    server.read_exact(&mut got).unwrap();
    // Held while it could still become a head, then passed on as it was.
    assert!(
        sent.elapsed() >= Duration::from_secs(1),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(got, partial);
    client.write_all(b"x-last: 1\r\n\r\n").unwrap();
    let mut rest = [0u8; 13];
    server.read_exact(&mut rest).unwrap();
    assert_eq!(&rest, b"x-last: 1\r\n\r\n");
    let rest_at = Instant::now();
    server
        .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
        .unwrap();
    let mut status = [0u8; 25];
    client.read_exact(&mut status).unwrap();
    assert_eq!(&status, b"HTTP/1.1 204 No Content\r\n");
    assert!(
        rest_at.elapsed() < Duration::from_millis(100) * 5,
        "passthrough is not held"
    );
    drop((client, server));
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["passthrough"]["byCause"]["header-timeout"], 1, "{obs}");
    assert_eq!(obs["requestsDelayed"], 0, "{obs}");
}

#[test]
fn a_thousand_connections_through_500ms_are_held_side_by_side_alone() {
    let redis = Redis::start();
    let (injector, listen) = Injector::explicit(redis.addr, &["-l", "500"]);
    let mut streams: Vec<TcpStream> = (0..1000).map(|_| connect(listen)).collect();
    for stream in &mut streams {
        stream.write_all(b"PING\r\n").unwrap();
    }
    for stream in &mut streams {
        let mut reply = [0u8; 7];
        stream.read_exact(&mut reply).unwrap();
        assert_eq!(&reply, b"+PONG\r\n");
    }
    drop(streams);
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert!(obs["connections"].as_u64() >= Some(1000), "{obs}");
    assert!(obs["peakActiveConnections"].as_u64() >= Some(900), "{obs}");
    // Held one after another, the median hold would be minutes; side by side it is the
    // latency (how close to it is the benchmark's business).
    let p50 = obs["appliedDelay"]["p50Ms"].as_f64().unwrap();
    assert!((500.0..2500.0).contains(&p50), "{obs}");
}

#[test]
fn failed_accepts_are_counted_apart_and_logged_at_most_once_a_second() {
    let redis = Redis::start();
    let listen = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    let (l, u) = (listen.to_string(), redis.addr.to_string());
    // 48 descriptors: the runtime takes some, each proxied connection two.
    let mut cmd = Command::new("prlimit");
    cmd.args(["--nofile=48:48", "--"])
        .arg(common::bin(common::injector::TOOL));
    cmd.args(["--listen", &l, "--upstream", &u, "-d", "60"]);
    let mut injector = Injector::spawn(&mut cmd);
    injector.wait_log(common::injector::LISTENING, Duration::from_secs(20));
    let started = Instant::now();
    let streams: Vec<TcpStream> = (0..40).map(|_| connect(listen)).collect();
    injector.wait_log("open-files limit", Duration::from_secs(10));
    // Let the limit bite for a while: the log must not follow every failed accept.
    thread::sleep(Duration::from_millis(2500));
    drop(streams);
    let (code, report, stderr) = injector.stop();
    let elapsed = started.elapsed().as_secs() + 1;
    assert_eq!(code, 0, "{stderr}");
    let logged = stderr.matches("accept failed").count() as u64;
    assert!(
        (1..=elapsed + 1).contains(&logged),
        "{logged} lines in {elapsed} s:\n{stderr}"
    );
    assert!(
        stderr.contains("RLIMIT") || stderr.contains("ulimit -n"),
        "{stderr}"
    );
    let obs = &report["observations"];
    assert!(
        obs["acceptErrors"]["byCause"]["open-files limit"].as_u64() > Some(logged),
        "{obs}"
    );
    assert_eq!(obs["upstreamErrors"]["total"], 0, "{obs}");
}
