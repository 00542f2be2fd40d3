//! A precise `sleep_until` for held chunks and requests.
//!
//! tokio's timer wheel has millisecond ticks and rounds every deadline up to the next
//! one, so a 10 ms hold ends 10-11 ms after arrival (p50 about +0.7 ms, more under load).
//! Here the long part of the wait stays on tokio's wheel (cheap for thousands of
//! waiters) and ends ~2 ms early; the last stretch is timed by one thread that parks
//! with a nanosecond timeout (futex; the kernel's timer slack is 50 µs) on a heap of
//! deadlines and completes each waiter's oneshot when its deadline passes.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::thread::Thread;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// Waits longer than this start on tokio's wheel.
const COARSE_ABOVE: Duration = Duration::from_millis(5);
/// How early the coarse wait ends (tokio may round it up by 1 ms).
const FINE_WINDOW: Duration = Duration::from_millis(2);

struct Entry {
    deadline: Instant,
    seq: u64,
    done: oneshot::Sender<()>,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.deadline, self.seq) == (other.deadline, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    /// Reversed: BinaryHeap is a max-heap and the earliest deadline must be on top.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.deadline, other.seq).cmp(&(self.deadline, self.seq))
    }
}

#[derive(Default)]
struct Heap {
    entries: Mutex<BinaryHeap<Entry>>,
    seq: AtomicU64,
}

struct Timer {
    heap: Arc<Heap>,
    thread: Thread,
}

/// The timer thread, started on first use; `None` if it cannot be spawned (the tokio
/// wheel is used alone then).
fn timer() -> Option<&'static Timer> {
    static TIMER: OnceLock<Option<Timer>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let heap = Arc::new(Heap::default());
            let shared = Arc::clone(&heap);
            let handle = std::thread::Builder::new()
                .name("latency-timer".into())
                .spawn(move || run(&shared))
                .ok()?;
            Some(Timer {
                heap,
                thread: handle.thread().clone(),
            })
        })
        .as_ref()
}

fn run(heap: &Heap) {
    loop {
        let next = {
            let mut entries = heap.entries.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            while entries.peek().is_some_and(|e| e.deadline <= now) {
                if let Some(entry) = entries.pop() {
                    // The waiter may be gone (connection closed): nothing to do.
                    let _ = entry.done.send(());
                }
            }
            entries.peek().map(|e| e.deadline)
        };
        match next {
            Some(deadline) => {
                std::thread::park_timeout(deadline.saturating_duration_since(Instant::now()))
            }
            None => std::thread::park(),
        }
    }
}

/// Sleeps until `deadline`, to within about 0.1 ms.
pub async fn sleep_until(deadline: tokio::time::Instant) {
    let deadline = deadline.into_std();
    let now = Instant::now();
    if deadline <= now {
        return;
    }
    if deadline - now > COARSE_ABOVE {
        tokio::time::sleep_until((deadline - FINE_WINDOW).into()).await;
    }
    let Some(timer) = timer() else {
        tokio::time::sleep_until(deadline.into()).await;
        return;
    };
    let (done, wait) = oneshot::channel();
    let seq = timer.heap.seq.fetch_add(1, AtomicOrdering::Relaxed);
    let earliest = {
        let mut entries = timer
            .heap
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        entries.push(Entry {
            deadline,
            seq,
            done,
        });
        entries.peek().is_some_and(|e| e.seq == seq)
    };
    if earliest {
        timer.thread.unpark();
    }
    let _ = wait.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sleeps_never_end_early_and_end_in_deadline_order() {
        let start = tokio::time::Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for ms in [3u64, 12, 7, 1, 20] {
            let tx = tx.clone();
            tokio::spawn(async move {
                let deadline = start + Duration::from_millis(ms);
                sleep_until(deadline).await;
                let _ = tx.send((ms, tokio::time::Instant::now() >= deadline));
            });
        }
        drop(tx);
        let mut order = Vec::new();
        while let Some((ms, on_time)) = rx.recv().await {
            assert!(on_time, "the {ms} ms sleep ended early");
            order.push(ms);
        }
        // How late they end is the benchmark's business (scripts/bench/latency.sh).
        assert_eq!(order, [1, 3, 7, 12, 20]);
    }

    #[tokio::test]
    async fn past_deadlines_return_at_once() {
        let before = tokio::time::Instant::now();
        sleep_until(before - Duration::from_millis(5)).await;
        assert!(before.elapsed() < Duration::from_millis(5));
    }
}
