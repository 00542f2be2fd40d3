use std::path::PathBuf;

use super::memory::MemoryEvents;

use super::*;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture_root() -> PathBuf {
    fixtures().join("cgroup-v2")
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
    // memory.high: 32 MiB on the container, max on the pod.
    assert_eq!(cg.memory_high(), Some(33_554_432));
    // memory.oom.group is 1 on the container (0 on the pod): a group kill.
    assert_eq!(cg.oom_group(), Some(true));
    assert_eq!(
        cg.memory_events(),
        MemoryEvents {
            high: Some(41),
            max: Some(17),
            oom: Some(3),
            oom_kill: Some(2),
            oom_group_kill: Some(1),
        }
    );
}

#[test]
fn v2_pod_level_has_no_group_kill_and_no_high() {
    let cg = v2_cgroup("/", &fixture_root(), "/kubepods/pod1");
    assert_eq!(cg.oom_group(), Some(false));
    assert_eq!(cg.memory_high(), None);
    assert_eq!(cg.memory_limit(), Some(536_870_912));
    // No memory.events at this level: every counter unknown, none invented.
    assert_eq!(cg.memory_events(), MemoryEvents::default());
}

#[test]
fn v2_snapshot_reads_throttling_counters() {
    let cg = v2_cgroup("/", &fixture_root(), "/kubepods/pod1/ctr");
    let snap = cg.snapshot();
    assert_eq!(snap.cpu_nr_periods, Some(300));
    assert_eq!(snap.cpu_nr_throttled, Some(120));
    assert_eq!(snap.cpu_throttled_usec, Some(4_500_000));
    assert_eq!(snap.memory_high_bytes, Some(33_554_432));
    assert_eq!(snap.memory_high_events, Some(41));
    assert_eq!(snap.oom_group, Some(true));
    assert_eq!(snap.oom_group_kills, Some(1));
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
fn v1_limits_counters_and_quota_from_fixtures() {
    let root = fixtures().join("cgroup-v1");
    let lines = parse::proc_cgroup("4:memory:/kubepods/pod1/ctr\n1:cpu:/kubepods/pod1/ctr\n");
    let mounts = parse::mountinfo(&format!(
        "32 31 0:29 / {} rw - cgroup cgroup rw,cpu\n35 31 0:32 / {} rw - cgroup cgroup rw,memory\n",
        root.join("cpu").display(),
        root.join("memory").display()
    ));
    let cg = Cgroup::resolve(&lines, &mounts);
    assert_eq!(cg.memory.as_ref().map(|c| c.version), Some(Version::V1));
    // 1 GiB on kubepods, but memory.stat's hierarchical limit (768 MiB) is stricter.
    assert_eq!(cg.memory_limit(), Some(805_306_368));
    assert_eq!(cg.memory_usage(), Some(52_428_800));
    assert_eq!(cg.oom_kills(), Some(4));
    // v1 has neither memory.high nor memory.oom.group nor the other event counters.
    assert_eq!(cg.memory_high(), None);
    assert_eq!(cg.oom_group(), None);
    assert_eq!(
        cg.memory_events(),
        MemoryEvents {
            oom_kill: Some(4),
            ..MemoryEvents::default()
        }
    );
    // The container is unlimited (-1); the pod's 150000/100000 is the effective quota.
    assert_eq!(cg.cpu_quota_cores(), Some(1.5));
    let snap = cg.snapshot();
    assert_eq!(snap.cpu_nr_periods, Some(50));
    assert_eq!(snap.cpu_nr_throttled, Some(7));
    // v1 counts throttled time in ns (throttled_time); the snapshot is in µs.
    assert_eq!(snap.cpu_throttled_usec, Some(2_500_000));
}

#[test]
fn hierarchy_of_picks_the_most_specific_cgroup_mount() {
    let mounts = parse::mountinfo(
        "32 31 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu\n\
         35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n\
         40 31 0:37 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n\
         41 23 0:38 / /sys/fs/cgroup/unified/nested rw - cgroup2 cgroup2 rw\n",
    );
    let found = |dir: &str, version| {
        place::hierarchy_of(Path::new(dir), &mounts, version, "memory")
            .map(|m| m.mount_point.clone())
    };
    assert_eq!(
        found("/sys/fs/cgroup/memory/a/b", Version::V1).as_deref(),
        Some("/sys/fs/cgroup/memory")
    );
    assert_eq!(
        found("/sys/fs/cgroup/unified/nested/x", Version::V2).as_deref(),
        Some("/sys/fs/cgroup/unified/nested")
    );
    // A v1 hierarchy without the memory controller, the wrong version, a path outside
    // every mount, and a sibling whose name merely starts like a mount point.
    assert_eq!(found("/sys/fs/cgroup/cpu/a", Version::V1), None);
    assert_eq!(found("/sys/fs/cgroup/memory/a", Version::V2), None);
    assert_eq!(found("/tmp/fake", Version::V1), None);
    assert_eq!(found("/sys/fs/cgroup/memoryfake/a", Version::V1), None);
}

fn bad_input_message(result: Result<Cgroup>) -> String {
    match result {
        Err(ChaosError::BadInput(message)) => message,
        other => panic!("expected bad input, got {other:?}"),
    }
}

#[test]
fn a_directory_with_cgroup_file_names_is_not_a_cgroup() -> std::io::Result<()> {
    // The attack of issue 8: a fake 64 MiB limit on a plain filesystem.
    let fake = tempfile::tempdir()?;
    fs::write(fake.path().join("memory.limit_in_bytes"), "67108864\n")?;
    fs::write(fake.path().join("memory.max"), "67108864\n")?;
    fs::write(fake.path().join("cgroup.procs"), "")?;
    let message = bad_input_message(Cgroup::memory_at(fake.path()));
    assert!(message.contains("not on a cgroup filesystem"), "{message}");
    // Not a directory at all, and a directory that does not exist.
    let message = bad_input_message(Cgroup::memory_at(&fake.path().join("memory.max")));
    assert!(message.contains("not a directory"), "{message}");
    let message = bad_input_message(Cgroup::memory_at(&fake.path().join("missing")));
    assert!(message.contains("cannot resolve"), "{message}");
    // procfs has neither the magic nor the files.
    let message = bad_input_message(Cgroup::memory_at(Path::new("/proc")));
    assert!(message.contains("not on a cgroup filesystem"), "{message}");
    Ok(())
}

/// The process's own memory cgroup, or a loud failure: every Linux this suite supports
/// (the v1 CI host, the v2 guest of scripts/vm-test.sh) has a memory controller.
fn own_memory_controller() -> Result<(Cgroup, Controller)> {
    let cg = Cgroup::current()?;
    let memory = cg.memory.clone().unwrap_or_else(|| {
        panic!(
            "this process has no memory cgroup controller (/proc/self/cgroup and mountinfo \
             name none): the cgroup readers cannot be tested against real files here"
        )
    });
    Ok((cg, memory))
}

#[test]
fn current_process_cgroup_resolves_on_this_machine() -> Result<()> {
    let (cg, memory) = own_memory_controller()?;
    assert!(memory.dir.is_dir(), "{}", memory.dir.display());
    assert!(memory.dir.starts_with(&memory.mount_point));
    let snapshot = cg.snapshot();
    let usage = snapshot
        .memory_usage_bytes
        .unwrap_or_else(|| panic!("no memory usage readable in {}", memory.dir.display()));
    assert!(usage > 0, "memory usage of a running process is 0");
    assert!(
        snapshot.oom_kills.is_some(),
        "no oom_kill counter in {} (Linux 4.13 or later has one)",
        memory.dir.display()
    );
    let cpu = cg.cpu.as_ref().unwrap_or_else(|| {
        panic!("this process has no cpu cgroup controller: the CPU readers cannot be tested here")
    });
    assert!(cpu.dir.is_dir(), "{}", cpu.dir.display());
    Ok(())
}

#[test]
fn the_own_memory_cgroup_passes_the_explicit_directory_checks() -> Result<()> {
    let (_, memory) = own_memory_controller()?;
    let explicit = Cgroup::memory_at(&memory.dir)?;
    let found = explicit
        .memory
        .unwrap_or_else(|| panic!("memory_at returned no controller"));
    assert_eq!(found.version, memory.version);
    assert_eq!(
        found.dir,
        fs::canonicalize(&memory.dir).map_err(|e| ChaosError::io(
            "canonicalize",
            &memory.dir,
            e
        ))?
    );
    assert_eq!(found.mount_point, memory.mount_point);
    Ok(())
}
