//! The proxy engine's fault: a latency proxy put in the path of a TCP service or HTTP
//! endpoints, explicitly (clients point at it) or transparently (an nftables table
//! owned by the run, and for ingress a policy rule that keeps clients' addresses).
//! `apply` starts the proxy, then the redirect; `revert` lets new connections go direct first, drains the
//! proxy, then removes what the redirected connections needed until then.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::dial::{self, Upstream};
use crate::nft;
use crate::observations::{Counters, Observations, Redirected, Sample, round};
use crate::placement::Placement;
use crate::plan;
use crate::proxy::{Proxy, ProxyConfig};
use crate::redirect::{self, Applied};
use crate::routes;
use crate::rules::{self, Redirect};
use crate::sockets;
use crate::stats::Stats;

#[derive(Debug)]
pub struct LatencyProxy {
    pub(crate) run_id: String,
    pub(crate) config: ProxyConfig,
    pub(crate) placement: Placement,
    /// What the hypothesis and targets call the upstream (`redis:6379`, `:3000`).
    pub(crate) label: String,
    pub(crate) drain: Duration,
    /// How long the table and routes may stand: the run plus its longest drain. Past it
    /// (and the watchdog's grace) the watchdog and the guard remove them even if this
    /// process hangs.
    pub(crate) run_for: Duration,
}

/// What apply started.
#[derive(Debug)]
pub struct Handle {
    proxy: Proxy,
    stats: Arc<Stats>,
    redirect: Option<Applied>,
    bypass: Redirected,
    started: Instant,
    /// One sample per observe interval (1 Hz), at most [`MAX_SAMPLES`].
    samples: Vec<Sample>,
}

/// An hour of 1 Hz samples (the default duration cap).
const MAX_SAMPLES: usize = 3600;

/// Connect time to a fixed upstream, to tell added latency from what was already there.
async fn connect_ms(addrs: &[SocketAddr], flag: &str) -> Result<f64> {
    let started = Instant::now();
    dial::connect_first(addrs).await.map_err(|(addr, e)| {
        ChaosError::fault(format!(
            "upstream {addr} ({flag}) is unreachable: {} ({e})",
            dial::cause(&e)
        ))
    })?;
    Ok(round(started.elapsed().as_secs_f64() * 1000.0, 3))
}

async fn received(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => drop(signal.recv().await),
        None => std::future::pending().await,
    }
}

/// Resolves at the first SIGINT, SIGTERM or SIGHUP from now on (the runner's own
/// handlers stay installed and only log these): a signal during the drain ends it.
pub(crate) fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let [int, term, hup] = [
        SignalKind::interrupt(),
        SignalKind::terminate(),
        SignalKind::hangup(),
    ]
    .map(|kind| signal(kind).ok());
    async move {
        tokio::select! {
            () = received(int) => {}
            () = received(term) => {}
            () = received(hup) => {}
        }
    }
}

impl LatencyProxy {
    /// Privileges and tools the live run needs (transparent modes only).
    fn access(&self) -> Result<()> {
        let Placement::Transparent { routes, .. } = &self.placement else {
            return Ok(());
        };
        nft::check_access()?;
        if matches!(self.config.upstream, Upstream::App { .. }) {
            sockets::probe_transparent().map_err(|e| {
                ChaosError::Precondition(format!(
                    "transparent ingress needs IP_TRANSPARENT sockets ({e}): run with CAP_NET_ADMIN"
                ))
            })?;
        }
        if routes.is_some() {
            routes::check_access()?;
        }
        Ok(())
    }

    fn fixed_upstream(&self) -> Option<(Vec<SocketAddr>, &'static str)> {
        match &self.config.upstream {
            Upstream::Fixed(addrs) => Some((addrs.clone(), "--upstream")),
            Upstream::App { port, .. } => Some((
                vec![SocketAddr::from(([127, 0, 0, 1], *port))],
                "--app-port",
            )),
            Upstream::OriginalDst { .. } => None,
        }
    }

    async fn start_redirect(&self, proxy: &Proxy) -> Result<(Option<Applied>, Redirected)> {
        let Placement::Transparent {
            redirect,
            reset_existing,
            routes,
        } = &self.placement
        else {
            return Ok((None, Redirected::default()));
        };
        let port = proxy.local_addr.port();
        let (applied, before) =
            redirect::apply(&self.run_id, redirect, port, *routes, self.run_for).await?;
        let mut bypass = redirect::handle_bypassing(redirect, &before, *reset_existing);
        bypass.table.clone_from(&applied.table);
        if matches!(redirect, Redirect::Ingress { .. }) {
            bypass.source_address = Some(if routes.is_some() {
                "preserved"
            } else {
                "rewritten"
            });
        }
        Ok((Some(applied), bypass))
    }
}

