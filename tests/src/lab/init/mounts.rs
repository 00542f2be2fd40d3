//! The container's mount namespace: a private copy of the host's mounts (the lab's
//! "image" is the host's root filesystem), with the pod's bind mounts (volumes, /etc/hosts,
//! resolv.conf, hostname, image directories), a private /dev/shm, the container's own view
//! of the cgroup hierarchies (mounted inside its cgroup namespace, read-only, as runc
//! does), and every host mount read-only.
//!
//! A container never writes to the host's filesystem: without `readOnlyRootFilesystem`
//! it gets private tmpfs mounts on /tmp and /var/tmp (where no volume is mounted) as its
//! "writable layer" (see [`WRITABLE_LAYER`]); writes elsewhere fail with EROFS, where a
//! container with its own image could write. The lab's pod directories are hidden under
//! an empty read-only tmpfs (`hidden`), so a pod cannot read another pod's volumes.
//!
//! Only per-mount flags are changed (`MS_REMOUNT | MS_BIND`), never a filesystem's own
//! flags, and the namespace is private: nothing here is visible on the host.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use nix::mount::{MsFlags, mount};

use crate::lab::launch::NewSandbox;
use crate::lab::mountinfo::{MountInfo, parse_mountinfo};

const NONE: Option<&str> = None;

/// The per-mount flags to keep when remounting read-only.
pub fn kept_flags(options: &str) -> MsFlags {
    options
        .split(',')
        .fold(MsFlags::empty(), |flags, opt| match opt {
            "nosuid" => flags | MsFlags::MS_NOSUID,
            "nodev" => flags | MsFlags::MS_NODEV,
            "noexec" => flags | MsFlags::MS_NOEXEC,
            "noatime" => flags | MsFlags::MS_NOATIME,
            "nodiratime" => flags | MsFlags::MS_NODIRATIME,
            "relatime" => flags | MsFlags::MS_RELATIME,
            "strictatime" => flags | MsFlags::MS_STRICTATIME,
            _ => flags,
        })
}

/// Where a container without `readOnlyRootFilesystem` can write (private tmpfs mounts).
pub const WRITABLE_LAYER: [&str; 2] = ["/tmp", "/var/tmp"];

/// Whether a mount stays writable: /proc and /dev (devices, ptys, shm), and the
/// container's writable volumes and layer; every host mount is read-only.
pub fn stays_writable(mount_point: &Path, writable: &[PathBuf]) -> bool {
    mount_point.starts_with("/proc")
        || mount_point.starts_with("/dev")
        || writable.iter().any(|w| w == mount_point)
}

/// The writable layer of a container: [`WRITABLE_LAYER`] without the paths a volume
/// covers, for a container whose root filesystem is not read-only.
pub fn writable_layer(read_only_root: bool, volumes: &[PathBuf]) -> Vec<PathBuf> {
    if read_only_root {
        return Vec::new();
    }
    WRITABLE_LAYER
        .iter()
        .map(PathBuf::from)
        .filter(|p| !volumes.contains(p))
        .collect()
}

pub fn prepare(new: &NewSandbox) -> Result<()> {
    mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)
        .context("make the mount namespace private")?;
    let host = parse_mountinfo(&read_mountinfo()?);
    for bind in &new.mounts {
        mount(
            Some(&bind.source),
            &bind.target,
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )
        .with_context(|| {
            format!(
                "bind {} on {} (the target must exist on the host)",
                bind.source.display(),
                bind.target.display()
            )
        })?;
    }
    for dir in &new.hidden {
        mount(
            Some("tmpfs"),
            dir,
            Some("tmpfs"),
            MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
            Some("mode=0755,size=4k"),
        )
        .with_context(|| format!("hide {}", dir.display()))?;
    }
    mount(
        Some("shm"),
        "/dev/shm",
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )
    .context("mount a private /dev/shm")?;
    mount_cgroups(&host)?;
    let targets: Vec<PathBuf> = new.mounts.iter().map(|m| m.target.clone()).collect();
    let mut writable: Vec<PathBuf> = new
        .mounts
        .iter()
        .filter(|m| !m.read_only)
        .map(|m| m.target.clone())
        .collect();
    for dir in writable_layer(new.read_only_root, &targets) {
        if dir.is_dir() {
            mount(
                Some("tmpfs"),
                &dir,
                Some("tmpfs"),
                MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
                Some("mode=1777"),
            )
            .with_context(|| format!("mount the writable {}", dir.display()))?;
            writable.push(dir);
        }
    }
    for m in parse_mountinfo(&read_mountinfo()?) {
        let is_bound_ro = new
            .mounts
            .iter()
            .any(|b| b.read_only && b.target == m.mount_point);
        if is_bound_ro || !stays_writable(&m.mount_point, &writable) {
            remount_read_only(&m)?;
        }
    }
    Ok(())
}

