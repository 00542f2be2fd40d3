//! In front of a live service latency-injector must change nothing but the delay: each
//! case runs directly and through the injector (HTTP mode holding `/held` 400 ms, and
//! TCP mode holding every chunk), and both sides must receive the same bytes and see the
//! same ending (FIN, reset, still open). Timing is checked on the leg that carries the
//! delay. Documented exceptions: a refused upstream is a reset through the proxy; a
//! request pipelined behind a held one waits for it (bytes keep their order).
//!
//! Peers: scripted raw sockets (`common::fidelity`), python3 for WebSocket, and in
//! `latency_nginx.rs` nginx, curl and k6.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::fidelity::{ClientSide, Ending, Peer, Run, differential};

const HELD: Duration = Duration::from_millis(400);
const HTTP: &[&str] = &["-l", "400", "--endpoint", "/held"];
const TCP: &[&str] = &["-l", "400"];

/// How long after the client sent `what` the server got it.
fn transit(run: &Run, what: &str) -> Duration {
    run.servers[0].when(what) - run.client.when(what)
}

fn assert_held(run: &Run, what: &str) {
    let took = transit(run, what);
    assert!(took >= HELD, "{what} was not held: {took:?}");
}

fn assert_not_held(run: &Run, what: &str) {
    let took = transit(run, what);
    assert!(took < HELD / 2, "{what} was held: {took:?}");
}

fn connect(addr: SocketAddr) -> Peer {
    Peer::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e:?}"))
}

/// Answers every request with `reply(path)` until `count` requests, then closes.
fn serve(
    count: usize,
    reply: fn(&str) -> String,
) -> impl Fn(&mut Peer) + Send + Sync + Clone + 'static {
    move |peer: &mut Peer| {
        for n in 0..count {
            let Some(head) = peer.head() else { return };
            peer.note(&format!("req{n}"));
            peer.body(&head, false);
            let path = head.split(' ').nth(1).unwrap_or("").to_owned();
            peer.send(reply(&path).as_bytes());
        }
        peer.half_close();
    }
}

fn ok(_: &str) -> String {
    "HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nSet-Cookie: a=1\r\nX-Mixed-CASE: v\r\nset-cookie: b=2\r\nContent-Length: 2\r\n\r\nok".to_owned()
}

#[test]
fn keep_alive_requests_keep_their_headers_and_only_the_held_one_waits() {
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted(
            "req0",
            b"GET /a HTTP/1.1\r\nHOST: x\r\nX-Dup: 1\r\nx-dup: 2\r\n\r\n",
        );
        assert_eq!(peer.response("GET"), Some(200));
        peer.send_noted(
            "req1",
            b"POST /held HTTP/1.1\r\nhost: x\r\nContent-Length: 5\r\n\r\nhello",
        );
        assert_eq!(peer.response("POST"), Some(200));
        peer.send_noted("req2", b"GET /b HTTP/1.1\r\nhost: x\r\n\r\n");
        assert_eq!(peer.response("GET"), Some(200));
        ClientSide::of(peer)
    };
    let (_, through) = differential("keep-alive", HTTP, serve(3, ok), &client);
    assert_not_held(&through, "req0");
    assert_held(&through, "req1");
    assert_not_held(&through, "req2");
    assert_eq!(through.client.transcript.ending, Ending::Fin);
    let (_, through) = differential("keep-alive", TCP, serve(3, ok), &client);
    for n in 0..3 {
        assert_held(&through, &format!("req{n}"));
    }
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted(
            "all",
            b"GET /a HTTP/1.1\r\n\r\nPOST /held HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n",
        );
        ClientSide::of(peer)
    };
    let (_, through) = differential("pipelining", HTTP, serve(3, ok), &client);
    let (sent, server) = (through.client.when("all"), &through.servers[0]);
    assert!(server.when("req0") - sent < HELD / 2, "GET /a was held");
    assert!(
        server.when("req1") - sent >= HELD,
        "POST /held was not held"
    );
    // Documented: the request behind the held one waits for it.
    assert!(server.when("req2") >= server.when("req1"));
}

#[test]
fn chunked_bodies_and_trailers_pass_both_ways() {
    fn reply(path: &str) -> String {
        if path == "/held" {
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nX-Undeclared: yes\r\nX-Other: 1\r\n\r\n".to_owned()
        } else {
            ok(path)
        }
    }
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted(
            "req0",
            b"POST /held HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n",
        );
        assert_eq!(peer.response("POST"), Some(200));
        peer.send_noted("req1", b"GET /b HTTP/1.1\r\n\r\n");
        assert_eq!(peer.response("GET"), Some(200));
        ClientSide::of(peer)
    };
    for args in [HTTP, TCP] {
        let (_, through) = differential("chunked", args, serve(2, reply), &client);
        assert_held(&through, "req0");
    }
}

