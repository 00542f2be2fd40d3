//! Request and response heads, parsed with `httparse` for what framing and matching need:
//! the method and target of a request, the status of a response, and how long the body
//! that follows is (RFC 9112 section 6.3). The bytes themselves are never rewritten.
//!
//! The parser is lenient where servers are (several spaces in the request line, invalid
//! header lines ignored, obsolete line folding in responses): a head `httparse` still
//! rejects makes the connection pass through untouched, and the upstream judges it.

use httparse::{EMPTY_HEADER, ParserConfig, Status};
use serde::Serialize;

/// Why a connection stopped being parsed: from then on its bytes pass through untouched
/// (and no request on it is delayed any more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Passthrough {
    /// Not HTTP/1.x: an h2c preface, TLS, a protocol of its own, or a head httparse rejects.
    NotHttp1,
    /// A 101 (or a request asking to upgrade): WebSocket, h2c upgrade.
    Upgrade,
    /// CONNECT: a tunnel.
    Connect,
    /// A head (or a chunked body's trailers) larger than `--buffer-limit`.
    HeadTooLarge,
    /// A head not complete within `--header-timeout`.
    HeaderTimeout,
    /// Framing headers that contradict each other, or a malformed chunked body.
    BadFraming,
}

impl Passthrough {
    pub fn as_str(self) -> &'static str {
        match self {
            Passthrough::NotHttp1 => "not-http1",
            Passthrough::Upgrade => "upgrade",
            Passthrough::Connect => "connect",
            Passthrough::HeadTooLarge => "head-too-large",
            Passthrough::HeaderTimeout => "header-timeout",
            Passthrough::BadFraming => "bad-framing",
        }
    }
}

/// How the body after a head is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// No body (GET without Content-Length, a response to HEAD, 1xx, 204, 304).
    None,
    /// `Content-Length: N`.
    Fixed(u64),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// A response without length: it ends when the upstream closes.
    UntilClose,
}

/// What kind of exchange a request starts, which the response's framing depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestKind {
    Plain,
    /// HEAD: the response has no body whatever its headers say.
    Head,
    /// CONNECT: a 2xx response turns the connection into a tunnel.
    Connect,
    /// `Upgrade` with `Connection: upgrade`: a 101 switches protocols.
    Upgrade,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (origin form `/a?b`, absolute form, `*`).
    pub target: Vec<u8>,
    pub kind: RequestKind,
    pub body: BodyLength,
}

/// A parsed response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// 1xx other than 101: another head follows for the same request.
    pub interim: bool,
    pub body: BodyLength,
    /// A 101, or a 2xx to CONNECT: from here on the bytes are another protocol.
    pub switches: bool,
}

/// One slot per line of the head: never too few headers (httparse needs the count up front).
fn header_slots(head: &[u8]) -> Vec<httparse::Header<'_>> {
    let lines = head.iter().filter(|b| **b == b'\n').count();
    vec![EMPTY_HEADER; lines.max(1)]
}