fn read_mountinfo() -> Result<String> {
    std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")
}

/// A mount hidden under one of ours (`/run/netns` under the /run tmpfs) has no path
/// any more: nothing to do.
fn remount_read_only(m: &MountInfo) -> Result<()> {
    let flags =
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | kept_flags(&m.options);
    match mount(NONE, &m.mount_point, NONE, flags, NONE) {
        Err(nix::errno::Errno::ENOENT) => Ok(()),
        other => other.with_context(|| format!("remount {} read-only", m.mount_point.display())),
    }
}

/// How the container's view of the cgroups is made, from the host's mounts (pure).
#[derive(Debug, PartialEq)]
pub enum CgroupView<'a> {
    /// No cgroup hierarchy under /sys/fs/cgroup: nothing to mount.
    Nothing,
    /// Pure cgroup v2 (/sys/fs/cgroup is the cgroup2 mount): the host's mount is detached
    /// first, then cgroup2 is mounted on the directory beneath (a sysfs directory, as in
    /// runc's containers). Mounting it over the host's mount fails with EBUSY: the kernel
    /// refuses the same filesystem on the root of a mount of it, whatever the new root.
    Unified,
    /// A tmpfs on /sys/fs/cgroup with one directory per hierarchy (v1, or a hybrid).
    PerHierarchy(Vec<&'a MountInfo>),
}

pub fn cgroup_view(host: &[MountInfo]) -> CgroupView<'_> {
    let base = Path::new(CGROUP_BASE);
    let hierarchies: Vec<&MountInfo> = host
        .iter()
        .filter(|m| m.mount_point.parent() == Some(base) || m.mount_point == base)
        .filter(|m| m.fs_type == "cgroup" || m.fs_type == "cgroup2")
        .collect();
    if hierarchies.is_empty() {
        CgroupView::Nothing
    } else if hierarchies.iter().any(|m| m.mount_point == base) {
        CgroupView::Unified
    } else {
        CgroupView::PerHierarchy(hierarchies)
    }
}

const CGROUP_BASE: &str = "/sys/fs/cgroup";

/// A tmpfs on /sys/fs/cgroup with the container's view of each memory/cpu/cpuacct/pids
/// hierarchy (v1) or of the unified hierarchy (v2), mounted inside the new cgroup
/// namespace, so the container sees its own cgroup as the root, as on a node.
fn mount_cgroups(host: &[MountInfo]) -> Result<()> {
    let base = Path::new(CGROUP_BASE);
    let ro = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    let hierarchies = match cgroup_view(host) {
        CgroupView::Nothing => return Ok(()),
        CgroupView::Unified => {
            // The namespace is private (prepare): the host keeps its mount.
            nix::mount::umount2(base, nix::mount::MntFlags::MNT_DETACH)
                .context("detach the host's cgroup2 mount in the container")?;
            return mount(
                Some("cgroup2"),
                base,
                Some("cgroup2"),
                ro | MsFlags::MS_RDONLY,
                NONE,
            )
            .context("mount the container's cgroup2 view");
        }
        CgroupView::PerHierarchy(hierarchies) => hierarchies,
    };
    mount(Some("tmpfs"), base, Some("tmpfs"), ro, Some("mode=755"))
        .context("mount a tmpfs on /sys/fs/cgroup")?;
    for m in hierarchies {
        let Some(name) = m.mount_point.file_name() else {
            continue;
        };
        let target = base.join(name);
        std::fs::create_dir(&target).with_context(|| format!("mkdir {}", target.display()))?;
        let (fs, data) = if m.fs_type == "cgroup2" {
            ("cgroup2", String::new())
        } else {
            ("cgroup", cgroup_v1_data(&m.super_options))
        };
        mount(
            Some("cgroup"),
            &target,
            Some(fs),
            ro | MsFlags::MS_RDONLY,
            Some(data.as_str()),
        )
        .with_context(|| format!("mount the container's view of {}", target.display()))?;
    }
    mount(
        NONE,
        base,
        NONE,
        MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | ro,
        NONE,
    )
    .context("remount /sys/fs/cgroup read-only")
}

