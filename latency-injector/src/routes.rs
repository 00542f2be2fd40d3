//! Transparent ingress keeps each client's own address: the proxy connects to the
//! application on 127.0.0.1:APP *from the client's address and port* (IP_TRANSPARENT),
//! so the application sees and logs the real client, as it would direct. Its replies go
//! from 127.0.0.1:APP to that address, which is not local: routed normally they would
//! leave the pod (a loopback source may not even leave). One policy rule per run, in the
//! TPROXY style of service meshes, sends exactly those replies back to the local stack,
//! where the proxy's transparent socket takes them. For `--app-port 3000`, run mark
//! 0x4c49abcd:
//!
//! ```text
//! ip -4 route add local 0.0.0.0/0 dev lo table 1279896525
//! ip -4 rule add from 127.0.0.1 iif lo ipproto tcp sport 3000 lookup 1279896525 priority 100
//! ```
//!
//! The rule matches only packets sent from 127.0.0.1 port APP to an address that is not
//! local (local destinations are decided by the `local` table, priority 0, before it),
//! which cannot exist otherwise. The table number is the run's mark, so leftovers are
//! recognisable (`--cleanup` removes rules from 127.0.0.1 whose table is in
//! 0x4c490000-0x4c49ffff, and those tables). Why 127.0.0.1 and not the pod's address: a
//! connection from the client's address to the pod's address and port could collide
//! with a real connection of that client (same four-tuple); toward 127.0.0.1 it cannot.
//!
//! Removed at revert after the drain (the connections being drained need it), by the
//! guard process if the injector dies (see `guard.rs`), and by `--cleanup`.

use std::process::Command;

use chaos_common::{ChaosError, Result};
use serde::Serialize;
use serde_json::Value;

/// Rule priority: before `main` (32766); the `local` table (0) still comes first.
pub const PRIORITY: u32 = 100;
const IP: &str = "ip";
/// The tables of latency-injector runs: their marks.
const OURS: std::ops::RangeInclusive<u32> = 0x4c49_0000..=0x4c49_ffff;

/// The policy routing of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    pub table: u32,
    pub app_port: u16,
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| (*s).to_owned()).collect()
}

impl Routes {
    pub fn route_argv(&self, action: &str) -> Vec<String> {
        let table = self.table.to_string();
        let mut argv = owned(&[IP, "-4", "route", action]);
        if action != "flush" {
            argv.extend(owned(&["local", "0.0.0.0/0", "dev", "lo"]));
        }
        argv.extend(owned(&["table", &table]));
        argv
    }

    pub fn rule_argv(&self, action: &str) -> Vec<String> {
        let (port, table, priority) = (
            self.app_port.to_string(),
            self.table.to_string(),
            PRIORITY.to_string(),
        );
        owned(&[
            IP,
            "-4",
            "rule",
            action,
            "from",
            "127.0.0.1",
            "iif",
            "lo",
            "ipproto",
            "tcp",
            "sport",
            &port,
            "lookup",
            &table,
            "priority",
            &priority,
        ])
    }
}

/// Runs `ip`; `ok_if` lists stderr texts that mean "already so".
fn run(argv: &[String], ok_if: &[&str]) -> Result<()> {
    let out = Command::new(&argv[0])
        .args(&argv[1..])
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ChaosError::Precondition(
                    "`ip` (iproute2) not found: transparent ingress needs it to keep clients' \
                     addresses; install iproute2, or pass --allow-source-rewrite"
                        .to_owned(),
                )
            } else {
                ChaosError::Command {
                    argv: argv.to_vec(),
                    status: "not started".into(),
                    stderr: e.to_string(),
                }
            }
        })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if out.status.success() || ok_if.iter().any(|text| stderr.contains(text)) {
        return Ok(());
    }
    Err(ChaosError::Command {
        argv: argv.to_vec(),
        status: out.status.to_string(),
        stderr,
    })
}

const GONE: &[&str] = &[
    "No such file or directory",
    "does not exist",
    "No such process",
];

