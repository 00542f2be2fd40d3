//! Where HTTP/1.x messages begin and end in a byte stream, without changing a byte.
//!
//! A [`Framer`] is fed the bytes of one direction as they arrive and describes them as
//! events, in order: [`Event::Start`] (a message's first byte is next), runs of
//! [`Event::Bytes`] that cover every input byte exactly once, [`Event::Head`] when a
//! head is complete, [`Event::End`] when a message (head and body) is complete, and
//! [`Event::Passthrough`] when the stream stops being HTTP/1.x that can be framed (after
//! a 101 or CONNECT, an h2c preface, TLS, garbage, a head over the limit, contradictory
//! framing). After `Passthrough`, everything is one run of bytes.
//!
//! Bodies are framed by Content-Length, by chunked transfer coding (chunk lines, data,
//! trailers) or, for responses without a length, by the close. The request side decides
//! delays; the response side tells the proxy when an exchange is complete (for the
//! drain) and when the connection switches protocols.

use std::collections::VecDeque;
use std::ops::Range;

use crate::chunked::{Chunked, Next, chunk_step};
use crate::heads::{self, BodyLength, Passthrough, RequestHead, RequestKind, ResponseHead};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<H> {
    Start,
    Bytes(Range<usize>),
    Head(H),
    End,
    Passthrough(Passthrough),
}

/// The direction-specific part: parsing a head and what follows the message.
pub trait Side {
    type Head;
    /// Whether the first line seen so far (`complete`: through its LF) can be HTTP/1.x.
    fn plausible(line: &[u8], complete: bool) -> bool;
    fn parse(&mut self, head: &[u8]) -> Result<Self::Head, Passthrough>;
    fn body(head: &Self::Head) -> BodyLength;
    /// Stop parsing once this message is complete (an upgrade request, CONNECT).
    fn after(head: &Self::Head) -> Option<Passthrough>;
}

/// Client to upstream.
#[derive(Debug, Default)]
pub struct Requests;

impl Side for Requests {
    type Head = RequestHead;
    fn plausible(line: &[u8], complete: bool) -> bool {
        heads::request_line_plausible(line, complete)
    }
    fn parse(&mut self, head: &[u8]) -> Result<RequestHead, Passthrough> {
        heads::parse_request(head)
    }
    fn body(head: &RequestHead) -> BodyLength {
        head.body
    }
    fn after(head: &RequestHead) -> Option<Passthrough> {
        match head.kind {
            RequestKind::Upgrade => Some(Passthrough::Upgrade),
            RequestKind::Connect => Some(Passthrough::Connect),
            RequestKind::Plain | RequestKind::Head => None,
        }
    }
}

/// Upstream to client: needs the kinds of the requests sent, in order (HEAD responses
/// have no body; a 2xx to CONNECT opens a tunnel).
#[derive(Debug, Default)]
pub struct Responses {
    expected: VecDeque<RequestKind>,
}

impl Responses {
    pub fn expect(&mut self, kind: RequestKind) {
        self.expected.push_back(kind);
    }
}

impl Side for Responses {
    type Head = ResponseHead;
    fn plausible(line: &[u8], complete: bool) -> bool {
        heads::status_line_plausible(line, complete)
    }
    fn parse(&mut self, head: &[u8]) -> Result<ResponseHead, Passthrough> {
        // A response nobody asked for (a 408 before closing) frames like one to GET.
        let kind = self.expected.front().copied().unwrap_or(RequestKind::Plain);
        let parsed = heads::parse_response(head, kind)?;
        if !parsed.interim {
            self.expected.pop_front();
        }
        Ok(parsed)
    }
    fn body(head: &ResponseHead) -> BodyLength {
        head.body
    }
    fn after(head: &ResponseHead) -> Option<Passthrough> {
        match (head.switches, head.status) {
            (false, _) => None,
            (true, 101) => Some(Passthrough::Upgrade),
            (true, _) => Some(Passthrough::Connect),
        }
    }
}

#[derive(Debug)]
enum State {
    Idle,
    Head,
    Fixed(u64),
    Chunked(Chunked),
    UntilClose,
    Passthrough,
}

#[derive(Debug)]
pub struct Framer<S: Side> {
    side: S,
    state: State,
    head: Vec<u8>,
    /// Largest head (and trailer section) accepted: `--buffer-limit`.
    limit: usize,
    after: Option<Passthrough>,
    /// The first line of the head in progress is complete and plausible.
    line_ok: bool,
}

/// Appends a run of bytes, merged with the previous run when they touch.
fn push_bytes<H>(out: &mut Vec<Event<H>>, range: Range<usize>) {
    if range.is_empty() {
        return;
    }
    if let Some(Event::Bytes(last)) = out.last_mut()
        && last.end == range.start
    {
        last.end = range.end;
        return;
    }
    out.push(Event::Bytes(range));
}

/// The end of a head in `buf` (just past its empty line), looking from `from` on.
/// Bare LF line ends are accepted, as servers do.
pub fn head_end(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len()).find_map(|j| {
        if buf[j] != b'\n' {
            return None;
        }
        match (buf.get(j + 1), buf.get(j + 2)) {
            (Some(b'\n'), _) => Some(j + 2),
            (Some(b'\r'), Some(b'\n')) => Some(j + 3),
            _ => None,
        }
    })
}

