//! The command line and its validation into a [`LatencyProxy`]. All input checks live
//! here and run before anything is touched (bad input: exit 2).

use std::net::SocketAddr;
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::Result;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::HumanDuration;
use chaos_common::tool::{Hidden, Prepared, Tool};
use clap::Parser;
use serde_json::json;

use crate::fault::{LatencyProxy, Placement};
use crate::http::HttpRules;
use crate::model::{Direction, LatencyModel};
use crate::proxy::{ProxyConfig, Upstream};
use crate::rules::{self, Redirect};
use crate::target::{Chosen, resolve, resolve_v4, split_target};

const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// The platform's container port.
const DEFAULT_APP_PORT: u16 = 3000;
/// Longest latency accepted: beyond this, clients time out and it is a partition.
const MAX_LATENCY_MS: u64 = 600_000;

/// Delays TCP connections (per chunk) or HTTP requests (per matching request) through a
/// user-space proxy.
///
/// Explicit proxy: `--listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 -l 500`; point
/// clients at the listen address. With `--endpoint` the proxy speaks HTTP and delays only
/// the matching requests.
#[derive(Debug, Parser)]
#[command(name = "latency-injector", version)]
pub struct Cli {
    /// Address the explicit proxy listens on (IP:PORT).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Where the explicit proxy forwards to (HOST:PORT; resolved at start).
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,

    /// Added latency in milliseconds.
    #[arg(
        short = 'l',
        long = "latency",
        visible_alias = "latency-ms",
        value_name = "MS",
        default_value_t = 200,
        allow_negative_numbers = true
    )]
    pub latency_ms: u64,

    /// Jitter in milliseconds: each delay is uniform in latency ± jitter (never below 0).
    #[arg(
        short = 'j',
        long = "jitter",
        visible_alias = "jitter-ms",
        value_name = "MS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub jitter_ms: u64,

    /// Percent of connections (TCP) or matching requests (HTTP) that are delayed.
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 100.0,
        allow_negative_numbers = true
    )]
    pub probability: f64,

    /// Which way delayed bytes travel (TCP mode).
    #[arg(long, value_enum, default_value = "upstream")]
    pub direction: Direction,

    /// HTTP mode: delay only requests whose path starts with PATH (whole segments;
    /// repeatable).
    #[arg(long = "endpoint", value_name = "PATH")]
    pub endpoints: Vec<String>,

    /// HTTP mode: delay only requests with this method (repeatable; e.g. POST).
    #[arg(long = "method", value_name = "METHOD")]
    pub methods: Vec<String>,

    /// HTTP mode without --endpoint: delay every request (and keep connections alive).
    #[arg(long)]
    pub http: bool,

    /// Transparent egress: delay outbound TCP connections from this network namespace to
    /// HOST (name or IPv4; resolved at start), on PORT if given (the runbook's
    /// `--target=redis`).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub target: Option<String>,

    /// Transparent egress: target host (repeatable); same as --target without a port.
    #[arg(short = 'H', long = "target-host", value_name = "HOST")]
    pub target_hosts: Vec<String>,

    /// Transparent egress: only connections to this port of the target.
    #[arg(short = 'p', long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub target_port: Option<u16>,

    /// Transparent ingress: delay inbound connections to this application port (default
    /// 3000 when only --endpoint is given); requests are forwarded to 127.0.0.1:PORT.
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub app_port: Option<u16>,

    /// Transparent modes: close the established connections that would bypass the
    /// redirect (ss -K), so that clients reconnect through the proxy.
    #[arg(long)]
    pub reset_existing: bool,

    /// At the end, how long in-flight connections get to finish before they are closed.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub drain_timeout: HumanDuration,

    #[command(flatten)]
    pub common: CommonArgs,
}

fn check_ms(flag: &str, value: u64) -> Result<Duration> {
    if value > MAX_LATENCY_MS {
        return Err(ChaosError::bad_input(format!(
            "{flag} {value} is over {MAX_LATENCY_MS} ms (10 minutes): that is a partition, use net-partition"
        )));
    }
    Ok(Duration::from_millis(value))
}

