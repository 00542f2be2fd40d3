//! The proxy engine: a listener with a large backlog, one task per connection, and a
//! bounded drain at the end.
//!
//! It runs on its own multi-threaded runtime (the runner's is single-threaded), so that
//! forwarding uses every core and is not slowed by the runner's own work. Stopping: the
//! listener closes first (new connections are refused, or go direct once the redirect
//! is gone), in-flight connections get `drain` to finish (HTTP connections finish the
//! request in flight and close), and whatever is still open after that is cut and counted.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Result};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::runtime::Runtime;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use crate::http::{self, HttpRules};
use crate::model::{LatencyModel, Rng};
use crate::pipe::{self, LegError, Meter};
use crate::sockets;
use crate::stats::Stats;

/// Listen backlog: socat's 5 stalls connections for seconds under load.
const BACKLOG: u32 = 4096;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// After the drain, how long cut connections get to unwind.
const CUT_GRACE: Duration = Duration::from_secs(1);

/// Where a connection goes.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The addresses `--upstream` resolved to, tried in order.
    Fixed(Vec<SocketAddr>),
    /// Transparent egress: the connection's original destination, dialled with this
    /// socket mark so the redirect rule lets it through.
    OriginalDst { mark: u32 },
}

#[derive(Debug, Clone)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    pub upstream: Upstream,
    pub model: LatencyModel,
    /// Some: speak HTTP and delay only matching requests.
    pub http: Option<HttpRules>,
}

/// What every connection task shares.
#[derive(Debug)]
pub struct Shared {
    pub config: ProxyConfig,
    pub stats: Arc<Stats>,
    /// Flips to true when the drain starts (HTTP connections then close after the
    /// request in flight).
    pub draining: watch::Receiver<bool>,
    cut: watch::Receiver<bool>,
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
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
    stop_accept: watch::Sender<bool>,
    draining: watch::Sender<bool>,
    cut: watch::Sender<bool>,
    pub local_addr: SocketAddr,
}

fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
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
            bind(config.listen).map_err(|e| bind_error(config.listen, &e))?
        };
        let local_addr = listener
            .local_addr()
            .map_err(|e| bind_error(config.listen, &e))?;
        let (stop_accept, stop_rx) = watch::channel(false);
        let (draining, draining_rx) = watch::channel(false);
        let (cut, cut_rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            config,
            stats,
            draining: draining_rx,
            cut: cut_rx,
        });
        let accept = rt.spawn(accept_loop(listener, Arc::clone(&shared), stop_rx));
        Ok(Proxy {
            _runtime: runtime,
            shared,
            accept,
            stop_accept,
            draining,
            cut,
            local_addr,
        })
    }

    pub fn stats(&self) -> &Arc<Stats> {
        &self.shared.stats
    }

    /// Stops accepting, drains in-flight connections for up to `drain`, cuts the rest.
    pub async fn stop(self, drain: Duration) -> Value {
        let started = Instant::now();
        let _ = self.stop_accept.send(true);
        let _ = self.accept.await;
        let _ = self.draining.send(true);
        let stats = &self.shared.stats;
        let in_flight = stats.active();
        let drained = wait_idle(stats, drain).await;
        let cut = stats.active();
        if !drained {
            warn!("{cut} connection(s) still open after the {drain:?} drain: closing them");
            let _ = self.cut.send(true);
            wait_idle(stats, CUT_GRACE).await;
        }
        json!({
            "inFlightAtStop": in_flight,
            "drained": drained,
            "cutAfterDrain": if drained { 0 } else { cut },
            "drainMs": started.elapsed().as_secs_f64() * 1000.0,
        })
    }
}

