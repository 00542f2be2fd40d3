//! The command line: the clap struct (its doc comments are `--help`) and its conversion
//! into a validated [`Partition`]. All input validation lives here and in the pure
//! parsers it calls (`target.rs`, `probe.rs`).

use std::time::Duration;

use chaos_common::cli::CommonArgs;
use chaos_common::remote::args::check_label;
use chaos_common::remote::peers::Peer;
use chaos_common::remote::{Delivery, PeerUse, RemoteArgs, Request};
use chaos_common::summary::{ReportView, Said, Style};
use chaos_common::tool::{Hidden, Prepared, Tool};
use chaos_common::{ChaosError, Result};
use clap::Parser;
use serde_json::json;

use crate::fault::Partition;
use crate::probe::parse_probe;
use crate::rules::{self, Protocol, RuleSpec, Verdict};
use crate::target::{self, ResolvedTarget};

pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);

/// Drop or reject traffic between this network namespace and the targets, in one owned
/// nftables table that is deleted on every exit path (a watchdog deletes it if this
/// process is killed). Needs root or CAP_NET_ADMIN, and the `nft` binary.
///
/// Remote mode (-s SOURCE, --pod, --selector, --deployment): the partition runs in an
/// ephemeral container with NET_ADMIN in each source pod (docs/remote.md); -t SERVICE
/// cuts the Service's ClusterIP and its endpoints, kept current while the run lasts.
#[derive(Debug, Parser)]
#[command(name = "net-partition", version, after_help = crate::help::AFTER_HELP)]
#[command(mut_arg("service", |a| a
    .long("source-service")
    .visible_alias("service")
    .help("Remote mode: the source pods, Running and labelled app=SERVICE")))]
pub struct Cli {
    /// Target: host name (resolved once, at start), IP address or CIDR. Repeatable; at
    /// least one is required.
    #[arg(short = 'H', long = "target-host", value_name = "HOST|IP|CIDR")]
    pub target_host: Vec<String>,

    /// Only this destination port (1-65535); with --protocol all, TCP and UDP.
    #[arg(short = 'p', long = "target-port", value_name = "PORT",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub target_port: Option<u16>,

    /// Transport protocol to cut.
    #[arg(long, value_enum, default_value = "all")]
    pub protocol: Protocol,

    /// Also cut traffic coming from the targets into this namespace.
    #[arg(long)]
    pub bidirectional: bool,

    /// Share of matching packets cut, chosen at random per packet (100 = full partition).
    #[arg(long, value_name = "PERCENT", default_value = "100",
          value_parser = clap::value_parser!(u8).range(1..=100))]
    pub drop_percent: u8,

    /// Reject instead of drop: TCP reset for TCP, ICMP port unreachable otherwise, so
    /// clients fail fast instead of timing out.
    #[arg(long)]
    pub reject: bool,

    /// Measure the TCP connect time to HOST:PORT before, every second during, and after.
    #[arg(long, value_name = "HOST:PORT")]
    pub probe: Option<String>,

    /// Remote mode: cut this Service (its ClusterIP and the pod IPs of its
    /// EndpointSlices, kept current while the run lasts).
    #[arg(short = 't', long = "target-service", value_name = "SERVICE")]
    pub target_service: Option<String>,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// The in-pod `-H` arguments for the `-t` Service: its ClusterIP and endpoint addresses.
fn peer_args(peer: &Peer, _port: Option<u16>) -> Result<Vec<String>> {
    let addrs = peer.addresses();
    if addrs.is_empty() {
        return Err(ChaosError::bad_input(format!(
            "-t/--target-service {}: the Service has no ClusterIP and no endpoints: nothing to cut",
            peer.service
        )));
    }
    Ok(addrs
        .iter()
        .flat_map(|a| ["-H".to_owned(), a.to_string()])
        .collect())
}

