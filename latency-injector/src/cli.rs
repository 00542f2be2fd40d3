//! The command line and its validation into a [`LatencyProxy`]. All input checks live
//! here and run before anything is touched (bad input: exit 2).

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::Result;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::HumanDuration;
use chaos_common::tool::{Prepared, Tool};
use clap::Parser;
use serde_json::json;

use crate::fault::LatencyProxy;
use crate::http::HttpRules;
use crate::model::{Direction, LatencyModel};
use crate::proxy::{ProxyConfig, Upstream};

const DEFAULT_DURATION: Duration = Duration::from_secs(60);
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

    fn explicit(&self) -> Result<(SocketAddr, String, Vec<SocketAddr>)> {
        match (&self.listen, &self.upstream) {
            (Some(listen), Some(upstream)) => {
                Ok((*listen, upstream.clone(), resolve("--upstream", upstream)?))
            }
            (Some(_), None) => Err(ChaosError::bad_input("--listen needs --upstream HOST:PORT")),
            (None, Some(_)) => Err(ChaosError::bad_input("--upstream needs --listen ADDR")),
            (None, None) => Err(ChaosError::bad_input(
                "say where to put the proxy: --listen ADDR --upstream HOST:PORT",
            )),
        }
    }
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
        let (listen, upstream_text, upstream) = self.explicit()?;
        let duration = self.common.duration_or(DEFAULT_DURATION)?;
        let drain = self.drain_timeout.as_duration();
        let parameters = json!({
            "mode": if http.is_some() { "explicit-http" } else { "explicit-tcp" },
            "listen": listen.to_string(),
            "upstream": upstream_text,
            "upstreamAddresses": upstream.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "latencyMs": self.latency_ms,
            "jitterMs": self.jitter_ms,
            "probability": model.probability,
            "direction": model.direction,
            "http": http,
            "drainTimeoutMs": drain.as_millis() as u64,
            "durationS": duration.as_secs_f64(),
        });
        let config = ProxyConfig {
            listen,
            upstream: Upstream::Fixed(upstream),
            model,
            http,
        };
        Ok(Prepared {
            fault: LatencyProxy::new(run_id, config, upstream_text, drain),
            duration,
            parameters,
        })
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
}