impl Cli {
    fn model(&self) -> Result<LatencyModel> {
        if !(0.0..=100.0).contains(&self.probability) || self.probability.is_nan() {
            return Err(ChaosError::bad_input(format!(
                "--probability {} must be a percentage from 0 to 100",
                self.probability
            )));
        }
        Ok(LatencyModel {
            latency: check_ms("--latency-ms", self.latency_ms)?,
            jitter: check_ms("--jitter-ms", self.jitter_ms)?,
            probability: self.probability,
            direction: self.direction,
        })
    }

    fn http_rules(&self) -> Result<Option<HttpRules>> {
        if let Some(bad) = self.endpoints.iter().find(|p| !p.starts_with('/')) {
            return Err(ChaosError::bad_input(format!(
                "--endpoint '{bad}' must be a path starting with '/'"
            )));
        }
        let mut methods = Vec::new();
        for method in &self.methods {
            let upper = method.to_ascii_uppercase();
            if upper.is_empty() || !upper.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(ChaosError::bad_input(format!(
                    "--method '{method}' is not an HTTP method (GET, POST, ...)"
                )));
            }
            methods.push(upper);
        }
        let http = self.http || !self.endpoints.is_empty() || !methods.is_empty();
        Ok(http.then(|| HttpRules {
            endpoints: self.endpoints.clone(),
            methods,
        }))
    }

    fn explicit(&self) -> Result<Chosen> {
        match (&self.listen, &self.upstream) {
            (Some(listen), Some(upstream)) => Ok(Chosen::Explicit {
                listen: *listen,
                upstream: upstream.clone(),
                addrs: resolve("--upstream", upstream)?,
            }),
            (Some(_), None) => Err(ChaosError::bad_input("--listen needs --upstream HOST:PORT")),
            (None, _) => Err(ChaosError::bad_input("--upstream needs --listen ADDR")),
        }
    }

    fn egress(&self) -> Result<Chosen> {
        let (hosts, port) = match &self.target {
            Some(_) if !self.target_hosts.is_empty() => {
                return Err(ChaosError::bad_input(
                    "give the target once: --target HOST[:PORT] or -H/--target-host HOST",
                ));
            }
            Some(target) => {
                let (host, port) = split_target(target)?;
                if port.is_some() && self.target_port.is_some() {
                    return Err(ChaosError::bad_input(
                        "--target already has a port: drop -p/--target-port",
                    ));
                }
                (vec![host], port.or(self.target_port))
            }
            None => (self.target_hosts.clone(), self.target_port),
        };
        let mut targets = Vec::new();
        for host in &hosts {
            for ip in resolve_v4(host)? {
                if !targets.contains(&ip) {
                    targets.push(ip);
                }
            }
        }
        let label = match port {
            Some(p) => format!("{}:{p}", hosts.join(",")),
            None => hosts.join(","),
        };
        Ok(Chosen::Egress {
            label,
            targets,
            port,
        })
    }

    /// Picks the mode from the flags given; mixing modes is bad input.
    fn choose(&self, http: bool) -> Result<Chosen> {
        let explicit = self.listen.is_some() || self.upstream.is_some();
        let egress =
            self.target.is_some() || !self.target_hosts.is_empty() || self.target_port.is_some();
        let ingress = self.app_port.is_some();
        if [explicit, egress, ingress].iter().filter(|m| **m).count() > 1 {
            return Err(ChaosError::bad_input(
                "choose one mode: --listen/--upstream (explicit), --target or -H/-p (egress), or --app-port (ingress)",
            ));
        }
        if self.reset_existing && explicit {
            return Err(ChaosError::bad_input(
                "--reset-existing needs a transparent mode (--target or --app-port)",
            ));
        }
        if explicit {
            self.explicit()
        } else if egress {
            if self.target.is_none() && self.target_hosts.is_empty() {
                return Err(ChaosError::bad_input(
                    "-p/--target-port needs --target or -H/--target-host",
                ));
            }
            self.egress()
        } else if ingress || http {
            Ok(Chosen::Ingress {
                app_port: self.app_port.unwrap_or(DEFAULT_APP_PORT),
            })
        } else {
            Err(ChaosError::bad_input(
                "say where to put the proxy: --listen ADDR --upstream HOST:PORT, --target HOST[:PORT], or --endpoint PATH (ingress on --app-port)",
            ))
        }
    }
}

