//! HTTP mode: the schedules of the two legs of one HTTP/1.x connection.
//!
//! Requests: every byte of a request waits until its head is complete (so nothing of it
//! reaches the upstream before the delay is decided); then the whole request (head,
//! body, what follows) is released at its arrival (first byte) plus the delay when it
//! matches, or at once when it does not. Requests behind a held one on the same
//! connection (pipelining) wait for it: bytes keep their order. A head not complete
//! within `--header-timeout`, or anything that is not HTTP/1.x, is released as it is and
//! the connection passes through untouched from then on (the upstream judges it).
//!
//! Responses are never delayed; they are framed only to know when every request sent has
//! its complete final response (the drain closes a connection only then) and when the
//! connection switches protocols (101, CONNECT).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

use crate::exchanges::Exchanges;
use crate::framing::{Event, Framer, Requests, Responses};
use crate::heads::{Passthrough, RequestHead, ResponseHead};
use crate::matching::HttpRules;
use crate::model::{LatencyModel, Rng};
use crate::queue::{End, Item, Payload, Queue, Release, Schedule};
use crate::stats::{Counter, Stats};

/// What decides a request's delay.
#[derive(Debug, Clone)]
pub struct Delays {
    pub rules: Arc<HttpRules>,
    pub model: LatencyModel,
    pub header_timeout: Duration,
}

/// The piece of a read in `range`: the read itself when the range covers it (the usual
/// case: no copy, no reference count), else a slice of it.
fn piece(read: &mut Option<Bytes>, len: usize, range: std::ops::Range<usize>) -> Bytes {
    match read {
        Some(_) if range.start == 0 && range.end == len => read.take().unwrap_or_default(),
        Some(bytes) => bytes.slice(range),
        None => Bytes::new(),
    }
}

fn end_item(end: End, now: Instant) -> Item {
    Item {
        payload: Payload::End(end),
        release: Release::At(now),
        record: None,
    }
}

/// The request in progress: when its first byte came, and its release once decided.
#[derive(Debug, Clone, Copy)]
struct Current {
    start: Instant,
    release: Option<Instant>,
}

/// Client to upstream.
pub struct RequestSchedule {
    framer: Framer<Requests>,
    delays: Delays,
    rng: Rng,
    exchanges: Arc<Exchanges>,
    stats: Arc<Stats>,
    current: Option<Current>,
    /// Requests complete so far.
    ended: u64,
    events: Vec<Event<RequestHead>>,
}

impl RequestSchedule {
    pub fn new(
        delays: Delays,
        limit: usize,
        rng: Rng,
        exchanges: Arc<Exchanges>,
        stats: Arc<Stats>,
    ) -> Self {
        RequestSchedule {
            framer: Framer::new(Requests, limit),
            delays,
            rng,
            exchanges,
            stats,
            current: None,
            ended: 0,
            events: Vec::new(),
        }
    }

    /// The head is complete: when does the request go (and from when is its hold
    /// recorded)?
    fn decide(&mut self, head: &RequestHead, now: Instant) -> (Instant, Option<Instant>) {
        self.stats.bump(Counter::Requests);
        let start = self.current.map_or(now, |c| c.start);
        let model = self.delays.model;
        let hold = (self.delays.rules.matches(&head.method, &head.target)
            && model.affects(&mut self.rng))
        .then(|| model.sample(&mut self.rng));
        self.exchanges.sent(head.kind);
        let (release, record) = match hold {
            Some(hold) => {
                self.stats.bump(Counter::RequestsDelayed);
                (start + hold, Some(start))
            }
            None => (now, None),
        };
        self.current = Some(Current {
            start,
            release: Some(release),
        });
        (release, record)
    }

    /// When bytes read now go: pending while their request's head is incomplete, with
    /// their request once it is decided, at once between requests or passing through.
    fn release_of(&self, now: Instant) -> Release {
        match self.current {
            Some(Current { release: None, .. }) => Release::Pending,
            Some(Current {
                release: Some(at), ..
            }) => Release::At(at),
            None => Release::At(now),
        }
    }
}

/// Bytes of one read not queued yet: contiguous, with one release time (so a request
/// read whole goes on in one write, head and body together).
struct Run {
    range: std::ops::Range<usize>,
    release: Release,
    record: Option<Instant>,
}

impl Run {
    /// Gives a pending run its release (the request was decided, or passes through).
    fn settle(run: &mut Option<Run>, at: Instant, record: Option<Instant>) {
        if let Some(run) = run.as_mut().filter(|r| r.release == Release::Pending) {
            run.release = Release::At(at);
            run.record = record;
        }
    }
}

