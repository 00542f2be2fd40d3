//! Table tests of the framer: every case is fed whole and split at every byte, and must
//! give the same events, with runs of bytes covering the input exactly once.

use super::*;

/// A request head, or a response status, reduced to what the tests compare.
#[derive(Debug, Clone, PartialEq, Eq)]
enum E {
    Start,
    Bytes(Range<usize>),
    Head(String),
    End,
    Pass(Passthrough),
}

/// Appends `events` (of a feed starting at `offset`) to `out`, merging touching runs;
/// a run after the passthrough point joins the run before it (where the point falls in
/// the bytes depends on how they were split).
fn describe<S: Side>(
    events: Vec<Event<S::Head>>,
    offset: usize,
    head: &dyn Fn(&S::Head) -> String,
    out: &mut Vec<E>,
) {
    for event in events {
        if let (Event::Bytes(r), [.., E::Bytes(before), E::Pass(_)]) = (&event, out.as_mut_slice())
            && before.end == r.start + offset
        {
            before.end = r.end + offset;
            continue;
        }
        let e = match event {
            Event::Start => E::Start,
            Event::Bytes(r) => {
                let r = r.start + offset..r.end + offset;
                if let Some(E::Bytes(last)) = out.last_mut()
                    && last.end == r.start
                {
                    last.end = r.end;
                    continue;
                }
                E::Bytes(r)
            }
            Event::Head(h) => E::Head(head(&h)),
            Event::End => E::End,
            Event::Passthrough(p) => E::Pass(p),
        };
        out.push(e);
    }
}

fn run<S: Side>(
    make: &dyn Fn() -> Framer<S>,
    input: &[u8],
    cuts: &[usize],
    head: &dyn Fn(&S::Head) -> String,
) -> Vec<E> {
    let mut framer = make();
    let mut out = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain([input.len()].iter()) {
        let mut events = Vec::new();
        framer.feed(&input[start..cut], &mut events);
        describe::<S>(events, start, head, &mut out);
        start = cut;
    }
    out
}

/// Events for `input` fed whole, checked equal for every two-way and byte-by-byte split.
fn events<S: Side>(
    make: &dyn Fn() -> Framer<S>,
    input: &[u8],
    head: &dyn Fn(&S::Head) -> String,
) -> Vec<E> {
    let whole = run(make, input, &[], head);
    let covered: usize = whole
        .iter()
        .map(|e| if let E::Bytes(r) = e { r.len() } else { 0 })
        .sum();
    assert_eq!(
        covered,
        input.len(),
        "bytes not covered exactly once: {whole:?}"
    );
    for cut in 1..input.len() {
        assert_eq!(run(make, input, &[cut], head), whole, "split at {cut}");
    }
    let every: Vec<usize> = (1..input.len()).collect();
    assert_eq!(run(make, input, &every, head), whole, "byte by byte");
    whole
}

fn requests(input: &[u8]) -> Vec<E> {
    let head = |h: &RequestHead| format!("{} {}", h.method, String::from_utf8_lossy(&h.target));
    events(&|| Framer::new(Requests, 4096), input, &head)
}

fn responses(kinds: &[RequestKind], input: &[u8]) -> Vec<E> {
    let kinds = kinds.to_vec();
    let make = move || {
        let mut side = Responses::default();
        for kind in &kinds {
            side.expect(*kind);
        }
        Framer::new(side, 4096)
    };
    let head = |h: &ResponseHead| h.status.to_string();
    events(&make, input, &head)
}

fn head(s: &str) -> E {
    E::Head(s.to_owned())
}

#[test]
fn pipelined_requests_are_told_apart() {
    let a = "GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
    let b_head = "POST /b HTTP/1.1\r\nContent-Length: 5\r\n\r\n";
    let c = "GET /c HTTP/1.1\r\n\r\n";
    let input = format!("{a}{b_head}hello{c}");
    let b = a.len();
    let body = b + b_head.len();
    let c_at = body + 5;
    assert_eq!(
        requests(input.as_bytes()),
        [
            E::Start,
            E::Bytes(0..b),
            head("GET /a"),
            E::End,
            E::Start,
            E::Bytes(b..body),
            head("POST /b"),
            E::Bytes(body..c_at),
            E::End,
            E::Start,
            E::Bytes(c_at..input.len()),
            head("GET /c"),
            E::End,
        ]
    );
}

#[test]
fn chunked_bodies_with_extensions_and_trailers_end_where_they_end() {
    let h = "POST /up HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    let body = "5;name=v\r\nhello\r\n0\r\nX-Checksum: 1\r\n\r\n";
    let input = format!("{h}{body}\r\nGET / HTTP/1.1\r\n\r\n");
    let end = h.len() + body.len();
    assert_eq!(
        requests(input.as_bytes()),
        [
            E::Start,
            E::Bytes(0..h.len()),
            head("POST /up"),
            E::Bytes(h.len()..end),
            E::End,
            // An empty line between requests belongs to neither.
            E::Bytes(end..end + 2),
            E::Start,
            E::Bytes(end + 2..input.len()),
            head("GET /"),
            E::End,
        ]
    );
}

