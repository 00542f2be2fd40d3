//! Renders the JSON rules the way `nft list ruleset` prints them, for the plan that
//! `--dry-run` shows and for readable table tests. Only the expressions `rules.rs` builds
//! are known; anything else renders as its JSON.

use serde_json::Value;

fn value(v: &Value) -> String {
    if let Some(set) = v.get("set").and_then(Value::as_array) {
        let items: Vec<String> = set.iter().map(value).collect();
        return format!("{{ {} }}", items.join(", "));
    }
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn left(v: &Value) -> String {
    if let Some(p) = v.get("payload") {
        format!("{} {}", value(&p["protocol"]), value(&p["field"]))
    } else if let Some(m) = v.get("meta") {
        format!("meta {}", value(&m["key"]))
    } else if let Some(n) = v.get("numgen") {
        format!("numgen {} mod {}", value(&n["mode"]), n["mod"])
    } else {
        v.to_string()
    }
}

fn statement(e: &Value) -> String {
    if let Some(m) = e.get("match") {
        let op = match m["op"].as_str() {
            Some("==") | None => String::new(),
            Some(op) => format!("{op} "),
        };
        format!("{} {op}{}", left(&m["left"]), value(&m["right"]))
    } else if let Some(c) = e.get("counter") {
        format!("counter name \"{}\"", value(c))
    } else if e.get("drop").is_some() {
        "drop".into()
    } else if let Some(r) = e.get("reject") {
        match r["type"].as_str() {
            Some("tcp reset") => "reject with tcp reset".into(),
            _ => format!("reject with icmpx {}", value(&r["expr"])),
        }
    } else {
        e.to_string()
    }
}

/// One rule as nft syntax: `ip daddr @targets4 meta l4proto tcp ... drop`.
pub fn rule(expr: &[Value]) -> String {
    expr.iter().map(statement).collect::<Vec<_>>().join(" ")
}
