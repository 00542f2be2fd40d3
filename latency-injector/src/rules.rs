//! nftables rule builders for the transparent modes: one table per run, family `inet`,
//! named `chaos-latency-injector-<run id>`, applied as ONE `nft -j -f -` transaction.
//!
//! Egress, for `--target 198.51.100.2:6379` with the proxy on port 41234 and mark 0x4c49a1b2:
//!
//! ```text
//! table inet chaos-latency-injector-RUN {
//!     counter redirected { }
//!     set targets4 { type ipv4_addr; flags interval; elements = { 198.51.100.2 } }
//!     chain egress {
//!         type nat hook output priority -100; policy accept;
//!         meta mark != 0x4c49a1b2 ip daddr @targets4 meta l4proto tcp tcp dport 6379
//!             tcp flags & (syn | ack) == syn counter name "redirected" redirect to :41234
//!     }
//! }
//! ```
//!
//! The proxy's own connections to the original destination carry the mark (SO_MARK), so
//! the rule lets them through. At the end the set of targets is flushed first ([`stop_document`]):
//! new connections go direct at once, while the rule (and its `redirect`) stays until the
//! drain is over. Connections already redirected depend on it: their NAT binding lives in
//! conntrack, and conntrack and NAT stop tracking a namespace's connections when the last
//! expression that needs them goes (measured: an established redirected connection is
//! reset on its next packet once the table, or just its rule, is deleted).
//!
//! Ingress, for `--app-port 3000` with the proxy on 127.0.0.1:41234 (TPROXY, no NAT):
//!
//! ```text
//!     chain ingress {
//!         type filter hook prerouting priority mangle; policy accept;
//!         iifname != "lo" meta nfproto ipv4 tcp dport 3000 tcp flags & (syn | ack) == syn
//!             counter name "redirected" tproxy ip to 127.0.0.1:41234
//!     }
//! ```
//!
//! `tproxy` hands the SYN to the proxy's transparent listener without rewriting it: the
//! proxy sees the client's address and the original destination as they are, and once
//! accepted the connection is an ordinary local socket, so deleting the table at the end
//! leaves it working (new connections then reach the application). Loopback traffic is
//! not caught: the proxy's own connections to the application arrive there, and local
//! clients were never the point. IPv6 clients are not caught either (the proxy listens on
//! IPv4): they reach the application directly, undelayed.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

pub use chaos_common::nft::{FAMILY, delete_argv};
pub const COUNTER: &str = "redirected";
const TARGETS: &str = "targets4";

pub fn table_name(run_id: &str) -> String {
    chaos_common::nft::table_name(crate::TOOL, run_id)
}

/// A socket mark of our own per run (FNV-1a of the run id in the low 16 bits), so two
/// injectors' proxies never excuse each other's connections.
pub fn mark_for(run_id: &str) -> u32 {
    0x4c49_0000 | (fnv1a(run_id) & 0xffff)
}

/// FNV-1a (32 bits) of the run id: the per-run numbers (marks, routing tables, qdisc
/// handles) are derived from it.
pub fn fnv1a(run_id: &str) -> u32 {
    run_id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Where connections are caught.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// Outbound connections to these addresses (and port, if any).
    Egress {
        targets: Vec<Ipv4Addr>,
        port: Option<u16>,
        mark: u32,
    },
    /// Inbound IPv4 connections to the application port (TPROXY).
    Ingress { app_port: u16 },
}

fn table_ref(table: &str) -> Value {
    json!({"family": FAMILY, "table": table})
}

fn with(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

fn tcp_dport(port: u16) -> Value {
    json!({"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": port}})
}

/// `tcp flags & (syn | ack) == syn`: only a connection's first packet. Without it, a
/// connection opened before the table existed, whose next packet conntrack picks up as
/// "new", would be redirected mid-stream into the proxy and reset.
fn first_syn() -> Value {
    json!({"match": {"op": "==", "left": {"&": [
        {"payload": {"protocol": "tcp", "field": "flags"}}, ["syn", "ack"]
    ]}, "right": "syn"}})
}

fn chain(table: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": with(table_ref(table), json!({
        "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"
    }))}})
}

fn meta_eq(key: &str, op: &str, right: Value) -> Value {
    json!({"match": {"op": op, "left": {"meta": {"key": key}}, "right": right}})
}

/// The whole transaction that creates the table for `redirect` into `proxy_port`.
pub fn apply_document(table: &str, redirect: &Redirect, proxy_port: u16) -> Value {
    let mut commands = vec![
        json!({"add": {"table": {"family": FAMILY, "name": table}}}),
        json!({"add": {"counter": with(table_ref(table), json!({"name": COUNTER}))}}),
    ];
    let (name, expr) = match redirect {
        Redirect::Egress {
            targets,
            port,
            mark,
        } => {
            let elements: Vec<String> = targets.iter().map(ToString::to_string).collect();
            commands.push(json!({"add": {"set": with(table_ref(table), json!({
                "name": TARGETS, "type": "ipv4_addr", "flags": ["interval"]
            }))}}));
            commands.push(json!({"add": {"element": with(table_ref(table), json!({
                "name": TARGETS, "elem": elements
            }))}}));
            commands.push(chain(table, "egress", "nat", "output", -100));
            let mut expr = vec![
                meta_eq("mark", "!=", json!(mark)),
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": format!("@{TARGETS}")}}),
                meta_eq("l4proto", "==", json!("tcp")),
            ];
            expr.extend(port.map(tcp_dport));
            expr.extend([
                first_syn(),
                json!({"counter": COUNTER}),
                json!({"redirect": {"port": proxy_port}}),
            ]);
            ("egress", expr)
        }
        Redirect::Ingress { app_port } => {
            commands.push(chain(table, "ingress", "filter", "prerouting", -150));
            let expr = vec![
                meta_eq("iifname", "!=", json!("lo")),
                meta_eq("nfproto", "==", json!("ipv4")),
                meta_eq("l4proto", "==", json!("tcp")),
                tcp_dport(*app_port),
                first_syn(),
                json!({"counter": COUNTER}),
                json!({"tproxy": {"family": "ip", "addr": "127.0.0.1", "port": proxy_port}}),
            ];
            ("ingress", expr)
        }
    };
    commands.push(json!({"add": {"rule": with(table_ref(table), json!({
        "chain": name, "expr": expr
    }))}}));
    json!({"nftables": commands})
}

