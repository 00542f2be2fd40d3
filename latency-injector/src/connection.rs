//! One proxied connection: dial the upstream for the client that was accepted (one
//! upstream connection per client connection, as direct), then relay both directions as
//! two [`Leg`]s until both ends have closed, one side was reset, or the end of the run
//! cuts it.
//!
//! Lifecycle as it came: a FIN from either side half-closes the other side and the
//! opposite direction keeps flowing; a reset from either side resets the other (after the
//! bytes sent before it); an upstream that refuses or fails for a new connection gives
//! the client a reset (what a refused connect looks like once a proxy has accepted it),
//! counted by cause. During the drain an HTTP connection is closed (FIN both ways, as a
//! server closes an idle keep-alive connection) once every request on it has its complete
//! response and nothing more has arrived; anything else runs until it ends or is cut.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use crate::http::{Delays, Exchanges, RequestSchedule, ResponseSchedule};
use crate::leg::{Leg, Outcome, Schedule, Wiring};
use crate::model::{LatencyModel, Rng};
use crate::schedule::{Delayed, Immediate};
use crate::sockets;
use crate::stats::{Counter, Stats};

/// Where a connection goes.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The addresses `--upstream` resolved to, tried in order.
    Fixed(Vec<SocketAddr>),
    /// Transparent egress: the connection's original destination (SO_ORIGINAL_DST),
    /// dialled with this socket mark so the redirect rule lets it through.
    OriginalDst { mark: u32 },
    /// Transparent ingress: the application on 127.0.0.1:`port`, dialled from the
    /// client's own address when `preserve_source`.
    App { port: u16, preserve_source: bool },
}

/// What every connection task needs, and nothing more.
#[derive(Debug)]
pub struct Context {
    pub upstream: Upstream,
    /// TCP mode: the per-connection model; HTTP mode: `http` decides per request.
    pub model: LatencyModel,
    pub http: Option<Delays>,
    /// `--buffer-limit`: bytes queued per direction, and the largest head parsed.
    pub buffer_limit: usize,
    pub stats: Arc<Stats>,
    /// Flips to true when the drain starts.
    pub draining: watch::Receiver<bool>,
    /// Flips to true when the drain is over: close what is left.
    pub cut: watch::Receiver<bool>,
}

const BASELINE_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The cause of a descriptor shortage (EMFILE, ENFILE): a local limit, not a peer's fault.
pub const OPEN_FILES: &str = "open-files limit";

/// A short, stable cause for the report.
pub fn cause(e: &io::Error) -> &'static str {
    if matches!(
        e.raw_os_error(),
        Some(nix::libc::EMFILE | nix::libc::ENFILE)
    ) {
        return OPEN_FILES;
    }
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset",
        io::ErrorKind::BrokenPipe => "broken pipe",
        io::ErrorKind::TimedOut => "timed out",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        io::ErrorKind::AddrNotAvailable => "address not available",
        io::ErrorKind::AddrInUse => "address in use",
        io::ErrorKind::PermissionDenied => "permission denied",
        _ => "other",
    }
}

pub type Connected = Result<TcpStream, (SocketAddr, io::Error)>;

