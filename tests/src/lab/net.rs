//! The lab's network: a "node" namespace holding a bridge for the pods and the Service
//! rules, one veth from the host into it (routes for the pod and Service ranges only),
//! and a network namespace per pod on the bridge.
//!
//! ```text
//! host ── c<id> 203.0.113.x+1/30 ═ host0 (node ns) ── lab0 bridge 198.51.100.y+1/26
//!                                                        ├─ p0 ═ eth0 (pod 0) .y+2
//!                                                        └─ p1 ═ eth0 (pod 1) .y+3
//! ```
//!
//! The node namespace forwards (its own sysctl); the host does not. No default route
//! exists anywhere in the lab: lab addresses never leave the machine.

use std::net::Ipv4Addr;

use anyhow::{Context, Result};

use super::cmd::{self, ip_in};
use super::plan::{Plan, cidr};

/// The bridge in the node namespace.
pub const BRIDGE: &str = "lab0";
/// The node's end of the host link.
pub const NODE_LINK: &str = "host0";

/// Creates the node namespace, the bridge, the host link and the host's routes.
/// Undone by [`delete_node`] (also on error here).
pub fn create_node(plan: &Plan) -> Result<()> {
    let result = try_create_node(plan);
    if result.is_err() {
        delete_node(plan);
    }
    result.with_context(|| format!("cannot create the lab node {}", plan.node_ns()))
}

fn try_create_node(plan: &Plan) -> Result<()> {
    let node = plan.node_ns();
    let veth = plan.host_veth();
    let (host_ip, node_ip) = plan.host_link();
    let (_, pod_len) = plan.pod_cidr();
    cmd::run(&["ip", "netns", "add", &node], None)?;
    let batch = format!(
        "link set lo up\n\
         link add {BRIDGE} type bridge\n\
         addr add {gw}/{pod_len} dev {BRIDGE}\n\
         link set {BRIDGE} up\n",
        gw = plan.gateway()
    );
    cmd::run(&["ip", "-n", &node, "-batch", "-"], Some(&batch))?;
    cmd::run(
        &[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", NODE_LINK, "netns", &node,
        ],
        None,
    )?;
    cmd::run(
        &["ip", "addr", "add", &format!("{host_ip}/30"), "dev", &veth],
        None,
    )?;
    cmd::run(&["ip", "link", "set", &veth, "up"], None)?;
    let batch = format!("addr add {node_ip}/30 dev {NODE_LINK}\nlink set {NODE_LINK} up\n");
    cmd::run(&["ip", "-n", &node, "-batch", "-"], Some(&batch))?;
    cmd::in_ns(&node, &["sysctl", "-qw", "net.ipv4.ip_forward=1"], None)?;
    // ClusterIPs are routed to the bridge so that a Service without endpoints reaches the
    // forward hook, where it is rejected (see proxy.rs), instead of "no route".
    ip_in(
        &node,
        &["route", "add", &cidr(plan.service_cidr()), "dev", BRIDGE],
    )?;
    for range in [cidr(plan.pod_cidr()), cidr(plan.service_cidr())] {
        cmd::run(
            &[
                "ip",
                "route",
                "add",
                &range,
                "via",
                &node_ip.to_string(),
                "dev",
                &veth,
            ],
            None,
        )?;
    }
    Ok(())
}

/// Deletes the node namespace (its veth ends and so the host's go with it) and the
/// host's end and routes if still there. Best effort: missing pieces are fine.
pub fn delete_node(plan: &Plan) {
    let _ = cmd::run(&["ip", "netns", "del", &plan.node_ns()], None);
    let _ = cmd::run(&["ip", "link", "del", &plan.host_veth()], None);
}

/// A pod's network: its namespace and its address on the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodNet {
    pub ns: String,
    pub ip: Ipv4Addr,
    /// The node-side veth name (inside the node namespace).
    pub port: String,
}

/// Creates pod `n`'s namespace with `eth0` on the bridge and a default route via the
/// gateway (the node, which routes only to lab ranges).
pub fn create_pod(plan: &Plan, n: u32) -> Result<PodNet> {
    let net = PodNet {
        ns: plan.pod_ns(n),
        ip: plan.pod_ip(n)?,
        port: format!("p{n}"),
    };
    let result = try_create_pod(plan, &net);
    if result.is_err() {
        delete_pod(plan, &net);
    }
    result.with_context(|| format!("cannot create the pod network {}", net.ns))?;
    Ok(net)
}

fn try_create_pod(plan: &Plan, net: &PodNet) -> Result<()> {
    cmd::run(&["ip", "netns", "add", &net.ns], None)?;
    ip_in(
        &plan.node_ns(),
        &[
            "link", "add", &net.port, "type", "veth", "peer", "name", "eth0", "netns", &net.ns,
        ],
    )?;
    ip_in(
        &plan.node_ns(),
        &["link", "set", &net.port, "master", BRIDGE, "up"],
    )?;
    let batch = format!(
        "link set lo up\n\
         addr add {ip}/{len} dev eth0\n\
         link set eth0 up\n\
         route add default via {gw} dev eth0\n",
        ip = net.ip,
        len = plan.pod_cidr().1,
        gw = plan.gateway()
    );
    cmd::run(&["ip", "-n", &net.ns, "-batch", "-"], Some(&batch))?;
    Ok(())
}

/// Deletes a pod's namespace (its veth pair goes with it) and the node's neighbour
/// entry for its address (a later pod with that address has another MAC). Best effort.
pub fn delete_pod(plan: &Plan, net: &PodNet) {
    let _ = cmd::run(&["ip", "netns", "del", &net.ns], None);
    let _ = ip_in(
        &plan.node_ns(),
        &["neigh", "flush", "to", &net.ip.to_string()],
    );
}

/// The network namespaces whose names start with `prefix` (`ip netns list`).
pub fn namespaces_with_prefix(prefix: &str) -> Result<Vec<String>> {
    let listing = cmd::run(&["ip", "netns", "list"], None)?;
    Ok(listing
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| name.starts_with(prefix))
        .map(str::to_owned)
        .collect())
}
