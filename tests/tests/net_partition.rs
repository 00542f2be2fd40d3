//! net-partition in real network namespaces: a client namespace joined to two server
//! namespaces A and B, with real listeners. The tool runs inside the client namespace
//! (`ip netns exec`), exactly as it would inside a pod's debug container.

mod common;

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::netlab::{Lab, echo_roundtrip, tcp_connect};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const PORT: u16 = 8080;
const OTHER_PORT: u16 = 9090;
const TABLE_PREFIX: &str = "chaos-net-partition-";

/// client <-> A on 198.51.100.0/30, client <-> B on 198.51.100.4/30; echo servers on A
/// (ports 8080 and 9090) and B (8080).
struct World {
    lab: Lab,
    client: String,
    a: String,
    b: String,
    client_a: IpAddr,
    a_ip: IpAddr,
    client_b: IpAddr,
    b_ip: IpAddr,
    _servers: Vec<common::netlab::Server>,
}

fn world() -> World {
    let mut lab = Lab::new("np");
    let client = lab.namespace("c");
    let a = lab.namespace("a");
    let b = lab.namespace("b");
    let (client_a, a_ip) = lab.link(&client, &a);
    let (client_b, b_ip) = lab.link(&client, &b);
    let servers = vec![
        lab.tcp_echo(&a, SocketAddr::new(a_ip, PORT)),
        lab.tcp_echo(&a, SocketAddr::new(a_ip, OTHER_PORT)),
        lab.tcp_echo(&b, SocketAddr::new(b_ip, PORT)),
    ];
    World {
        lab,
        client,
        a,
        b,
        client_a,
        a_ip,
        client_b,
        b_ip,
        _servers: servers,
    }
}

impl World {
    /// Starts net-partition in the client namespace with `--output json -y`.
    fn start(&self, run_id: &str, args: &[&str]) -> Child {
        self.lab
            .command(&self.client, common::bin("net-partition"))
            .args(args)
            .args(["-y", "--output", "json", "--run-id", run_id])
            .env(
                "CHAOS_STATE_DIR",
                std::env::temp_dir().join(format!("np-state-{run_id}")),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn net-partition: {e}"))
    }

    /// Our tables in the namespace `ns`.
    fn tables(&self, ns: &str) -> Vec<String> {
        let listing = self.lab.exec_ok(ns, &["nft", "-j", "list", "tables"]);
        let listing: Value =
            serde_json::from_str(&listing).unwrap_or_else(|e| panic!("nft -j: {e}"));
        listing["nftables"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|o| o.get("table"))
            .map(|t| {
                format!(
                    "{} {}",
                    t["family"].as_str().unwrap_or(""),
                    t["name"].as_str().unwrap_or("")
                )
            })
            .collect()
    }

    /// Waits until table `chaos-net-partition-<run_id>` is present (or gone); returns how long.
    fn wait_table(&self, run_id: &str, present: bool, timeout: Duration) -> Duration {
        let wanted = format!("inet {TABLE_PREFIX}{run_id}");
        let started = Instant::now();
        while self.tables(&self.client).contains(&wanted) != present {
            assert!(
                started.elapsed() < timeout,
                "table {wanted} present={} after {timeout:?}",
                !present
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    }

    /// Connect from `from` to `to` with a short timeout.
    fn connect(&self, from: &str, to: SocketAddr) -> std::io::Result<std::net::TcpStream> {
        self.lab
            .in_namespace(from, move || tcp_connect(to, Duration::from_millis(700)))
    }

    fn assert_passes(&self, from: &str, to: SocketAddr) {
        let result = self
            .connect(from, to)
            .and_then(|mut s| echo_roundtrip(&mut s, b"ping", Duration::from_secs(2)));
        assert!(result.is_ok(), "{from} -> {to} should pass: {result:?}");
    }

    fn assert_blocked(&self, from: &str, to: SocketAddr) -> std::io::Error {
        match self.connect(from, to) {
            Ok(_) => panic!("{from} -> {to} should be cut"),
            Err(e) => e,
        }
    }

    /// Nothing of ours remains: no table, nothing named like ours in the ruleset.
    fn assert_clean(&self) {
        let ruleset = self.lab.exec_ok(&self.client, &["nft", "list", "ruleset"]);
        assert!(
            !ruleset.contains(TABLE_PREFIX),
            "leftover in the ruleset:\n{ruleset}"
        );
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock)
}

#[test]
fn root_partition_cuts_only_the_target_port_and_recovers() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let target = SocketAddr::new(w.a_ip, PORT);
    w.assert_passes(&w.client, target);
    let a = w.a_ip.to_string();
    let probe = target.to_string();
    let child = w.start(
        "cut1",
        &["-H", &a, "-p", "8080", "-d", "4", "--probe", &probe],
    );
    w.wait_table("cut1", true, Duration::from_secs(5));

    let e = w.assert_blocked(&w.client, target);
    assert!(is_timeout(&e), "a dropped SYN times out, got {e:?}");
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, OTHER_PORT));
    w.assert_passes(&w.client, SocketAddr::new(w.b_ip, PORT));
    // The server side is unaffected: A still reaches its own port.
    w.assert_passes(&w.a, target);