/// `rw,memory` -> `memory`; `rw,name=systemd` -> `none,name=systemd`.
pub fn cgroup_v1_data(super_options: &str) -> String {
    let opts: Vec<&str> = super_options
        .split(',')
        .filter(|o| *o != "rw" && *o != "ro")
        .collect();
    if opts.iter().all(|o| o.starts_with("name=")) {
        std::iter::once("none")
            .chain(opts)
            .collect::<Vec<_>>()
            .join(",")
    } else {
        opts.join(",")
    }
}

/// Stage 2, inside the PID namespace: a /proc that shows it.
pub fn mount_proc() -> Result<()> {
    mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        NONE,
    )
    .context("mount /proc for the container's PID namespace")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remount_keeps_nosuid_and_atime_flags() {
        let flags = kept_flags("rw,nosuid,nodev,relatime");
        assert!(flags.contains(MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_RELATIME));
        assert!(!flags.contains(MsFlags::MS_NOEXEC));
    }

    #[test]
    fn only_volumes_layer_proc_and_dev_stay_writable() {
        let tmp = vec![PathBuf::from("/tmp")];
        assert!(stays_writable(Path::new("/tmp"), &tmp));
        assert!(stays_writable(Path::new("/dev/pts"), &tmp));
        assert!(stays_writable(Path::new("/proc"), &tmp));
        assert!(!stays_writable(Path::new("/"), &tmp));
        assert!(!stays_writable(Path::new("/work"), &tmp));
        assert!(!stays_writable(Path::new("/sys"), &tmp));
    }

    #[test]
    fn the_writable_layer_skips_volumes_and_read_only_roots() {
        let layer = writable_layer(false, &[PathBuf::from("/tmp")]);
        assert_eq!(layer, vec![PathBuf::from("/var/tmp")]);
        assert!(writable_layer(true, &[]).is_empty());
    }

    #[test]
    fn a_pure_v2_host_gets_its_mount_replaced_and_v1_a_tmpfs_of_hierarchies() {
        let v2 =
            "30 1 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw,nsdelegate\n";
        assert_eq!(cgroup_view(&parse_mountinfo(v2)), CgroupView::Unified);
        let v1 = "35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
                  36 31 0:33 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
                  31 1 0:31 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n";
        let host = parse_mountinfo(v1);
        let CgroupView::PerHierarchy(list) = cgroup_view(&host) else {
            panic!("v1 is not per hierarchy")
        };
        let points: Vec<_> = list.iter().map(|m| m.mount_point.clone()).collect();
        assert_eq!(
            points,
            [
                PathBuf::from("/sys/fs/cgroup/memory"),
                PathBuf::from("/sys/fs/cgroup/unified")
            ]
        );
        let none = "25 1 0:22 / /sys rw - sysfs sysfs rw\n";
        assert_eq!(cgroup_view(&parse_mountinfo(none)), CgroupView::Nothing);
    }

    #[test]
    fn cgroup_data_names_controllers_or_a_named_hierarchy() {
        assert_eq!(cgroup_v1_data("rw,memory"), "memory");
        assert_eq!(cgroup_v1_data("rw,cpu,cpuacct"), "cpu,cpuacct");
        assert_eq!(cgroup_v1_data("rw,name=systemd"), "none,name=systemd");
    }
}