/// Connects to the first of `addrs` that answers within 5 s (the baseline's probe).
pub async fn connect_first(addrs: &[SocketAddr]) -> Connected {
    let mut last = None;
    for &addr in addrs {
        match tokio::time::timeout(BASELINE_CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
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

fn not_redirected(at: SocketAddr) -> (SocketAddr, io::Error) {
    let e = io::Error::new(
        io::ErrorKind::AddrNotAvailable,
        "not a redirected connection",
    );
    (at, e)
}

/// Dials the upstream of `client`. No timeout of its own: the kernel's SYN retries
/// decide, as they would for the client direct (the drain still bounds it at the end).
async fn connect(client: &TcpStream, peer: SocketAddr, upstream: &Upstream) -> Connected {
    let unknown = SocketAddr::from(([0, 0, 0, 0], 0));
    match upstream {
        Upstream::Fixed(addrs) => {
            let mut last = not_redirected(unknown);
            for &addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => return Ok(stream),
                    Err(e) => last = (addr, e),
                }
            }
            Err(last)
        }
        Upstream::OriginalDst { mark } => {
            let target = sockets::original_dst(client).map_err(|e| (unknown, e))?;
            // A client that connected to the proxy's port itself: refused, or the proxy
            // would connect to itself.
            if client.local_addr().ok() == Some(target) {
                return Err(not_redirected(target));
            }
            sockets::connect_marked(target, *mark)
                .await
                .map_err(|e| (target, e))
        }
        Upstream::App {
            port,
            preserve_source,
        } => {
            let local = client.local_addr().map_err(|e| (unknown, e))?;
            let app = SocketAddr::from(([127, 0, 0, 1], *port));
            if local.port() != *port {
                return Err(not_redirected(local));
            }
            let connected = if *preserve_source {
                sockets::connect_as(peer, app).await
            } else {
                TcpStream::connect(app).await
            };
            connected.map_err(|e| (app, e))
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

/// Serves one accepted connection to its end.
pub async fn serve(client: TcpStream, peer: SocketAddr, ctx: Arc<Context>) {
    ctx.stats.connection_started();
    let _active = Active(Arc::clone(&ctx.stats));
    let mut cut = ctx.cut.clone();
    let connected = tokio::select! {
        connected = connect(&client, peer, &ctx.upstream) => connected,
        _ = cut.wait_for(|c| *c) => {
            ctx.stats.bump(Counter::CutAtEnd);
            return;
        }
    };
    let upstream = match connected {
        Ok(upstream) => upstream,
        Err((addr, e)) => {
            debug!("{peer}: cannot connect to upstream {addr}: {e}");
            match cause(&e) {
                // No descriptor left for the upstream socket: this end's limit, counted
                // with the failed accepts.
                OPEN_FILES => ctx.stats.accept_error(OPEN_FILES),
                cause => ctx.stats.upstream_error(&format!("connect: {cause}")),
            }
            sockets::reset_on_close(&client);
            return;
        }
    };
    // Bytes go on as they come: Nagle here would add delays of its own.
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    relay(&client, &upstream, &ctx).await;
}

/// What the two legs and their connection share.
#[derive(Debug, Default)]
struct Link {
    client_failed: AtomicBool,
    upstream_failed: AtomicBool,
    up_queued: AtomicUsize,
    down_queued: AtomicUsize,
}

fn schedules(ctx: &Context, exchanges: &Arc<Exchanges>) -> (Box<dyn Schedule>, Box<dyn Schedule>) {
    let mut rng = Rng::from_entropy();
    let stats = Arc::clone(&ctx.stats);
    if let Some(delays) = &ctx.http {
        let up = RequestSchedule::new(
            delays.clone(),
            ctx.buffer_limit,
            rng,
            Arc::clone(exchanges),
            Arc::clone(&stats),
        );
        let down = ResponseSchedule::new(ctx.buffer_limit, Arc::clone(exchanges), stats);
        return (Box::new(up), Box::new(down));
    }
    let model = ctx.model;
    let affected = model.affects(&mut rng);
    if affected {
        stats.bump(Counter::ConnectionsDelayed);
    }
    let mut down_rng = rng.clone();
    down_rng.next_u64();
    let delayed = |delays: bool, rng: Rng| -> Box<dyn Schedule> {
        if affected && delays {
            Box::new(Delayed {
                model,
                rng,
                stats: Arc::clone(&stats),
            })
        } else {
            Box::new(Immediate)
        }
    };
    (
        delayed(model.direction.delays_upstream(), rng),
        delayed(model.direction.delays_downstream(), down_rng),
    )
}

enum Wake {
    Up(Outcome),
    Down(Outcome),
    Draining,
    IdleChanged,
    Cut,
}

async fn relay(client: &TcpStream, upstream: &TcpStream, ctx: &Context) {
    let link = Link::default();
    let exchanges = Arc::new(Exchanges::default());
    let (up_schedule, down_schedule) = schedules(ctx, &exchanges);
    let (up_idle_tx, mut up_idle) = watch::channel(None);
    let (down_idle_tx, mut down_idle) = watch::channel(None);
    let (closing_tx, closing) = watch::channel(false);
    let stats = &*ctx.stats;
    let up = Leg::new(
        client,
        upstream,
        up_schedule,
        ctx.buffer_limit,
        Wiring {
            source_failed: &link.client_failed,
            sink_failed: &link.upstream_failed,
            queued: &link.up_queued,
            idle: up_idle_tx,
            closing: closing.clone(),
            stats,
            delivered: Counter::BytesUpstream,
            resets: Counter::ResetsFromClient,
        },
    )
    .run();
    let down = Leg::new(
        upstream,
        client,
        down_schedule,
        ctx.buffer_limit,
        Wiring {
            source_failed: &link.upstream_failed,
            sink_failed: &link.client_failed,
            queued: &link.down_queued,
            idle: down_idle_tx,
            closing,
            stats,
            delivered: Counter::BytesDownstream,
            resets: Counter::ResetsFromUpstream,
        },
    )
    .run();
    tokio::pin!(up, down);
    let (mut draining, mut cut) = (ctx.draining.clone(), ctx.cut.clone());
    let (mut up_open, mut down_open) = (true, true);
    let (mut drain_seen, mut closing) = (*draining.borrow(), false);
    loop {
        let watch_idle = drain_seen && !closing && up_open && down_open;
        let wake = tokio::select! {
            outcome = &mut up, if up_open => Wake::Up(outcome),
            outcome = &mut down, if down_open => Wake::Down(outcome),
            _ = draining.wait_for(|d| *d), if !drain_seen => Wake::Draining,
            _ = up_idle.changed(), if watch_idle => Wake::IdleChanged,
            _ = down_idle.changed(), if watch_idle => Wake::IdleChanged,
            _ = cut.wait_for(|c| *c) => Wake::Cut,
        };
        match wake {
            Wake::Up(outcome) => {
                up_open = false;
                if aborts(outcome, client) {
                    return;
                }
            }
            Wake::Down(outcome) => {
                down_open = false;
                if aborts(outcome, upstream) {
                    return;
                }
            }
            Wake::Draining => drain_seen = true,
            Wake::IdleChanged => {}
            Wake::Cut => {
                stats.bump(Counter::CutAtEnd);
                let queued = link.up_queued.load(Ordering::Relaxed)
                    + link.down_queued.load(Ordering::Relaxed);
                // Held bytes would be lost: say so with a reset; an idle one just closes.
                if queued > 0 {
                    sockets::reset_on_close(client);
                    sockets::reset_on_close(upstream);
                }
                return;
            }
        }
        if !up_open && !down_open {
            return;
        }
        let idle =
            up_idle.borrow().is_some() && down_idle.borrow().is_some() && exchanges.settled();
        if drain_seen && !closing && up_open && down_open && idle {
            closing = true;
            let _ = closing_tx.send(true);
            stats.bump(Counter::ClosedIdle);
        }
    }
}

/// Whether a leg's outcome ends the whole connection now. `source` is that leg's source.
fn aborts(outcome: Outcome, source: &TcpStream) -> bool {
    match outcome {
        Outcome::Closed | Outcome::SinkFailed => false,
        // The leg has set its sink to reset on close: close everything now.
        Outcome::Reset => true,
        // Bytes after the drain closed the other side cannot go anywhere: reset their
        // sender, as a server does when data arrives after it closed.
        Outcome::LateData => {
            sockets::reset_on_close(source);
            true
        }
    }
}
