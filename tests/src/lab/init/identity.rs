//! Becoming the pod's user: bounding set, groups, uid, capabilities, no_new_privs.
//!
//! Order matters: the bounding set is dropped while CAP_SETPCAP is still held; groups and
//! gid change before the uid (which drops CAP_SETGID); a non-root uid clears the
//! permitted and effective sets by itself (no SECBIT_KEEP_CAPS), so a non-root container
//! has no capabilities at all, whatever `capabilities.add` says, as with containerd
//! (which sets no ambient capabilities). A root process keeps exactly the bounding set,
//! which `execve` then gives it as permitted and effective (file capabilities of root
//! are "all", masked by the bounding set; inheritable is cleared).

use anyhow::{Context, Result};
use caps::{CapSet, Capability, CapsHashSet};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, setgroups, setresgid, setresuid};

use crate::lab::launch::Identity;

pub fn assume(identity: &Identity) -> Result<()> {
    let allowed = parse_caps(&identity.capabilities)?;
    for cap in caps::read(None, CapSet::Bounding).context("read the bounding set")? {
        if !allowed.contains(&cap) {
            caps::drop(None, CapSet::Bounding, cap)
                .with_context(|| format!("drop {cap} from the bounding set"))?;
        }
    }
    caps::clear(None, CapSet::Inheritable).context("clear the inheritable set")?;
    caps::clear(None, CapSet::Ambient).context("clear the ambient set")?;
    let groups: Vec<Gid> = identity.groups.iter().copied().map(Gid::from_raw).collect();
    setgroups(&groups).context("setgroups")?;
    let gid = Gid::from_raw(identity.gid);
    setresgid(gid, gid, gid).with_context(|| format!("setresgid {gid}"))?;
    let uid = Uid::from_raw(identity.uid);
    setresuid(uid, uid, uid).with_context(|| format!("setresuid {uid}"))?;
    if uid.is_root() {
        caps::set(None, CapSet::Effective, &allowed).context("set effective capabilities")?;
        caps::set(None, CapSet::Permitted, &allowed).context("set permitted capabilities")?;
    }
    // After the uid change, which clears the parent-death signal.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).context("PR_SET_PDEATHSIG")?;
    if identity.no_new_privs {
        nix::sys::prctl::set_no_new_privs().context("PR_SET_NO_NEW_PRIVS")?;
    }
    Ok(())
}

fn parse_caps(names: &[String]) -> Result<CapsHashSet> {
    names
        .iter()
        .map(|n| {
            n.parse::<Capability>()
                .map_err(|e| anyhow::anyhow!("unknown capability {n}: {e}"))
        })
        .collect()
}
