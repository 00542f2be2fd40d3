//! One direction of a proxied TCP connection: read chunks as they arrive and forward
//! them, either at once or each after its own delay counted from its arrival.
//!
//! The delayed path is a bounded FIFO of (deadline, bytes) between a reader and a writer
//! that sleeps until each deadline: chunks never overtake each other (a chunk whose
//! jittered deadline is earlier than its predecessor's simply goes right after it), the
//! reader keeps reading while earlier chunks wait (pipelined requests are not
//! serialised), and a full queue pushes back on the sender through TCP. No buffer is held
//! while a connection is idle: a buffer is allocated only once the socket is readable.

use std::io;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::model::{LatencyModel, Rng};
use crate::stats::Stats;
use crate::timer;

const READ_SIZE: usize = 32 * 1024;
/// Chunks queued per direction before the reader stops reading (TCP backpressure).
const QUEUE_CHUNKS: usize = 256;

/// Which side of the leg failed, so upstream errors can be told from client ones.
#[derive(Debug)]
pub enum LegError {
    Read(io::Error),
    Write(io::Error),
}

/// Where one leg's bytes are counted and its delays recorded.
#[derive(Debug, Clone)]
pub struct Meter {
    pub stats: Arc<Stats>,
    pub bytes: fn(&Stats) -> &AtomicU64,
}

impl Meter {
    fn count(&self, n: usize) {
        self.stats.add((self.bytes)(&self.stats), n as u64);
    }
}

/// Reads one chunk once the socket is readable; `None` at end of stream.
async fn read_chunk(from: &OwnedReadHalf) -> Result<Option<Vec<u8>>, LegError> {
    loop {
        from.readable().await.map_err(LegError::Read)?;
        let mut buf = vec![0u8; READ_SIZE];
        match from.try_read(&mut buf) {
            Ok(0) => return Ok(None),
            Ok(n) => {
                buf.truncate(n);
                return Ok(Some(buf));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(LegError::Read(e)),
        }
    }
}

/// Forwards `from` to `to` until end of stream, then half-closes `to`.
/// With `delay`, each chunk is held for its own sampled delay.
pub async fn forward(
    from: OwnedReadHalf,
    to: OwnedWriteHalf,
    delay: Option<(LatencyModel, Rng)>,
    meter: Meter,
) -> Result<(), LegError> {
    match delay {
        None => forward_now(from, to, meter).await,
        Some((model, rng)) => forward_delayed(from, to, model, rng, meter).await,
    }
}

async fn forward_now(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    meter: Meter,
) -> Result<(), LegError> {
    while let Some(chunk) = read_chunk(&from).await? {
        to.write_all(&chunk).await.map_err(LegError::Write)?;
        meter.count(chunk.len());
    }
    to.shutdown().await.map_err(LegError::Write)
}

struct Held {
    arrived: Instant,
    deadline: Instant,
    bytes: Vec<u8>,
}

async fn forward_delayed(
    from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    model: LatencyModel,
    mut rng: Rng,
    meter: Meter,
) -> Result<(), LegError> {
    let (tx, mut rx) = mpsc::channel::<Held>(QUEUE_CHUNKS);
    let reader = async move {
        while let Some(mut bytes) = read_chunk(&from).await? {
            let arrived = Instant::now();
            if bytes.capacity() > 2 * bytes.len() {
                bytes.shrink_to_fit();
            }
            let deadline = arrived + model.sample(&mut rng);
            if tx
                .send(Held {
                    arrived,
                    deadline,
                    bytes,
                })
                .await
                .is_err()
            {
                break; // The writer failed; its error is the one reported.
            }
        }
        Ok::<(), LegError>(())
    };
    let stats = Arc::clone(&meter.stats);
    let writer = async move {
        while let Some(held) = rx.recv().await {
            timer::sleep_until(held.deadline).await;
            stats.record_delay(held.arrived.elapsed());
            stats.add(&stats.chunks_delayed, 1);
            to.write_all(&held.bytes).await.map_err(LegError::Write)?;
            meter.count(held.bytes.len());
        }
        to.shutdown().await.map_err(LegError::Write)
    };
    tokio::try_join!(reader, writer).map(drop)
}
