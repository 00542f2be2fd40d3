//! The netem engine's `tc` commands: pure argument-vector builders (table-tested), the
//! run's handles, and running `tc` (argv only, never a shell). For `--target
//! 198.51.100.2:6379 -l 200 -j 50` on eth0, run handle 0x4c01 (from the run id):
//!
//! ```text
//! tc qdisc add dev eth0 root handle 4c01: prio bands 2 priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1
//! tc qdisc add dev eth0 parent 4c01:1 handle 4c02: netem limit 10000 delay 200ms 50ms
//! tc filter add dev eth0 parent 4c01: protocol ip prio 1 u32 match ip protocol 6 0xff \
//!     match ip dst 198.51.100.2/32 match ip dport 6379 0xffff flowid 4c01:1
//! ```
//!
//! The root `prio` has two bands and a priomap that sends every packet to the second
//! (`4c01:2`, the default pfifo): only what a filter picks reaches the netem in the first
//! band, which is served first once its packets are due (so other traffic never stretches
//! the delay). Revert is `tc filter del dev eth0 parent 4c01:` (new packets go direct),
//! a wait for the held ones, then `tc qdisc del dev eth0 root handle 4c01:`: the kernel
//! deletes the root only if its handle is ours, and puts the interface's default qdisc
//! back.
//!
//! Why `tc` and not netlink: the same trade as `nft` (no unsafe FFI, a stable command
//! language, errors an operator can read and rerun), and iproute2, which the debug image
//! ships for `ip` and `ss` already, brings it. Why u32 filters and not an nftables mark
//! with `fw`: u32 needs nothing but `tc`, and a mark would overwrite the packets' own
//! `skb->mark` (service meshes and CNIs route by it); u32 assumes an IPv4 header without
//! options for the port match (`ip dport` is at a fixed offset), as TCP traffic has.

use std::net::Ipv4Addr;
use std::process::{Output, Stdio};

use chaos_common::{ChaosError, Result};

pub const TC: &str = "tc";
/// Root handles (majors) of this tool's prio qdiscs: a range the kernel never assigns
/// itself (automatic handles start at 0x8000) and that hand-written setups rarely use.
/// The netem child is the root's major plus one.
pub const FIRST_ROOT: u16 = 0x4000;
pub const LAST_ROOT: u16 = 0x7ffe;
/// The prio's bands: 1 (class `R:1`) holds the netem, 2 (`R:2`) everything else.
pub const BANDS: u8 = 2;
pub const PRIOMAP_BAND: u8 = 1;
/// Packets netem may hold (its default of 1000 drops under modest load with long delays:
/// a held packet stays for the whole delay). Beyond it netem drops, and the report
/// counts those drops.
pub const LIMIT: u32 = 10_000;

/// The run's root major: FNV-1a of the run id, folded into [`FIRST_ROOT`]..=[`LAST_ROOT`].
pub fn root_for(run_id: &str) -> u16 {
    let span = u32::from(LAST_ROOT - FIRST_ROOT) + 1;
    let folded = crate::rules::fnv1a(run_id) % span;
    // `folded` < span <= 0x3fff, so it fits.
    FIRST_ROOT + u16::try_from(folded).unwrap_or(0)
}

pub fn handle(major: u16) -> String {
    format!("{major:x}:")
}

/// What netem does to the packets the filters pick.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetemDelay {
    pub latency_ms: u64,
    pub jitter_ms: u64,
    /// Percent of packets delayed (netem's `reorder` lets the others through at once).
    pub probability: f64,
}

/// Which packets are delayed: TCP to these addresses, or every TCP packet leaving
/// through the interface; only to `port` when given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matches {
    Hosts {
        addrs: Vec<Ipv4Addr>,
        port: Option<u16>,
    },
    Everything {
        port: Option<u16>,
    },
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| (*s).to_owned()).collect()
}

pub fn root_add(dev: &str, root: u16) -> Vec<String> {
    let mut argv = owned(&[TC, "qdisc", "add", "dev", dev, "root", "handle"]);
    argv.extend([
        handle(root),
        "prio".into(),
        "bands".into(),
        BANDS.to_string(),
    ]);
    argv.push("priomap".into());
    argv.extend(std::iter::repeat_n(PRIOMAP_BAND.to_string(), 16));
    argv
}