impl Cli {
    /// The `-H` values, checked; host names are resolved later, by the fault.
    fn parse_targets(&self) -> Result<Vec<ResolvedTarget>> {
        if self.target_service.is_some() {
            return Err(ChaosError::bad_input(
                "-t/--target-service names a Service, which needs remote mode: add -s/--source-service \
                 SERVICE (or --pod, --selector, --deployment) for the source pods (docs/remote.md)",
            ));
        }
        if self.target_host.is_empty() {
            return Err(ChaosError::bad_input(
                "at least one -H/--target-host is required (net-partition never partitions all \
                 traffic by default; pass -H 0.0.0.0/0 to mean it)",
            ));
        }
        self.target_host
            .iter()
            .map(|t| {
                target::parse(t)
                    .map_err(|e| ChaosError::bad_input(format!("-H/--target-host: {e}")))
            })
            .collect()
    }

    fn spec(&self) -> RuleSpec {
        RuleSpec {
            protocol: self.protocol,
            port: self.target_port,
            drop_percent: self.drop_percent,
            verdict: if self.reject {
                Verdict::Reject
            } else {
                Verdict::Drop
            },
            bidirectional: self.bidirectional,
        }
    }
}

impl Tool for Cli {
    const NAME: &'static str = crate::TOOL;
    type Fault = Partition;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn summarize(report: &ReportView, style: &Style) -> Option<Said> {
        crate::summary::describe(report, style)
    }

    fn prepare(self, run_id: &str) -> Result<Prepared<Partition>> {
        let duration = self.common.duration_or(DEFAULT_DURATION)?;
        let targets = self.parse_targets()?;
        let probe = match &self.probe {
            Some(p) => {
                Some(parse_probe(p).map_err(|e| ChaosError::bad_input(format!("--probe: {e}")))?)
            }
            None => None,
        };
        let spec = self.spec();
        let parameters = json!({
            "targetHosts": self.target_host,
            "targetPort": spec.port,
            "protocol": spec.protocol,
            "bidirectional": spec.bidirectional,
            "dropPercent": spec.drop_percent,
            "reject": self.reject,
            "probe": self.probe,
            "durationSeconds": duration.as_secs_f64(),
        });
        let fault = Partition::new(rules::table_name(run_id), targets, spec, probe, duration);
        Ok(Prepared {
            fault,
            duration,
            parameters,
        })
    }

