//! The static release binaries (scripts/build-static.sh) run in an empty root, as they
//! would in a scratch debug image: a chroot into a directory holding only the binary (and
//! /proc, which every container runtime mounts).

mod common;

use std::path::PathBuf;
use std::process::Command;

fn dist_binary(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../dist")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/build-static.sh first (scripts/test.sh does)",
        path.display()
    );
    path
}

#[test]
fn root_static_cpu_hog_runs_in_an_empty_chroot() {
    common::require_root("chroot");
    let empty_root = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let inside = empty_root.path().join("cpu-hog");
    std::fs::copy(dist_binary("cpu-hog"), &inside).unwrap_or_else(|e| panic!("copy: {e}"));
    let entries = std::fs::read_dir(empty_root.path())
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(entries, 1, "the chroot must hold nothing but the binary");

    let help = common::run(
        Command::new("chroot")
            .arg(empty_root.path())
            .args(["/cpu-hog", "--help"]),
    );
    assert!(
        help.status.success(),
        "--help failed in the chroot: {help:?}"
    );
    assert!(String::from_utf8_lossy(&help.stdout).contains("--cpu-percent"));

    // Without /proc the run cannot register for --stop (it needs its start time): it is
    // refused before anything is applied, with the reason.
    let args = ["/cpu-hog", "-c", "20", "-d", "1", "-y", "--output", "json"];
    let run = common::run(Command::new("chroot").arg(empty_root.path()).args(args));
    assert_eq!(run.status.code(), Some(1), "{run:?}");
    let report: serde_json::Value = serde_json::from_slice(&run.stdout).unwrap_or_default();
    assert_eq!(report["revert"]["status"], "not-applied", "{run:?}");
    assert!(
        report["errors"][0]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("/proc"),
        "{report:#}"
    );

    // A real (short) run with /proc mounted, as every container runtime does; no /sys, no
    // /tmp: the tool must still hold the load, revert and print its report.
    let proc_dir = empty_root.path().join("proc");
    std::fs::create_dir(&proc_dir).unwrap_or_else(|e| panic!("mkdir: {e}"));
    let mounted = common::run(
        Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(&proc_dir),
    );
    assert!(mounted.status.success(), "mount proc: {mounted:?}");
    let run = common::run(Command::new("chroot").arg(empty_root.path()).args(args));
    let unmounted = common::run(Command::new("umount").arg(&proc_dir));
    assert!(unmounted.status.success(), "umount proc: {unmounted:?}");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(
        run.status.code(),
        Some(0),
        "run failed in the chroot: {run:?}"
    );
    let report: serde_json::Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    assert_eq!(report["result"], "ok");
    assert_eq!(report["revert"]["status"], "reverted");
}

#[test]
fn static_binaries_are_statically_linked() {
    for name in [
        "cpu-hog",
        "memory-leak",
        "net-partition",
        "latency-injector",
        "pod-killer",
    ] {
        let path = dist_binary(name);
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        assert!(
            !has_interpreter(&bytes),
            "{name} asks for a dynamic loader: not static"
        );
    }
}

/// True when the ELF64 file has a PT_INTERP program header (a dynamic loader).
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    assert!(
        elf.starts_with(b"\x7fELF") && elf.get(4) == Some(&2),
        "not an ELF64 file"
    );
    let u16_at = |at: usize| u16::from_le_bytes([elf[at], elf[at + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap_or([0; 8])) as usize;
    let (entry_size, count) = (u16_at(54), u16_at(56));
    (0..count).any(|i| {
        let at = phoff + i * entry_size;
        u32::from_le_bytes(elf[at..at + 4].try_into().unwrap_or([0; 4])) == PT_INTERP
    })
}

#[test]
fn interpreter_detection_sees_a_dynamic_binary() {
    let dynamic = std::fs::read("/bin/sh").unwrap_or_else(|e| panic!("read /bin/sh: {e}"));
    assert!(
        has_interpreter(&dynamic),
        "/bin/sh is dynamically linked on Debian"
    );
}
