//! The command line and its validation into a [`Latency`] (the proxy or netem). All
//! input checks live here and run before anything is touched (bad input: exit 2).

use std::net::SocketAddr;
use std::time::Duration;

use chaos_common::ChaosError;
use chaos_common::Result;
use chaos_common::cli::CommonArgs;
use chaos_common::duration::{HumanDuration, parse_millis};
use chaos_common::remote::{RemoteArgs, Request};
use chaos_common::summary::{ReportView, Said, Style};
use chaos_common::tool::{Hidden, Prepared, Tool};
use clap::Parser;

use crate::config;
use crate::engine::EngineFlag;
use crate::fault::Latency;
use crate::matching::{HttpRules, normalise};
use crate::model::{Direction, LatencyModel};
use crate::settings::Settings;
use crate::size::ByteSize;

const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// The platform's container port.
const DEFAULT_APP_PORT: u16 = 3000;
/// Longest latency accepted: beyond this, clients time out and it is a partition.
const MAX_LATENCY_MS: u64 = 600_000;
/// Longest drain accepted: the drain exists so that requests in flight finish, and the
/// longest a request can be held is MAX_LATENCY_MS; a longer drain would only prolong
/// the fault (and keep the watchdog's deadline far away).
const MAX_DRAIN: Duration = Duration::from_millis(MAX_LATENCY_MS);
/// Bounds of --buffer-limit: below 1 KiB nothing useful fits; above 1 GiB a few
/// connections could take the machine's memory.
const MIN_BUFFER: u64 = 1024;
const MAX_BUFFER: u64 = 1 << 30;

/// Delays TCP connections (per chunk) or HTTP requests (per matching request) through a
/// user-space proxy, or TCP packets leaving this network namespace with the kernel's
/// netem (--engine).
///
/// Explicit proxy: `--listen 127.0.0.1:6380 --upstream 127.0.0.1:6379 -l 500`; point
/// clients at the listen address. With `--endpoint` the proxy speaks HTTP and delays only
/// the matching requests. Without a target (`-l 200 -j 50 [-p PORT]`): every outgoing TCP
/// connection of this network namespace, with netem.
///
/// Remote mode (--service A, --pod, --deployment, or -n NS --target SERVICE): it runs in
/// an ephemeral container in each target pod (docs/remote.md); `-l` stays the latency, so
/// the label selector is --selector only.
#[derive(Debug, Parser)]
#[command(name = "latency-injector", version, after_help = crate::help::AFTER_HELP)]
#[command(mut_arg("selector", |a| a.short(None)))]
pub struct Cli {
    /// Address the explicit proxy listens on (IP:PORT).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Where the explicit proxy forwards to (HOST:PORT; resolved at start).
    #[arg(long, value_name = "HOST:PORT")]
    pub upstream: Option<String>,

