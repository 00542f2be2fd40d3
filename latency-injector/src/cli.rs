//! The command line and its validation into a [`LatencyProxy`]. All input checks live
//! here and run before anything is touched (bad input: exit 2).

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::Result;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::HumanDuration;
use chaos_common::tool::{Prepared, Tool};
use clap::Parser;
use serde_json::json;

use crate::fault::{LatencyProxy, Placement};
use crate::http::HttpRules;
use crate::model::{Direction, LatencyModel};
use crate::proxy::{ProxyConfig, Upstream};
use crate::rules::{self, Redirect};

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

/// Resolves `HOST:PORT` now, so a name that does not resolve is bad input.
pub fn resolve(flag: &str, text: &str) -> Result<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = text
        .to_socket_addrs()
        .map_err(|e| ChaosError::bad_input(format!("{flag} '{text}': {e} (expected HOST:PORT)")))?
        .collect();
    if addrs.is_empty() || addrs.iter().any(|a| a.port() == 0) {
        return Err(ChaosError::bad_input(format!(
            "{flag} '{text}': needs a host and a port from 1 to 65535"
        )));
    }
    Ok(addrs)
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

/// The mode the flags chose, with its resolved addresses.
#[derive(Debug)]
enum Chosen {
    Explicit {
        listen: SocketAddr,
        upstream: String,
        addrs: Vec<SocketAddr>,
    },
    Egress {
        label: String,
        targets: Vec<Ipv4Addr>,
        port: Option<u16>,
    },
    Ingress {
        app_port: u16,
    },
}

/// `redis`, `redis:6379`, `198.51.100.2:6379` (IPv6 targets are not supported yet).
pub fn split_target(text: &str) -> Result<(String, Option<u16>)> {
    let bad = || {
        ChaosError::bad_input(format!(
            "--target '{text}': expected HOST or HOST:PORT (port 1-65535)"
        ))
    };
    match text.rsplit_once(':') {
        None if !text.is_empty() => Ok((text.to_owned(), None)),
        Some((host, port)) if !host.is_empty() && !host.contains(':') => {
            let port: u16 = port.parse().map_err(|_| bad())?;
            if port == 0 {
                return Err(bad());
            }
            Ok((host.to_owned(), Some(port)))
        }
        _ => Err(bad()),
    }
}

/// The IPv4 addresses of `host`: transparent egress redirects IPv4 only for now.
fn resolve_v4(host: &str) -> Result<Vec<Ipv4Addr>> {
    let addrs = (host, 0).to_socket_addrs().map_err(|e| {
        ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) does not resolve: {e}"
        ))
    })?;
    let v4: Vec<Ipv4Addr> = addrs
        .filter_map(|a| match a.ip() {
            IpAddr::V4(ip) => Some(ip),
            IpAddr::V6(_) => None,
        })
        .collect();
    if v4.is_empty() {
        return Err(ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) has no IPv4 address (IPv6 targets are not supported yet)"
        )));
    }
    if let Some(ip) = v4.iter().find(|ip| ip.is_loopback() || ip.is_unspecified()) {
        return Err(ChaosError::bad_input(format!(
            "target host '{host}' (--target/-H) is {ip}: loopback cannot be redirected transparently; use --listen/--upstream"
        )));
    }
    Ok(v4)
}

