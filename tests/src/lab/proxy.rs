//! Service routing, as kube-proxy's nftables mode does it: one nftables table
//! (`ip chaos-lab`) in the lab's node namespace, replaced atomically whenever Services or
//! their Ready endpoints change.
//!
//! For a Service `lomash-wood/redis` at 203.0.113.1:6379 with two Ready endpoints:
//!
//! ```text
//! chain services { ip daddr 203.0.113.1 tcp dport 6379 jump svc-0 comment "lomash-wood/redis:6379" }
//! chain svc-0 { numgen random mod 2 vmap { 0 : jump ep-0-0, 1 : jump ep-0-1 } }
//! chain ep-0-0 { meta l4proto tcp dnat to 198.51.100.2:6379 }
//! chain ep-0-1 { meta l4proto tcp dnat to 198.51.100.3:6379 }
//! ```
//!
//! Each new connection picks one Ready endpoint at random (conntrack keeps it there).
//! A Service with no Ready endpoint is rejected (TCP reset: "connection refused"), as
//! kube-proxy does. A pod reaching its own Service through the node is masqueraded to
//! the gateway ("hairpin"), so the reply comes back through the node and is un-NATed.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use anyhow::{Context, Result};

use super::cmd;
use super::net::BRIDGE;
use super::plan::{Plan, cidr};

/// The lab's nftables table (in the node namespace, which only the lab uses).
pub const TABLE: &str = "chaos-lab";

/// One Service port and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `namespace/name:port`, for the rule comments.
    pub label: String,
    pub cluster_ip: Ipv4Addr,
    /// `tcp` or `udp`.
    pub protocol: &'static str,
    pub port: u16,
    /// The Ready endpoints: (pod IP, target port).
    pub endpoints: Vec<(Ipv4Addr, u16)>,
}

/// The whole table for `routes` (pure).
pub fn ruleset(plan: &Plan, routes: &[Route]) -> String {
    let mut out = String::new();
    // Create-then-delete makes the replacement atomic and valid when none exists yet.
    let _ = writeln!(
        out,
        "table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{"
    );
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority dstnat; policy accept;\n    jump services\n  }\n",
    );
    let _ = writeln!(
        out,
        "  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n    \
         ip saddr {pods} ct status dnat oifname \"{BRIDGE}\" masquerade\n  }}",
        pods = cidr(plan.pod_cidr())
    );
    let _ = writeln!(
        out,
        "  chain forward {{\n    type filter hook forward priority filter; policy accept;\n    \
         ip daddr {svc} meta l4proto tcp reject with tcp reset\n    ip daddr {svc} reject\n  }}",
        svc = cidr(plan.service_cidr())
    );
    out.push_str("  chain services {\n");
    for (i, r) in routes.iter().enumerate() {
        if r.endpoints.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "    ip daddr {} {} dport {} jump svc-{i} comment \"{}\"",
            r.cluster_ip,
            r.protocol,
            r.port,
            r.label.replace('"', "")
        );
    }
    out.push_str("  }\n");
    for (i, r) in routes.iter().enumerate() {
        if r.endpoints.is_empty() {
            continue;
        }
        let arms: Vec<String> = (0..r.endpoints.len())
            .map(|j| format!("{j} : jump ep-{i}-{j}"))
            .collect();
        let _ = writeln!(
            out,
            "  chain svc-{i} {{\n    numgen random mod {} vmap {{ {} }}\n  }}",
            r.endpoints.len(),
            arms.join(", ")
        );
        for (j, (ip, port)) in r.endpoints.iter().enumerate() {
            let _ = writeln!(
                out,
                "  chain ep-{i}-{j} {{\n    meta l4proto {} dnat to {ip}:{port}\n  }}",
                r.protocol
            );
        }
    }
    out.push_str("}\n");
    out
}

/// Replaces the node's table with the rules for `routes`.
pub fn apply(plan: &Plan, routes: &[Route]) -> Result<()> {
    let rules = ruleset(plan, routes);
    cmd::in_ns(&plan.node_ns(), &["nft", "-f", "-"], Some(&rules))
        .with_context(|| format!("cannot load the Service rules into {}", plan.node_ns()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn route(endpoints: Vec<(Ipv4Addr, u16)>) -> Route {
        Route {
            label: "lomash-wood/redis:6379".into(),
            cluster_ip: Ipv4Addr::new(203, 0, 113, 1),
            protocol: "tcp",
            port: 6379,
            endpoints,
        }
    }

    #[test]
    fn two_endpoints_spread_by_random_numgen() {
        let plan = Plan::new(1, 0);
        let text = ruleset(
            &plan,
            &[route(vec![
                (Ipv4Addr::new(198, 51, 100, 2), 6379),
                (Ipv4Addr::new(198, 51, 100, 3), 6380),
            ])],
        );
        assert!(text.contains(
            "ip daddr 203.0.113.1 tcp dport 6379 jump svc-0 comment \"lomash-wood/redis:6379\""
        ));
        assert!(text.contains("numgen random mod 2 vmap { 0 : jump ep-0-0, 1 : jump ep-0-1 }"));
        assert!(text.contains("meta l4proto tcp dnat to 198.51.100.3:6380"));
        assert!(
            text.contains("ip saddr 198.51.100.0/26 ct status dnat oifname \"lab0\" masquerade")
        );
    }

    #[test]
    fn a_service_without_ready_endpoints_gets_no_dnat_and_is_rejected() {
        let plan = Plan::new(1, 0);
        let text = ruleset(&plan, &[route(vec![])]);
        assert!(!text.contains("svc-0"));
        assert!(text.contains("ip daddr 203.0.113.0/27 meta l4proto tcp reject with tcp reset"));
    }
}
