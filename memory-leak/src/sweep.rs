//! `--cleanup`: ends allocators whose supervisor is provably gone. PR_SET_PDEATHSIG makes
//! such orphans rare (the kernel kills the child with its parent), so this is a safety
//! net only, and it spares everything it cannot prove is its own orphan.
//!
//! An allocator names its supervisor in its argv by pid and start time, both as seen
//! from the pid namespace the two share. Those numbers mean nothing in another pid
//! namespace (pid 1 there is some container's init), so an allocator is ended only when
//! all of these hold:
//! - this /proc belongs to the caller's own pid namespace (its `NSpid` has one entry),
//!   so the pids read from it are the ones the allocator's argv uses;
//! - the allocator is in the caller's pid namespace and network namespace (the same
//!   scope as the runs `--cleanup` stops), compared by the namespace links in /proc;
//! - its parent is no longer the supervisor (an allocator is always started as the
//!   supervisor's direct child, and a child is only reparented once its parent exits);
//! - and no process with the supervisor's pid and start time is alive.

use std::fs;
use std::path::Path;

use chaos_common::Result;
use chaos_common::instance::process_start_time;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tracing::{info, warn};

use crate::allocator::{ARG, Params};

/// What `--cleanup` knows about one allocator.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub pid: i32,
    /// The supervisor's pid and start time, from the allocator's argv.
    pub supervisor: (i32, u64),
    /// The allocator's parent now; None if unreadable.
    pub ppid: Option<i32>,
    /// Same pid / network namespace as the caller; None if the link was unreadable.
    pub same_pid_namespace: Option<bool>,
    pub same_network_namespace: Option<bool>,
    /// The start time of whatever process has the supervisor's pid now (None: none).
    pub supervisor_start_now: Option<u64>,
}

/// Whether `--cleanup` may end an allocator.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Orphan,
    Spare(&'static str),
}

/// The rule of the module docs, on what was read.
pub fn judge(c: &Candidate) -> Verdict {
    let (supervisor, started) = c.supervisor;
    match (c.same_pid_namespace, c.same_network_namespace) {
        (Some(true), Some(true)) => {}
        (Some(false), _) => return Verdict::Spare("it runs in another pid namespace"),
        (_, Some(false)) => return Verdict::Spare("it runs in another network namespace"),
        _ => return Verdict::Spare("its namespaces cannot be read"),
    }
    match c.ppid {
        None => Verdict::Spare("its parent cannot be read"),
        Some(parent) if parent == supervisor => Verdict::Spare("its supervisor is alive"),
        Some(_) if c.supervisor_start_now == Some(started) => {
            Verdict::Spare("a process with its supervisor's pid and start time is alive")
        }
        Some(_) => Verdict::Orphan,
    }
}

/// The supervisor (pid, start time) an allocator was started by, from its argv; None if
/// the process is not an allocator of this version.
pub fn supervisor_of(cmdline: &[u8]) -> Option<(i32, u64)> {
    let args: Vec<std::ffi::OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| std::ffi::OsString::from(String::from_utf8_lossy(a).into_owned()))
        .collect();
    if args.first().is_none_or(|a| a != ARG) {
        return None;
    }
    Params::from_args(&args)
        .ok()
        .map(|p| (p.parent, p.parent_start))
}

/// The parent pid (field 4) of a /proc/PID/stat line.
pub fn stat_ppid(stat: &str) -> Option<i32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// How many pids `NSpid:` lists in a /proc/PID/status text (one per pid namespace from
/// the one this /proc belongs to down to the process's own).
pub fn nspid_depth(status: &str) -> Option<usize> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

fn same_namespace(pid: i32, kind: &str) -> Option<bool> {
    let own = fs::read_link(format!("/proc/self/ns/{kind}")).ok()?;
    let theirs = fs::read_link(format!("/proc/{pid}/ns/{kind}")).ok()?;
    Some(own == theirs)
}