/// Adds the route, then the rule; undoes the route if the rule cannot be added.
pub fn apply(routes: &Routes) -> Result<()> {
    let hint = |e: ChaosError| match e {
        ChaosError::Command { argv, stderr, .. } => ChaosError::Precondition(format!(
            "cannot set up the policy routing that keeps clients' addresses (`{}`: {stderr}); \
             run with CAP_NET_ADMIN on a kernel with policy routing, or pass \
             --allow-source-rewrite to let the application see 127.0.0.1",
            argv.join(" ")
        )),
        other => other,
    };
    run(&routes.route_argv("add"), &["File exists"]).map_err(hint)?;
    if let Err(e) = run(&routes.rule_argv("add"), &[]) {
        let _ = run(&routes.route_argv("flush"), GONE);
        return Err(hint(e));
    }
    Ok(())
}

/// Deletes the rule and the table; already gone is fine.
pub fn remove(routes: &Routes) -> Result<()> {
    let rule = run(&routes.rule_argv("del"), GONE);
    let route = run(&routes.route_argv("flush"), GONE);
    rule.and(route)
}

/// Whether `ip` answers here (the precondition of source preservation).
pub fn check_access() -> Result<()> {
    run(&owned(&[IP, "-4", "rule", "list"]), &[]).map_err(|e| match e {
        ChaosError::Command { argv, stderr, .. } => ChaosError::Precondition(format!(
            "`{}` failed ({stderr}): transparent ingress keeps clients' addresses with policy \
             routing, which is not available here; pass --allow-source-rewrite to let the \
             application see 127.0.0.1 instead",
            argv.join(" ")
        )),
        other => other,
    })
}

/// The rules of latency-injector runs in an `ip -j -4 rule list` output.
pub fn owned_rules(listing: &Value) -> Vec<Routes> {
    listing
        .as_array()
        .into_iter()
        .flatten()
        .filter(|rule| rule["src"] == "127.0.0.1" && rule["ipproto"] == "tcp")
        .filter_map(|rule| {
            let table: u32 = rule["table"].as_str()?.parse().ok()?;
            let app_port = u16::try_from(rule["sport"].as_u64()?).ok()?;
            OURS.contains(&table).then_some(Routes { table, app_port })
        })
        .collect()
}

/// Lists (and unless `dry_run`, removes) the rules and tables runs left behind.
pub fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
    let argv = owned(&[IP, "-j", "-4", "rule", "list"]);
    let out = match Command::new(IP).args(&argv[1..]).output() {
        Ok(out) => out,
        // Without `ip` no run could have added a rule here.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ChaosError::Command {
                argv,
                status: "not started".into(),
                stderr: e.to_string(),
            });
        }
    };
    let listing: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let mut removed = Vec::new();
    for routes in owned_rules(&listing) {
        if !dry_run {
            remove(&routes)?;
        }
        removed.push(format!(
            "policy rule from 127.0.0.1 sport {} and route table {}",
            routes.app_port, routes.table
        ));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn commands_name_exactly_the_run_s_rule_and_table() {
        let routes = Routes {
            table: 0x4c49_abcd,
            app_port: 3000,
        };
        assert_eq!(
            routes.rule_argv("add").join(" "),
            "ip -4 rule add from 127.0.0.1 iif lo ipproto tcp sport 3000 lookup 1279896525 priority 100"
        );
        assert_eq!(
            routes.route_argv("add").join(" "),
            "ip -4 route add local 0.0.0.0/0 dev lo table 1279896525"
        );
        assert_eq!(
            routes.route_argv("flush").join(" "),
            "ip -4 route flush table 1279896525"
        );
    }

    #[test]
    fn only_our_rules_are_leftovers() {
        let listing = json!([
            {"priority": 0, "src": "all", "table": "local"},
            {"priority": 100, "src": "127.0.0.1", "iif": "lo", "ipproto": "tcp", "sport": 3000, "table": "1279896525"},
            {"priority": 100, "src": "127.0.0.1", "ipproto": "tcp", "sport": 80, "table": "133"},
            {"priority": 32766, "src": "all", "table": "main"}
        ]);
        assert_eq!(
            owned_rules(&listing),
            [Routes {
                table: 1_279_896_525,
                app_port: 3000
            }]
        );
    }
}
