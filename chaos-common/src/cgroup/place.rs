//! An explicit cgroup directory given by the operator (`--cgroup DIR`), verified to be
//! a real cgroup: a directory with the right file names is not enough (a fake
//! `memory.limit_in_bytes` of 64 MiB on a tmpfs would otherwise pass the memory-headroom
//! rule while nothing limits the allocator).
//!
//! Verified: the directory is on a cgroup filesystem (`statfs` says
//! `CGROUP_SUPER_MAGIC` or `CGROUP2_SUPER_MAGIC`), it lies inside a cgroup hierarchy
//! mounted in this mount namespace (the most specific cgroup mount containing it, from
//! /proc/self/mountinfo), and for v1 that hierarchy carries the memory controller.

use std::fs;
use std::path::{Path, PathBuf};

use nix::sys::statfs::{CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC, statfs};

use super::{Cgroup, Controller, Version, parse};
use crate::error::{ChaosError, Result};

/// The cgroup mount that holds `dir`: the one with the longest mount point that is a
/// path prefix of `dir`, of the given version (for v1, also carrying `controller`).
pub fn hierarchy_of<'a>(
    dir: &Path,
    mounts: &'a [parse::CgroupMount],
    version: Version,
    controller: &str,
) -> Option<&'a parse::CgroupMount> {
    mounts
        .iter()
        .filter(|m| dir.starts_with(&m.mount_point))
        .max_by_key(|m| Path::new(&m.mount_point).components().count())
        .filter(|m| match version {
            Version::V2 => m.v2,
            Version::V1 => !m.v2 && m.controllers.iter().any(|c| c == controller),
        })
}

impl Cgroup {
    /// The memory controller at an explicit directory (a cgroup the operator created or
    /// was delegated). Bad input (exit 2) when it is not a memory cgroup: not a
    /// directory, not on a cgroup filesystem, outside the mounted hierarchies, or
    /// without the memory files. Limits are read from it up to its hierarchy's mount
    /// point, like for the process's own cgroup.
    pub fn memory_at(dir: &Path) -> Result<Cgroup> {
        let flag =
            |what: String| ChaosError::bad_input(format!("--cgroup {}: {what}", dir.display()));
        let dir = fs::canonicalize(dir).map_err(|e| flag(format!("cannot resolve it ({e})")))?;
        if !dir.is_dir() {
            return Err(flag("not a directory".into()));
        }
        let fs_type = statfs(&dir)
            .map_err(|e| flag(format!("cannot statfs it ({e})")))?
            .filesystem_type();
        let version = if fs_type == CGROUP_SUPER_MAGIC {
            Version::V1
        } else if fs_type == CGROUP2_SUPER_MAGIC {
            Version::V2
        } else {
            return Err(flag(format!(
                "not on a cgroup filesystem (filesystem magic {:#x}); pass a directory under a \
                 cgroup mount such as /sys/fs/cgroup",
                fs_type.0
            )));
        };
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| ChaosError::io("read", "/proc/self/mountinfo", e))?;
        let mounts = parse::mountinfo(&mountinfo);
        let mount = hierarchy_of(&dir, &mounts, version, "memory").ok_or_else(|| {
            flag(format!(
                "not inside a mounted cgroup {} hierarchy{}",
                match version {
                    Version::V1 => "v1",
                    Version::V2 => "v2",
                },
                match version {
                    Version::V1 => " with the memory controller",
                    Version::V2 => "",
                }
            ))
        })?;
        let probe = match version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        if !dir.join(probe).is_file() {
            return Err(flag(format!(
                "no {probe}: the memory controller is not enabled for this cgroup{}",
                match version {
                    Version::V2 => " (add +memory to the parent's cgroup.subtree_control)",
                    Version::V1 => "",
                }
            )));
        }
        Ok(Cgroup {
            memory: Some(Controller {
                version,
                dir,
                mount_point: PathBuf::from(&mount.mount_point),
            }),
            cpu: None,
        })
    }
}