#[test]
fn bare_lf_line_ends_are_accepted() {
    let input = "GET /lf HTTP/1.1\nHost: x\n\nGET /next HTTP/1.0\r\n\r\n";
    let got = requests(input.as_bytes());
    assert_eq!(got[2], head("GET /lf"));
    assert_eq!(got[6], head("GET /next"));
}

#[test]
fn what_is_not_http1_passes_through_at_once() {
    let h2c = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04";
    let tls = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03";
    let garbage = b"HELLO\x00THERE";
    let http09 = b"GET /\r\n";
    for input in [&h2c[..], &tls[..], &garbage[..], &http09[..]] {
        assert_eq!(
            requests(input),
            [
                E::Start,
                E::Bytes(0..input.len()),
                E::Pass(Passthrough::NotHttp1)
            ],
            "{input:?}"
        );
    }
}

#[test]
fn after_an_upgrade_or_connect_request_everything_passes_through() {
    let upgrade =
        "GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\n\r\n";
    let input = format!("{upgrade}\x01\x05hello");
    let n = upgrade.len();
    assert_eq!(
        requests(input.as_bytes()),
        [
            E::Start,
            E::Bytes(0..n),
            head("GET /ws"),
            E::End,
            E::Pass(Passthrough::Upgrade),
            E::Bytes(n..input.len()),
        ]
    );
    let connect = "CONNECT db:5432 HTTP/1.1\r\n\r\n";
    let got = requests(format!("{connect}binary").as_bytes());
    assert_eq!(got[4], E::Pass(Passthrough::Connect));
}

#[test]
fn contradictory_framing_is_left_to_the_upstream() {
    for bad in [
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        assert_eq!(
            requests(bad.as_bytes()).last(),
            Some(&E::Pass(Passthrough::BadFraming)),
            "{bad}"
        );
    }
}

#[test]
fn a_head_over_the_limit_passes_through() {
    let mut framer = Framer::new(Requests, 64);
    let mut events = Vec::new();
    let big = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
    framer.feed(big.as_bytes(), &mut events);
    assert!(
        events.contains(&Event::Passthrough(Passthrough::HeadTooLarge)),
        "{events:?}"
    );
    assert!(framer.is_passthrough());
}

#[test]
fn many_headers_and_large_heads_within_the_limit_are_parsed() {
    let headers: String = (0..150).map(|i| format!("X-H{i}: {i}\r\n")).collect();
    let input = format!("GET /many HTTP/1.1\r\n{headers}\r\n");
    let mut framer = Framer::new(Requests, 64 * 1024);
    let mut events = Vec::new();
    framer.feed(input.as_bytes(), &mut events);
    assert!(
        matches!(events[2], Event::Head(ref h) if h.method == "GET"),
        "{events:?}"
    );
}

#[test]
fn responses_frame_by_what_was_asked() {
    // A HEAD's response has no body, whatever Content-Length says; 204 and 304 neither.
    let input = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nHTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nContent-Length: 3\r\n\r\n";
    let got = responses(
        &[RequestKind::Head, RequestKind::Plain, RequestKind::Plain],
        input.as_bytes(),
    );
    let heads: Vec<&E> = got
        .iter()
        .filter(|e| matches!(e, E::Head(_) | E::End))
        .collect();
    assert_eq!(
        heads,
        [
            &head("200"),
            &E::End,
            &head("204"),
            &E::End,
            &head("304"),
            &E::End
        ]
    );
}

#[test]
fn interim_responses_precede_the_final_one() {
    let input = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
    let got = responses(&[RequestKind::Plain, RequestKind::Plain], input.as_bytes());
    let heads: Vec<&E> = got.iter().filter(|e| matches!(e, E::Head(_))).collect();
    assert_eq!(
        heads,
        [&head("100"), &head("103"), &head("200"), &head("200")]
    );
}

#[test]
fn a_101_switches_and_a_response_without_length_runs_to_the_close() {
    let switching = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x01\x02hi";
    let got = responses(&[RequestKind::Upgrade], switching.as_bytes());
    assert_eq!(got[4], E::Pass(Passthrough::Upgrade));
    let until_close = "HTTP/1.0 200 OK\r\n\r\nall of this is the body";
    let got = responses(&[RequestKind::Plain], until_close.as_bytes());
    assert_eq!(got.last(), Some(&E::Bytes(19..until_close.len())));
    assert!(!got.contains(&E::End));
    let tunnel = "HTTP/1.1 200 Connection established\r\n\r\n\x16\x03";
    let got = responses(&[RequestKind::Connect], tunnel.as_bytes());
    assert_eq!(got[4], E::Pass(Passthrough::Connect));
}

#[test]
fn head_ends_are_found_across_feeds() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\n", 0), Some(18));
    assert_eq!(head_end(b"a\n\nb", 0), Some(3));
    assert_eq!(head_end(b"a\r\nb\r\n", 0), None);
}