    let (code, report, stderr) = common::finish(child, Duration::from_secs(15));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "ok");
    assert_eq!(report["stopReason"], "duration");
    assert_eq!(report["revert"]["status"], "reverted");
    let obs = &report["observations"];
    assert!(
        obs["egressPackets"].as_u64().unwrap_or(0) >= 1,
        "the blocked SYN is counted: {obs}"
    );
    assert!(obs["applyMs"].as_f64().is_some_and(|ms| ms > 0.0));
    assert!(
        obs["samples"].as_array().is_some_and(|s| s.len() >= 3),
        "1 Hz samples: {obs}"
    );
    assert_eq!(
        report["baseline"]["probe"]["result"]["ok"], true,
        "probe before: {report}"
    );
    assert!(
        obs["probe"]["duringFailed"].as_u64().unwrap_or(0) >= 2,
        "probe during: {obs}"
    );
    assert_eq!(obs["probe"]["duringOk"], 0, "probe during: {obs}");
    assert_eq!(
        report["revert"]["details"]["probeAfter"]["result"]["ok"], true,
        "probe after: {report}"
    );
    assert_eq!(report["revert"]["details"]["watchdog"], "stopped");

    w.assert_passes(&w.client, target);
    w.assert_clean();
}

#[test]
fn root_reject_refuses_fast() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let a = w.a_ip.to_string();
    let child = w.start(
        "rej1",
        &[
            "-H",
            &a,
            "-p",
            "8080",
            "--protocol",
            "tcp",
            "--reject",
            "-d",
            "2",
        ],
    );
    w.wait_table("rej1", true, Duration::from_secs(5));
    let started = Instant::now();
    let e = w.assert_blocked(&w.client, SocketAddr::new(w.a_ip, PORT));
    assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{e:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "refusal took {:?}",
        started.elapsed()
    );
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, OTHER_PORT));
    let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["observations"]["verdict"], "reject");
    assert!(
        report["observations"]["egressPackets"]
            .as_u64()
            .unwrap_or(0)
            >= 1
    );
    w.assert_clean();
}

#[test]
fn root_bidirectional_blocks_the_target_reaching_us() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let _client_a = w.lab.tcp_echo(&w.client, SocketAddr::new(w.client_a, 7070));
    let _client_b = w.lab.tcp_echo(&w.client, SocketAddr::new(w.client_b, 7070));
    w.assert_passes(&w.a, SocketAddr::new(w.client_a, 7070));
    let a = w.a_ip.to_string();
    let child = w.start("bidi1", &["-H", &a, "--bidirectional", "-d", "3"]);
    w.wait_table("bidi1", true, Duration::from_secs(5));
    let e = w.assert_blocked(&w.a, SocketAddr::new(w.client_a, 7070));
    assert!(is_timeout(&e), "{e:?}");
    w.assert_blocked(&w.client, SocketAddr::new(w.a_ip, OTHER_PORT));
    w.assert_passes(&w.b, SocketAddr::new(w.client_b, 7070));
    let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        report["observations"]["ingressPackets"]
            .as_u64()
            .unwrap_or(0)
            >= 1,
        "{}",
        report["observations"]
    );
    w.assert_passes(&w.a, SocketAddr::new(w.client_a, 7070));
    w.assert_clean();
}

/// 1000 UDP datagrams to A with --drop-percent 50. The number delivered is
/// Binomial(1000, 0.5): mean 500, sd 15.8; the two-sided 99.9% interval is
/// 500 ± 3.29 sd = [448, 552]. Every datagram not delivered must be one the counter saw.
#[test]
fn root_drop_percent_50_drops_a_binomial_share_alone() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let udp = SocketAddr::new(w.a_ip, 5353);
    let counter = w.lab.udp_counter(&w.a, udp);
    let a = w.a_ip.to_string();
    let child = w.start(
        "half1",
        &[
            "-H",
            &a,
            "-p",
            "5353",
            "--protocol",
            "udp",
            "--drop-percent",
            "50",
            "-d",
            "3",
        ],
    );
    w.wait_table("half1", true, Duration::from_secs(5));
    const SENT: u64 = 1000;
    w.lab.in_namespace(&w.client, move || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap_or_else(|e| panic!("bind: {e}"));
        for i in 0..SENT {
            // A dropped datagram fails the send with EPERM; that is the partition working.
            let _ = socket.send_to(&i.to_be_bytes(), udp);
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    std::thread::sleep(Duration::from_millis(200));
    let delivered = counter.count();
    eprintln!("delivered {delivered} of {SENT}");
    let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        (448..=552).contains(&delivered),
        "delivered {delivered} of {SENT}: outside the 99.9% interval"
    );
    let dropped = report["observations"]["egressPackets"]
        .as_u64()
        .unwrap_or(0);
    assert!(
        dropped + delivered <= SENT && dropped + delivered >= SENT - SENT / 100,
        "counter {dropped} + delivered {delivered} should account for the {SENT} sent"
    );
    w.assert_clean();
}

