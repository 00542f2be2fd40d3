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
//! the rule lets them through. Ingress, for `--app-port 3000`:
//!
//! ```text
//!     chain ingress {
//!         type nat hook prerouting priority -100; policy accept;
//!         tcp dport 3000 tcp flags & (syn | ack) == syn counter name "redirected" redirect to :41234
//!     }
//! ```
//!
//! The proxy then forwards to 127.0.0.1:3000, which is output traffic, not prerouting.

use std::net::Ipv4Addr;

use serde_json::{Value, json};

pub use chaos_common::nft::{FAMILY, delete_argv};
pub const COUNTER: &str = "redirected";

pub fn table_name(run_id: &str) -> String {
    chaos_common::nft::table_name(crate::TOOL, run_id)
}

/// A socket mark of our own per run (FNV-1a of the run id in the low 16 bits), so two
/// injectors' proxies never excuse each other's connections.
pub fn mark_for(run_id: &str) -> u32 {
    let hash = run_id.bytes().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    0x4c49_0000 | (hash & 0xffff)
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
    /// Inbound connections to the application port.
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

fn nat_chain(table: &str, name: &str, hook: &str) -> Value {
    json!({"add": {"chain": with(table_ref(table), json!({
        "name": name, "type": "nat", "hook": hook, "prio": -100, "policy": "accept"
    }))}})
}

/// The whole transaction that creates the table for `redirect` into `proxy_port`.
pub fn apply_document(table: &str, redirect: &Redirect, proxy_port: u16) -> Value {
    let mut commands = vec![
        json!({"add": {"table": {"family": FAMILY, "name": table}}}),
        json!({"add": {"counter": with(table_ref(table), json!({"name": COUNTER}))}}),
    ];
    let tail = [
        first_syn(),
        json!({"counter": COUNTER}),
        json!({"redirect": {"port": proxy_port}}),
    ];
    let (chain, hook, mut expr) = match redirect {
        Redirect::Egress {
            targets,
            port,
            mark,
        } => {
            let elements: Vec<String> = targets.iter().map(ToString::to_string).collect();
            commands.push(json!({"add": {"set": with(table_ref(table), json!({
                "name": "targets4", "type": "ipv4_addr", "flags": ["interval"]
            }))}}));
            commands.push(json!({"add": {"element": with(table_ref(table), json!({
                "name": "targets4", "elem": elements
            }))}}));
            let mut expr = vec![
                json!({"match": {"op": "!=", "left": {"meta": {"key": "mark"}}, "right": mark}}),
                json!({"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}}, "right": "@targets4"}}),
                json!({"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}),
            ];
            expr.extend(port.map(tcp_dport));
            ("egress", "output", expr)
        }
        Redirect::Ingress { app_port } => ("ingress", "prerouting", vec![tcp_dport(*app_port)]),
    };
    expr.extend(tail);
    commands.push(nat_chain(table, chain, hook));
    commands.push(json!({"add": {"rule": with(table_ref(table), json!({
        "chain": chain, "expr": expr
    }))}}));
    json!({"nftables": commands})
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
    fn ingress_document_redirects_the_app_port_in_prerouting() {
        let doc = apply_document("t", &Redirect::Ingress { app_port: 3000 }, 40000);
        let commands = doc["nftables"].as_array().cloned().unwrap_or_default();
        assert_eq!(commands.len(), 4);
        assert_eq!(commands[2]["add"]["chain"]["hook"], "prerouting");
        let expr = &commands[3]["add"]["rule"]["expr"];
        assert_eq!(expr[0]["match"]["right"], 3000);
        assert_eq!(expr[1]["match"]["right"], "syn");
        assert_eq!(expr[3]["redirect"]["port"], 40000);
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
