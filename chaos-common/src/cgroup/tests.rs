use std::path::PathBuf;

use super::*;

fn fixture_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cgroup-v2")
}

fn v2_cgroup(mount_root: &str, mount_point: &Path, path: &str) -> Cgroup {
    let mountinfo = format!(
        "41 23 0:38 {mount_root} {} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n",
        mount_point.display()
    );
    let lines = parse::proc_cgroup(&format!("0::{path}\n"));
    Cgroup::resolve(&lines, &parse::mountinfo(&mountinfo))
}

#[test]
fn v2_limits_are_the_smallest_along_the_path() {
    let root = fixture_root();
    let cg = v2_cgroup("/", &root, "/kubepods/pod1/ctr");
    let memory = cg.memory.as_ref().map(|c| c.dir.clone());
    assert_eq!(memory, Some(root.join("kubepods/pod1/ctr")));
    // The container says max; the pod says 512 MiB; kubepods says 1 GiB.
    assert_eq!(cg.memory_limit(), Some(536_870_912));
    assert_eq!(cg.cpu_quota_cores(), Some(0.5));
    assert_eq!(cg.memory_usage(), Some(123_456_789));
    assert_eq!(cg.oom_kills(), Some(2));
}

#[test]
fn v2_snapshot_reads_throttling_counters() {
    let cg = v2_cgroup("/", &fixture_root(), "/kubepods/pod1/ctr");
    let snap = cg.snapshot();
    assert_eq!(snap.cpu_nr_periods, Some(300));
    assert_eq!(snap.cpu_nr_throttled, Some(120));
    assert_eq!(snap.cpu_throttled_usec, Some(4_500_000));
}

#[test]
fn v2_inside_a_cgroup_namespace_strips_the_mount_root() {
    // A container sees its own cgroup mounted at the mount point, with the host path as
    // the mount's root.
    let root = fixture_root();
    let mount_point = root.join("kubepods/pod1/ctr");
    let cg = v2_cgroup("/kubepods/pod1/ctr", &mount_point, "/kubepods/pod1/ctr");
    assert_eq!(cg.memory.as_ref().map(|c| c.dir.clone()), Some(mount_point));
    // Only the container's own files are visible from there: unlimited memory.
    assert_eq!(cg.memory_limit(), None);
    assert_eq!(cg.cpu_quota_cores(), None);
}

#[test]
fn unlimited_v2_root_reports_no_limit() {
    let cg = v2_cgroup("/", &fixture_root(), "/");
    assert_eq!(cg.memory_limit(), None);
    assert_eq!(cg.cpu_quota_cores(), None);
}

#[test]
fn v1_controllers_win_on_hybrid_hosts() {
    let lines = parse::proc_cgroup("4:memory:/process_api/x\n2:cpuacct:/\n1:cpu:/\n0::/\n");
    let mounts = parse::mountinfo(
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         40 31 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n",
    );
    let cg = Cgroup::resolve(&lines, &mounts);
    let memory = cg.memory.as_ref();
    assert_eq!(memory.map(|c| c.version), Some(Version::V1));
    assert_eq!(
        memory.map(|c| c.dir.clone()),
        Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/x"))
    );
    assert_eq!(
        cg.cpu.as_ref().map(|c| c.dir.clone()),
        Some(PathBuf::from("/sys/fs/cgroup/cpu"))
    );
}

#[test]
fn current_process_cgroup_resolves_on_this_machine() -> Result<()> {
    // Real files: whatever the host, reading must not fail, and a memory controller, if
    // found, must point at an existing directory.
    let cg = Cgroup::current()?;
    if let Some(memory) = &cg.memory {
        assert!(memory.dir.is_dir(), "{}", memory.dir.display());
    }
    let _ = cg.snapshot();
    Ok(())
}
