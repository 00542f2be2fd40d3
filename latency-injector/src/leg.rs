//! One direction of a proxied connection, as the peers' bytes and closes came: read what
//! the source sends, let a [`Schedule`] give each piece its release time, and deliver it
//! to the sink in order at that time.
//!
//! What is delivered is exactly what was read: bytes unchanged, then the source's end as
//! it came. A FIN (end of stream) becomes a half-close of the sink (`shutdown(SHUT_WR)`),
//! so the other direction keeps flowing; a reset (or any read error) becomes a reset of
//! the sink (SO_LINGER 0, then close), after every byte read before it has been sent
//! (SO_LINGER 0 throws away unsent data, so the leg first waits for the sink's send
//! queue to empty, up to `UNSENT_WAIT`).
//!
//! The queue between reading and delivering is bounded by `--buffer-limit`: once that
//! many bytes wait, the leg stops reading and TCP pushes back on the sender. Pieces never
//! overtake each other, however their release times compare. No buffer is held while a
//! connection is idle: one is allocated only once the source is readable.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use std::os::fd::AsRawFd;

use bytes::Bytes;
use nix::sys::socket::MsgFlags;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::queue::{End, Payload, Queue, Schedule};
use crate::sockets;
use crate::stats::{Counter, Stats};
use crate::timer;

const READ_SIZE: usize = 64 * 1024;

thread_local! {
    /// One read buffer per worker thread (a read never awaits while it holds it).
    static READ_BUFFER: std::cell::RefCell<Option<Box<[u8]>>> = const { std::cell::RefCell::new(None) };
}
/// How long a reset waits for the bytes before it to leave the sink's send queue.
const UNSENT_WAIT: Duration = Duration::from_secs(2);

/// How a leg finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The source's FIN was delivered (the sink is half-closed).
    Closed,
    /// The source's reset was delivered: the sink is being reset.
    Reset,
    /// Writing to the sink failed: its peer is gone.
    SinkFailed,
    /// The source sent bytes after the drain closed the sink.
    LateData,
}

/// What one leg shares with its connection.
#[derive(Debug)]
pub struct Wiring<'a> {
    /// Set when the source's peer failed on a write (a later read may only see EOF).
    pub source_failed: &'a AtomicBool,
    /// Set when writing to the sink fails.
    pub sink_failed: &'a AtomicBool,
    /// Bytes waiting in this leg's queue (the connection reads it when cut).
    pub queued: &'a AtomicUsize,
    /// This leg is between messages with nothing queued (and after how many).
    pub idle: watch::Sender<Option<u64>>,
    /// The drain closes the connection: half-close the sink once nothing is queued.
    pub closing: watch::Receiver<bool>,
    pub stats: &'a Stats,
    /// Bytes delivered to the sink.
    pub delivered: Counter,
    /// Resets read from the source.
    pub resets: Counter,
}

pub struct Leg<'a, S> {
    source: &'a TcpStream,
    sink: &'a TcpStream,
    schedule: S,
    queue: Queue,
    limit: usize,
    wiring: Wiring<'a>,
    source_done: bool,
    sink_closed: bool,
    wrote: bool,
}

type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Wake {
    Readable(io::Result<()>),
    Released,
    Expired,
    Closing,
}

/// One read. A short read means the socket is drained for now: tokio is told so (the
/// closure reports WouldBlock, which clears the cached readiness), as its own `poll_read`
/// does, sparing the next wait a read that would only return EAGAIN.
fn read_some(source: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = None;
    let outcome = source.try_io(tokio::io::Interest::READABLE, || {
        let n = nix::sys::socket::recv(source.as_raw_fd(), buf, MsgFlags::empty())
            .map_err(io::Error::from)?;
        got = Some(n);
        if n > 0 && n < buf.len() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        Ok(n)
    });
    match (outcome, got) {
        (Ok(n), _) => Ok(n),
        (Err(e), Some(n)) if e.kind() == io::ErrorKind::WouldBlock => Ok(n),
        (Err(e), _) => Err(e),
    }
}