#[test]
fn root_established_connection_stops_passing_data_alone() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let target = SocketAddr::new(w.a_ip, PORT);
    let client = w.client.clone();
    let lab = &w.lab;
    let mut stream = lab
        .in_namespace(&client, move || tcp_connect(target, Duration::from_secs(1)))
        .unwrap_or_else(|e| panic!("connect before the partition: {e}"));
    echo_roundtrip(&mut stream, b"before", Duration::from_secs(2))
        .unwrap_or_else(|e| panic!("echo before: {e}"));
    let a = w.a_ip.to_string();
    let child = w.start("est1", &["-H", &a, "-p", "8080", "-d", "3"]);
    w.wait_table("est1", true, Duration::from_secs(5));
    let during = echo_roundtrip(&mut stream, b"during", Duration::from_millis(1500));
    assert!(
        during.as_ref().is_err_and(is_timeout),
        "data passed the partition: {during:?}"
    );
    let (code, _, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    // The kernel retransmits "during"; once the table is gone it arrives and is echoed.
    let mut back = [0u8; 6];
    stream
        .set_read_timeout(Some(Duration::from_secs(8)))
        .unwrap_or_else(|e| panic!("{e}"));
    std::io::Read::read_exact(&mut stream, &mut back)
        .unwrap_or_else(|e| panic!("no recovery after revert: {e}"));
    assert_eq!(&back, b"during");
    w.assert_clean();
}

#[test]
fn root_sigterm_mid_run_reverts() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let a = w.a_ip.to_string();
    let child = w.start("term1", &["-H", &a, "-d", "60"]);
    w.wait_table("term1", true, Duration::from_secs(5));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap_or_else(|e| panic!("kill: {e}"));
    w.wait_table("term1", false, Duration::from_secs(2));
    let (code, report, stderr) = common::finish(child, Duration::from_secs(5));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["result"], "aborted");
    assert_eq!(report["stopReason"], "signal:SIGTERM");
    assert_eq!(report["revert"]["status"], "reverted");
    assert!(report["revert"]["details"]["revertMs"].as_f64().is_some());
    w.assert_clean();
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, PORT));
}

#[test]
fn root_sigkill_mid_run_watchdog_removes_the_table_within_2s_alone() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let a = w.a_ip.to_string();
    let mut child = w.start("kill1", &["-H", &a, "-d", "60"]);
    w.wait_table("kill1", true, Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap_or_else(|e| panic!("SIGKILL: {e}"));
    let _ = child.wait();
    let gone_after = w.wait_table("kill1", false, Duration::from_secs(2));
    eprintln!("table gone {gone_after:?} after SIGKILL");
    w.assert_clean();
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, PORT));
}

#[test]
fn root_two_partitions_side_by_side_remove_only_their_own() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let (a, b) = (w.a_ip.to_string(), w.b_ip.to_string());
    let first = w.start("pair-a", &["-H", &a, "-d", "2"]);
    let second = w.start("pair-b", &["-H", &b, "-d", "5"]);
    w.wait_table("pair-a", true, Duration::from_secs(5));
    w.wait_table("pair-b", true, Duration::from_secs(5));
    w.assert_blocked(&w.client, SocketAddr::new(w.a_ip, PORT));
    w.assert_blocked(&w.client, SocketAddr::new(w.b_ip, PORT));
    let (code, _, stderr) = common::finish(first, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        w.tables(&w.client)
            .contains(&format!("inet {TABLE_PREFIX}pair-b")),
        "the second table must survive"
    );
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, PORT));
    w.assert_blocked(&w.client, SocketAddr::new(w.b_ip, PORT));
    let (code, _, stderr) = common::finish(second, Duration::from_secs(10));
    assert_eq!(code, 0, "{stderr}");
    w.assert_passes(&w.client, SocketAddr::new(w.b_ip, PORT));
    w.assert_clean();
}