impl Tool for Cli {
    const NAME: &'static str = "latency-injector";
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
            fault: LatencyProxy::new(run_id, config, placement, label, drain),
            duration,
            parameters,
        })
    }

    fn cleanup_leftovers() -> Result<Vec<String>> {
        crate::nft::cleanup_leftovers()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prepare(args: &[&str]) -> Result<Prepared<LatencyProxy>> {
        let argv = std::iter::once("latency-injector").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.prepare("t1"),
            Err(e) => Err(ChaosError::bad_input(e.to_string())),
        }
    }

    const BASE: [&str; 4] = ["--listen", "127.0.0.1:0", "--upstream", "127.0.0.1:6379"];

    #[test]
    fn bad_values_name_their_flag() {
        let table: [(&[&str], &str); 9] = [
            (&["--probability", "101"], "--probability"),
            (&["--probability", "-1"], "--probability"),
            (&["-l", "600001"], "--latency-ms"),
            (&["-j", "700000"], "--jitter-ms"),
            (&["--endpoint", "v1/x"], "--endpoint"),
            (&["--method", "P0ST"], "--method"),
            (&["-d", "0"], "--duration"),
            (&["--listen", "127.0.0.1:1"], "--upstream"),
            (&["--upstream", "127.0.0.1:6379"], "--listen"),
        ];
        for (args, flag) in table {
            let mut argv: Vec<&str> = Vec::new();
            if !args.contains(&"--listen") && !args.contains(&"--upstream") {
                argv.extend(BASE);
            }
            argv.extend(args);
            match prepare(&argv) {
                Err(ChaosError::BadInput(message)) => {
                    assert!(message.contains(flag), "{argv:?}: {message}");
                }
                other => panic!("{argv:?} should be bad input, got {other:?}"),
            }
        }
    }

    #[test]
    fn upstream_needs_a_port_and_a_resolvable_host() {
        for upstream in ["127.0.0.1", "127.0.0.1:0", "no-such-host.invalid:80"] {
            let argv = ["--listen", "127.0.0.1:0", "--upstream", upstream];
            assert!(
                matches!(prepare(&argv), Err(ChaosError::BadInput(_))),
                "{upstream}"
            );
        }
    }

    #[test]
    fn endpoint_or_method_switches_to_http() -> Result<()> {
        let mut argv = BASE.to_vec();
        argv.extend(["--endpoint", "/v1/webhooks/stripe", "--method", "post"]);
        let prepared = prepare(&argv)?;
        assert_eq!(prepared.parameters["mode"], "explicit-http");
        assert_eq!(prepared.parameters["http"]["methods"][0], "POST");
        assert_eq!(prepare(&BASE)?.parameters["mode"], "explicit-tcp");
        Ok(())
    }

    #[test]
    fn runbook_spellings_are_accepted() -> Result<()> {
        let mut argv = BASE.to_vec();
        argv.extend(["--latency-ms=5000", "--jitter-ms=10", "--duration=60"]);
        let prepared = prepare(&argv)?;
        assert_eq!(prepared.parameters["latencyMs"], 5000);
        assert_eq!(prepared.parameters["jitterMs"], 10);
        assert_eq!(prepared.duration, Duration::from_secs(60));
        Ok(())
    }

    #[test]
    fn modes_do_not_mix() {
        let table: [&[&str]; 7] = [
            &[
                "--listen",
                "127.0.0.1:1",
                "--upstream",
                "127.0.0.1:2",
                "--target",
                "10.0.0.1",
            ],
            &["--target", "10.0.0.1", "--app-port", "3000"],
            &["--target", "10.0.0.1", "-H", "10.0.0.2"],
            &["--target", "10.0.0.1:6379", "-p", "6380"],
            &["-p", "6379"],
            &[
                "--listen",
                "127.0.0.1:1",
                "--upstream",
                "127.0.0.1:2",
                "--reset-existing",
            ],
            &["--target", "127.0.0.1:6379"],
        ];
        for argv in table {
            assert!(
                matches!(prepare(argv), Err(ChaosError::BadInput(_))),
                "{argv:?}"
            );
        }
    }

    #[test]
    fn transparent_modes_are_chosen_from_their_flags() -> Result<()> {
        let egress = prepare(&["--target=198.51.100.2:6379", "--reset-existing"])?;
        assert_eq!(egress.parameters["mode"], "egress-tcp");
        assert_eq!(egress.parameters["targetPort"], 6379);
        let hosts = prepare(&["-H", "198.51.100.2", "-H", "198.51.100.6", "-p", "80"])?;
        assert_eq!(
            hosts.parameters["targetAddresses"].as_array().map(Vec::len),
            Some(2)
        );
        let ingress = prepare(&["--endpoint", "/v1/webhooks/stripe", "--latency-ms=10000"])?;
        assert_eq!(ingress.parameters["mode"], "ingress-http");
        assert_eq!(ingress.parameters["appPort"], 3000);
        let tcp_ingress = prepare(&["--app-port", "8080"])?;
        assert_eq!(tcp_ingress.parameters["mode"], "ingress-tcp");
        Ok(())
    }

    #[test]
    fn targets_split_into_host_and_port() {
        assert_eq!(split_target("redis").ok(), Some(("redis".to_owned(), None)));
        assert_eq!(
            split_target("redis:6379").ok(),
            Some(("redis".to_owned(), Some(6379)))
        );
        for bad in ["", "redis:", "redis:0", "redis:99999", ":6379", "::1"] {
            assert!(split_target(bad).is_err(), "{bad}");
        }
    }
}
