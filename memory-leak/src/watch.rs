//! What the parent reads about its child from /proc, and how it tells an OOM kill from
//! any other death.

use std::fs;
use std::time::{Duration, SystemTime};

use chaos_common::cgroup::MemoryEvents;
use nix::sys::signal::Signal;

/// /proc/PID/stat counts CPU time in USER_HZ ticks, 100 per second on every Linux ABI
/// this tool builds for (x86_64, aarch64).
pub const TICKS_PER_SECOND: f64 = 100.0;

/// Resident memory (VmRSS) of a process in bytes; None once it is gone.
pub fn vm_rss(pid: i32) -> Option<u64> {
    status_kb(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmRSS:",
    )
}

/// Peak resident memory (VmHWM) of a process in bytes.
pub fn vm_hwm(pid: i32) -> Option<u64> {
    status_kb(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmHWM:",
    )
}

/// A `Key:   123 kB` line of /proc/PID/status, in bytes.
pub fn status_kb(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    let kb: u64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// CPU time (user + system) of a process in ticks.
pub fn cpu_ticks(pid: i32) -> Option<u64> {
    stat_cpu_ticks(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// utime + stime: fields 14 and 15 of /proc/PID/stat. The command name (field 2) may
/// hold spaces and parentheses, so fields are counted after the last ')'.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// How the allocator ended while the fault was in place.
#[derive(Debug, Clone, PartialEq)]
pub enum Death {
    /// SIGKILL from the kernel's OOM killer.
    OomKilled,
    /// Killed by a signal nobody in this run sent.
    Signalled(String),
    /// Exited on its own (it never does unless something failed).
    Exited(i32),
}

/// A death of the allocator while the fault was in place, as the supervisor saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct DeathRecord {
    pub death: Death,
    pub at: SystemTime,
    /// Since the allocator said it was ready.
    pub after: Duration,
    /// The cgroup's counters right after the death.
    pub events_after: MemoryEvents,
}

/// CAP_SYS_RESOURCE, the capability that lowers an `oom_score_adj`.
const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process holds CAP_SYS_RESOURCE in its effective set (`CapEff` of
/// /proc/self/status), i.e. may set its `oom_score_adj` to -1000.
pub fn may_lower_oom_score_adj() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| effective_caps(&status))
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}

/// The `CapEff:` mask of a /proc/PID/status text.
pub fn effective_caps(status: &str) -> Option<u64> {
    let line = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(line.trim(), 16).ok()
}

/// Classifies a death the parent did not cause. A SIGKILL is an OOM kill when the
/// cgroup's oom_kill counter went up, or, if the counter cannot be read, when usage was
/// at the limit at the last sample.
pub fn classify(
    code: Option<i32>,
    signal: Option<i32>,
    oom_kills: (Option<u64>, Option<u64>),
    usage_at_limit: bool,
) -> Death {
    let Some(signal) = signal else {
        return Death::Exited(code.unwrap_or(-1));
    };
    let name = Signal::try_from(signal)
        .map_or_else(|_| format!("signal {signal}"), |s| s.as_str().to_owned());
    if signal != Signal::SIGKILL as i32 {
        return Death::Signalled(name);
    }
    match oom_kills {
        (Some(before), Some(after)) if after > before => Death::OomKilled,
        (Some(_), Some(_)) => Death::Signalled(name),
        _ if usage_at_limit => Death::OomKilled,
        _ => Death::Signalled(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KILL: Option<i32> = Some(9);

    #[test]
    fn deaths_are_classified() {
        let table = [
            (None, KILL, (Some(0), Some(1)), false, Death::OomKilled),
            (
                None,
                KILL,
                (Some(3), Some(3)),
                true,
                Death::Signalled("SIGKILL".into()),
            ),
            (None, KILL, (None, None), true, Death::OomKilled),
            (
                None,
                KILL,
                (None, None),
                false,
                Death::Signalled("SIGKILL".into()),
            ),
            (
                None,
                Some(15),
                (Some(0), Some(1)),
                true,
                Death::Signalled("SIGTERM".into()),
            ),
            (Some(73), None, (Some(0), Some(0)), false, Death::Exited(73)),
        ];
        for (code, signal, counters, at_limit, expected) in table {
            assert_eq!(classify(code, signal, counters, at_limit), expected);
        }
    }

    #[test]
    fn status_and_stat_are_parsed() {
        let status = "Name:\tmemory-leak\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kb(status, "VmRSS:"), Some(100 * 1024 * 1024));
        assert_eq!(status_kb(status, "VmHWM:"), Some(200 * 1024 * 1024));
        assert_eq!(status_kb(status, "VmSwap:"), None);
        let stat = "42 (memory (leak)) S 1 42 42 0 -1 4194304 100 0 0 0 17 5 0 0 20 0 1 0 99 0 0";
        assert_eq!(stat_cpu_ticks(stat), Some(22));
        assert_eq!(stat_cpu_ticks("garbage"), None);
    }

    #[test]
    fn capabilities_are_read_from_cap_eff() {
        let root = "Name:\tx\nCapInh:\t0000000000000000\nCapEff:\t000001ffffffffff\n";
        assert_eq!(effective_caps(root), Some(0x1ff_ffff_ffff));
        let without = "CapEff:\t0000000000000000\n";
        assert_eq!(
            effective_caps(without).map(|c| c & (1 << CAP_SYS_RESOURCE)),
            Some(0)
        );
        assert_eq!(effective_caps("garbage"), None);
    }

    #[test]
    fn own_process_is_readable() {
        let pid = std::process::id() as i32;
        assert!(vm_rss(pid).is_some_and(|b| b > 0));
        assert!(cpu_ticks(pid).is_some());
        assert_eq!(vm_rss(i32::MAX), None);
    }
}
