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

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::debug;

use crate::dial::{self, OPEN_FILES, Upstream, cause};
use crate::exchanges::Exchanges;
use crate::http::{Delays, RequestSchedule, ResponseSchedule};
use crate::leg::{Leg, Outcome, Wiring};
use crate::model::{LatencyModel, Rng};
use crate::queue::Schedule;
use crate::schedule::{Delayed, Immediate};
use crate::sockets;
use crate::stats::{Counter, Stats};

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
        connected = dial::connect(&client, peer, &ctx.upstream) => connected,
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

/// The two legs of one connection, wired to each other through `link`.
struct Legs<'a> {
    up: Leg<'a, Box<dyn Schedule>>,
    down: Leg<'a, Box<dyn Schedule>>,
}

/// What the connection watches while its legs run.
struct Watches {
    up_idle: watch::Receiver<Option<u64>>,
    down_idle: watch::Receiver<Option<u64>>,
    closing: watch::Sender<bool>,
}

fn legs<'a>(
    client: &'a TcpStream,
    upstream: &'a TcpStream,
    ctx: &'a Context,
    link: &'a Link,
    exchanges: &Arc<Exchanges>,
) -> (Legs<'a>, Watches) {
    let (up_schedule, down_schedule) = schedules(ctx, exchanges);
    let (up_idle_tx, up_idle) = watch::channel(None);
    let (down_idle_tx, down_idle) = watch::channel(None);
    let (closing, closing_rx) = watch::channel(false);
    let stats = &*ctx.stats;
    let up = Wiring {
        source_failed: &link.client_failed,
        sink_failed: &link.upstream_failed,
        queued: &link.up_queued,
        idle: up_idle_tx,
        closing: closing_rx.clone(),
        stats,
        delivered: Counter::BytesUpstream,
        resets: Counter::ResetsFromClient,
    };
    let down = Wiring {
        source_failed: &link.upstream_failed,
        sink_failed: &link.client_failed,
        queued: &link.down_queued,
        idle: down_idle_tx,
        closing: closing_rx,
        stats,
        delivered: Counter::BytesDownstream,
        resets: Counter::ResetsFromUpstream,
    };
    let legs = Legs {
        up: Leg::new(client, upstream, up_schedule, ctx.buffer_limit, up),
        down: Leg::new(upstream, client, down_schedule, ctx.buffer_limit, down),
    };
    let watches = Watches {
        up_idle,
        down_idle,
        closing,
    };
    (legs, watches)
}

/// Held bytes would be lost: the cut says so with a reset; an idle connection just closes.
fn cut(client: &TcpStream, upstream: &TcpStream, link: &Link, stats: &Stats) {
    stats.bump(Counter::CutAtEnd);
    let queued = link.up_queued.load(Ordering::Relaxed) + link.down_queued.load(Ordering::Relaxed);
    if queued > 0 {
        sockets::reset_on_close(client);
        sockets::reset_on_close(upstream);
    }
}

async fn relay(client: &TcpStream, upstream: &TcpStream, ctx: &Context) {
    let link = Link::default();
    let exchanges = Arc::new(Exchanges::default());
    let (legs, mut watches) = legs(client, upstream, ctx, &link, &exchanges);
    let (up, down) = (legs.up.run(), legs.down.run());
    tokio::pin!(up, down);
    let (mut draining, mut cut_rx) = (ctx.draining.clone(), ctx.cut.clone());
    let (mut up_open, mut down_open) = (true, true);
    let (mut drain_seen, mut closing) = (*draining.borrow(), false);
    loop {
        let watch_idle = drain_seen && !closing && up_open && down_open;
        let wake = tokio::select! {
            outcome = &mut up, if up_open => Wake::Up(outcome),
            outcome = &mut down, if down_open => Wake::Down(outcome),
            _ = draining.wait_for(|d| *d), if !drain_seen => Wake::Draining,
            _ = watches.up_idle.changed(), if watch_idle => Wake::IdleChanged,
            _ = watches.down_idle.changed(), if watch_idle => Wake::IdleChanged,
            _ = cut_rx.wait_for(|c| *c) => Wake::Cut,
        };
        match wake {
            Wake::Up(outcome) if aborts(outcome, client) => return,
            Wake::Down(outcome) if aborts(outcome, upstream) => return,
            Wake::Up(_) => up_open = false,
            Wake::Down(_) => down_open = false,
            Wake::Draining => drain_seen = true,
            Wake::IdleChanged => {}
            Wake::Cut => return cut(client, upstream, &link, &ctx.stats),
        }
        if !up_open && !down_open {
            return;
        }
        let idle = watches.up_idle.borrow().is_some()
            && watches.down_idle.borrow().is_some()
            && exchanges.settled();
        if drain_seen && !closing && up_open && down_open && idle {
            closing = true;
            let _ = watches.closing.send(true);
            ctx.stats.bump(Counter::ClosedIdle);
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