async fn write_all(sink: &TcpStream, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        sink.writable().await?;
        match sink.try_write(bytes) {
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

impl<'a, S: Schedule> Leg<'a, S> {
    pub fn new(
        source: &'a TcpStream,
        sink: &'a TcpStream,
        schedule: S,
        limit: usize,
        wiring: Wiring<'a>,
    ) -> Self {
        Leg {
            source,
            sink,
            schedule,
            queue: Queue::default(),
            limit: limit.max(1),
            wiring,
            source_done: false,
            sink_closed: false,
            wrote: false,
        }
    }

    pub async fn run(mut self) -> Outcome {
        let mut release: Option<(Instant, Sleep)> = None;
        loop {
            if let Some(outcome) = self.deliver_due().await {
                return outcome;
            }
            self.publish();
            let now = Instant::now();
            match self.queue.next_release(now) {
                Some(at) if release.as_ref().is_none_or(|(t, _)| *t != at) => {
                    release = Some((at, Box::pin(timer::sleep_until(at))));
                }
                Some(_) => {}
                None => release = None,
            }
            let expiry = self.schedule.deadline();
            let can_read = !self.source_done && self.queue.bytes() < self.limit;
            let closing = !self.sink_closed && !*self.wiring.closing.borrow();
            let wake = tokio::select! {
                ready = self.source.readable(), if can_read => Wake::Readable(ready),
                () = async { if let Some((_, s)) = release.as_mut() { s.await } }, if release.is_some() => Wake::Released,
                () = async { if let Some(at) = expiry { tokio::time::sleep_until(at).await } }, if expiry.is_some() => Wake::Expired,
                _ = self.wiring.closing.changed(), if closing => Wake::Closing,
            };
            match wake {
                Wake::Readable(ready) => {
                    if let Some(outcome) = self.read(ready) {
                        return outcome;
                    }
                }
                Wake::Released => release = None,
                Wake::Expired => self.schedule.expire(Instant::now(), &mut self.queue),
                Wake::Closing => {}
            }
            if *self.wiring.closing.borrow() && !self.sink_closed && self.queue.is_empty() {
                sockets::shutdown_write(self.sink);
                self.sink_closed = true;
            }
        }
    }

    fn publish(&self) {
        let idle = self
            .schedule
            .idle()
            .filter(|_| !self.source_done && self.queue.is_empty());
        self.wiring.idle.send_if_modified(|v| {
            let changed = *v != idle;
            *v = idle;
            changed
        });
        self.wiring
            .queued
            .store(self.queue.bytes(), Ordering::Relaxed);
    }

    fn read(&mut self, ready: io::Result<()>) -> Option<Outcome> {
        let now = Instant::now();
        // Read into this thread's buffer, keep exactly what came: one allocation of the
        // right size per read, and none held while the connection is idle.
        let result = ready.and_then(|()| {
            READ_BUFFER.with_borrow_mut(|buf| {
                let buf = buf.get_or_insert_with(|| vec![0u8; READ_SIZE].into_boxed_slice());
                read_some(self.source, buf).map(|n| Bytes::copy_from_slice(&buf[..n]))
            })
        });
        match result {
            Ok(buf) if buf.is_empty() => {
                let end = if self.wiring.source_failed.load(Ordering::Relaxed) {
                    self.wiring.stats.bump(self.wiring.resets);
                    End::Reset
                } else {
                    End::Eof
                };
                self.source_done = true;
                self.schedule.end(end, now, &mut self.queue);
            }
            Ok(_) if self.sink_closed => return Some(Outcome::LateData),
            Ok(buf) => self.schedule.data(buf, now, &mut self.queue),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                self.wiring.stats.bump(self.wiring.resets);
                self.source_done = true;
                self.schedule.end(End::Reset, now, &mut self.queue);
            }
        }
        None
    }

    /// Delivers every piece that is due, in order; `Some` once the leg is finished.
    async fn deliver_due(&mut self) -> Option<Outcome> {
        while let Some(item) = self.queue.pop_due(Instant::now()) {
            match item.payload {
                Payload::Data(bytes) => {
                    if self.sink_closed {
                        return Some(Outcome::LateData);
                    }
                    if write_all(self.sink, &bytes).await.is_err() {
                        self.wiring.sink_failed.store(true, Ordering::Relaxed);
                        return Some(Outcome::SinkFailed);
                    }
                    self.wrote = true;
                    let stats = self.wiring.stats;
                    stats.add(self.wiring.delivered, bytes.len() as u64);
                    if let Some(arrived) = item.record {
                        stats.record_delay(arrived.elapsed());
                    }
                }
                Payload::End(End::Eof) => {
                    if !self.sink_closed {
                        sockets::shutdown_write(self.sink);
                    }
                    return Some(Outcome::Closed);
                }
                Payload::End(End::Reset) => {
                    if self.wrote {
                        sockets::wait_unsent(self.sink, UNSENT_WAIT).await;
                    }
                    sockets::reset_on_close(self.sink);
                    return Some(Outcome::Reset);
                }
            }
        }
        None
    }
}
