//! Running the `nft` binary: its JSON API, always through an argument vector (never a
//! shell), with the JSON document on stdin. Shared by the tools that own nftables tables
//! (net-partition, latency-injector): each run owns one `inet` table named
//! `chaos-<tool>-<run id>`, and only tables with that prefix are ever deleted.
//!
//! Why the `nft` binary and not netlink (see docs/net-partition.md): no unsafe FFI, one
//! atomic transaction per apply, and a stable JSON API; the cost is that the debug image
//! must ship `nft` (Debian's `nftables`).
//!
//! Errors an operator can fix are mapped to `ChaosError::Precondition`: `nft` missing
//! (install Debian's `nftables`) and "Operation not permitted" (run as root / with
//! NET_ADMIN in the target network namespace).

use std::io::Write;
use std::process::{Output, Stdio};

use serde_json::Value;

use crate::error::{ChaosError, Result};

pub const NFT: &str = "nft";
/// Every table a tool creates is in this family, so one delete removes IPv4 and IPv6.
pub const FAMILY: &str = "inet";

/// `chaos-<tool>-`: what `--cleanup` matches.
pub fn table_prefix(tool: &str) -> String {
    format!("chaos-{tool}-")
}

/// The table a run owns: `chaos-<tool>-<run id>`.
pub fn table_name(tool: &str, run_id: &str) -> String {
    format!("{}{run_id}", table_prefix(tool))
}

/// `nft delete table inet NAME`: the whole revert of a table-based fault.
pub fn delete_argv(table: &str) -> Vec<String> {
    owned(&[NFT, "delete", "table", FAMILY, table])
}

fn owned(argv: &[&str]) -> Vec<String> {
    argv.iter().map(|s| (*s).to_owned()).collect()
}

/// True when `program` is an executable file in one of `$PATH`'s directories.
fn on_path(program: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| {
            std::fs::metadata(dir.join(program))
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

fn spawn_error(argv: &[String], e: &std::io::Error) -> ChaosError {
    // NotFound also comes from a missing /dev/null (an empty /dev in a bare chroot):
    // only call nft missing when it is.
    if e.kind() == std::io::ErrorKind::NotFound && !on_path(&argv[0]) {
        ChaosError::Precondition(format!(
            "`{NFT}` not found on PATH: install nftables (Debian package `nftables`) where \
             this tool runs (the debug image must ship it)"
        ))
    } else {
        ChaosError::Command {
            argv: argv.to_vec(),
            status: "not started".into(),
            stderr: e.to_string(),
        }
    }
}

/// Turns a finished `nft` into its stdout, or the error an operator can act on.
fn check(argv: &[String], out: Output) -> Result<String> {
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if stderr.contains("Operation not permitted") {
        return Err(ChaosError::Precondition(format!(
            "nft: operation not permitted ({stderr}): run as root, or with CAP_NET_ADMIN in the \
             target network namespace (a debug container with NET_ADMIN)"
        )));
    }
    Err(ChaosError::Command {
        argv: argv.to_vec(),
        status: out.status.to_string(),
        stderr,
    })
}

/// Runs `nft` with `argv[1..]`, feeding `stdin`; blocking (preflight, conclude, cleanup,
/// the watchdog).
pub fn run_blocking(argv: &[String], stdin: Option<&[u8]>) -> Result<String> {
    let mut child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(argv, &e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error shows up as nft's own failure below; dropping the pipe closes it.
        let _ = pipe.write_all(input);
    }
    let out = child
        .wait_with_output()
        .map_err(|e| spawn_error(argv, &e))?;
    check(argv, out)
}

/// The async twin of [`run_blocking`]; the child is killed if the future is dropped.
pub async fn run(argv: &[String], stdin: Option<&[u8]>) -> Result<String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| spawn_error(argv, &e))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input).await;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| spawn_error(argv, &e))?;
    check(argv, out)
}

/// `nft -j -f -`: the document is one transaction, applied whole or not at all.
pub async fn apply(document: &Value) -> Result<()> {
    let argv = owned(&[NFT, "-j", "-f", "-"]);
    run(&argv, Some(document.to_string().as_bytes()))
        .await
        .map(drop)
}

/// What a delete found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    /// The table was there and is gone now.
    Now,
    /// There was no such table (success: deletes are idempotent).
    AlreadyGone,
}

fn already_gone(result: Result<String>) -> Result<Deleted> {
    match result {
        Ok(_) => Ok(Deleted::Now),
        Err(ChaosError::Command { stderr, .. }) if stderr.contains("No such file or directory") => {
            Ok(Deleted::AlreadyGone)
        }
        Err(e) => Err(e),
    }
}

/// `nft delete table inet NAME`; a table already gone is success.
pub async fn delete_table(table: &str) -> Result<Deleted> {
    already_gone(run(&delete_argv(table), None).await)
}

