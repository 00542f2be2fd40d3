//! TCP schedules: every piece at once, or each piece held for its own sampled delay
//! from the moment it arrived (the stream's end too, so a close or a reset never
//! overtakes the bytes before it).

use bytes::Bytes;
use tokio::time::Instant;

use crate::model::{LatencyModel, Rng};
use crate::queue::{End, Item, Payload, Queue, Release, Schedule};
use crate::stats::{Counter, Stats};

/// Forwards everything as soon as it arrives.
#[derive(Debug, Default)]
pub struct Immediate;

impl Schedule for Immediate {
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue) {
        queue.push_data(bytes, Release::At(now));
    }

    fn end(&mut self, end: End, now: Instant, queue: &mut Queue) {
        queue.push(Item {
            payload: Payload::End(end),
            release: Release::At(now),
            record: None,
        });
    }
}

/// Holds each piece for latency ± jitter from its arrival.
#[derive(Debug)]
pub struct Delayed {
    pub model: LatencyModel,
    pub rng: Rng,
    pub stats: std::sync::Arc<Stats>,
}

impl Delayed {
    fn push(&mut self, payload: Payload, now: Instant, queue: &mut Queue) {
        let release = Release::At(now + self.model.sample(&mut self.rng));
        let record = matches!(payload, Payload::Data(_)).then_some(now);
        if record.is_some() {
            self.stats.bump(Counter::ChunksDelayed);
        }
        queue.push(Item {
            payload,
            release,
            record,
        });
    }
}

impl Schedule for Delayed {
    fn data(&mut self, bytes: Bytes, now: Instant, queue: &mut Queue) {
        self.push(Payload::Data(bytes), now, queue);
    }

    fn end(&mut self, end: End, now: Instant, queue: &mut Queue) {
        self.push(Payload::End(end), now, queue);
    }
}
