//! `--cleanup`: ends allocators whose supervisor is gone. PR_SET_PDEATHSIG makes these
//! rare (the kernel kills the child with its parent), so this is a safety net only; an
//! allocator whose supervisor is alive belongs to a running experiment and is left alone.

use std::fs;

use chaos_common::Result;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::allocator::{ARG, Params};

/// The supervisor pid an allocator was started by, from its argv; None if the process is
/// not an allocator.
pub fn supervisor_of(cmdline: &[u8]) -> Option<i32> {
    let args: Vec<std::ffi::OsString> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .skip(1)
        .map(|a| std::ffi::OsString::from(String::from_utf8_lossy(a).into_owned()))
        .collect();
    if args.first().is_none_or(|a| a != ARG) {
        return None;
    }
    Params::from_args(&args).ok().map(|p| p.parent)
}

/// The parent pid (field 4) of a /proc/PID/stat line.
pub fn stat_ppid(stat: &str) -> Option<i32> {
    stat[stat.rfind(')')? + 1..]
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// SIGKILLs every allocator whose parent is no longer its supervisor (with `dry_run`,
/// only lists them); one line each.
pub fn kill_orphans(dry_run: bool) -> Result<Vec<String>> {
    let mut removed = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Ok(removed);
    };
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
    {
        let Some(supervisor) = fs::read(format!("/proc/{pid}/cmdline"))
            .ok()
            .and_then(|c| supervisor_of(&c))
        else {
            continue;
        };
        let ppid = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| stat_ppid(&s));
        if ppid.is_some_and(|p| p != supervisor)
            && (dry_run || kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok())
        {
            removed.push(format!(
                "orphaned allocator pid {pid} (its supervisor {supervisor} is gone)"
            ));
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
            supervisor_of(b"memory-leak\0__allocate\x0052428800\x00209715200\x004242\0"),
            Some(4242)
        );
        assert_eq!(
            supervisor_of(b"/x/memory-leak\0__allocate\x001\x001\x0077\0/sys/fs/cgroup/memory/a/cgroup.procs\0"),
            Some(77)
        );
        assert_eq!(supervisor_of(b"memory-leak\0--limit-mb\x00512\0"), None);
        assert_eq!(supervisor_of(b"bash\0"), None);
        assert_eq!(supervisor_of(b""), None);
    }

    #[test]
    fn ppid_is_field_four() {
        assert_eq!(stat_ppid("42 (memory (leak)) S 7 42 42 0"), Some(7));
        assert_eq!(stat_ppid("garbage"), None);
    }
}
