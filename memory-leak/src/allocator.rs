//! The allocator child:
//! `memory-leak __allocate RATE_BYTES LIMIT_BYTES PARENT_PID PARENT_START [PROCS]`.
//!
//! In order: ask the kernel to SIGKILL it when the parent dies and check the parent is
//! still the one that started it (so a SIGKILLed supervisor never leaves memory behind;
//! `PARENT_PID` and `PARENT_START`, its start time in clock ticks after boot, both as seen
//! from the pid namespace they share, are what `--cleanup` checks to prove an orphan);
//! raise its own `oom_score_adj` to 1000 (the OOM killer picks it, not the supervisor);
//! join the cgroup by writing its pid to PROCS *before* allocating (on cgroup v1, memory
//! already charged stays with the old cgroup); print `ready`; then grow on an absolute
//! schedule, `min(rate × t, limit)` at 20 Hz, each step a new buffer with every byte
//! written; at the limit, sleep until killed. It prints nothing else on stdout; errors go
//! to stderr, which the parent puts in the report.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::{Pid, getppid};

/// The hidden first argument that makes the binary an allocator.
pub const ARG: &str = "__allocate";
/// The line the child prints once it is in its cgroup and about to allocate.
pub const READY: &str = "ready";
/// Growth steps: 20 per second.
pub const STEP: Duration = Duration::from_millis(50);
/// The byte every page is filled with: non-zero, so no page maps the shared zero page.
const FILL: u8 = 0xA5;
/// One page of [`FILL`]. Buffers are filled by copying it (a memcpy inside std), which
/// costs the same in debug and release builds, unlike a byte loop.
static PAGE: [u8; 4096] = [FILL; 4096];

/// Exit codes of the child, for the parent's error message.
pub const EXIT_BAD_ARGS: u8 = 70;
pub const EXIT_PARENT_GONE: u8 = 71;
pub const EXIT_JOIN_FAILED: u8 = 72;
pub const EXIT_ALLOC_FAILED: u8 = 73;

#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub rate_bytes_per_second: f64,
    pub limit_bytes: u64,
    pub parent: i32,
    /// The supervisor's start time (field 22 of /proc/PID/stat): with `parent`, it
    /// identifies the supervisor even after its pid is reused.
    pub parent_start: u64,
    /// `cgroup.procs` of the cgroup to join; None stays in the inherited cgroup.
    pub cgroup_procs: Option<PathBuf>,
}

impl Params {
    /// The argv after the program name.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            ARG.into(),
            self.rate_bytes_per_second.to_string().into(),
            self.limit_bytes.to_string().into(),
            self.parent.to_string().into(),
            self.parent_start.to_string().into(),
        ];
        args.extend(self.cgroup_procs.iter().map(|p| p.as_os_str().to_owned()));
        args
    }

    /// Parses what [`Params::to_args`] wrote (without the program name).
    pub fn from_args(args: &[OsString]) -> Result<Params, String> {
        let text = |i: usize, what: &str| -> Result<String, String> {
            args.get(i)
                .and_then(|a| a.to_str())
                .map(str::to_owned)
                .ok_or_else(|| format!("missing {what}"))
        };
        if text(0, "marker")? != ARG {
            return Err(format!("first argument must be {ARG}"));
        }
        let rate: f64 = text(1, "rate")?.parse().map_err(|e| format!("rate: {e}"))?;
        if !rate.is_finite() || rate <= 0.0 {
            return Err(format!("rate must be > 0, got {rate}"));
        }
        Ok(Params {
            rate_bytes_per_second: rate,
            limit_bytes: text(2, "limit")?
                .parse()
                .map_err(|e| format!("limit: {e}"))?,
            parent: text(3, "parent pid")?
                .parse()
                .map_err(|e| format!("parent pid: {e}"))?,
            parent_start: text(4, "parent start time")?
                .parse()
                .map_err(|e| format!("parent start time: {e}"))?,
            cgroup_procs: args.get(5).map(PathBuf::from),
        })
    }
}

/// The bytes that should be allocated `elapsed` after the start: `min(rate × t, limit)`.
pub fn target_bytes(rate_bytes_per_second: f64, limit_bytes: u64, elapsed: Duration) -> u64 {
    let want = rate_bytes_per_second * elapsed.as_secs_f64();
    // `as` saturates for floats above u64::MAX.
    (want as u64).min(limit_bytes)
}