/// The first step of the end, where the table must outlive it: egress empties its set
/// of targets (new connections go direct; redirected ones keep their NAT until the
/// table goes). Ingress needs none: its table is deleted at once.
pub fn stop_document(table: &str, redirect: &Redirect) -> Option<Value> {
    match redirect {
        Redirect::Egress { .. } => Some(json!({"nftables": [
            {"flush": {"set": with(table_ref(table), json!({"name": TARGETS}))}}
        ]})),
        Redirect::Ingress { .. } => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn egress_document_redirects_only_unmarked_tcp_to_the_targets() {
        let redirect = Redirect::Egress {
            targets: vec![Ipv4Addr::new(198, 51, 100, 2)],
            port: Some(6379),
            mark: 0x4c49_0001,
        };
        let doc = apply_document("chaos-latency-injector-r1", &redirect, 41234);
        let commands = doc["nftables"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            commands[0]["add"]["table"]["name"],
            "chaos-latency-injector-r1"
        );
        assert_eq!(commands[3]["add"]["element"]["elem"][0], "198.51.100.2");
        let chain = &commands[4]["add"]["chain"];
        assert_eq!(
            (chain["type"].as_str(), chain["hook"].as_str()),
            (Some("nat"), Some("output"))
        );
        let expr = &commands[5]["add"]["rule"]["expr"];
        assert_eq!(expr[0]["match"]["op"], "!=");
        assert_eq!(expr[0]["match"]["right"], 0x4c49_0001);
        assert_eq!(expr[3]["match"]["right"], 6379);
        assert_eq!(expr[4]["match"]["right"], "syn");
        assert_eq!(expr[6]["redirect"]["port"], 41234);
        assert_eq!(commands.len(), 6);
    }

    #[test]
    fn egress_without_port_catches_every_tcp_port() {
        let redirect = Redirect::Egress {
            targets: vec![Ipv4Addr::new(10, 0, 0, 1)],
            port: None,
            mark: 1,
        };
        let doc = apply_document("t", &redirect, 1);
        let expr = doc["nftables"][5]["add"]["rule"]["expr"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(expr.len(), 6);
        assert!(!doc.to_string().contains("dport"));
    }

    #[test]
    fn ingress_document_hands_outside_ipv4_syns_to_the_transparent_proxy() {
        let doc = apply_document("t", &Redirect::Ingress { app_port: 3000 }, 40000);
        let commands = doc["nftables"].as_array().cloned().unwrap_or_default();
        assert_eq!(commands.len(), 4);
        let chain = &commands[2]["add"]["chain"];
        assert_eq!(
            (chain["type"].as_str(), chain["hook"].as_str()),
            (Some("filter"), Some("prerouting"))
        );
        assert_eq!(chain["prio"], -150);
        let expr = &commands[3]["add"]["rule"]["expr"];
        assert_eq!(expr[0]["match"]["left"]["meta"]["key"], "iifname");
        assert_eq!(expr[0]["match"]["op"], "!=");
        assert_eq!(expr[1]["match"]["right"], "ipv4");
        assert_eq!(expr[3]["match"]["right"], 3000);
        assert_eq!(expr[4]["match"]["right"], "syn");
        assert_eq!(
            expr[6]["tproxy"],
            json!({"family": "ip", "addr": "127.0.0.1", "port": 40000})
        );
        assert!(!doc.to_string().contains("redirect\":"));
    }

    #[test]
    fn the_end_of_egress_empties_the_targets_and_keeps_the_rule() {
        let redirect = Redirect::Egress {
            targets: vec![Ipv4Addr::new(198, 51, 100, 2)],
            port: None,
            mark: 1,
        };
        let doc = stop_document("t", &redirect).unwrap_or_default();
        assert_eq!(
            doc,
            json!({"nftables": [{"flush": {"set": {"family": "inet", "table": "t", "name": "targets4"}}}]})
        );
        assert!(stop_document("t", &Redirect::Ingress { app_port: 1 }).is_none());
    }

    #[test]
    fn marks_differ_per_run_and_stay_in_our_range() {
        let (a, b) = (mark_for("run-a"), mark_for("run-b"));
        assert_ne!(a, b);
        assert_eq!(a & 0xffff_0000, 0x4c49_0000);
        assert_eq!(mark_for("run-a"), a);
    }

    #[test]
    fn table_names_carry_the_prefix() {
        assert_eq!(table_name("abc"), "chaos-latency-injector-abc");
        assert_eq!(delete_argv("x"), ["nft", "delete", "table", "inet", "x"]);
    }
}