    /// The watchdog that removes this run's table if the tool dies or hangs, and the
    /// update of a running partition's targets (remote mode keeps `-t` current with it).
    const HIDDEN: &'static [Hidden] = &[
        Hidden {
            name: crate::watchdog::WATCHDOG_ARG,
            run: |args| crate::watchdog::main(crate::TOOL, args),
        },
        Hidden {
            name: crate::update::ARG,
            run: crate::update::main,
        },
    ];

    /// Remote mode: the partition runs in an ephemeral container in each source pod.
    fn remote(&self) -> Result<Option<Request>> {
        if self.target_service.is_some() && !self.remote.selects_pods() {
            // Said before any other local-mode complaint: this is the likely mistake.
            self.parse_targets()?;
        }
        let Some(mut request) = Request::from_args(crate::TOOL, &self.remote, Delivery::Ephemeral)?
        else {
            return Ok(None);
        };
        // What the pod will check anyway, checked before any pod is touched.
        for host in &self.target_host {
            target::parse(host)
                .map_err(|e| ChaosError::bad_input(format!("-H/--target-host: {e}")))?;
        }
        if let Some(p) = &self.probe {
            parse_probe(p).map_err(|e| ChaosError::bad_input(format!("--probe: {e}")))?;
        }
        self.common.duration_or(DEFAULT_DURATION)?;
        match &self.target_service {
            Some(service) => {
                check_label("-t/--target-service", service)?;
                request.peer = Some(PeerUse {
                    service: service.clone(),
                    flag: "-t/--target-service",
                    port: None,
                    args: peer_args,
                    update: Some(crate::update::ARG),
                });
                request.skip = vec!["target_service"];
            }
            // `--cleanup`/`--stop RUNID` with remote flags sweep or stop the pods' runs:
            // they cut nothing, so they need no target.
            None if self.target_host.is_empty()
                && !self.common.cleanup
                && self.common.stop.is_none() =>
            {
                return Err(ChaosError::bad_input(
                    "say what to cut the source pods from: -t/--target-service SERVICE or -H/--target-host \
                     (net-partition never partitions all traffic by default; -H 0.0.0.0/0 means it)",
                ));
            }
            None => {}
        }
        request.destructive = true;
        Ok(Some(request))
    }

    fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
        crate::nft::cleanup_leftovers(crate::TOOL, dry_run)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> std::result::Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("net-partition").chain(args.iter().copied()))
    }

    fn prepare(args: &[&str]) -> Result<Prepared<Partition>> {
        parse(args)
            .map_err(|e| ChaosError::bad_input(e.to_string()))?
            .prepare("t1")
    }

    #[test]
    fn bad_values_are_rejected_naming_the_flag() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "--target-host"),
            (&["-H", "198.51.100.1/33"], "--target-host"),
            (&["-H", "198.51.100.1/30"], "host bits"),
            (&["-H", "0x7f.1"], "four decimal numbers"),
            (&["-H", "1.2.3"], "four decimal numbers"),
            (&["-H", "fe80::1%eth0"], "zone ids"),
            (&["-H", ""], "--target-host"),
            (&["-H", "198.51.100.1", "-p", "0"], "--target-port"),
            (&["-H", "198.51.100.1", "-p", "65536"], "--target-port"),
            (
                &["-H", "198.51.100.1", "--drop-percent", "0"],
                "--drop-percent",
            ),
            (
                &["-H", "198.51.100.1", "--drop-percent", "101"],
                "--drop-percent",
            ),
            (&["-H", "198.51.100.1", "--protocol", "icmp"], "--protocol"),
            (
                &["-H", "198.51.100.1", "--probe", "198.51.100.1"],
                "--probe",
            ),
            (&["-H", "198.51.100.1", "-d", "0"], "--duration"),
            (&["-H", "198.51.100.1", "-t", "auth-service"], "remote mode"),
        ];
        for (args, needle) in cases {
            match prepare(args) {
                Ok(_) => panic!("{args:?} should be rejected"),
                Err(e) => {
                    assert_eq!(e.exit(), chaos_common::Exit::BadInput, "{args:?}");
                    assert!(e.to_string().contains(needle), "{args:?}: {e}");
                }
            }
        }
    }

    #[test]
    fn valid_flags_build_the_fault() -> Result<()> {
        let p = prepare(&[
            "-H",
            "198.51.100.0/30",
            "-H",
            "198.51.100.2",
            "-p",
            "8080",
            "--protocol",
            "tcp",
            "--bidirectional",
            "--drop-percent",
            "50",
            "--reject",
            "--probe",
            "198.51.100.2:8080",
            "-d",
            "5",
        ])?;
        assert_eq!(p.duration, Duration::from_secs(5));
        assert_eq!(p.fault.table, "chaos-net-partition-t1");
        assert_eq!(
            p.fault.elements.len(),
            1,
            "the /32 inside the /30 is folded"
        );
        assert_eq!(
            p.fault.spec,
            RuleSpec {
                protocol: Protocol::Tcp,
                port: Some(8080),
                drop_percent: 50,
                verdict: Verdict::Reject,
                bidirectional: true
            }
        );
        assert_eq!(p.parameters["dropPercent"], 50);
        assert_eq!(p.parameters["targetHosts"][1], "198.51.100.2");
        Ok(())
    }

    #[test]
    fn defaults_are_full_drop_of_everything_for_a_minute() -> Result<()> {
        let p = prepare(&["-H", "198.51.100.1"])?;
        assert_eq!(p.duration, DEFAULT_DURATION);
        assert_eq!(
            p.fault.spec,
            RuleSpec {
                protocol: Protocol::All,
                port: None,
                drop_percent: 100,
                verdict: Verdict::Drop,
                bidirectional: false
            }
        );
        Ok(())
    }
}