impl Fault for LatencyProxy {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        plan::plan(
            &self.run_id,
            &self.config,
            &self.placement,
            &self.label,
            self.drain,
        )
    }

    async fn baseline(&mut self) -> Result<Value> {
        let Some((addrs, flag)) = self.fixed_upstream() else {
            return Ok(Value::Null);
        };
        let mut samples = Vec::new();
        for _ in 0..3 {
            samples.push(connect_ms(&addrs, flag).await?);
        }
        samples.sort_by(f64::total_cmp);
        Ok(json!({ "upstreamConnectMs": { "median": samples[1], "samples": samples } }))
    }

    /// The transparent modes need `nft` and NET_ADMIN (ingress: IP_TRANSPARENT, and `ip`
    /// unless --allow-source-rewrite); the explicit proxy needs nothing.
    fn check_access(&self) -> Result<()> {
        self.access()
    }

    #[instrument(skip_all)]
    async fn apply(&mut self) -> Result<Handle> {
        if let Some((addrs, flag)) = self.fixed_upstream() {
            connect_ms(&addrs, flag).await?;
        }
        let stats = Arc::new(Stats::default());
        let proxy = Proxy::start(self.config.clone(), Arc::clone(&stats))?;
        info!("proxy listening on {} for {}", proxy.local_addr, self.label);
        let (redirect, bypass) = match self.start_redirect(&proxy).await {
            Ok(started) => started,
            Err(e) => {
                proxy.stop(Duration::ZERO, std::future::pending()).await;
                return Err(e);
            }
        };
        Ok(Handle {
            proxy,
            stats,
            redirect,
            bypass,
            started: Instant::now(),
            samples: Vec::new(),
        })
    }

    async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        let t_ms = u64::try_from(handle.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        let sample = Sample::of(&handle.stats, t_ms);
        tracing::debug!("observed {sample:?}");
        if handle.samples.len() < MAX_SAMPLES {
            handle.samples.push(sample);
        }
        Ok(Progress::Running)
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        let redirect = handle.redirect.as_ref().map(|applied| Redirected {
            redirected_connections: redirect::redirected(applied),
            ..handle.bypass.clone()
        });
        let observations = Observations {
            listen: handle.proxy.local_addr.to_string(),
            counters: Counters::of(&handle.stats),
            samples: std::mem::take(&mut handle.samples),
            redirect,
        };
        Conclusion {
            observations: serde_json::to_value(observations).unwrap_or(Value::Null),
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all)]
    async fn revert(&mut self, handle: Handle) -> Result<Value> {
        let interrupt = stop_signal();
        if let Some(applied) = &handle.redirect {
            match redirect::stop_new(applied).await {
                Ok(()) => info!("new connections go direct; draining the redirected ones"),
                Err(e) => warn!("cannot stop redirecting new connections: {e}"),
            }
        }
        let drained = handle.proxy.stop(self.drain, interrupt).await;
        info!(
            "proxy stopped: {} finished, {} closed between requests, {} cut ({:?}, {} ms)",
            drained.finished,
            drained.closed_idle,
            drained.cut_after_drain,
            drained.ended_by,
            drained.drain_ms
        );
        let removed = match handle.redirect {
            Some(applied) => Some(redirect::remove(applied).await),
            None => None,
        };
        let details = json!({
            "proxy": drained,
            "redirect": removed.as_ref().and_then(|r| r.as_ref().ok()),
            "countersAfterDrain": Counters::of(&handle.stats),
        });
        match removed {
            Some(Err(e)) => {
                warn!("{e}");
                Err(e)
            }
            _ => Ok(details),
        }
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        match &self.placement {
            Placement::Explicit => vec![format!(
                "nothing persists after the process exits: stop the latency-injector listening on {}",
                self.config.listen
            )],
            Placement::Transparent { routes, .. } => {
                let mut steps =
                    vec![rules::delete_argv(&rules::table_name(&self.run_id)).join(" ")];
                if let Some(routes) = routes {
                    steps.push(routes.rule_argv("del").join(" "));
                    steps.push(routes.route_argv("flush").join(" "));
                }
                steps.push("latency-injector --cleanup".to_owned());
                steps
            }
        }
    }
}
