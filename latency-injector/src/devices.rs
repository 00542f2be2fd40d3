//! Which interfaces the netem engine goes on: for targets, the interface of the route to
//! each (`ip -j -4 route get ADDR`); without a target, every interface that is up except
//! loopback (`ip -j link show`), since every connection leaving the namespace leaves
//! through one of them. Each interface's root qdisc is read too (`tc -j qdisc show dev`),
//! because the engine only goes where the root is the kernel's default.

use std::net::Ipv4Addr;
use std::process::Command;

use chaos_common::{ChaosError, Result};
use serde_json::Value;

use crate::qdiscs::{self, Root};
use crate::tc;

/// An interface and what sits at its root now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub name: String,
    pub root: Root,
}

/// The interface of a route lookup, or None when the address is local to this
/// namespace (its packets never leave through an interface).
pub fn route_device(listing: &Value) -> Option<String> {
    let route = listing.as_array()?.first()?;
    if route["type"] == "local" || route["dev"] == "lo" {
        return None;
    }
    route["dev"].as_str().map(str::to_owned)
}

/// The interfaces of `ip -j link show` that are up and not loopback.
pub fn egress_links(listing: &Value) -> Vec<String> {
    listing
        .as_array()
        .into_iter()
        .flatten()
        .filter(|link| link["link_type"] != "loopback")
        .filter(|link| {
            link["flags"]
                .as_array()
                .is_some_and(|flags| flags.iter().any(|f| f == "UP"))
        })
        .filter_map(|link| link["ifname"].as_str().map(str::to_owned))
        .collect()
}

fn ip_json(args: &[&str]) -> Result<Value> {
    let argv: Vec<String> = std::iter::once("ip")
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect();
    let out = Command::new("ip").args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ChaosError::Precondition(
                "`ip` (iproute2) not found: the netem engine reads routes and links with it".into(),
            )
        } else {
            ChaosError::Command {
                argv: argv.clone(),
                status: "not started".into(),
                stderr: e.to_string(),
            }
        }
    })?;
    if !out.status.success() {
        return Err(ChaosError::Command {
            argv,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    serde_json::from_slice(&out.stdout)
        .map_err(|e| ChaosError::fault(format!("`{}` printed invalid JSON: {e}", argv.join(" "))))
}

/// The interfaces the routes to `addrs` leave through (each once, in order).
pub fn for_targets(addrs: &[Ipv4Addr]) -> Result<Vec<String>> {
    let mut devices: Vec<String> = Vec::new();
    for addr in addrs {
        let text = addr.to_string();
        let listing = ip_json(&["-j", "-4", "route", "get", &text]).map_err(|e| {
            ChaosError::Precondition(format!("no route to target {addr} here: {e}"))
        })?;
        let Some(dev) = route_device(&listing) else {
            return Err(ChaosError::Precondition(format!(
                "target {addr} is an address of this network namespace: its traffic never \
                 leaves through an interface, so netem cannot delay it (--engine proxy can)"
            )));
        };
        if !devices.contains(&dev) {
            devices.push(dev);
        }
    }
    Ok(devices)
}

/// Every interface that is up, except loopback.
pub fn every_egress() -> Result<Vec<String>> {
    let devices = egress_links(&ip_json(&["-j", "link", "show"])?);
    if devices.is_empty() {
        return Err(ChaosError::Precondition(
            "no interface but loopback is up in this network namespace: nothing leaves it".into(),
        ));
    }
    Ok(devices)
}

/// Reads the root qdisc of each interface.
pub fn with_roots(names: Vec<String>) -> Result<Vec<Device>> {
    names
        .into_iter()
        .map(|name| {
            let text = tc::run_blocking(&tc::stats(&name), &[])?;
            let listing: Value = serde_json::from_str(&text).map_err(|e| {
                ChaosError::fault(format!("tc printed invalid JSON for {name}: {e}"))
            })?;
            Ok(Device {
                root: qdiscs::root_of(&listing),
                name,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn routes_name_their_interface_unless_local() {
        let via = json!([{"dst": "198.51.100.2", "dev": "eth0", "prefsrc": "198.51.100.1", "flags": [], "uid": 0, "cache": []}]);
        assert_eq!(route_device(&via).as_deref(), Some("eth0"));
        let gateway = json!([{"dst": "203.0.113.9", "gateway": "10.0.0.1", "dev": "ens5"}]);
        assert_eq!(route_device(&gateway).as_deref(), Some("ens5"));
        let local = json!([{"type": "local", "dst": "198.51.100.1", "dev": "lo"}]);
        assert_eq!(route_device(&local), None);
        assert_eq!(route_device(&json!([])), None);
    }

    #[test]
    fn egress_is_every_up_interface_but_loopback() {
        let links = json!([
            {"ifindex": 1, "ifname": "lo", "flags": ["LOOPBACK", "UP", "LOWER_UP"], "link_type": "loopback"},
            {"ifindex": 2, "ifname": "tunl0", "flags": ["NOARP"], "link_type": "ipip"},
            {"ifindex": 3, "ifname": "eth0", "link": "if9", "flags": ["BROADCAST", "MULTICAST", "UP", "LOWER_UP"], "link_type": "ether"},
            {"ifindex": 4, "ifname": "eth1", "flags": ["BROADCAST", "UP"], "link_type": "ether"},
        ]);
        assert_eq!(egress_links(&links), ["eth0", "eth1"]);
    }
}
