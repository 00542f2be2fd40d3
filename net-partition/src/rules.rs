//! The nftables document that applies a partition, built as typed JSON (never as nft
//! syntax text): addresses, prefix lengths and ports go in as values, so no input can
//! change the structure of the rules.

use serde::Serialize;
use serde_json::{Value, json};

use crate::target::Cidr;

/// Every table this tool creates starts with this; `--cleanup` matches on it.
pub use chaos_common::nft::{FAMILY, delete_argv};
pub const SET_V4: &str = "targets4";
pub const SET_V6: &str = "targets6";

pub fn table_name(run_id: &str) -> String {
    chaos_common::nft::table_name(crate::TOOL, run_id)
}

/// Which transport protocols are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    /// Every protocol; with a port, TCP and UDP.
    All,
}

/// What happens to a matched packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Silently discarded: clients time out.
    Drop,
    /// TCP reset for TCP, ICMP port unreachable otherwise: clients fail fast.
    Reject,
}

/// A direction: its chain, hook, counter and which address / port the rules look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Packets from this namespace to the targets (chain `egress`, hook output).
    Egress,
    /// Packets from the targets to this namespace (chain `ingress`, hook input).
    Ingress,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::Egress => "egress",
            Direction::Ingress => "ingress",
        }
    }
    fn hook(self) -> &'static str {
        match self {
            Direction::Egress => "output",
            Direction::Ingress => "input",
        }
    }
    fn addr_field(self) -> &'static str {
        match self {
            Direction::Egress => "daddr",
            Direction::Ingress => "saddr",
        }
    }
    fn port_field(self) -> &'static str {
        match self {
            Direction::Egress => "dport",
            Direction::Ingress => "sport",
        }
    }
}

/// What to cut, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    pub protocol: Protocol,
    pub port: Option<u16>,
    /// 1-100; below 100 a random share of the matching packets is cut.
    pub drop_percent: u8,
    pub verdict: Verdict,
    pub bidirectional: bool,
}

impl RuleSpec {
    pub fn directions(&self) -> Vec<Direction> {
        if self.bidirectional {
            vec![Direction::Egress, Direction::Ingress]
        } else {
            vec![Direction::Egress]
        }
    }
}

/// The whole apply transaction: one table holding the target sets (filled with
/// `elements`), a named counter and a chain per direction, and the rules.
pub fn apply_document(table: &str, spec: &RuleSpec, elements: &[Cidr]) -> Value {
    let t = |kind: &str, body: Value| -> Value {
        let mut body = body;
        body["family"] = json!(FAMILY);
        body["table"] = json!(table);
        json!({ "add": { kind: body } })
    };
    let mut commands = vec![json!({ "create": { "table": { "family": FAMILY, "name": table } } })];
    for (set, kind, v4) in [(SET_V4, "ipv4_addr", true), (SET_V6, "ipv6_addr", false)] {
        commands.push(t(
            "set",
            json!({ "name": set, "type": kind, "flags": ["interval"] }),
        ));
        let elem: Vec<Value> = elements
            .iter()
            .filter(|c| c.is_v4() == v4)
            .map(element)
            .collect();
        if !elem.is_empty() {
            commands.push(t("element", json!({ "name": set, "elem": elem })));
        }
    }
    for direction in spec.directions() {
        let name = direction.name();
        commands.push(t("counter", json!({ "name": name })));
        commands.push(t(
            "chain",
            json!({ "name": name, "type": "filter", "hook": direction.hook(), "prio": 0, "policy": "accept" }),
        ));
        for expr in rule_exprs(spec, direction) {
            commands.push(t("rule", json!({ "chain": name, "expr": expr })));
        }
    }
    json!({ "nftables": commands })
}

fn element(cidr: &Cidr) -> Value {
    if cidr.is_host() {
        json!(cidr.addr.to_string())
    } else {
        json!({ "prefix": { "addr": cidr.addr.to_string(), "len": cidr.len } })
    }
}