fn has_token(value: &[u8], token: &str) -> bool {
    value
        .split(|b| *b == b',')
        .any(|part| part.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
}

/// The body length the framing headers give, or `None` when they contradict each other
/// (two different Content-Lengths, or one that is not a number).
fn declared_length(headers: &[httparse::Header<'_>]) -> Option<(Option<u64>, Option<bool>)> {
    let mut length: Option<u64> = None;
    let mut chunked: Option<bool> = None;
    for header in headers {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).ok()?.trim();
            if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let value: u64 = text.parse().ok()?;
            if length.is_some_and(|l| l != value) {
                return None;
            }
            length = Some(value);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            // The last coding decides: chunked must be the final one.
            let last = header.value.split(|b| *b == b',').next_back();
            chunked = Some(last.is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked")));
        }
    }
    Some((length, chunked))
}

fn config() -> ParserConfig {
    let mut config = ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(true)
        .allow_multiple_spaces_in_response_status_delimiters(true)
        .allow_spaces_after_header_name_in_responses(true)
        .allow_obsolete_multiline_headers_in_responses(true)
        .ignore_invalid_headers_in_requests(true)
        .ignore_invalid_headers_in_responses(true);
    config
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Longest method token accepted (the longest registered method is 17 characters).
const MAX_METHOD: usize = 32;

/// Whether the first line of a request seen so far (`complete`: through its LF) can
/// still be HTTP/1.x: a method token, a space, and at its end ` HTTP/1.0` or ` HTTP/1.1`.
/// TLS, an h2c preface (`PRI * HTTP/2.0`) or a binary protocol fail here at once, so
/// their bytes pass through without waiting for a head that never comes.
pub fn request_line_plausible(line: &[u8], complete: bool) -> bool {
    let method_end = line.iter().take(MAX_METHOD + 1).position(|b| *b == b' ');
    let method = &line[..method_end.unwrap_or(line.len().min(MAX_METHOD + 1))];
    let method_ok = method.iter().copied().all(is_tchar)
        && method.len() <= MAX_METHOD
        && (method_end.is_none() || !method.is_empty());
    if !method_ok || (complete && method_end.is_none()) {
        return false;
    }
    if !complete {
        return true;
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    line.ends_with(b" HTTP/1.1") || line.ends_with(b" HTTP/1.0")
}

/// Whether the first line of a response seen so far can still be HTTP/1.x.
pub fn status_line_plausible(line: &[u8], _complete: bool) -> bool {
    let prefix = b"HTTP/1.";
    let n = line.len().min(prefix.len());
    line[..n] == prefix[..n]
}

/// Parses a complete request head (through its empty line).
pub fn parse_request(head: &[u8]) -> Result<RequestHead, Passthrough> {
    let mut slots = header_slots(head);
    let mut request = httparse::Request::new(&mut slots);
    match config().parse_request(&mut request, head) {
        Ok(Status::Complete(_)) => {}
        Ok(Status::Partial) | Err(_) => return Err(Passthrough::NotHttp1),
    }
    let method = request.method.unwrap_or_default().to_owned();
    let target = request.path.unwrap_or_default().as_bytes().to_vec();
    let headers = &*request.headers;
    let upgrade = headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"))
        && headers
            .iter()
            .any(|h| h.name.eq_ignore_ascii_case("connection") && has_token(h.value, "upgrade"));
    let kind = match method.as_str() {
        "HEAD" => RequestKind::Head,
        "CONNECT" => RequestKind::Connect,
        _ if upgrade => RequestKind::Upgrade,
        _ => RequestKind::Plain,
    };
    let body = match declared_length(headers) {
        // Both, or a transfer coding other than chunked last: the upstream must judge
        // (RFC 9112 6.3: reject, or close after): nothing here can find the next request.
        None | Some((Some(_), Some(_))) | Some((_, Some(false))) => {
            return Err(Passthrough::BadFraming);
        }
        Some((_, Some(true))) => BodyLength::Chunked,
        Some((Some(length), None)) => BodyLength::Fixed(length),
        Some((None, None)) => BodyLength::None,
    };
    Ok(RequestHead {
        method,
        target,
        kind,
        body,
    })
}

/// Parses a complete response head to a request of `kind`.
pub fn parse_response(head: &[u8], kind: RequestKind) -> Result<ResponseHead, Passthrough> {
    let mut slots = header_slots(head);
    let mut response = httparse::Response::new(&mut slots);
    match config().parse_response(&mut response, head) {
        Ok(Status::Complete(_)) => {}
        Ok(Status::Partial) | Err(_) => return Err(Passthrough::NotHttp1),
    }
    let status = response.code.unwrap_or_default();
    let switches = status == 101 || (kind == RequestKind::Connect && (200..300).contains(&status));
    let interim = (100..200).contains(&status) && status != 101;
    let no_body =
        interim || switches || status == 204 || status == 304 || kind == RequestKind::Head;
    let body = if no_body {
        BodyLength::None
    } else {
        match declared_length(response.headers) {
            None => return Err(Passthrough::BadFraming),
            Some((_, Some(true))) => BodyLength::Chunked,
            // A coding other than chunked last, or no length: read until the close.
            Some((_, Some(false))) | Some((None, None)) => BodyLength::UntilClose,
            Some((Some(length), None)) => BodyLength::Fixed(length),
        }
    };
    Ok(ResponseHead {
        status,
        interim,
        body,
        switches,
    })
}

#[cfg(test)]
#[path = "heads_tests.rs"]
mod tests;