#[test]
fn large_heads_and_many_headers_pass_both_ways() {
    fn reply(_: &str) -> String {
        let headers: String = (0..150).map(|i| format!("X-Resp-{i}: {i}\r\n")).collect();
        format!("HTTP/1.1 200 OK\r\n{headers}Content-Length: 2\r\n\r\nok")
    }
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        let headers: String = (0..120).map(|i| format!("X-Req-{i}: {i}\r\n")).collect();
        let big = "b".repeat(64 * 1024);
        let request = format!("GET /held HTTP/1.1\r\nX-Big: {big}\r\n{headers}\r\n");
        peer.send_noted("req0", request.as_bytes());
        assert_eq!(peer.response("GET"), Some(200));
        ClientSide::of(peer)
    };
    let (_, through) = differential("large heads", HTTP, serve(1, reply), &client);
    assert_held(&through, "req0");
}

#[test]
fn expect_100_continue_is_left_to_the_upstream() {
    let refuse = |peer: &mut Peer| {
        peer.head();
        peer.note("req0");
        peer.send(
            b"HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        peer.half_close();
    };
    let accept = |peer: &mut Peer| {
        let head = peer.head().unwrap_or_default();
        peer.note("req0");
        peer.send(b"HTTP/1.1 100 Continue\r\n\r\n");
        peer.body(&head, false);
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        peer.half_close();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted(
            "req0",
            b"POST /held HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
        );
        // Like curl: the body goes once the upstream said 100, and not after a 417.
        if peer.response("POST") == Some(100) {
            peer.send(b"body");
            assert_eq!(peer.response("POST"), Some(200));
        }
        ClientSide::of(peer)
    };
    let (_, through) = differential("expect 417", HTTP, refuse, &client);
    assert!(through.client.transcript.bytes.starts_with(b"HTTP/1.1 417"));
    let (_, through) = differential("expect 100", HTTP, accept, &client);
    assert!(
        through
            .client
            .transcript
            .bytes
            .starts_with(b"HTTP/1.1 100 Continue")
    );
}

#[test]
fn interim_responses_and_the_status_line_version_pass_untouched() {
    let script = |peer: &mut Peer| {
        peer.head();
        peer.note("req0");
        peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n");
        peer.send(b"HTTP/1.1 200 OK\r\nDate: Thu, 01 Jan 2026 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok");
        peer.half_close();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted("req0", b"GET /held HTTP/1.0\r\nUser-Agent: old\r\n\r\n");
        ClientSide::of(peer)
    };
    let (_, through) = differential("103 and 1.0", HTTP, script, &client);
    assert!(
        through
            .client
            .transcript
            .bytes
            .starts_with(b"HTTP/1.1 103 Early Hints\r\n")
    );
    assert_held(&through, "req0");
}

#[test]
fn head_204_and_304_responses_keep_the_connection_in_step() {
    fn reply(path: &str) -> String {
        match path {
            "/head" => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n".to_owned(),
            "/none" => "HTTP/1.1 204 No Content\r\n\r\n".to_owned(),
            "/etag" => {
                "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 50\r\n\r\n".to_owned()
            }
            _ => ok(path),
        }
    }
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        for (n, (method, path)) in [
            ("HEAD", "/head"),
            ("GET", "/none"),
            ("GET", "/etag"),
            ("GET", "/held"),
        ]
        .into_iter()
        .enumerate()
        {
            peer.send_noted(
                &format!("req{n}"),
                format!("{method} {path} HTTP/1.1\r\n\r\n").as_bytes(),
            );
            assert!(peer.response(method).is_some(), "{method} {path}");
        }
        ClientSide::of(peer)
    };
    let (_, through) = differential("HEAD/204/304", HTTP, serve(4, reply), &client);
    assert_not_held(&through, "req2");
    assert_held(&through, "req3");
    let report = through.report.unwrap();
    assert_eq!(report["observations"]["requests"], 4, "{report}");
    assert_eq!(
        report["observations"]["passthrough"]["total"], 0,
        "{report}"
    );
}

#[test]
fn an_upstream_that_closes_an_idle_kept_alive_connection_closes_the_client_s() {
    let script = |peer: &mut Peer| {
        peer.head();
        peer.send(ok("/").as_bytes());
        // An idle timeout, without Connection: close.
        std::thread::sleep(Duration::from_millis(300));
        peer.half_close();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send(b"GET /a HTTP/1.1\r\n\r\n");
        assert_eq!(peer.response("GET"), Some(200));
        ClientSide::of(peer)
    };
    for args in [HTTP, TCP] {
        let (_, through) = differential("upstream idle close", args, script, &client);
        assert_eq!(through.client.transcript.ending, Ending::Fin);
    }
}