pub fn delete_table_blocking(table: &str) -> Result<Deleted> {
    already_gone(run_blocking(&delete_argv(table), None))
}

/// Fails with a precondition error when `nft` is missing or not permitted.
pub fn check_access() -> Result<()> {
    run_blocking(&owned(&[NFT, "-j", "list", "tables"]), None).map(drop)
}

/// The objects of kind `kind` in an `nft -j list ...` output.
fn objects<'a>(listing: &'a Value, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
    listing["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(move |item| item.get(kind))
}

/// The names of `tool`'s tables in an `nft -j list tables` output.
pub fn owned_tables(listing: &Value, tool: &str) -> Vec<String> {
    let prefix = table_prefix(tool);
    objects(listing, "table")
        .filter(|t| t["family"] == FAMILY)
        .filter_map(|t| t["name"].as_str())
        .filter(|name| name.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}

/// One named counter's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Count {
    pub packets: u64,
    pub bytes: u64,
}

/// (counter name, values) from an `nft -j list counters table ...` output.
pub fn parse_counters(listing: &Value) -> Vec<(String, Count)> {
    objects(listing, "counter")
        .filter_map(|c| {
            let name = c["name"].as_str()?.to_owned();
            let count = Count {
                packets: c["packets"].as_u64()?,
                bytes: c["bytes"].as_u64()?,
            };
            Some((name, count))
        })
        .collect()
}

fn counters_argv(table: &str) -> Vec<String> {
    owned(&[NFT, "-j", "list", "counters", "table", FAMILY, table])
}

fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text)
        .map_err(|e| ChaosError::fault(format!("nft printed invalid JSON: {e}")))
}

pub async fn counters(table: &str) -> Result<Vec<(String, Count)>> {
    parse_json(&run(&counters_argv(table), None).await?).map(|v| parse_counters(&v))
}

pub fn counters_blocking(table: &str) -> Result<Vec<(String, Count)>> {
    parse_json(&run_blocking(&counters_argv(table), None)?).map(|v| parse_counters(&v))
}

/// Deletes every `inet chaos-<tool>-*` table of this network namespace, and nothing else
/// (with `dry_run`, only lists them).
pub fn cleanup_leftovers(tool: &str, dry_run: bool) -> Result<Vec<String>> {
    let listing = parse_json(&run_blocking(&owned(&[NFT, "-j", "list", "tables"]), None)?)?;
    let mut removed = Vec::new();
    for table in owned_tables(&listing, tool) {
        if !dry_run {
            delete_table_blocking(&table)?;
        }
        removed.push(format!("nftables table {FAMILY} {table}"));
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_delete_are_exactly_ours() {
        assert_eq!(table_name("net-partition", "r1"), "chaos-net-partition-r1");
        assert_eq!(
            delete_argv("chaos-net-partition-r1"),
            ["nft", "delete", "table", "inet", "chaos-net-partition-r1"]
        );
    }

    #[test]
    fn only_our_inet_tables_are_owned() {
        let listing = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "chaos-net-partition-a1", "handle": 1}},
            {"table": {"family": "ip", "name": "chaos-net-partition-a2", "handle": 2}},
            {"table": {"family": "inet", "name": "filter", "handle": 3}},
            {"table": {"family": "inet", "name": "chaos-net-partitionX", "handle": 4}},
            {"table": {"family": "inet", "name": "my-chaos-net-partition-a3", "handle": 5}},
        ]});
        assert_eq!(
            owned_tables(&listing, "net-partition"),
            ["chaos-net-partition-a1"]
        );
        assert!(owned_tables(&listing, "latency-injector").is_empty());
        assert!(owned_tables(&json!({}), "net-partition").is_empty());
    }

    #[test]
    fn counters_are_parsed_by_name() {
        let listing = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"counter": {"family": "inet", "name": "egress", "table": "t", "handle": 3, "packets": 7, "bytes": 420}},
            {"counter": {"family": "inet", "name": "ingress", "table": "t", "handle": 4, "packets": 0, "bytes": 0}},
        ]});
        assert_eq!(
            parse_counters(&listing),
            vec![
                (
                    "egress".to_owned(),
                    Count {
                        packets: 7,
                        bytes: 420
                    }
                ),
                ("ingress".to_owned(), Count::default()),
            ]
        );
    }

    #[test]
    fn missing_table_on_delete_is_success() {
        let gone = Err(ChaosError::Command {
            argv: vec![],
            status: "exit status: 1".into(),
            stderr: "Error: Could not process rule: No such file or directory".into(),
        });
        assert_eq!(already_gone(gone).ok(), Some(Deleted::AlreadyGone));
        let other = Err(ChaosError::Command {
            argv: vec![],
            status: "1".into(),
            stderr: "syntax error".into(),
        });
        assert!(already_gone(other).is_err());
    }
}
