//! Container probes for exec delivery, before anything is copied (live runs only; they
//! run read-only commands): `tar` is there (`kubectl cp`'s requirement too), the remote
//! directory is a writable directory on a mount that allows executing (not `ro`, not
//! `noexec`), and `uname -m` matches the binary's architecture. The four execs run at
//! once; [`judge`] turns the answers into one refusal line (exit 3).

use std::time::Duration;

use serde::Serialize;

use super::exec::{self, Place};
use crate::error::{ChaosError, Result};

/// How long one probe may take.
const LIMIT: Duration = Duration::from_secs(20);
/// Exit codes of a command that could not be started (not found, not executable).
const CANNOT_EXEC: [i32; 2] = [126, 127];

/// The mount a directory lives on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Mount {
    pub mount_point: String,
    pub read_only: bool,
    pub no_exec: bool,
}

/// What the probes found in one container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Facts {
    pub tar: bool,
    /// `uname -m`, or None when uname could not run.
    pub arch: Option<String>,
    pub dir_writable: bool,
    pub mount: Option<Mount>,
}

/// The mount of `dir` in a `/proc/self/mountinfo` text: the longest mount point that is
/// `dir` or one of its parents.
pub fn mount_for(mountinfo: &str, dir: &str) -> Option<Mount> {
    let dir = dir.trim_end_matches('/');
    let mut best: Option<Mount> = None;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (Some(point), Some(options)) = (fields.get(4), fields.get(5)) else {
            continue;
        };
        let point = point.replace("\\040", " ");
        let trimmed = point.trim_end_matches('/');
        let covers = trimmed.is_empty()
            || dir == trimmed
            || dir
                .strip_prefix(trimmed)
                .is_some_and(|rest| rest.starts_with('/'));
        let longer = best
            .as_ref()
            .is_none_or(|b| b.mount_point.len() <= point.len());
        if covers && longer {
            let opts: Vec<&str> = options.split(',').collect();
            best = Some(Mount {
                mount_point: point.clone(),
                read_only: opts.contains(&"ro"),
                no_exec: opts.contains(&"noexec"),
            });
        }
    }
    best
}

/// Runs the probes in the container.
pub async fn probe(place: Place<'_>, dir: &str) -> Result<Facts> {
    let argv = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
    let (tar, uname) = (argv(&["tar", "--version"]), argv(&["uname", "-m"]));
    let test = argv(&["test", "-d", dir, "-a", "-w", dir]);
    let mounts = argv(&["cat", "/proc/self/mountinfo"]);
    let (tar, uname, test, mounts) = tokio::join!(
        exec::run(place, &tar, None, LIMIT),
        exec::run(place, &uname, None, LIMIT),
        exec::run(place, &test, None, LIMIT),
        exec::run(place, &mounts, None, LIMIT),
    );
    let (tar, uname, test, mounts) = (tar?, uname?, test?, mounts?);
    Ok(Facts {
        tar: !CANNOT_EXEC.contains(&tar.code),
        arch: (uname.code == 0).then(|| uname.stdout.trim().to_owned()),
        dir_writable: test.code == 0,
        mount: (mounts.code == 0)
            .then(|| mount_for(&mounts.stdout, dir))
            .flatten(),
    })
}

/// The refusal for what the probes found, if any (`binary_arch` as `uname -m` prints it).
pub fn judge(
    pod: &str,
    container: &str,
    dir: &str,
    facts: &Facts,
    binary_arch: &str,
) -> Result<()> {
    let place = format!("pod {pod} (container {container})");
    let refuse = |what: String| {
        Err(ChaosError::Refused {
            rule: "container",
            message: format!("{place}: {what}"),
        })
    };
    if !facts.tar {
        return refuse(
            "has no tar, which copying the tool into the container needs (as kubectl cp does); \
             use an image with tar, or run the tool there by other means"
                .into(),
        );
    }
    if !facts.dir_writable {
        return refuse(format!(
            "{dir} is not a writable directory for the container's user; give --remote-dir a \
             writable emptyDir mount (the platform's is /tmp)"
        ));
    }
    if let Some(m) = facts.mount.as_ref().filter(|m| m.read_only || m.no_exec) {
        return refuse(format!(
            "{dir} is on mount {} which is {}: the copied binary could not run there; give \
             --remote-dir a writable, executable mount",
            m.mount_point,
            if m.read_only { "read-only" } else { "noexec" }
        ));
    }
    match facts.arch.as_deref() {
        Some(arch) if arch == binary_arch => Ok(()),
        Some(arch) => refuse(format!(
            "runs on {arch}, the tool's static binary is built for {binary_arch}; build the static \
             set for {arch} (scripts/build-static.sh on such a machine) and point CHAOS_DIST at it"
        )),
        None => refuse(
            "uname -m could not run, so the architecture cannot be checked before copying a binary"
                .into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
1 0 0:1 / / ro,relatime - overlay overlay ro
2 1 0:2 / /proc rw,nosuid,nodev,noexec - proc proc rw
3 1 0:3 / /tmp rw,nosuid,nodev - tmpfs tmpfs rw
4 1 0:4 / /tmp/noexec rw,noexec - tmpfs tmpfs rw
5 1 0:5 / /data\\040dir rw - tmpfs tmpfs rw";

    #[test]
    fn the_longest_covering_mount_decides() {
        let m = |dir| mount_for(MOUNTINFO, dir);
        assert_eq!(
            m("/tmp").map(|m| (m.read_only, m.no_exec)),
            Some((false, false))
        );
        assert_eq!(m("/tmp/x").map(|m| m.mount_point), Some("/tmp".into()));
        assert_eq!(m("/tmp/noexec/y").map(|m| m.no_exec), Some(true));
        assert_eq!(m("/tmpfoo").map(|m| m.mount_point), Some("/".into()));
        assert_eq!(m("/var").map(|m| m.read_only), Some(true));
        assert_eq!(m("/data dir").map(|m| m.read_only), Some(false));
        assert_eq!(mount_for("garbage", "/tmp"), None);
    }

    fn facts() -> Facts {
        Facts {
            tar: true,
            arch: Some("x86_64".into()),
            dir_writable: true,
            mount: mount_for(MOUNTINFO, "/tmp"),
        }
    }

    #[test]
    fn each_missing_fact_is_one_refusal_line() {
        assert!(judge("p", "app", "/tmp", &facts(), "x86_64").is_ok());
        let cases: [(Facts, &str); 5] = [
            (
                Facts {
                    tar: false,
                    ..facts()
                },
                "has no tar",
            ),
            (
                Facts {
                    dir_writable: false,
                    ..facts()
                },
                "not a writable directory",
            ),
            (
                Facts {
                    mount: mount_for(MOUNTINFO, "/var"),
                    ..facts()
                },
                "read-only",
            ),
            (
                Facts {
                    arch: Some("aarch64".into()),
                    ..facts()
                },
                "runs on aarch64",
            ),
            (
                Facts {
                    arch: None,
                    ..facts()
                },
                "uname -m could not run",
            ),
        ];
        for (f, needle) in cases {
            let e = judge("p", "app", "/tmp", &f, "x86_64")
                .err()
                .map(|e| (e.exit(), e.to_string()));
            let (exit, text) = e.unwrap_or_else(|| panic!("{needle}: admitted"));
            assert_eq!(exit, crate::Exit::Refused);
            assert!(
                text.contains(needle) && text.contains("pod p (container app)"),
                "{text}"
            );
        }
    }
}