impl Tool for Cli {
    const NAME: &'static str = crate::TOOL;
    type Fault = LatencyProxy;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn prepare(self, run_id: &str) -> Result<Prepared<LatencyProxy>> {
        let model = self.model()?;
        let http = self.http_rules()?;
        let chosen = self.choose(http.is_some())?;
        let duration = self.common.duration_or(DEFAULT_DURATION)?;
        let drain = self.drain_timeout.as_duration();
        let mut parameters = json!({
            "latencyMs": self.latency_ms,
            "jitterMs": self.jitter_ms,
            "probability": model.probability,
            "direction": model.direction,
            "http": http,
            "drainTimeoutMs": drain.as_millis() as u64,
            "durationS": duration.as_secs_f64(),
            "resetExisting": self.reset_existing,
        });
        let any = |port| SocketAddr::from(([0, 0, 0, 0], port));
        let protocol = if http.is_some() { "http" } else { "tcp" };
        let (listen, upstream, placement, label) = match chosen {
            Chosen::Explicit {
                listen,
                upstream,
                addrs,
            } => {
                parameters["mode"] = json!(format!("explicit-{protocol}"));
                parameters["listen"] = json!(listen.to_string());
                parameters["upstream"] = json!(upstream);
                parameters["upstreamAddresses"] =
                    json!(addrs.iter().map(ToString::to_string).collect::<Vec<_>>());
                (
                    listen,
                    Upstream::Fixed(addrs),
                    Placement::Explicit,
                    upstream,
                )
            }
            Chosen::Egress {
                label,
                targets,
                port,
            } => {
                let mark = rules::mark_for(run_id);
                parameters["mode"] = json!(format!("egress-{protocol}"));
                parameters["target"] = json!(label);
                parameters["targetAddresses"] =
                    json!(targets.iter().map(ToString::to_string).collect::<Vec<_>>());
                parameters["targetPort"] = json!(port);
                let redirect = Redirect::Egress {
                    targets,
                    port,
                    mark,
                };
                let placement = Placement::Transparent {
                    redirect,
                    reset_existing: self.reset_existing,
                };
                let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
                (loopback, Upstream::OriginalDst { mark }, placement, label)
            }
            Chosen::Ingress { app_port } => {
                parameters["mode"] = json!(format!("ingress-{protocol}"));
                parameters["appPort"] = json!(app_port);
                let redirect = Redirect::Ingress { app_port };
                let placement = Placement::Transparent {
                    redirect,
                    reset_existing: self.reset_existing,
                };
                let app = SocketAddr::from(([127, 0, 0, 1], app_port));
                (
                    any(0),
                    Upstream::Fixed(vec![app]),
                    placement,
                    format!("application port {app_port}"),
                )
            }
        };
        let config = ProxyConfig {
            listen,
            upstream,
            model,
            http,
        };
        Ok(Prepared {
            fault: LatencyProxy::new(run_id, config, placement, label, drain).running_for(duration),
            duration,
            parameters,
        })
    }

    /// The watchdog that removes this run's table if the tool dies or hangs.
    const HIDDEN: &'static [Hidden] = &[Hidden {
        name: crate::watchdog::WATCHDOG_ARG,
        run: |args| crate::watchdog::main(crate::TOOL, args),
    }];

    fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
        crate::nft::cleanup_leftovers(crate::TOOL, dry_run)
    }
}

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