    /// Added latency: a bare number is milliseconds; also 500ms, 5s, 1m.
    #[arg(
        short = 'l',
        long = "latency",
        visible_alias = "latency-ms",
        value_name = "MS",
        default_value_t = 200,
        allow_negative_numbers = true,
        value_parser = parse_millis
    )]
    pub latency_ms: u64,

    /// Jitter (a bare number is milliseconds; also 50ms, 1s): each delay is uniform in
    /// latency ± jitter (never below 0).
    #[arg(
        short = 'j',
        long = "jitter",
        visible_alias = "jitter-ms",
        value_name = "MS",
        default_value_t = 0,
        allow_negative_numbers = true,
        value_parser = parse_millis
    )]
    pub jitter_ms: u64,

    /// Percent of connections (TCP) or matching requests (HTTP) that are delayed (above 0, up to 100).
    #[arg(
        long,
        value_name = "PERCENT",
        default_value_t = 100.0,
        allow_negative_numbers = true
    )]
    pub probability: f64,

    /// Which way delayed bytes travel (TCP mode; HTTP mode delays requests).
    #[arg(long, value_enum, default_value = "upstream")]
    pub direction: Direction,

    /// HTTP mode: delay only requests whose path starts with PATH (whole segments, compared
    /// after normalisation: %-decoding of unreserved characters, dot-segments, repeated
    /// slashes; repeatable).
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

    /// Transparent ingress without policy routing: the application then sees 127.0.0.1
    /// instead of each client's address (by default ingress keeps clients' addresses,
    /// and refuses to run where it cannot).
    #[arg(long)]
    pub allow_source_rewrite: bool,

    /// At the end, how long in-flight connections get to finish before they are closed
    /// (at most 10m; a stop signal during the drain ends it at once).
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub drain_timeout: HumanDuration,

    /// HTTP mode: a request head not complete this long after its first byte is passed
    /// on as it is, and the connection passes through untouched from then on.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub header_timeout: HumanDuration,

    /// Bytes queued per direction of a connection (held, or waiting for a slow peer)
    /// before the proxy stops reading from the sender; also the largest HTTP head
    /// parsed (a larger one passes through untouched). 1KiB to 1GiB.
    #[arg(long, value_name = "BYTES", default_value = "4MiB")]
    pub buffer_limit: ByteSize,

    /// How the delay is made: netem (the kernel's qdisc on the egress interfaces; TCP
    /// egress only), proxy (user space; every mode), or auto: netem for TCP egress where
    /// the kernel has sch_netem and no other root qdisc is in the way, else the proxy.
    #[arg(long, value_enum, default_value = "auto")]
    pub engine: EngineFlag,

    #[command(flatten)]
    pub common: CommonArgs,

    #[command(flatten)]
    pub remote: RemoteArgs,
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
        if self.probability == 0.0 {
            return Err(ChaosError::bad_input(
                "--probability 0 delays nothing: that is not a fault (give a percentage above 0, up to 100)",
            ));
        }
        if !(0.0..=100.0).contains(&self.probability) || self.probability.is_nan() {
            return Err(ChaosError::bad_input(format!(
                "--probability {} must be a percentage above 0, up to 100",
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
        if http && self.direction != Direction::Upstream {
            return Err(ChaosError::bad_input(
                "--direction is for TCP mode: HTTP mode (--endpoint, --method, --http) delays requests",
            ));
        }
        Ok(http.then(|| HttpRules {
            endpoints: self
                .endpoints
                .iter()
                .map(|e| normalise(e.as_bytes()))
                .collect(),
            methods,
        }))
    }
}

impl Cli {
    /// Every flag checked, into what [`config::build`] needs.
    fn settings(&self) -> Result<Settings> {
        let model = self.model()?;
        let rules = self.http_rules()?;
        let chosen = self.choose(rules.is_some())?;
        let drain = self.drain_timeout.as_duration();
        if drain > MAX_DRAIN {
            return Err(ChaosError::bad_input(format!(
                "--drain-timeout {} is over {}m: the drain only lets requests in flight finish, \
                 and none is held longer than the 10 minutes --latency-ms allows",
                self.drain_timeout,
                MAX_DRAIN.as_secs() / 60
            )));
        }
        let header_timeout = self.header_timeout.as_duration();
        if header_timeout.is_zero() {
            return Err(ChaosError::bad_input("--header-timeout must be above 0"));
        }
        let buffer_limit = self.buffer_limit.bytes();
        if !(MIN_BUFFER..=MAX_BUFFER).contains(&buffer_limit) {
            return Err(ChaosError::bad_input(format!(
                "--buffer-limit {} must be from 1KiB to 1GiB",
                self.buffer_limit
            )));
        }
        Ok(Settings {
            model,
            latency_ms: self.latency_ms,
            jitter_ms: self.jitter_ms,
            rules,
            chosen,
            engine: self.engine,
            duration: self.common.duration_or(DEFAULT_DURATION)?,
            drain,
            header_timeout,
            buffer_limit,
            reset_existing: self.reset_existing,
            allow_source_rewrite: self.allow_source_rewrite,
        })
    }
}

impl Tool for Cli {
    const NAME: &'static str = crate::TOOL;
    type Fault = Latency;

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn summarize(report: &ReportView, style: &Style) -> Option<Said> {
        crate::summary::describe(report, style)
    }

    fn prepare(self, run_id: &str) -> Result<Prepared<Latency>> {
        config::build(self.settings()?, run_id)
    }

    /// The watchdog that removes this run's table, and the guards that remove its
    /// policy routing and its netem qdiscs, if the tool dies or hangs.
    const HIDDEN: &'static [Hidden] = &[
        Hidden {
            name: crate::watchdog::WATCHDOG_ARG,
            run: |args| crate::watchdog::main(crate::TOOL, args),
        },
        Hidden {
            name: crate::guard::GUARD_ARG,
            run: crate::guard::main,
        },
        Hidden {
            name: crate::netem_guard::NETEM_GUARD_ARG,
            run: crate::netem_guard::main,
        },
    ];

    fn cleanup_leftovers(dry_run: bool) -> Result<Vec<String>> {
        let mut removed = crate::nft::cleanup_leftovers(crate::TOOL, dry_run)?;
        removed.extend(crate::routes::cleanup_leftovers(dry_run)?);
        removed.extend(crate::netem::cleanup_leftovers(dry_run)?);
        Ok(removed)
    }

    /// Remote mode (`remote.rs`): the forms of the issue and the runbooks.
    fn remote(&self) -> Result<Option<Request>> {
        let request = crate::remote::request(&self.remote_flags())?;
        if request.is_some() {
            self.model()?;
            self.http_rules()?;
            self.common.duration_or(DEFAULT_DURATION)?;
            self.check_unresolved()?;
        }
        Ok(request)
    }
}

impl Cli {
    /// The flags remote mode reads (`remote.rs`).
    pub(crate) fn remote_flags(&self) -> crate::remote::Flags<'_> {
        let placed =
            self.app_port.is_some() || !self.target_hosts.is_empty() || self.listen.is_some();
        crate::remote::Flags {
            remote: &self.remote,
            target: self.target.as_deref(),
            target_port: self.target_port,
            reset_existing: self.reset_existing,
            placed,
            aimed: placed
                || self.target.is_some()
                || self.http
                || !self.endpoints.is_empty()
                || !self.methods.is_empty(),
        }
    }
}

#[path = "cli_modes.rs"]
mod modes;

#[cfg(test)]
#[path = "cli_tests.rs"]
mod tests;