fn candidate(pid: i32) -> Option<Candidate> {
    let supervisor = supervisor_of(&fs::read(format!("/proc/{pid}/cmdline")).ok()?)?;
    Some(Candidate {
        pid,
        supervisor,
        ppid: fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_ppid(&s)),
        same_pid_namespace: same_namespace(pid, "pid"),
        same_network_namespace: same_namespace(pid, "net"),
        supervisor_start_now: process_start_time(supervisor.0),
    })
}

/// SIGKILLs every allocator that [`judge`] calls an orphan (with `dry_run`, only lists
/// them); one line each.
pub fn kill_orphans(dry_run: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let own_proc = fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| nspid_depth(&s))
        == Some(1);
    if !own_proc {
        warn!(
            "/proc belongs to another pid namespace than this process (mount a /proc of its own): \
             no allocator can be proven an orphan, none is ended"
        );
        return Ok(removed);
    }
    let Ok(entries) = fs::read_dir(Path::new("/proc")) else {
        return Ok(removed);
    };
    let pids = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
    for c in pids.filter_map(candidate) {
        let (supervisor, _) = c.supervisor;
        match judge(&c) {
            Verdict::Spare(why) => info!("sparing allocator pid {}: {why}", c.pid),
            Verdict::Orphan => {
                if dry_run || kill(Pid::from_raw(c.pid), Signal::SIGKILL).is_ok() {
                    removed.push(format!(
                        "orphaned allocator pid {} (its supervisor {supervisor} is gone)",
                        c.pid
                    ));
                }
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocators_are_recognised_by_argv() {
        assert_eq!(
            supervisor_of(b"memory-leak\0__allocate\x0052428800\x00209715200\x004242\x00987\0"),
            Some((4242, 987))
        );
        assert_eq!(
            supervisor_of(b"/x/memory-leak\0__allocate\x001\x001\x0077\x005\0/sys/fs/cgroup/memory/a/cgroup.procs\0"),
            Some((77, 5))
        );
        // The argv of an older allocator (no start time) is not proof of anything.
        assert_eq!(
            supervisor_of(b"memory-leak\0__allocate\x001\x001\x0077\0"),
            None
        );
        assert_eq!(supervisor_of(b"memory-leak\0--limit-mb\x00512\0"), None);
        assert_eq!(supervisor_of(b"bash\0"), None);
        assert_eq!(supervisor_of(b""), None);
    }

    #[test]
    fn ppid_and_nspid_are_parsed() {
        assert_eq!(stat_ppid("42 (memory (leak)) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("garbage"), None);
        assert_eq!(nspid_depth("Name:\tx\nNSpid:\t4242\t1\n"), Some(2));
        assert_eq!(nspid_depth("NSpid:\t4242\n"), Some(1));
        assert_eq!(nspid_depth("Name:\tx\n"), None);
    }

    fn orphan() -> Candidate {
        Candidate {
            pid: 100,
            supervisor: (90, 5000),
            ppid: Some(1),
            same_pid_namespace: Some(true),
            same_network_namespace: Some(true),
            supervisor_start_now: None,
        }
    }

    #[test]
    fn only_a_provable_orphan_is_ended() {
        assert_eq!(judge(&orphan()), Verdict::Orphan);
        // The supervisor's pid was reused by an unrelated process: still an orphan.
        let reused = Candidate {
            supervisor_start_now: Some(7777),
            ..orphan()
        };
        assert_eq!(judge(&reused), Verdict::Orphan);
        let spared = [
            // Issue 8: "supervisor 1 is gone", read from another pid namespace.
            Candidate {
                supervisor: (1, 300),
                same_pid_namespace: Some(false),
                ..orphan()
            },
            Candidate {
                same_network_namespace: Some(false),
                ..orphan()
            },
            Candidate {
                same_pid_namespace: None,
                ..orphan()
            },
            Candidate {
                ppid: Some(90),
                supervisor_start_now: Some(5000),
                ..orphan()
            },
            Candidate {
                supervisor_start_now: Some(5000),
                ..orphan()
            },
            Candidate {
                ppid: None,
                ..orphan()
            },
        ];
        for c in spared {
            assert!(matches!(judge(&c), Verdict::Spare(_)), "{c:?}");
        }
    }
}