impl<S: Side> Framer<S> {
    pub fn new(side: S, limit: usize) -> Self {
        Framer {
            side,
            state: State::Idle,
            head: Vec::new(),
            limit: limit.max(1),
            after: None,
            line_ok: false,
        }
    }

    pub fn side_mut(&mut self) -> &mut S {
        &mut self.side
    }

    /// Between messages (nothing of the next one seen yet).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// A head has started and is not complete yet.
    pub fn in_head(&self) -> bool {
        matches!(self.state, State::Head)
    }

    pub fn is_passthrough(&self) -> bool {
        matches!(self.state, State::Passthrough)
    }

    /// Stops parsing for good; true if it was still parsing.
    pub fn give_up(&mut self) -> bool {
        let was = !self.is_passthrough();
        self.state = State::Passthrough;
        self.head = Vec::new();
        was
    }

    fn pass(&mut self, reason: Passthrough, out: &mut Vec<Event<S::Head>>) {
        self.give_up();
        out.push(Event::Passthrough(reason));
    }

    fn end_message(&mut self, out: &mut Vec<Event<S::Head>>) {
        out.push(Event::End);
        match self.after.take() {
            Some(reason) => self.pass(reason, out),
            None => self.state = State::Idle,
        }
    }

    /// Describes `input` (the next bytes of the stream) as events appended to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<Event<S::Head>>) {
        let mut i = 0;
        while i < input.len() {
            i = match self.state {
                State::Passthrough | State::UntilClose => {
                    push_bytes(out, i..input.len());
                    input.len()
                }
                State::Idle => self.idle(input, i, out),
                State::Head => self.head_bytes(input, i, out),
                State::Fixed(left) => {
                    let take = (input.len() - i).min(usize::try_from(left).unwrap_or(usize::MAX));
                    push_bytes(out, i..i + take);
                    let left = left - take as u64;
                    self.state = State::Fixed(left);
                    if left == 0 {
                        self.end_message(out);
                    }
                    i + take
                }
                State::Chunked(_) => self.chunked(input, i, out),
            };
        }
    }

    fn idle(&mut self, input: &[u8], i: usize, out: &mut Vec<Event<S::Head>>) -> usize {
        // Empty lines between messages belong to no message (RFC 9112 section 2.2).
        let blank = input[i..]
            .iter()
            .take_while(|b| matches!(b, b'\r' | b'\n'))
            .count();
        if blank > 0 {
            push_bytes(out, i..i + blank);
            return i + blank;
        }
        out.push(Event::Start);
        self.head.clear();
        self.line_ok = false;
        self.state = State::Head;
        i
    }

    fn head_bytes(&mut self, input: &[u8], i: usize, out: &mut Vec<Event<S::Head>>) -> usize {
        let old = self.head.len();
        let take = (input.len() - i).min(self.limit.saturating_sub(old));
        self.head.extend_from_slice(&input[i..i + take]);
        if !self.line_ok {
            let lf = self.head[old..].iter().position(|b| *b == b'\n');
            let upto = lf.map_or(self.head.len(), |p| old + p + 1);
            if !S::plausible(&self.head[..upto], lf.is_some()) {
                push_bytes(out, i..i + take);
                self.pass(Passthrough::NotHttp1, out);
                return i + take;
            }
            self.line_ok = lf.is_some();
        }
        let Some(end) = head_end(&self.head, old.saturating_sub(2)) else {
            push_bytes(out, i..i + take);
            if self.head.len() >= self.limit {
                self.pass(Passthrough::HeadTooLarge, out);
            }
            return i + take;
        };
        let used = end - old;
        push_bytes(out, i..i + used);
        let head = std::mem::take(&mut self.head);
        match self.side.parse(&head[..end]) {
            Err(reason) => self.pass(reason, out),
            Ok(parsed) => {
                let body = S::body(&parsed);
                self.after = S::after(&parsed);
                out.push(Event::Head(parsed));
                match body {
                    BodyLength::None | BodyLength::Fixed(0) => self.end_message(out),
                    BodyLength::Fixed(n) => self.state = State::Fixed(n),
                    BodyLength::Chunked => self.state = State::Chunked(Chunked::Size(Vec::new())),
                    BodyLength::UntilClose => self.state = State::UntilClose,
                }
            }
        }
        self.head = head;
        self.head.clear();
        i + used
    }

    fn chunked(&mut self, input: &[u8], i: usize, out: &mut Vec<Event<S::Head>>) -> usize {
        let State::Chunked(chunk) = std::mem::replace(&mut self.state, State::Idle) else {
            return i;
        };
        let (next, used) = chunk_step(chunk, &input[i..], self.limit);
        push_bytes(out, i..i + used);
        match next {
            Next::Continue(chunk) => self.state = State::Chunked(chunk),
            Next::End => self.end_message(out),
            Next::Pass(reason) => self.pass(reason, out),
        }
        i + used
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
