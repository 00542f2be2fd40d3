//! Names and addresses of one lab instance.
//!
//! Several labs can run at once (parallel test binaries): each holds one of [`SLOTS`]
//! slots through an exclusive lock on `/run/chaos-lab/slot-N.lock` for its lifetime, and
//! the slot picks its address ranges, so host routes of two labs never overlap:
//!
//! | slot N | pods (bridge, gateway .1) | Service ClusterIPs | host <-> node link |
//! |---|---|---|---|
//! | 0 | 198.51.100.0/26 | 203.0.113.0/27 | 203.0.113.128/30 |
//! | 1 | 198.51.100.64/26 | 203.0.113.32/27 | 203.0.113.132/30 |
//! | 2 | 198.51.100.128/26 | 203.0.113.64/27 | 203.0.113.136/30 |
//! | 3 | 198.51.100.192/26 | 203.0.113.96/27 | 203.0.113.140/30 |
//!
//! Documentation ranges only (TEST-NET-2 and TEST-NET-3), routed from the host to the
//! lab's node namespace and nowhere else. Every name carries the lab id `l<pid>` (the
//! pid of the process that owns the lab), so leftovers of a dead lab can be found.

use std::fs::File;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::fcntl::{Flock, FlockArg};

/// How many labs can run at once on one machine.
pub const SLOTS: u8 = 4;
/// Where every lab keeps its state, one directory per lab id.
pub const STATE_ROOT: &str = "/run/chaos-lab";

/// The plan of one lab: its id, slot and derived names and ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `l<pid>`.
    pub id: String,
    pub slot: u8,
}

impl Plan {
    pub fn new(pid: u32, slot: u8) -> Plan {
        Plan {
            id: format!("l{pid}"),
            slot,
        }
    }

    /// The lab "node": bridge, Service rules and the host link live in this namespace.
    pub fn node_ns(&self) -> String {
        format!("chaos-{}-node", self.id)
    }

    /// Pod `n`'s network namespace.
    pub fn pod_ns(&self, n: u32) -> String {
        format!("chaos-{}-p{n}", self.id)
    }

    /// The prefix of every network namespace of this lab.
    pub fn ns_prefix(&self) -> String {
        format!("chaos-{}-", self.id)
    }

    /// The host's end of the host <-> node veth (at most 15 characters).
    pub fn host_veth(&self) -> String {
        format!("c{}", self.id)
    }

    /// The cgroup directory name under each hierarchy's root.
    pub fn cgroup_name(&self) -> String {
        format!("chaos-lab-{}", self.id)
    }

    pub fn state_dir(&self) -> PathBuf {
        PathBuf::from(STATE_ROOT).join(&self.id)
    }

    /// The pod range: `(network, prefix length)`.
    pub fn pod_cidr(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(198, 51, 100, 64 * self.slot), 26)
    }

    /// The bridge's address, every pod's default gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(198, 51, 100, 64 * self.slot + 1)
    }

    /// Pod IP number `n` (0-based): .2 to .62 of the pod range.
    pub fn pod_ip(&self, n: u32) -> Result<Ipv4Addr> {
        if n > 60 {
            bail!("the lab's pod range holds 61 pods; delete some pods first");
        }
        Ok(Ipv4Addr::new(198, 51, 100, 64 * self.slot + 2 + n as u8))
    }

    pub fn service_cidr(&self) -> (Ipv4Addr, u8) {
        (Ipv4Addr::new(203, 0, 113, 32 * self.slot), 27)
    }

    /// ClusterIP number `n` (0-based): .1 to .30 of the Service range.
    pub fn service_ip(&self, n: u32) -> Result<Ipv4Addr> {
        if n > 29 {
            bail!("the lab's Service range holds 30 Services");
        }
        Ok(Ipv4Addr::new(203, 0, 113, 32 * self.slot + 1 + n as u8))
    }

    /// `(host end, node end)` of the host <-> node link (a /30).
    pub fn host_link(&self) -> (Ipv4Addr, Ipv4Addr) {
        let base = 128 + 4 * self.slot;
        (
            Ipv4Addr::new(203, 0, 113, base + 1),
            Ipv4Addr::new(203, 0, 113, base + 2),
        )
    }
}

/// `a.b.c.d/len` as `ip` and nft write it.
pub fn cidr((net, len): (Ipv4Addr, u8)) -> String {
    format!("{net}/{len}")
}

/// An exclusive hold on one lab slot, released when dropped (or when the process dies).
#[derive(Debug)]
pub struct SlotLock {
    pub slot: u8,
    _lock: Flock<File>,
}

impl SlotLock {
    /// The first free slot, waiting up to `wait` for one.
    pub fn acquire(wait: Duration) -> Result<SlotLock> {
        std::fs::create_dir_all(STATE_ROOT)
            .with_context(|| format!("cannot create {STATE_ROOT}"))?;
        let deadline = Instant::now() + wait;
        loop {
            for slot in 0..SLOTS {
                let path = PathBuf::from(STATE_ROOT).join(format!("slot-{slot}.lock"));
                let file = File::create(&path)
                    .with_context(|| format!("cannot open {}", path.display()))?;
                if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    // The file may have been removed (`remove_idle_slots`) between our
                    // open and our lock: only a lock on the file at the path counts.
                    if same_file(&lock, &path) {
                        return Ok(SlotLock { slot, _lock: lock });
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "all {SLOTS} lab slots are in use (other labs are running: `scripts/lab.sh status`)"
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn same_file(lock: &Flock<File>, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (lock.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
        _ => false,
    }
}

/// Removes the slot lock files no lab holds (each unlinked while we hold its lock), and
/// the state directory when nothing else is left in it. What `lab.sh down` calls last.
pub fn remove_idle_slots() {
    for slot in 0..SLOTS {
        let path = PathBuf::from(STATE_ROOT).join(format!("slot-{slot}.lock"));
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if let Ok(lock) = Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            if same_file(&lock, &path) {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    let _ = std::fs::remove_dir(STATE_ROOT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_have_disjoint_ranges_inside_the_documentation_networks() {
        let plans: Vec<Plan> = (0..SLOTS).map(|s| Plan::new(100, s)).collect();
        for (i, p) in plans.iter().enumerate() {
            assert_eq!(p.pod_cidr().0.octets()[..3], [198, 51, 100]);
            assert_eq!(p.service_cidr().0.octets()[..3], [203, 0, 113]);
            assert_eq!(p.gateway().octets()[3], p.pod_cidr().0.octets()[3] + 1);
            for q in &plans[i + 1..] {
                assert_ne!(p.pod_cidr(), q.pod_cidr());
                assert_ne!(p.service_cidr(), q.service_cidr());
                assert_ne!(p.host_link(), q.host_link());
            }
            // Link addresses are above every Service range.
            assert!(p.host_link().0.octets()[3] >= 128);
        }
    }

    #[test]
    fn pod_and_service_numbers_stay_inside_their_ranges() {
        let p = Plan::new(7, 3);
        assert_eq!(p.pod_ip(0).unwrap(), Ipv4Addr::new(198, 51, 100, 194));
        assert_eq!(p.pod_ip(60).unwrap(), Ipv4Addr::new(198, 51, 100, 254));
        assert!(p.pod_ip(61).is_err());
        assert_eq!(p.service_ip(29).unwrap(), Ipv4Addr::new(203, 0, 113, 126));
        assert!(p.service_ip(30).is_err());
    }

    #[test]
    fn interface_names_fit_the_kernel_limit() {
        let p = Plan::new(4_194_304, 0);
        assert!(p.host_veth().len() <= 15, "{}", p.host_veth());
    }
}
