//! Table tests for the rule builder: each case renders the JSON rules the way
//! `nft list ruleset` prints them, so the cases read like rules.

use super::*;
use crate::target::parse_cidr;

fn render(expr: &[Value]) -> String {
    crate::render::rule(expr)
}

fn spec(protocol: Protocol, port: Option<u16>, drop_percent: u8, verdict: Verdict) -> RuleSpec {
    RuleSpec {
        protocol,
        port,
        drop_percent,
        verdict,
        bidirectional: false,
    }
}

fn v4_rules(spec: &RuleSpec, direction: Direction) -> Vec<String> {
    rule_exprs(spec, direction)
        .iter()
        .map(|r| render(r))
        .filter(|r| r.starts_with("ip daddr") || r.starts_with("ip saddr"))
        .collect()
}

#[test]
fn rules_for_each_combination() {
    use Protocol::*;
    use Verdict::*;
    let cases: Vec<(RuleSpec, Direction, Vec<&str>)> = vec![
        (
            spec(All, None, 100, Drop),
            Direction::Egress,
            vec![r#"ip daddr @targets4 counter name "egress" drop"#],
        ),
        (
            spec(Tcp, Some(8080), 100, Drop),
            Direction::Egress,
            vec![r#"ip daddr @targets4 meta l4proto tcp th dport 8080 counter name "egress" drop"#],
        ),
        (
            spec(All, Some(53), 50, Drop),
            Direction::Egress,
            vec![
                r#"ip daddr @targets4 meta l4proto { tcp, udp } th dport 53 numgen random mod 100 < 50 counter name "egress" drop"#,
            ],
        ),
        (
            spec(Udp, None, 100, Reject),
            Direction::Egress,
            vec![
                r#"ip daddr @targets4 meta l4proto udp counter name "egress" reject with icmpx port-unreachable"#,
            ],
        ),
        (
            spec(All, None, 100, Reject),
            Direction::Egress,
            vec![
                r#"ip daddr @targets4 meta l4proto tcp counter name "egress" reject with tcp reset"#,
                r#"ip daddr @targets4 meta l4proto != tcp counter name "egress" reject with icmpx port-unreachable"#,
            ],
        ),
        (
            spec(All, Some(8080), 30, Reject),
            Direction::Egress,
            vec![
                r#"ip daddr @targets4 meta l4proto tcp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject with tcp reset"#,
                r#"ip daddr @targets4 meta l4proto udp th dport 8080 numgen random mod 100 < 30 counter name "egress" reject with icmpx port-unreachable"#,
            ],
        ),
        (
            spec(Tcp, Some(8080), 100, Drop),
            Direction::Ingress,
            vec![
                r#"ip saddr @targets4 meta l4proto tcp th sport 8080 counter name "ingress" drop"#,
            ],
        ),
    ];
    for (spec, direction, expected) in cases {
        assert_eq!(
            v4_rules(&spec, direction),
            expected,
            "{spec:?} {direction:?}"
        );
    }
}

#[test]
fn every_rule_has_an_ipv6_twin() {
    let spec = spec(Protocol::All, None, 100, Verdict::Reject);
    let rules: Vec<String> = rule_exprs(&spec, Direction::Egress)
        .iter()
        .map(|r| render(r))
        .collect();
    assert_eq!(rules.len(), 4);
    assert!(
        rules[2].starts_with("ip6 daddr @targets6 meta l4proto tcp"),
        "{rules:?}"
    );
}

#[test]
fn document_has_one_table_and_only_owned_objects() {
    let elements = [
        parse_cidr("198.51.100.0/30").unwrap_or_else(|e| panic!("{e}")),
        parse_cidr("2001:db8::1/128").unwrap_or_else(|e| panic!("{e}")),
    ];
    let mut spec = spec(Protocol::Tcp, Some(80), 100, Verdict::Drop);
    spec.bidirectional = true;
    let doc = apply_document("chaos-net-partition-t1", &spec, &elements);
    let commands = doc["nftables"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        commands[0],
        json!({"create": {"table": {"family": "inet", "name": "chaos-net-partition-t1"}}})
    );
    for command in &commands[1..] {
        let add = command["add"]
            .as_object()
            .unwrap_or_else(|| panic!("not an add: {command}"));
        let body = add.values().next().unwrap_or_else(|| panic!("empty add"));
        assert_eq!(body["table"], "chaos-net-partition-t1");
        assert_eq!(body["family"], "inet");
    }
    let kinds: Vec<&str> = commands[1..]
        .iter()
        .filter_map(|c| {
            c["add"]
                .as_object()
                .and_then(|o| o.keys().next())
                .map(String::as_str)
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "set", "element", "set", "element", "counter", "chain", "rule", "rule", "counter",
            "chain", "rule", "rule"
        ]
    );
    assert_eq!(
        commands[2]["add"]["element"]["elem"][0],
        json!({"prefix": {"addr": "198.51.100.0", "len": 30}})
    );
    assert_eq!(
        commands[4]["add"]["element"]["elem"][0],
        json!("2001:db8::1")
    );
    assert_eq!(commands[10]["add"]["chain"]["hook"], "input");
}

#[test]
fn empty_family_gets_a_set_but_no_elements() {
    let elements = [parse_cidr("198.51.100.4/32").unwrap_or_else(|e| panic!("{e}"))];
    let doc = apply_document(
        "chaos-net-partition-t2",
        &spec(Protocol::All, None, 100, Verdict::Drop),
        &elements,
    );
    let elements = doc["nftables"]
        .as_array()
        .map(|c| {
            c.iter()
                .filter(|c| c["add"].get("element").is_some())
                .count()
        })
        .unwrap_or_default();
    assert_eq!(elements, 1);
}

#[test]
fn delete_is_exactly_our_table() {
    assert_eq!(
        delete_argv("chaos-net-partition-x"),
        ["nft", "delete", "table", "inet", "chaos-net-partition-x"]
    );
}
