//! The hidden sub-command remote mode uses to keep a running partition's targets current
//! (`-t SERVICE`: a replaced peer pod has a new address):
//!
//! ```text
//! net-partition __targets RUN_ID add|delete ADDRESS...
//! ```
//!
//! It adds addresses to (or deletes them from) the sets `targets4` / `targets6` of the
//! run's own table `chaos-net-partition-RUN_ID`, in one `nft -j -f -` transaction; the
//! rules refer to the sets, so nothing else changes. Addresses only (no names, no
//! ranges); the table must exist (the run is still going). Exit 0 done, 2 bad input,
//! 1 nft failed (its message on stderr).

use std::ffi::OsString;
use std::net::IpAddr;
use std::process::ExitCode;

use serde_json::{Value, json};

use crate::rules::{FAMILY, SET_V4, SET_V6, table_name};

/// The sub-command's name.
pub const ARG: &str = "__targets";

/// What to do with the addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Add,
    Delete,
}

/// The parsed arguments: run id, verb, addresses.
pub fn parse(args: &[OsString]) -> Result<(String, Verb, Vec<IpAddr>), String> {
    let text: Vec<&str> = args
        .iter()
        .map(|a| a.to_str().ok_or_else(|| format!("{a:?} is not UTF-8")))
        .collect::<Result<_, _>>()?;
    let [run_id, verb, addrs @ ..] = text.as_slice() else {
        return Err(format!(
            "usage: net-partition {ARG} RUN_ID add|delete ADDRESS..."
        ));
    };
    chaos_common::runid::validate(run_id).map_err(|e| e.to_string())?;
    let verb = match *verb {
        "add" => Verb::Add,
        "delete" => Verb::Delete,
        other => return Err(format!("'{other}' is neither add nor delete")),
    };
    if addrs.is_empty() {
        return Err("no addresses given".into());
    }
    let addrs = addrs
        .iter()
        .map(|a| {
            a.parse::<IpAddr>()
                .map_err(|_| format!("'{a}' is not an IP address"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(((*run_id).to_owned(), verb, addrs))
}

/// The transaction (pure): one `add`/`delete element` per address family that has any.
pub fn document(table: &str, verb: Verb, addrs: &[IpAddr]) -> Value {
    let key = match verb {
        Verb::Add => "add",
        Verb::Delete => "delete",
    };
    let mut commands = Vec::new();
    for (set, v4) in [(SET_V4, true), (SET_V6, false)] {
        let elem: Vec<String> = addrs
            .iter()
            .filter(|a| a.is_ipv4() == v4)
            .map(ToString::to_string)
            .collect();
        if !elem.is_empty() {
            commands.push(json!({ key: { "element": {
                "family": FAMILY, "table": table, "name": set, "elem": elem
            } } }));
        }
    }
    json!({ "nftables": commands })
}

/// `net-partition __targets ...`.
pub fn main(args: &[OsString]) -> ExitCode {
    let (run_id, verb, addrs) = match parse(args) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!("net-partition {ARG}: error: {e}");
            return ExitCode::from(2);
        }
    };
    let table = table_name(&run_id);
    let doc = document(&table, verb, &addrs);
    let argv: Vec<String> = [chaos_common::nft::NFT, "-j", "-f", "-"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    match chaos_common::nft::run_blocking(&argv, Some(doc.to_string().as_bytes())) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("net-partition {ARG}: error: updating table {table}: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments_are_a_run_id_a_verb_and_addresses() {
        let (id, verb, addrs) = parse(&os(&["r1", "add", "198.51.100.9", "2001:db8::9"])).unwrap();
        assert_eq!((id.as_str(), verb, addrs.len()), ("r1", Verb::Add, 2));
        for bad in [
            &["r1"][..],
            &["r1", "add"],
            &["R!", "add", "198.51.100.9"],
            &["r1", "flush", "198.51.100.9"],
            &["r1", "add", "auth-service"],
            &["r1", "add", "198.51.100.0/24"],
        ] {
            assert!(parse(&os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn one_element_command_per_family() {
        let addrs: Vec<IpAddr> = ["198.51.100.9", "2001:db8::9", "198.51.100.10"]
            .iter()
            .map(|a| a.parse().unwrap())
            .collect();
        let doc = document("chaos-net-partition-r1", Verb::Delete, &addrs);
        let commands = doc["nftables"].as_array().unwrap();
        assert_eq!(commands.len(), 2);
        assert_eq!(commands[0]["delete"]["element"]["name"], SET_V4);
        assert_eq!(
            commands[0]["delete"]["element"]["elem"],
            json!(["198.51.100.9", "198.51.100.10"])
        );
        assert_eq!(commands[1]["delete"]["element"]["name"], SET_V6);
        assert_eq!(
            commands[1]["delete"]["element"]["table"],
            "chaos-net-partition-r1"
        );
    }
}