#[test]
fn a_request_followed_by_a_half_close_is_answered() {
    let script = |peer: &mut Peer| {
        peer.head();
        peer.note("req0");
        peer.send(ok("/").as_bytes());
        peer.half_close();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted("req0", b"GET /held HTTP/1.1\r\n\r\n");
        peer.half_close();
        ClientSide::of(peer)
    };
    for args in [HTTP, TCP] {
        let (_, through) = differential("half-close", args, script, &client);
        assert_held(&through, "req0");
        assert!(
            through
                .client
                .transcript
                .bytes
                .starts_with(b"HTTP/1.1 200 OK")
        );
    }
}

/// The client sends `bytes` then resets, without reading: the server must get them all,
/// then the reset, as direct.
fn client_resets_after(bytes: &'static [u8]) -> impl Fn(SocketAddr) -> ClientSide {
    move |addr| {
        let mut peer = connect(addr);
        peer.send_noted("req0", bytes);
        ClientSide::aborted(peer)
    }
}

#[test]
fn a_reset_from_the_client_arrives_after_the_bytes_before_it() {
    let script = |peer: &mut Peer| {
        if peer.wait_for_bytes() {
            peer.note("req0");
        }
    };
    let held_request =
        client_resets_after(b"POST /held HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789");
    let (_, through) = differential("client reset during the hold", HTTP, script, &held_request);
    assert_eq!(through.servers[0].transcript.ending, Ending::Reset);
    assert_held(&through, "req0");
    // TCP mode, 1000 bytes then a reset (the case: they were never delivered).
    let (_, through) = differential(
        "client reset, TCP",
        TCP,
        script,
        &client_resets_after(&[b'x'; 1000]),
    );
    assert_eq!(through.servers[0].transcript.len, 1000);
    assert_eq!(through.servers[0].transcript.ending, Ending::Reset);
    let report = through.report.unwrap();
    assert_eq!(report["observations"]["resetsFromClient"], 1, "{report}");
}