fn matches(left: Value, op: &str, right: Value) -> Value {
    json!({ "match": { "op": op, "left": left, "right": right } })
}

fn l4proto(op: &str, right: Value) -> Value {
    matches(json!({ "meta": { "key": "l4proto" } }), op, right)
}

/// The expressions of every rule of one direction's chain.
///
/// Worked example: `-H 198.51.100.1 -p 8080 --protocol all --drop-percent 30 --reject`,
/// egress, gives (as `nft list ruleset` shows them):
///
/// ```text
/// ip daddr @targets4 meta l4proto tcp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject with tcp reset
/// ip daddr @targets4 meta l4proto udp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject
/// ip6 daddr @targets6 meta l4proto tcp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject with tcp reset
/// ip6 daddr @targets6 meta l4proto udp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject
/// ```
///
/// (`reject` alone is `reject with icmpx port-unreachable` in the inet family.) Without
/// `--reject` the protocols fold into one rule per family: `meta l4proto { tcp, udp }
/// th dport 8080 ... drop`. Without a port and `--protocol all`, the TCP rule is followed
/// by `meta l4proto != tcp ... reject`, so no packet rolls the random share twice.
/// Ingress rules match `saddr` and `th sport` instead.
pub fn rule_exprs(spec: &RuleSpec, direction: Direction) -> Vec<Vec<Value>> {
    let mut rules = Vec::new();
    for (proto, set) in [("ip", SET_V4), ("ip6", SET_V6)] {
        let addr = matches(
            json!({ "payload": { "protocol": proto, "field": direction.addr_field() } }),
            "==",
            json!(format!("@{set}")),
        );
        for (l4, verdict) in l4_variants(spec) {
            let mut expr = vec![addr.clone()];
            expr.extend(l4);
            if let Some(port) = spec.port {
                expr.push(matches(
                    json!({ "payload": { "protocol": "th", "field": direction.port_field() } }),
                    "==",
                    json!(port),
                ));
            }
            if spec.drop_percent < 100 {
                expr.push(matches(
                    json!({ "numgen": { "mode": "random", "mod": 100 } }),
                    "<",
                    json!(spec.drop_percent),
                ));
            }
            expr.push(json!({ "counter": direction.name() }));
            expr.push(verdict);
            rules.push(expr);
        }
    }
    rules
}

/// (protocol matches, verdict statement) pairs, one per rule, for one address family.
fn l4_variants(spec: &RuleSpec) -> Vec<(Vec<Value>, Value)> {
    let drop = json!({ "drop": null });
    let reset = json!({ "reject": { "type": "tcp reset" } });
    let unreachable = json!({ "reject": { "type": "icmpx", "expr": "port-unreachable" } });
    let tcp = || l4proto("==", json!("tcp"));
    let udp = || l4proto("==", json!("udp"));
    match (spec.verdict, spec.protocol, spec.port) {
        (Verdict::Drop, Protocol::Tcp, _) => vec![(vec![tcp()], drop)],
        (Verdict::Drop, Protocol::Udp, _) => vec![(vec![udp()], drop)],
        (Verdict::Drop, Protocol::All, None) => vec![(vec![], drop)],
        (Verdict::Drop, Protocol::All, Some(_)) => {
            vec![(vec![l4proto("==", json!({ "set": ["tcp", "udp"] }))], drop)]
        }
        (Verdict::Reject, Protocol::Tcp, _) => vec![(vec![tcp()], reset)],
        (Verdict::Reject, Protocol::Udp, _) => vec![(vec![udp()], unreachable)],
        (Verdict::Reject, Protocol::All, None) => vec![
            (vec![tcp()], reset),
            (vec![l4proto("!=", json!("tcp"))], unreachable),
        ],
        (Verdict::Reject, Protocol::All, Some(_)) => {
            vec![(vec![tcp()], reset), (vec![udp()], unreachable)]
        }
    }
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