/// `99.5` → `99.5`, `50` → `50`: netem's percentages without float noise.
fn percent(value: f64) -> String {
    let text = format!("{value:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

pub fn netem_add(dev: &str, root: u16, delay: &NetemDelay) -> Vec<String> {
    let mut argv = owned(&[TC, "qdisc", "add", "dev", dev, "parent"]);
    argv.extend([format!("{root:x}:1"), "handle".into(), handle(root + 1)]);
    argv.extend(owned(&["netem", "limit"]));
    argv.push(LIMIT.to_string());
    argv.extend(["delay".into(), format!("{}ms", delay.latency_ms)]);
    if delay.jitter_ms > 0 {
        argv.push(format!("{}ms", delay.jitter_ms));
    }
    if delay.probability < 100.0 {
        // reorder P: P percent of packets go at once, the rest are delayed.
        argv.extend(["reorder".into(), percent(100.0 - delay.probability)]);
    }
    argv
}

fn filter_head(dev: &str, root: u16, protocol: &str, prio: &str) -> Vec<String> {
    let mut argv = owned(&[TC, "filter", "add", "dev", dev, "parent"]);
    argv.push(handle(root));
    argv.extend(owned(&["protocol", protocol, "prio", prio, "u32"]));
    argv
}

/// One `tc filter add` per address (IPv4, prio 1), or for everything one IPv4 and one
/// IPv6 filter (prio 2), each sending TCP to the netem band `R:1`.
pub fn filters_add(dev: &str, root: u16, matches: &Matches) -> Vec<Vec<String>> {
    let flow = ["flowid".to_owned(), format!("{root:x}:1")];
    let tcp4 = owned(&["match", "ip", "protocol", "6", "0xff"]);
    let port4 = |port: Option<u16>| {
        port.map(|p| owned(&["match", "ip", "dport", &p.to_string(), "0xffff"]))
    };
    match matches {
        Matches::Hosts { addrs, port } => addrs
            .iter()
            .map(|addr| {
                let mut argv = filter_head(dev, root, "ip", "1");
                argv.extend(tcp4.clone());
                argv.extend(owned(&["match", "ip", "dst", &format!("{addr}/32")]));
                argv.extend(port4(*port).into_iter().flatten());
                argv.extend(flow.clone());
                argv
            })
            .collect(),
        Matches::Everything { port } => {
            let mut v4 = filter_head(dev, root, "ip", "1");
            v4.extend(tcp4.clone());
            v4.extend(port4(*port).into_iter().flatten());
            v4.extend(flow.clone());
            let mut v6 = filter_head(dev, root, "ipv6", "2");
            v6.extend(owned(&["match", "ip6", "protocol", "6", "0xff"]));
            if let Some(p) = port {
                v6.extend(owned(&["match", "ip6", "dport", &p.to_string(), "0xffff"]));
            }
            v6.extend(flow);
            vec![v4, v6]
        }
    }
}

/// Removes every filter under the run's root: new packets go to the pfifo band, direct.
pub fn filters_del(dev: &str, root: u16) -> Vec<String> {
    let mut argv = owned(&[TC, "filter", "del", "dev", dev, "parent"]);
    argv.push(handle(root));
    argv
}

/// Deletes the root qdisc only if its handle is the run's (the kernel checks it).
pub fn root_del(dev: &str, root: u16) -> Vec<String> {
    let mut argv = owned(&[TC, "qdisc", "del", "dev", dev, "root", "handle"]);
    argv.push(handle(root));
    argv
}

/// The qdiscs of one interface with their counters, as JSON.
pub fn stats(dev: &str) -> Vec<String> {
    owned(&[TC, "-s", "-j", "qdisc", "show", "dev", dev])
}

/// Every qdisc of the network namespace, as JSON (`--cleanup`).
pub fn show_all() -> Vec<String> {
    owned(&[TC, "-j", "qdisc", "show"])
}

/// Errors of a delete that mean "already gone": the device is gone, or its root is not
/// ours any more (`Invalid handle`: the kernel compared the handle), or it is the
/// default again.
pub const GONE: &[&str] = &[
    "Cannot find device",
    "Invalid handle",
    "handle of zero",
    "No such file or directory",
    "Cannot find specified qdisc",
];

fn spawn_error(argv: &[String], e: &std::io::Error) -> ChaosError {
    if e.kind() == std::io::ErrorKind::NotFound {
        ChaosError::Precondition(format!(
            "`{TC}` not found on PATH: the netem engine needs iproute2's tc where this tool \
             runs (the debug image ships it); or use --engine proxy"
        ))
    } else {
        ChaosError::Command {
            argv: argv.to_vec(),
            status: "not started".into(),
            stderr: e.to_string(),
        }
    }
}

fn check(argv: &[String], out: Output, ok_if: &[&str]) -> Result<String> {
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() || ok_if.iter().any(|text| stderr.contains(text)) {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    if stderr.contains("Operation not permitted") {
        return Err(ChaosError::Precondition(format!(
            "tc: operation not permitted ({stderr}): run as root, or with CAP_NET_ADMIN in the \
             target network namespace (a debug container with NET_ADMIN)"
        )));
    }
    Err(ChaosError::Command {
        argv: argv.to_vec(),
        status: out.status.to_string(),
        stderr,
    })
}

/// Runs `tc` (blocking: resolve, conclude, cleanup, the guard); `ok_if` lists stderr
/// texts that mean "already so". Returns stdout.
pub fn run_blocking(argv: &[String], ok_if: &[&str]) -> Result<String> {
    let out = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| spawn_error(argv, &e))?;
    check(argv, out, ok_if)
}

/// The async twin of [`run_blocking`]; the child is killed if the future is dropped.
pub async fn run(argv: &[String], ok_if: &[&str]) -> Result<String> {
    let out = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| spawn_error(argv, &e))?;
    check(argv, out, ok_if)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: NetemDelay = NetemDelay {
        latency_ms: 200,
        jitter_ms: 50,
        probability: 100.0,
    };

    #[test]
    fn the_setup_is_exactly_these_commands() {
        assert_eq!(
            root_add("eth0", 0x4c01).join(" "),
            "tc qdisc add dev eth0 root handle 4c01: prio bands 2 priomap 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1"
        );
        assert_eq!(
            netem_add("eth0", 0x4c01, &DELAY).join(" "),
            "tc qdisc add dev eth0 parent 4c01:1 handle 4c02: netem limit 10000 delay 200ms 50ms"
        );
        let hosts = Matches::Hosts {
            addrs: vec![
                Ipv4Addr::new(198, 51, 100, 2),
                Ipv4Addr::new(198, 51, 100, 6),
            ],
            port: Some(6379),
        };
        let filters: Vec<String> = filters_add("eth0", 0x4c01, &hosts)
            .iter()
            .map(|a| a.join(" "))
            .collect();
        assert_eq!(
            filters,
            [
                "tc filter add dev eth0 parent 4c01: protocol ip prio 1 u32 match ip protocol 6 0xff match ip dst 198.51.100.2/32 match ip dport 6379 0xffff flowid 4c01:1",
                "tc filter add dev eth0 parent 4c01: protocol ip prio 1 u32 match ip protocol 6 0xff match ip dst 198.51.100.6/32 match ip dport 6379 0xffff flowid 4c01:1",
            ]
        );
        assert_eq!(
            filters_del("eth0", 0x4c01).join(" "),
            "tc filter del dev eth0 parent 4c01:"
        );
        assert_eq!(
            root_del("eth0", 0x4c01).join(" "),
            "tc qdisc del dev eth0 root handle 4c01:"
        );
    }

    #[test]
    fn everything_is_tcp_of_both_families_and_the_port_narrows_it() {
        let all: Vec<String> = filters_add("eth0", 0x7ffe, &Matches::Everything { port: None })
            .iter()
            .map(|a| a.join(" "))
            .collect();
        assert_eq!(
            all,
            [
                "tc filter add dev eth0 parent 7ffe: protocol ip prio 1 u32 match ip protocol 6 0xff flowid 7ffe:1",
                "tc filter add dev eth0 parent 7ffe: protocol ipv6 prio 2 u32 match ip6 protocol 6 0xff flowid 7ffe:1",
            ]
        );
        let port: Vec<String> =
            filters_add("eth0", 0x4000, &Matches::Everything { port: Some(80) })
                .iter()
                .map(|a| a.join(" "))
                .collect();
        assert!(
            port[0].ends_with("match ip protocol 6 0xff match ip dport 80 0xffff flowid 4000:1")
        );
        assert!(
            port[1].ends_with("match ip6 protocol 6 0xff match ip6 dport 80 0xffff flowid 4000:1")
        );
    }

    #[test]
    fn probability_is_netem_s_reorder_and_jitter_only_when_asked() {
        let table = [
            (0, 0, 100.0, "delay 0ms"),
            (10, 0, 100.0, "delay 10ms"),
            (10, 5, 50.0, "delay 10ms 5ms reorder 50%"),
            (10, 0, 99.5, "delay 10ms reorder 0.5%"),
            (10, 0, 0.01, "delay 10ms reorder 99.99%"),
        ];
        for (latency_ms, jitter_ms, probability, tail) in table {
            let delay = NetemDelay {
                latency_ms,
                jitter_ms,
                probability,
            };
            let argv = netem_add("v0", 0x4000, &delay).join(" ");
            assert!(argv.ends_with(&format!("limit 10000 {tail}")), "{argv}");
        }
    }

    #[test]
    fn run_handles_stay_in_our_range_and_differ_between_runs() {
        let ids = ["a", "t1", "abc123", "20250101-x", "zzzzzzzzzzzzzzzzzzzz"];
        let majors: Vec<u16> = ids.iter().map(|id| root_for(id)).collect();
        for major in &majors {
            assert!((FIRST_ROOT..=LAST_ROOT).contains(major), "{major:x}");
        }
        let mut unique = majors.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), majors.len(), "{majors:x?}");
        assert_eq!(root_for("t1"), root_for("t1"));
    }
}
