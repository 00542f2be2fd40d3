//! The proxy engine: a listener with a large backlog, one task per connection, and a
//! bounded drain at the end.
//!
//! It runs on its own multi-threaded runtime (the runner's is single-threaded), so that
//! forwarding uses every core and is not slowed by the runner's own work.
//!
//! Stopping ([`Proxy::stop`]): the drain starts (HTTP connections close once every
//! request on them is answered), connections in flight run until they end, for at most
//! the drain timeout, or until a stop signal arrives during the drain; then what is left
//! is closed and counted. The explicit proxy stops accepting at once (taking in what the
//! kernel had already accepted, so no client is reset by the listener's close); a
//! transparent one keeps accepting until the end of the drain, because a connection
//! redirected just before the rule went away may still be completing its handshake.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Result};
use serde::Serialize;
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{info, warn};

use crate::accept;
use crate::connection::Context;
use crate::dial::Upstream;
use crate::http::Delays;
use crate::model::LatencyModel;
use crate::observations::round;
use crate::sockets;
use crate::stats::{Counter, Stats};

/// After the drain, how long cut connections get to unwind.
const CUT_GRACE: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// A transparent listener (ingress: IP_TRANSPARENT for TPROXY) that also keeps
    /// accepting during the drain.
    pub transparent: bool,
    pub upstream: Upstream,
    pub model: LatencyModel,
    /// Some: speak HTTP and delay only matching requests.
    pub http: Option<Delays>,
    pub buffer_limit: usize,
}

/// The proxy's runtime, shut down without blocking however it is dropped (a plain
/// `Runtime` panics when dropped inside the runner's async context).
#[derive(Debug)]
struct BackgroundRuntime(Option<Runtime>);

impl Drop for BackgroundRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

/// A running proxy; [`Proxy::stop`] consumes it.
#[derive(Debug)]
pub struct Proxy {
    _runtime: BackgroundRuntime,
    accept: Option<JoinHandle<()>>,
    stop_accept: watch::Sender<bool>,
    draining: watch::Sender<bool>,
    cut: watch::Sender<bool>,
    stats: Arc<Stats>,
    keep_accepting: bool,
    pub local_addr: SocketAddr,
}

/// How the drain ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrainEnd {
    /// Every connection ended.
    AllFinished,
    /// `--drain-timeout` passed.
    Timeout,
    /// A stop signal arrived during the drain.
    Signal,
}

/// What the drain did (the report's `revert.details.proxy`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Drained {
    /// Connections open when the drain started.
    pub in_flight_at_stop: u64,
    /// Connections accepted during the drain (transparent modes: redirected just before
    /// the rule went; explicit: already accepted by the kernel).
    pub accepted_during_drain: u64,
    /// HTTP connections closed by the drain between two requests.
    pub closed_idle: u64,
    /// Connections that ended on their own during the drain.
    pub finished: u64,
    /// Connections still open when the drain ended, closed by the proxy.
    pub cut_after_drain: u64,
    /// True when nothing was cut.
    pub drained: bool,
    pub ended_by: DrainEnd,
    pub drain_ms: f64,
}

fn bind_error(addr: SocketAddr, e: &io::Error) -> ChaosError {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => " (the port is in use: pick another --listen port)",
        io::ErrorKind::AddrNotAvailable => " (no local interface has that address: fix --listen)",
        io::ErrorKind::PermissionDenied => " (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
        _ => "",
    };
    ChaosError::fault(format!("cannot listen on {addr} (--listen): {e}{hint}"))
}

/// Raises the soft open-files limit to the hard one: each proxied connection holds two
/// descriptors, and the usual soft limit of 1024 would cap the proxy near 500 connections.
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
        && let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
    {
        warn!("cannot raise the open-files limit from {soft} to {hard}: {e}");
    }
}

impl Proxy {
    /// Binds the listener and starts accepting. A port in use is an error naming --listen.
    pub fn start(config: ProxyConfig, stats: Arc<Stats>) -> Result<Proxy> {
        raise_fd_limit();
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .thread_name("latency-proxy")
            .enable_all()
            .build()
            .map_err(|e| ChaosError::fault(format!("cannot start the proxy runtime: {e}")))?;
        let rt = runtime.handle().clone();
        let runtime = BackgroundRuntime(Some(runtime));
        let listener = {
            let _context = rt.enter();
            sockets::listen(config.listen, config.transparent)
                .map_err(|e| bind_error(config.listen, &e))?
        };
        let local_addr = listener
            .local_addr()
            .map_err(|e| bind_error(config.listen, &e))?;
        let (stop_accept, stop_rx) = watch::channel(false);
        let (draining, draining_rx) = watch::channel(false);
        let (cut, cut_rx) = watch::channel(false);
        let context = Arc::new(Context {
            upstream: config.upstream,
            model: config.model,
            http: config.http,
            buffer_limit: config.buffer_limit,
            stats: Arc::clone(&stats),
            draining: draining_rx,
            cut: cut_rx,
        });
        let accept = rt.spawn(accept::accept_loop(listener, context, stop_rx));
        Ok(Proxy {
            _runtime: runtime,
            accept: Some(accept),
            stop_accept,
            draining,
            cut,
            stats,
            keep_accepting: config.transparent,
            local_addr,
        })
    }

    async fn stop_accepting(&mut self) {
        let _ = self.stop_accept.send(true);
        if let Some(accept) = self.accept.take() {
            let _ = accept.await;
        }
    }

    /// Drains in-flight connections for up to `drain` (or until `interrupt`), then
    /// closes the rest.
    pub async fn stop(mut self, drain: Duration, interrupt: impl Future<Output = ()>) -> Drained {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + drain;
        let stats = Arc::clone(&self.stats);
        let (accepted_before, closed_before) = (
            stats.get(Counter::Connections),
            stats.get(Counter::ClosedIdle),
        );
        if !self.keep_accepting {
            self.stop_accepting().await;
        }
        let in_flight = stats.active();
        info!(
            "draining {in_flight} connection(s) for up to {drain:?} (a stop signal ends the drain)"
        );
        let _ = self.draining.send(true);
        tokio::pin!(interrupt);
        let ended_by = loop {
            tokio::select! {
                () = wait_idle(&stats) => {}
                () = tokio::time::sleep_until(deadline) => break DrainEnd::Timeout,
                () = &mut interrupt => break DrainEnd::Signal,
            }
            // Idle: take in what the listener still holds, then look again.
            self.stop_accepting().await;
            if stats.active() == 0 {
                break DrainEnd::AllFinished;
            }
        };
        self.stop_accepting().await;
        let cut = stats.active();
        if cut > 0 {
            warn!(
                "{cut} connection(s) still open at the end of the drain ({ended_by:?}): closing them"
            );
            let _ = self.cut.send(true);
            tokio::time::timeout(CUT_GRACE, wait_idle(&stats))
                .await
                .ok();
        }
        let accepted = stats.get(Counter::Connections) - accepted_before;
        let closed_idle = stats.get(Counter::ClosedIdle) - closed_before;
        Drained {
            in_flight_at_stop: in_flight,
            accepted_during_drain: accepted,
            closed_idle,
            finished: (in_flight + accepted).saturating_sub(closed_idle + cut),
            cut_after_drain: cut,
            drained: cut == 0,
            ended_by,
            drain_ms: round(started.elapsed().as_secs_f64() * 1000.0, 1),
        }
    }
}

async fn wait_idle(stats: &Stats) {
    while stats.active() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