async fn wait_idle(stats: &Stats, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while stats.active() > 0 {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = stop.changed() => return,
            accepted = listener.accept() => match accepted {
                Ok((client, peer)) => {
                    tokio::spawn(connection(client, peer, Arc::clone(&shared)));
                }
                Err(e) => {
                    // EMFILE and friends: back off rather than spin.
                    warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// Decrements the active count however the connection task ends.
struct Active(Arc<Stats>);

impl Drop for Active {
    fn drop(&mut self) {
        self.0.connection_ended();
    }
}

async fn connection(client: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    let mut rng = Rng::from_entropy();
    let model = shared.config.model;
    // In HTTP mode the decision is per request, made there.
    let affected = shared.config.http.is_none() && model.affects(&mut rng);
    shared.stats.connection_started(affected);
    let _active = Active(Arc::clone(&shared.stats));
    let mut cut = shared.cut.clone();
    tokio::select! {
        () = serve(client, peer, affected, rng, &shared) => {}
        _ = cut.wait_for(|c| *c) => {
            shared.stats.add(&shared.stats.cut_at_end, 1);
        }
    }
}

async fn serve(client: TcpStream, peer: SocketAddr, affected: bool, rng: Rng, shared: &Shared) {
    let _ = client.set_nodelay(true);
    let upstream = match &shared.config.upstream {
        Upstream::Fixed(addrs) => connect_first(addrs).await,
        Upstream::OriginalDst { mark } => connect_original(&client, *mark).await,
    };
    let upstream = match upstream {
        Ok(upstream) => upstream,
        Err((addr, e)) => {
            debug!("{peer}: cannot connect to upstream {addr}: {e}");
            shared
                .stats
                .upstream_error(&format!("connect: {}", cause(&e)));
            return;
        }
    };
    if let Some(rules) = &shared.config.http {
        http::serve(client, upstream, rules, shared, rng).await;
        return;
    }
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let model = shared.config.model;
    let meter = |bytes: fn(&Stats) -> &std::sync::atomic::AtomicU64| Meter {
        stats: Arc::clone(&shared.stats),
        bytes,
    };
    let up_delay = (affected && model.direction.delays_upstream()).then(|| (model, rng.clone()));
    let mut down_rng = rng;
    down_rng.next_u64();
    let down_delay = (affected && model.direction.delays_downstream()).then_some((model, down_rng));
    let up = pipe::forward(
        client_read,
        upstream_write,
        up_delay,
        meter(|s| &s.bytes_upstream),
    );
    let down = pipe::forward(
        upstream_read,
        client_write,
        down_delay,
        meter(|s| &s.bytes_downstream),
    );
    match tokio::try_join!(up, down) {
        Ok(_) => {}
        // Writing toward the upstream or reading from it failed: an upstream error.
        Err(LegError::Write(e)) | Err(LegError::Read(e)) => {
            debug!("{peer}: connection ended with {e}");
            if is_upstream_side(&e) {
                shared.stats.upstream_error(cause(&e));
            }
        }
    }
}

/// Resets and broken pipes are what a failing peer looks like; count them.
fn is_upstream_side(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe | io::ErrorKind::TimedOut
    )
}

/// A short, stable cause for the report.
pub fn cause(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset",
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::AddrNotAvailable => "address not available",
        _ => "other",
    }
}

type Connected = std::result::Result<TcpStream, (SocketAddr, io::Error)>;

/// Dials where a redirected connection was going, marked so it is not redirected again.
async fn connect_original(client: &TcpStream, mark: u32) -> Connected {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    let target = sockets::original_dst(client).map_err(|e| (unknown, e))?;
    if client.local_addr().ok() == Some(target) {
        // Not redirected (a client connected to the proxy port itself): refuse, or the
        // proxy would connect to itself.
        let e = io::Error::new(
            io::ErrorKind::AddrNotAvailable,
            "not a redirected connection",
        );
        return Err((target, e));
    }
    match tokio::time::timeout(CONNECT_TIMEOUT, sockets::connect_marked(target, mark)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err((target, e)),
        Err(_) => Err((target, io::Error::from(io::ErrorKind::TimedOut))),
    }
}

/// Connects to the first upstream address that answers.
pub async fn connect_first(addrs: &[SocketAddr]) -> Connected {
    let mut last = None;
    for &addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                return Ok(stream);
            }
            Ok(Err(e)) => last = Some((addr, e)),
            Err(_) => last = Some((addr, io::Error::from(io::ErrorKind::TimedOut))),
        }
    }
    Err(last.unwrap_or_else(|| {
        let none = SocketAddr::from(([0, 0, 0, 0], 0));
        (
            none,
            io::Error::new(io::ErrorKind::AddrNotAvailable, "no upstream address"),
        )
    }))
}