impl Schedule for RequestSchedule {
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue) {
        let mut events = std::mem::take(&mut self.events);
        self.framer.feed(&bytes, &mut events);
        let (len, mut read) = (bytes.len(), Some(bytes));
        let mut run: Option<Run> = None;
        let flush = |run: Option<Run>, read: &mut Option<Bytes>, queue: &mut Queue| {
            if let Some(run) = run {
                queue.push(Item {
                    payload: Payload::Data(piece(read, len, run.range)),
                    release: run.release,
                    record: run.record,
                });
            }
        };
        for event in events.drain(..) {
            match event {
                Event::Start => {
                    self.current = Some(Current {
                        start: now,
                        release: None,
                    });
                }
                Event::Bytes(range) => {
                    let release = self.release_of(now);
                    match run.as_mut() {
                        Some(r) if r.release == release && r.range.end == range.start => {
                            r.range.end = range.end;
                        }
                        _ => {
                            flush(run.take(), &mut read, queue);
                            run = Some(Run {
                                range,
                                release,
                                record: None,
                            });
                        }
                    }
                }
                Event::Head(head) => {
                    let (release, record) = self.decide(&head, now);
                    // The first byte of the request carries the record: queued earlier
                    // (a head read in pieces), or in this run.
                    let record = queue.release_pending(release, record);
                    Run::settle(&mut run, release, record);
                }
                Event::End => {
                    self.current = None;
                    self.ended += 1;
                }
                Event::Passthrough(reason) => {
                    self.exchanges.pass(reason, &self.stats);
                    queue.release_pending(now, None);
                    Run::settle(&mut run, now, None);
                    self.current = None;
                }
            }
        }
        flush(run, &mut read, queue);
        self.events = events;
    }

    fn end(&mut self, end: End, now: Instant, queue: &mut Queue) {
        // A head cut short by the close goes on as it is, then the close.
        queue.release_pending(now, None);
        queue.push(end_item(end, now));
    }

    fn deadline(&self) -> Option<Instant> {
        match self.current {
            Some(Current {
                start,
                release: None,
            }) if self.framer.in_head() => Some(start + self.delays.header_timeout),
            _ => None,
        }
    }

    fn expire(&mut self, now: Instant, queue: &mut Queue) {
        if self.deadline().is_some_and(|at| at <= now) && self.framer.give_up() {
            self.exchanges.pass(Passthrough::HeaderTimeout, &self.stats);
            queue.release_pending(now, None);
            self.current = None;
        }
    }

    fn idle(&self) -> Option<u64> {
        self.framer.is_idle().then_some(self.ended)
    }
}

/// Upstream to client: nothing is delayed; exchanges are counted.
pub struct ResponseSchedule {
    framer: Framer<Responses>,
    exchanges: Arc<Exchanges>,
    stats: Arc<Stats>,
    final_head: bool,
    events: Vec<Event<ResponseHead>>,
}

impl ResponseSchedule {
    pub fn new(limit: usize, exchanges: Arc<Exchanges>, stats: Arc<Stats>) -> Self {
        ResponseSchedule {
            framer: Framer::new(Responses::default(), limit),
            exchanges,
            stats,
            final_head: false,
            events: Vec::new(),
        }
    }
}

impl Schedule for ResponseSchedule {
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue) {
        self.exchanges.take_kinds(self.framer.side_mut());
        let mut events = std::mem::take(&mut self.events);
        self.framer.feed(&bytes, &mut events);
        // Nothing of a response waits: the read goes on whole, in one write.
        queue.push_data(bytes, Release::At(now));
        for event in events.drain(..) {
            match event {
                Event::Head(head) => self.final_head = !head.interim,
                Event::End if self.final_head => {
                    self.final_head = false;
                    self.exchanges.answered.fetch_add(1, Ordering::Relaxed);
                }
                Event::Passthrough(reason) => self.exchanges.pass(reason, &self.stats),
                Event::Start | Event::End | Event::Bytes(_) => {}
            }
        }
        self.events = events;
    }

    fn end(&mut self, end: End, now: Instant, queue: &mut Queue) {
        queue.push(end_item(end, now));
    }

    fn idle(&self) -> Option<u64> {
        self.framer
            .is_idle()
            .then(|| self.exchanges.answered.load(Ordering::Relaxed))
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
