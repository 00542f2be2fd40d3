//! Table tests of head parsing: body lengths by RFC 9112 section 6.3, and the early
//! verdict on the first line.

use super::*;

#[test]
fn request_bodies_follow_their_framing_headers() {
    let table: [(&str, BodyLength); 5] = [
        ("GET / HTTP/1.1\r\n\r\n", BodyLength::None),
        (
            "POST / HTTP/1.1\r\ncontent-length: 12\r\n\r\n",
            BodyLength::Fixed(12),
        ),
        (
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n",
            BodyLength::Fixed(3),
        ),
        (
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            BodyLength::Chunked,
        ),
        (
            "PUT /x HTTP/1.0\r\nTRANSFER-ENCODING: gzip ,  Chunked\r\n\r\n",
            BodyLength::Chunked,
        ),
    ];
    for (head, body) in table {
        assert_eq!(
            parse_request(head.as_bytes()).map(|h| h.body),
            Ok(body),
            "{head}"
        );
    }
}

#[test]
fn request_kinds_decide_what_follows() {
    let kind = |head: &str| parse_request(head.as_bytes()).map(|h| h.kind);
    assert_eq!(kind("HEAD / HTTP/1.1\r\n\r\n"), Ok(RequestKind::Head));
    assert_eq!(
        kind("CONNECT h:443 HTTP/1.1\r\n\r\n"),
        Ok(RequestKind::Connect)
    );
    assert_eq!(
        kind("GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"),
        Ok(RequestKind::Upgrade)
    );
    // Upgrade without "Connection: upgrade" is not an upgrade request.
    assert_eq!(
        kind("GET / HTTP/1.1\r\nUpgrade: h2c\r\n\r\n"),
        Ok(RequestKind::Plain)
    );
}

#[test]
fn response_bodies_depend_on_status_and_request() {
    let body = |head: &str, kind| parse_response(head.as_bytes(), kind).map(|h| h.body);
    let ok = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n";
    assert_eq!(body(ok, RequestKind::Plain), Ok(BodyLength::Fixed(5)));
    assert_eq!(body(ok, RequestKind::Head), Ok(BodyLength::None));
    assert_eq!(
        body("HTTP/1.1 200 OK\r\n\r\n", RequestKind::Plain),
        Ok(BodyLength::UntilClose)
    );
    assert_eq!(
        body(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
            RequestKind::Plain
        ),
        Ok(BodyLength::UntilClose)
    );
    assert_eq!(
        body(
            "HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            RequestKind::Plain
        ),
        Ok(BodyLength::None)
    );
    let interim = parse_response(b"HTTP/1.1 103 Early Hints\r\n\r\n", RequestKind::Plain);
    assert_eq!(interim.map(|h| (h.interim, h.switches)), Ok((true, false)));
    let switched = parse_response(
        b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        RequestKind::Upgrade,
    );
    assert_eq!(switched.map(|h| (h.interim, h.switches)), Ok((false, true)));
}

#[test]
fn first_lines_are_judged_as_early_as_possible() {
    let table: [(&[u8], bool, bool); 9] = [
        (b"G", false, true),
        (b"GET /x", false, true),
        (b"GET / HTTP/1.1\r\n", true, true),
        (b"GET / HTTP/1.0\n", true, true),
        (b"PRI * HTTP/2.0\r\n", true, false),
        (b"\x16\x03\x01", false, false),
        (b" GET", false, false),
        (b"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", false, false),
        (b"GET /\r\n", true, false),
    ];
    for (line, complete, plausible) in table {
        assert_eq!(
            request_line_plausible(line, complete),
            plausible,
            "{line:?}"
        );
    }
    assert!(status_line_plausible(b"HTTP/1", false));
    assert!(!status_line_plausible(b"SSH-2.0", false));
}