#[test]
fn root_cleanup_removes_only_our_tables_and_is_idempotent() {
    common::require_root("network namespaces and nftables");
    let w = world();
    for (family, name) in [
        ("inet", "keepme"),
        ("ip", "chaos-net-partition-ipfamily"),
        ("inet", "chaos-net-partition-left1"),
        ("inet", "chaos-net-partition-left2"),
    ] {
        w.lab
            .exec_ok(&w.client, &["nft", "add", "table", family, name]);
    }
    w.lab.exec_ok(
        &w.client,
        &[
            "nft",
            "add",
            "chain",
            "inet",
            "keepme",
            "out",
            "{ type filter hook output priority 0; }",
        ],
    );
    let state = std::env::temp_dir().join(format!("np-cleanup-{}", std::process::id()));
    for round in 0..2 {
        let out = common::run(
            w.lab
                .command(&w.client, common::bin("net-partition"))
                .args(["--cleanup", "--output", "json"])
                .env("CHAOS_STATE_DIR", &state),
        );
        assert_eq!(
            out.status.code(),
            Some(0),
            "round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        common::assert_valid_report(&report);
        assert_eq!(report["action"], "cleanup");
        let removed = report["observations"]["removed"].as_array().unwrap().len();
        assert_eq!(
            removed,
            if round == 0 { 2 } else { 0 },
            "round {round}: {report:#}"
        );
    }
    let mut tables = w.tables(&w.client);
    tables.sort();
    assert_eq!(tables, ["inet keepme", "ip chaos-net-partition-ipfamily"]);
    let ruleset = w.lab.exec_ok(&w.client, &["nft", "list", "ruleset"]);
    assert!(
        ruleset.contains("chain out"),
        "the foreign chain survives:\n{ruleset}"
    );
}

/// A kill while the `nft` transaction is still running (here slowed down by a wrapper
/// that waits 1.5 s before running the real `nft`) must not leave the table: the watchdog
/// is armed before the transaction and deletes the table again after the parent's death.
#[test]
fn root_sigkill_during_the_nft_transaction_leaves_no_table() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let real_nft = common::run(std::process::Command::new("sh").args(["-c", "command -v nft"]));
    let real_nft = String::from_utf8_lossy(&real_nft.stdout).trim().to_owned();
    assert!(!real_nft.is_empty(), "nft is not installed");
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("transaction-started");
    let wrapper = dir.path().join("nft");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do if [ \"$a\" = -f ]; then touch '{}'; sleep 1.5; fi; done\nexec '{real_nft}' \"$@\"\n",
            marker.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let a = w.a_ip.to_string();
    let mut child = w
        .lab
        .command(&w.client, common::bin("net-partition"))
        .args([
            "-H", &a, "-d", "60", "-y", "--output", "json", "--run-id", "slow1",
        ])
        .env("PATH", &path)
        .env("CHAOS_STATE_DIR", dir.path().join("state"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !marker.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the transaction never started"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let killed = Instant::now();
    // The orphaned transaction still lands about a second later...
    let mut seen = false;
    while killed.elapsed() < Duration::from_secs(6) {
        seen |= w
            .tables(&w.client)
            .contains(&format!("inet {TABLE_PREFIX}slow1"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        seen,
        "the slowed transaction never created the table: the test proves nothing"
    );
    // ...and the watchdog removes it.
    w.wait_table("slow1", false, Duration::from_millis(100));
    w.assert_clean();
}

/// A stopped (SIGSTOP) injector cannot revert; its watchdog removes the table at the
/// run's deadline plus the grace, and the run, once resumed, reports that it overran.
#[test]
fn root_a_stopped_injector_loses_its_table_at_the_deadline() {
    common::require_root("network namespaces and nftables");
    let w = world();
    let a = w.a_ip.to_string();
    let child = w.start("stopped1", &["-H", &a, "-d", "1"]);
    w.wait_table("stopped1", true, Duration::from_secs(5));
    // Apply returns right after the table appears; the stop must land in the observe
    // phase (a stop inside apply delays the start of the run's clock instead).
    std::thread::sleep(Duration::from_millis(300));
    let pid = Pid::from_raw(child.id() as i32);
    kill(pid, Signal::SIGSTOP).unwrap();
    let gone_after = w.wait_table(
        "stopped1",
        false,
        Duration::from_secs(1) + chaos_common::watchdog::GRACE + Duration::from_secs(5),
    );
    assert!(
        gone_after >= chaos_common::watchdog::GRACE,
        "the table went too early ({gone_after:?}): the watchdog must wait for the deadline"
    );
    w.assert_passes(&w.client, SocketAddr::new(w.a_ip, PORT));
    kill(pid, Signal::SIGCONT).unwrap();
    let (code, report, stderr) = common::finish(child, Duration::from_secs(10));
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(report["result"], "failed");
    assert!(
        report["stopReason"]
            .as_str()
            .unwrap()
            .starts_with("overran: "),
        "{report:#}"
    );
    assert_eq!(report["revert"]["status"], "reverted");
    w.assert_clean();
}
