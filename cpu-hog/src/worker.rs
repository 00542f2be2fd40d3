//! The worker threads: each runs the [`Controller`] loop on its own thread CPU time and
//! publishes its cumulative CPU ns in an atomic; one flag stops them all.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Result};
use nix::time::{ClockId, clock_gettime};

use crate::control::{Action, Controller};

/// State shared between the workers and the fault.
struct Shared {
    stop: AtomicBool,
    /// CPU ns each worker has consumed since it started.
    cpu_ns: Vec<AtomicU64>,
}

/// The running workers; [`Workers::stop`] ends them.
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<std::result::Result<(), String>>>,
    started: Instant,
}

impl std::fmt::Debug for Workers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Workers")
            .field("count", &self.threads.len())
            .finish()
    }
}

/// CPU time consumed by the calling thread.
pub fn thread_cpu() -> nix::Result<Duration> {
    let t = clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID)?;
    Ok(Duration::new(
        t.tv_sec().max(0) as u64,
        t.tv_nsec().max(0) as u32,
    ))
}

impl Workers {
    /// Starts `count` workers, each holding `share` of one CPU. If a thread cannot be
    /// started, the ones already running are stopped before the error is returned.
    pub fn start(count: usize, share: f64) -> Result<Workers> {
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            cpu_ns: (0..count).map(|_| AtomicU64::new(0)).collect(),
        });
        let mut workers = Workers {
            shared,
            threads: Vec::with_capacity(count),
            started: Instant::now(),
        };
        for index in 0..count {
            let shared = Arc::clone(&workers.shared);
            let spawned = std::thread::Builder::new()
                .name(format!("cpu-hog-{index}"))
                .spawn(move || work(index, share, &shared));
            match spawned {
                Ok(thread) => workers.threads.push(thread),
                Err(e) => {
                    let _ = workers.stop(Duration::from_secs(5));
                    return Err(ChaosError::fault(format!(
                        "cannot start worker {index}: {e}"
                    )));
                }
            }
        }
        Ok(workers)
    }

    pub fn count(&self) -> usize {
        self.threads.len()
    }

    /// When the first worker was started.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// CPU consumed by each worker so far, in ns.
    pub fn cpu_ns(&self) -> Vec<u64> {
        self.shared
            .cpu_ns
            .iter()
            .map(|ns| ns.load(Ordering::Relaxed))
            .collect()
    }

    /// The first worker that ended although it was not asked to, if any.
    pub fn exited_early(&self) -> Option<usize> {
        if self.shared.stop.load(Ordering::Relaxed) {
            return None;
        }
        self.threads.iter().position(JoinHandle::is_finished)
    }

    /// Sets the stop flag and waits (polling, up to `timeout`) until every worker has
    /// ended; returns how long that took. Workers see the flag within one spin chunk or
    /// sleep (at most 10 ms).
    pub fn stop(&mut self, timeout: Duration) -> Result<Duration> {
        let asked = Instant::now();
        self.shared.stop.store(true, Ordering::Relaxed);
        while !self.threads.iter().all(JoinHandle::is_finished) {
            if asked.elapsed() > timeout {
                return Err(ChaosError::fault(format!(
                    "workers did not stop within {} ms of the stop flag",
                    timeout.as_millis()
                )));
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let took = asked.elapsed();
        let mut failures = Vec::new();
        for (index, thread) in self.threads.drain(..).enumerate() {
            match thread.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(format!("worker {index}: {e}")),
                Err(_) => failures.push(format!("worker {index} panicked")),
            }
        }
        if failures.is_empty() {
            Ok(took)
        } else {
            Err(ChaosError::fault(failures.join("; ")))
        }
    }
}

impl Drop for Workers {
    /// Workers never outlive their handle, even if revert was skipped.
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
    }
}

fn work(index: usize, share: f64, shared: &Shared) -> std::result::Result<(), String> {
    // The default 50 us timer slack would make every sleep late; the loop corrects for
    // lateness, but a precise sleep keeps the cycle short. Failure only costs precision.
    let _ = nix::sys::prctl::set_timerslack(1);
    let read = || thread_cpu().map_err(|e| format!("cannot read thread CPU time: {e}"));
    let cpu_at_start = read()?;
    let started = Instant::now();
    let mut controller = Controller::new(share);
    while !shared.stop.load(Ordering::Relaxed) {
        let consumed = read()?.saturating_sub(cpu_at_start);
        shared.cpu_ns[index].store(consumed.as_nanos() as u64, Ordering::Relaxed);
        match controller.decide(started.elapsed(), consumed) {
            Action::Spin(chunk) => spin(chunk, &shared.stop),
            Action::Sleep(pause) => std::thread::sleep(pause),
        }
    }
    let consumed = read()?.saturating_sub(cpu_at_start);
    shared.cpu_ns[index].store(consumed.as_nanos() as u64, Ordering::Relaxed);
    Ok(())
}

/// Burns CPU for `chunk` of wall time, or until the stop flag is set.
fn spin(chunk: Duration, stop: &AtomicBool) {
    let end = Instant::now() + chunk;
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    while Instant::now() < end && !stop.load(Ordering::Relaxed) {
        for _ in 0..64 {
            x = black_box(x.rotate_left(5) ^ x.wrapping_mul(31));
        }
    }
    black_box(x);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alone_workers_burn_cpu_and_stop_promptly() -> Result<()> {
        let mut workers = Workers::start(2, 0.5)?;
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(workers.exited_early(), None);
        let cpu = workers.cpu_ns();
        assert_eq!(cpu.len(), 2);
        assert!(cpu.iter().all(|&ns| ns > 10_000_000), "{cpu:?}");
        let took = workers.stop(Duration::from_secs(5))?;
        // Generous: the goal (< 50 ms) is a benchmark, not a test on a busy CI machine.
        assert!(took < Duration::from_millis(500), "{took:?}");
        assert_eq!(workers.count(), 0);
        Ok(())
    }

    #[test]
    fn thread_cpu_grows_with_work() -> nix::Result<()> {
        let before = thread_cpu()?;
        spin(Duration::from_millis(20), &AtomicBool::new(false));
        assert!(thread_cpu()? >= before + Duration::from_millis(5));
        Ok(())
    }
}
