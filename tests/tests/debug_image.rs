//! The debug image (`scripts/build-image.sh`): built without a container engine, unpacked
//! as a runtime would, and used the way `kubectl debug` uses it: the tools run from the
//! image's root filesystem (chroot) inside a network namespace, and net-partition applies
//! and reverts a partition with the image's own `nft`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::netlab::{Lab, echo_roundtrip, tcp_connect};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn ok(cmd: &mut Command) -> String {
    let out = common::run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An unpacked image: its root filesystem with /proc and /dev mounted (as a runtime
/// would), unmounted on drop.
struct Unpacked {
    dir: Option<tempfile::TempDir>,
    rootfs: PathBuf,
    archive_bytes: u64,
}

impl Unpacked {
    fn build() -> Unpacked {
        let dir = tempfile::tempdir().unwrap();
        let archive = dir.path().join("image.oci.tar");
        ok(Command::new(repo().join("scripts/build-image.sh"))
            .args(["--out"])
            .arg(&archive)
            .arg("--dist")
            .arg(repo().join("dist")));
        let archive_bytes = std::fs::metadata(&archive).unwrap().len();
        let layout = dir.path().join("layout");
        ok(Command::new("skopeo")
            .args(["copy", "--quiet"])
            .arg(format!("oci-archive:{}", archive.display()))
            .arg(format!("oci:{}:test", layout.display())));
        let bundle = dir.path().join("bundle");
        ok(Command::new("umoci")
            .args(["unpack", "--image"])
            .arg(format!("{}:test", layout.display()))
            .arg(&bundle));
        let rootfs = bundle.join("rootfs");
        ok(Command::new("mount")
            .args(["-t", "proc", "proc"])
            .arg(rootfs.join("proc")));
        // A runtime's /dev: a tmpfs with the device nodes and links programs expect.
        ok(Command::new("mount")
            .args(["-t", "tmpfs", "-o", "mode=0755,size=64k", "tmpfs"])
            .arg(rootfs.join("dev")));
        for (node, minor) in [("null", 3), ("zero", 5), ("random", 8), ("urandom", 9)] {
            nix::sys::stat::mknod(
                &rootfs.join("dev").join(node),
                nix::sys::stat::SFlag::S_IFCHR,
                nix::sys::stat::Mode::from_bits_truncate(0o666),
                nix::sys::stat::makedev(1, minor),
            )
            .unwrap();
        }
        // The links runc creates (`nft -f -` opens /dev/stdin).
        for (link, to) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
        ] {
            std::os::unix::fs::symlink(to, rootfs.join("dev").join(link)).unwrap();
        }
        Unpacked {
            dir: Some(dir),
            rootfs,
            archive_bytes,
        }
    }

    /// `chroot ROOTFS argv...` as a command (to be run inside a namespace).
    fn in_image(&self, lab: &Lab, ns: &str, argv: &[&str]) -> Command {
        let mut cmd = lab.command(ns, "chroot");
        cmd.arg(&self.rootfs)
            .args(argv)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        cmd
    }
}

impl Drop for Unpacked {
    fn drop(&mut self) {
        let mut unmounted = true;
        for mount in ["proc", "dev"] {
            let out = Command::new("umount").arg(self.rootfs.join(mount)).output();
            unmounted &= out.is_ok_and(|o| o.status.success());
        }
        if !unmounted {
            // Never delete a tree that may still hold a mount: leave it for a person.
            eprintln!(
                "could not unmount under {}; leaving it",
                self.rootfs.display()
            );
            std::mem::forget(self.dir.take());
        }
    }
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn root_the_debug_image_runs_the_tools_and_its_own_nft_partitions_and_reverts() {
    common::require_root("chroot, mount and network namespaces");
    let image = Unpacked::build();
    eprintln!("image archive: {} bytes", image.archive_bytes);
    assert_eq!(
        files_under(&image.rootfs.join("usr/local/bin")),
        [
            "cpu-hog",
            "latency-injector",
            "memory-leak",
            "net-partition",
            "pod-killer"
        ]
    );
    assert_eq!(
        files_under(&image.rootfs.join("usr/sbin")),
        ["ip", "nft", "ss", "tc"]
    );
    // Nothing else: no shell, no package manager.
    assert!(!image.rootfs.join("bin/sh").exists() && !image.rootfs.join("usr/bin/sh").exists());

    let mut lab = Lab::new("img");
    let pod = lab.namespace("p");
    let peer = lab.namespace("q");
    let (_, peer_ip) = lab.link(&pod, &peer);
    let _server = lab.tcp_echo(&peer, SocketAddr::new(peer_ip, 8080));
    for tool in ["cpu-hog", "memory-leak", "latency-injector", "pod-killer"] {
        ok(&mut image.in_image(&lab, &pod, &[tool, "--help"]));
    }
    ok(&mut image.in_image(&lab, &pod, &["ss", "-tn"]));
    ok(&mut image.in_image(&lab, &pod, &["ip", "rule", "list"]));
    // The netem engine's tc, with its libraries; and the tool's engine choice with it.
    ok(&mut image.in_image(&lab, &pod, &["tc", "-j", "qdisc", "show"]));
    let target = format!("{peer_ip}:8080");
    ok(&mut image.in_image(
        &lab,
        &pod,
        &["latency-injector", "--target", &target, "--dry-run"],
    ));

    let target = peer_ip.to_string();
    let child = image
        .in_image(
            &lab,
            &pod,
            &[
                "net-partition",
                "-H",
                &target,
                "-p",
                "8080",
                "-d",
                "3",
                "-y",
                "--output",
                "json",
                "--run-id",
                "img1",
            ],
        )
        .env("CHAOS_STATE_DIR", "/tmp/chaos-state")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let table = "inet chaos-net-partition-img1";
    let started = Instant::now();
    loop {
        let tables = lab.exec_ok(&pod, &["nft", "list", "tables"]);
        if tables.contains(table) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the image's nft never created {table}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let to = SocketAddr::new(peer_ip, 8080);
    let cut = lab.in_namespace(&pod, move || tcp_connect(to, Duration::from_millis(500)));
    assert!(cut.is_err(), "the partition does not cut {to}");
    let (code, report, stderr) = common::finish(child, Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "ok");
    assert_eq!(report["revert"]["status"], "reverted");
    assert!(
        !lab.exec_ok(&pod, &["nft", "list", "tables"])
            .contains(table)
    );
    let back = lab.in_namespace(&pod, move || {
        tcp_connect(to, Duration::from_secs(2))
            .and_then(|mut s| echo_roundtrip(&mut s, b"ping", Duration::from_secs(2)))
    });
    assert!(
        back.is_ok(),
        "traffic does not pass after the revert: {back:?}"
    );
}