/// `memory-leak __allocate ...`, dispatched by `chaos_common::tool::main`; `args` are
/// the arguments after `__allocate`.
pub fn main(args: &[OsString]) -> ExitCode {
    // Params reads the argv as `ps` shows it (sweep.rs does too): `__allocate` first.
    let argv: Vec<OsString> = std::iter::once(OsString::from(ARG))
        .chain(args.iter().cloned())
        .collect();
    let params = match Params::from_args(&argv) {
        Ok(p) => p,
        Err(e) => return fail(EXIT_BAD_ARGS, &format!("bad arguments: {e}")),
    };
    // The kernel sends SIGKILL when the thread that forked us exits; if the parent died
    // between fork and here, getppid() already differs and we stop now.
    if let Err(e) = nix::sys::prctl::set_pdeathsig(Signal::SIGKILL) {
        return fail(
            EXIT_PARENT_GONE,
            &format!("cannot set PR_SET_PDEATHSIG: {e}"),
        );
    }
    if getppid() != Pid::from_raw(params.parent) {
        return fail(
            EXIT_PARENT_GONE,
            "the supervising memory-leak process is gone",
        );
    }
    // Be the OOM killer's first choice in a cgroup shared with the supervisor (as in a
    // container), so the process that reports the kill is not the one killed. Raising
    // one's own score needs no privilege; a failure only loses that preference.
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    if let Some(procs) = &params.cgroup_procs {
        if let Err(e) = std::fs::write(procs, format!("{}\n", std::process::id())) {
            return fail(
                EXIT_JOIN_FAILED,
                &format!("cannot join the cgroup: write {}: {e}", procs.display()),
            );
        }
    }
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{READY}")
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return fail(EXIT_PARENT_GONE, "cannot tell the parent it is ready");
    }
    drop(stdout);
    match grow(&params) {
        Ok(never) => match never {},
        Err(e) => fail(EXIT_ALLOC_FAILED, &e),
    }
}

enum Never {}

/// Grows to the limit on an absolute schedule (late steps catch up, they never drift),
/// then holds until killed.
fn grow(params: &Params) -> Result<Never, String> {
    let start = Instant::now();
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    let mut allocated: u64 = 0;
    let mut step: u32 = 0;
    while allocated < params.limit_bytes {
        let want = target_bytes(
            params.rate_bytes_per_second,
            params.limit_bytes,
            start.elapsed(),
        );
        if want > allocated {
            chunks.push(filled_chunk(want - allocated)?);
            // Keeps the optimiser from eliding buffers that are never read.
            std::hint::black_box(&chunks);
            allocated = want;
        }
        step = step.saturating_add(1);
        let next = start + STEP * step;
        std::thread::sleep(next.saturating_duration_since(Instant::now()));
    }
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// A buffer of `bytes` bytes, every one written, so every page is resident.
fn filled_chunk(bytes: u64) -> Result<Vec<u8>, String> {
    let len = usize::try_from(bytes).map_err(|_| format!("step of {bytes} bytes is too large"))?;
    let mut chunk = Vec::new();
    chunk
        .try_reserve_exact(len)
        .map_err(|e| format!("cannot allocate {bytes} more bytes: {e}"))?;
    while chunk.len() < len {
        let n = PAGE.len().min(len - chunk.len());
        chunk.extend_from_slice(&PAGE[..n]);
    }
    Ok(chunk)
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("memory-leak allocator: {message}");
    ExitCode::from(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_is_linear_then_flat() {
        let rate = 50.0 * crate::units::MIB as f64;
        let limit = 200 * crate::units::MIB;
        assert_eq!(target_bytes(rate, limit, Duration::ZERO), 0);
        assert_eq!(
            target_bytes(rate, limit, Duration::from_secs(1)),
            50 * crate::units::MIB
        );
        assert_eq!(
            target_bytes(rate, limit, Duration::from_millis(2000)),
            100 * crate::units::MIB
        );
        assert_eq!(target_bytes(rate, limit, Duration::from_secs(4)), limit);
        assert_eq!(target_bytes(rate, limit, Duration::from_secs(400)), limit);
        assert_eq!(target_bytes(f64::MAX, limit, Duration::from_secs(1)), limit);
    }

    #[test]
    fn args_round_trip() -> Result<(), String> {
        let params = Params {
            rate_bytes_per_second: 52_428_800.5,
            limit_bytes: 1 << 30,
            parent: 4242,
            parent_start: 987_654,
            cgroup_procs: Some(PathBuf::from("/sys/fs/cgroup/memory/x/cgroup.procs")),
        };
        assert_eq!(Params::from_args(&params.to_args())?, params);
        let without = Params {
            cgroup_procs: None,
            ..params
        };
        assert_eq!(Params::from_args(&without.to_args())?, without);
        Ok(())
    }

    #[test]
    fn bad_args_are_refused() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert!(Params::from_args(&args(&[ARG])).is_err());
        assert!(Params::from_args(&args(&[ARG, "0", "1", "1", "1"])).is_err());
        assert!(Params::from_args(&args(&[ARG, "x", "1", "1", "1"])).is_err());
        assert!(Params::from_args(&args(&[ARG, "1", "1", "1"])).is_err());
        assert!(Params::from_args(&args(&[ARG, "1", "1", "1", "-5"])).is_err());
        assert!(Params::from_args(&args(&["other", "1", "1", "1", "1"])).is_err());
    }

    #[test]
    fn chunks_are_filled() -> Result<(), String> {
        let chunk = filled_chunk(8192 + 100)?;
        assert_eq!(chunk.len(), 8192 + 100);
        assert!(chunk.iter().all(|&b| b == FILL));
        Ok(())
    }
}
