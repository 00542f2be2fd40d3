//! What travels through a leg: the pieces read (bytes, then the source's end), each with
//! its release time, in a FIFO; and the [`Schedule`] that gives each piece its time.

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::time::Instant;

/// How a source ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// FIN: the peer will send nothing more.
    Eof,
    /// RST, or a read error: the peer's connection is gone.
    Reset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    At(Instant),
    /// Not decided yet (an HTTP request whose head is not complete).
    Pending,
}

#[derive(Debug)]
pub enum Payload {
    Data(Bytes),
    End(End),
}

/// One piece of the stream on its way to the sink.
#[derive(Debug)]
pub struct Item {
    pub payload: Payload,
    pub release: Release,
    /// Record the delay applied to this piece, counted from this instant.
    pub record: Option<Instant>,
}

/// The pieces read and not yet delivered, in order.
#[derive(Debug, Default)]
pub struct Queue {
    items: VecDeque<Item>,
    bytes: usize,
}

impl Queue {
    pub fn push(&mut self, item: Item) {
        if let Payload::Data(bytes) = &item.payload {
            self.bytes += bytes.len();
        }
        self.items.push_back(item);
    }

    pub fn push_data(&mut self, bytes: Bytes, release: Release) {
        self.push(Item {
            payload: Payload::Data(bytes),
            release,
            record: None,
        });
    }

    /// Gives every pending piece its release time; the first of them records the delay
    /// applied (from `record`'s instant) when it is delivered. Returns the record if no
    /// piece was pending to take it.
    pub fn release_pending(&mut self, at: Instant, record: Option<Instant>) -> Option<Instant> {
        // Pending pieces are always the last ones: a request waits whole.
        let mut first = None;
        for (index, item) in self.items.iter_mut().enumerate().rev() {
            if item.release != Release::Pending {
                break;
            }
            item.release = Release::At(at);
            first = Some(index);
        }
        match (first, record) {
            (Some(index), Some(record)) => {
                self.items[index].record = Some(record);
                None
            }
            (_, record) => record,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn pop_due(&mut self, now: Instant) -> Option<Item> {
        match self.items.front()?.release {
            Release::At(at) if at <= now => {}
            _ => return None,
        }
        let item = self.items.pop_front()?;
        if let Payload::Data(bytes) = &item.payload {
            self.bytes -= bytes.len();
        }
        Some(item)
    }

    /// When the first piece is due, if it has a release time still to come.
    pub fn next_release(&self, now: Instant) -> Option<Instant> {
        match self.items.front()?.release {
            Release::At(at) if at > now => Some(at),
            _ => None,
        }
    }
}

/// What decides when each piece read goes on.
pub trait Schedule: Send {
    /// `bytes` arrived at `now`: queue them (in pieces, with release times).
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue);
    /// The source ended at `now`.
    fn end(&mut self, end: End, now: Instant, queue: &mut Queue);
    /// A deadline of the schedule's own (an HTTP header timeout).
    fn deadline(&self) -> Option<Instant> {
        None
    }
    fn expire(&mut self, _now: Instant, _queue: &mut Queue) {}
    /// Between messages (HTTP), after this many complete ones: a drain may close the
    /// connection here. `None`: in the middle of one, or not framed at all (TCP).
    fn idle(&self) -> Option<u64> {
        None
    }
}

impl<T: Schedule + ?Sized> Schedule for Box<T> {
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue) {
        (**self).data(bytes, now, queue);
    }
    fn end(&mut self, end: End, now: Instant, queue: &mut Queue) {
        (**self).end(end, now, queue);
    }
    fn deadline(&self) -> Option<Instant> {
        (**self).deadline()
    }
    fn expire(&mut self, now: Instant, queue: &mut Queue) {
        (**self).expire(now, queue);
    }
    fn idle(&self) -> Option<u64> {
        (**self).idle()
    }
}