#[test]
fn a_reset_from_the_upstream_reaches_the_client_as_a_reset() {
    let script = |peer: &mut Peer| {
        peer.head();
        peer.send(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial");
        std::thread::sleep(Duration::from_millis(100));
        peer.abort_at_end();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send(b"GET /a HTTP/1.1\r\n\r\n");
        ClientSide::of(peer)
    };
    for args in [HTTP, TCP] {
        let (_, through) = differential("upstream reset", args, script, &client);
        assert_eq!(through.client.transcript.ending, Ending::Reset);
        assert!(through.client.transcript.bytes.ends_with(b"partial"));
    }
}

#[test]
fn a_client_that_closes_during_the_hold_still_delivers_its_request() {
    let script = |peer: &mut Peer| {
        if let Some(head) = peer.head() {
            peer.note("req0");
            peer.body(&head, false);
        }
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        peer.send_noted(
            "req0",
            b"POST /held HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody",
        );
        peer.half_close();
        drop(peer.stream.try_clone());
        ClientSide::aborted(peer)
    };
    let (_, through) = differential("client gone during the hold", HTTP, script, &client);
    assert_held(&through, "req0");
    assert!(through.servers[0].transcript.bytes.ends_with(b"body"));
}

#[test]
fn an_upstream_that_refuses_is_a_reset_for_the_client() {
    let client = |addr: SocketAddr| match Peer::connect(addr) {
        Ok(mut peer) => {
            peer.send(b"GET / HTTP/1.1\r\n\r\n");
            ClientSide::of(peer)
        }
        Err(ending) => ClientSide {
            transcript: common::fidelity::Transcript {
                len: 0,
                hash: 0,
                bytes: Vec::new(),
                ending,
            },
            notes: Vec::new(),
        },
    };
    let dead = SocketAddr::from(([127, 0, 0, 1], common::free_port()));
    assert_eq!(client(dead).transcript.ending, Ending::Refused);
    // Through: the injector needs its upstream at start; it dies right after.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (injector, listen) =
        common::injector::Injector::explicit(listener.local_addr().unwrap(), HTTP);
    drop(listener);
    let through = client(listen);
    assert_eq!(
        through.transcript.ending,
        Ending::Reset,
        "documented: refused becomes a reset"
    );
    assert_eq!(through.transcript.len, 0);
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let errors = &report["observations"]["upstreamErrors"];
    assert_eq!(
        errors["byCause"]["connect: connection refused"], 1,
        "{errors}"
    );
}

/// Reads `n` bytes, answers with `reply`, closes: a protocol of its own.
fn raw(n: usize, reply: &'static [u8]) -> impl Fn(&mut Peer) + Send + Sync + Clone + 'static {
    move |peer: &mut Peer| {
        if peer.read_exact(n) {
            peer.note("req0");
            peer.send(reply);
        }
        peer.half_close();
    }
}

fn raw_client(bytes: &'static [u8]) -> impl Fn(SocketAddr) -> ClientSide {
    move |addr| {
        let mut peer = connect(addr);
        peer.send_noted("req0", bytes);
        ClientSide::of(peer)
    }
}

#[test]
fn h2c_tls_and_garbage_pass_through_untouched_and_at_once() {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";
    const SETTINGS: &[u8] =
        b"\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x04\x01\x00\x00\x00\x00";
    const HELLO: &[u8] = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00";
    const GARBAGE: &[u8] = b"\x00\x01hello\r\n\r\nworld";
    for (name, bytes, reply) in [
        ("h2c prior knowledge", PREFACE, SETTINGS),
        ("TLS", HELLO, b"\x15\x03\x01\x00\x02\x02\x28".as_slice()),
        ("garbage", GARBAGE, b"what?".as_slice()),
    ] {
        // A 4 s delay: bytes the proxy held would take at least that, bytes passed at once
        // take milliseconds (seen up to 366 ms on a machine at load 12), so the 2 s line
        // between them cannot be crossed by scheduling noise.
        let slow = ["-l", "4000", "--endpoint", "/held"];
        let (_, through) = differential(name, &slow, raw(bytes.len(), reply), &raw_client(bytes));
        let took = transit(&through, "req0");
        assert!(
            took < Duration::from_secs(2),
            "{name}: req0 was held: {took:?}"
        );
        assert_eq!(through.client.transcript.bytes, reply, "{name}");
        let report = through.report.unwrap();
        assert_eq!(
            report["observations"]["passthrough"]["byCause"]["not-http1"], 1,
            "{name}: {report}"
        );
    }
}

/// A deterministic 50 MB body.
fn big_body() -> Vec<u8> {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    (0..50 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

#[test]
fn fifty_megabyte_bodies_pass_whole_both_ways() {
    let script = |peer: &mut Peer| {
        let Some(head) = peer.head() else { return };
        peer.note("req0");
        assert_eq!(peer.body(&head, false), Some(50 * 1024 * 1024));
        peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
        for chunk in big_body().chunks(1 << 16) {
            peer.send(format!("{:x}\r\n", chunk.len()).as_bytes());
            peer.send(chunk);
            peer.send(b"\r\n");
        }
        peer.send(b"0\r\n\r\n");
        peer.half_close();
    };
    let client = |addr: SocketAddr| {
        let mut peer = connect(addr);
        let body = big_body();
        let head = format!(
            "POST /held HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        peer.send_noted("req0", head.as_bytes());
        peer.send(&body);
        assert_eq!(peer.response("POST"), Some(200));
        ClientSide::of(peer)
    };
    let (direct, through) = differential("50 MB", HTTP, script, &client);
    assert!(direct.servers[0].transcript.len > 50 * 1024 * 1024);
    assert_held(&through, "req0");
}

/// The WebSocket peers of `common/websocket.py`.
fn websocket(args: &[&str]) -> std::process::Command {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/common/websocket.py");
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(script).args(args);
    cmd
}

fn websocket_client(addr: SocketAddr) -> serde_json::Value {
    let out = common::run(&mut websocket(&[
        "client",
        "127.0.0.1",
        &addr.port().to_string(),
    ]));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "websocket client ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn a_websocket_echo_works_through_the_upgrade() {
    let port = common::free_port();
    let server = websocket(&["server", &port.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = common::KillOnDrop(server);
    let mut ready = [0u8; 6];
    std::io::Read::read_exact(server.0.stdout.as_mut().unwrap(), &mut ready).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let direct = websocket_client(addr);
    assert_eq!(direct["acceptOk"], true, "{direct}");
    assert_eq!(direct["eof"], true, "{direct}");
    for args in [HTTP, TCP] {
        let (injector, listen) = common::injector::Injector::explicit(addr, args);
        let through = websocket_client(listen);
        assert_eq!(through, direct, "{args:?}");
        let (code, report, stderr) = injector.stop();
        assert_eq!(code, 0, "{stderr}");
        if args == HTTP {
            let obs = &report["observations"];
            assert_eq!(
                obs["requestsDelayed"], 1,
                "the upgrade request is held: {obs}"
            );
            assert_eq!(obs["passthrough"]["byCause"]["upgrade"], 1, "{obs}");
        }
    }
}
