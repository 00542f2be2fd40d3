//! The fault: a latency proxy put in the path of a TCP service or HTTP endpoints,
//! explicitly (clients point at it) or transparently (an nftables redirect in a table
//! owned by the run). `apply` starts the proxy, then the redirect; `revert` removes the
//! redirect first (new connections go direct), then drains the proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::{Value, json};
use tracing::{info, instrument, warn};

use crate::http;
use crate::nft;
use crate::proxy::{self, Proxy, ProxyConfig};
use crate::redirect::{self, Applied};
use crate::rules::{self, Redirect};
use crate::stats::Stats;

/// How the proxy is put in the path.
#[derive(Debug, Clone)]
pub enum Placement {
    /// `--listen` / `--upstream`: clients are pointed at the proxy.
    Explicit,
    /// `--target` / `--app-port`: an nftables redirect; with `reset_existing`,
    /// established connections that bypass it are closed at apply.
    Transparent {
        redirect: Redirect,
        reset_existing: bool,
    },
}

#[derive(Debug)]
pub struct LatencyProxy {
    run_id: String,
    config: ProxyConfig,
    placement: Placement,
    /// What the hypothesis and targets call the upstream (`redis:6379`, `:3000`).
    label: String,
    drain: Duration,
    /// How long the run lasts: the watchdog removes the table this long (plus a grace)
    /// after apply even if this process hangs.
    run_for: Duration,
}

/// What apply started.
#[derive(Debug)]
pub struct Handle {
    proxy: Proxy,
    stats: Arc<Stats>,
    redirect: Option<Applied>,
    bypass: Value,
    started: Instant,
    /// One sample per observe interval (1 Hz), at most [`MAX_SAMPLES`].
    samples: Vec<Value>,
}

/// An hour of 1 Hz samples (the default duration cap).
const MAX_SAMPLES: usize = 3600;

impl LatencyProxy {
    pub fn new(
        run_id: &str,
        config: ProxyConfig,
        placement: Placement,
        label: String,
        drain: Duration,
    ) -> Self {
        LatencyProxy {
            run_id: run_id.to_owned(),
            config,
            placement,
            label,
            drain,
            run_for: Duration::ZERO,
        }
    }

    /// Sets how long the run lasts (see `run_for`).
    pub fn running_for(mut self, duration: Duration) -> Self {
        self.run_for = duration;
        self
    }

    fn delay_text(&self) -> String {
        let m = &self.config.model;
        let (what, share) = match &self.config.http {
            Some(rules) => (
                format!("each request matching {}", http::describe(rules)),
                "of matching requests",
            ),
            None => (
                format!("each chunk travelling {:?}", m.direction).to_lowercase(),
                "of connections",
            ),
        };
        format!(
            "hold {what} for {} ms ± {} ms from its arrival ({}% {share})",
            m.latency.as_millis(),
            m.jitter.as_millis(),
            m.probability
        )
    }

    fn placement_steps(&self) -> Vec<String> {
        let kind = if self.config.http.is_some() {
            "http"
        } else {
            "tcp"
        };
        match &self.placement {
            Placement::Explicit => vec![
                format!("check that {} accepts connections", self.label),
                format!("listen on {} (backlog 4096)", self.config.listen),
                format!("forward each connection to {} ({kind})", self.label),
            ],
            Placement::Transparent {
                redirect,
                reset_existing,
            } => {
                let table = rules::table_name(&self.run_id);
                let caught = match redirect {
                    Redirect::Egress { mark, .. } => format!(
                        "outbound TCP connections to {} (nat output; the proxy's own, marked {mark:#x}, are excluded)",
                        self.label
                    ),
                    Redirect::Ingress { app_port } => {
                        format!("inbound TCP connections to port {app_port} (nat prerouting)")
                    }
                };
                let forward = match redirect {
                    Redirect::Egress { .. } => {
                        "forward each to its original destination (SO_ORIGINAL_DST)".to_owned()
                    }
                    Redirect::Ingress { app_port } => {
                        format!("forward each request to the application on 127.0.0.1:{app_port}")
                    }
                };
                vec![
                    format!(
                        "listen on {} (an ephemeral port, backlog 4096)",
                        self.config.listen
                    ),
                    format!("create table inet {table} redirecting {caught} into the proxy"),
                    format!(
                        "start a watchdog that deletes table inet {table} if this process dies"
                    ),
                    format!("{forward} ({kind})"),
                    if *reset_existing {
                        "count established connections that bypass the redirect and close them (ss -K)".to_owned()
                    } else {
                        "count established connections that bypass the redirect (bypassingConnections)".to_owned()
                    },
                ]
            }
        }
    }
}

/// Connect time to a fixed upstream, to tell added latency from what was already there.
async fn connect_ms(addrs: &[SocketAddr], flag: &str) -> Result<f64> {
    let started = Instant::now();
    proxy::connect_first(addrs).await.map_err(|(addr, e)| {
        ChaosError::fault(format!(
            "upstream {addr} ({flag}) is unreachable: {} ({e})",
            proxy::cause(&e)
        ))
    })?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

impl LatencyProxy {
    fn fixed_upstream(&self) -> Option<(&[SocketAddr], &'static str)> {
        match (&self.config.upstream, &self.placement) {
            (proxy::Upstream::Fixed(addrs), Placement::Explicit) => Some((addrs, "--upstream")),
            (proxy::Upstream::Fixed(addrs), _) => Some((addrs, "--app-port")),
            _ => None,
        }
    }

    async fn start_redirect(&self, proxy: &Proxy) -> Result<(Option<Applied>, Value)> {
        let Placement::Transparent {
            redirect,
            reset_existing,
        } = &self.placement
        else {
            return Ok((None, Value::Null));
        };
        let (applied, before) = redirect::apply(
            &self.run_id,
            redirect,
            proxy.local_addr.port(),
            self.run_for,
        )
        .await?;
        let bypass = redirect::handle_bypassing(redirect, &before, *reset_existing);
        Ok((Some(applied), bypass))
    }
}

impl Fault for LatencyProxy {
    type Handle = Handle;

    /// The transparent modes need `nft` and NET_ADMIN; the explicit proxy needs nothing.
    fn check_access(&self) -> Result<()> {
        if matches!(self.placement, Placement::Transparent { .. }) {
            nft::check_access()?;
        }
        Ok(())
    }

    fn plan(&self) -> Plan {
        let mut steps = self.placement_steps();
        steps.push(self.delay_text());
        steps.push(format!(
            "at the end: {}stop accepting, let in-flight connections finish for up to {} ms, then close the rest",
            if matches!(self.placement, Placement::Transparent { .. }) {
                "delete the table (new connections go direct), "
            } else {
                ""
            },
            self.drain.as_millis()
        ));
        let transparent = matches!(self.placement, Placement::Transparent { .. });
        let mut warnings = Vec::new();
        if transparent {
            warnings.push("connections opened before the fault are not redirected: see bypassingConnections, or use --reset-existing".to_owned());
        }
        Plan {
            hypothesis: format!(
                "clients of {} see {} ms more latency (± {} ms) and keep working",
                self.label,
                self.config.model.latency.as_millis(),
                self.config.model.jitter.as_millis()
            ),
            targets: vec![Target::new("upstream", &self.label).with_details(json!({
                "listen": self.config.listen.to_string(),
                "protocol": if self.config.http.is_some() { "http" } else { "tcp" },
                "table": transparent.then(|| rules::table_name(&self.run_id)),
            }))],
            steps,
            warnings,
            // Explicit: only clients pointed at the proxy are affected. Transparent: every
            // matching connection of the network namespace is.
            safety: SafetyRequest {
                destructive: transparent,
                namespaces: Vec::new(),
            },
        }
    }

    async fn baseline(&mut self) -> Result<Value> {
        let Some((addrs, flag)) = self.fixed_upstream() else {
            return Ok(Value::Null);
        };
        let mut samples = Vec::new();
        for _ in 0..3 {
            samples.push(connect_ms(addrs, flag).await?);
        }
        samples.sort_by(f64::total_cmp);
        Ok(json!({ "upstreamConnectMs": { "median": samples[1], "samples": samples } }))
    }

    #[instrument(skip(self), fields(run_id = %self.run_id))]
    async fn apply(&mut self) -> Result<Handle> {
        if let Some((addrs, flag)) = self.fixed_upstream() {
            connect_ms(addrs, flag).await?;
        }
        let stats = Arc::new(Stats::default());
        let proxy = Proxy::start(self.config.clone(), Arc::clone(&stats))?;
        info!("proxy listening on {} for {}", proxy.local_addr, self.label);
        let (redirect, bypass) = match self.start_redirect(&proxy).await {
            Ok(started) => started,
            Err(e) => {
                proxy.stop(Duration::ZERO).await;
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
        let stats = &handle.stats;
        let sample = json!({
            "t": (handle.started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            "activeConnections": stats.active(),
            "connections": stats.connections.load(std::sync::atomic::Ordering::Relaxed),
            "chunksDelayed": stats.chunks_delayed.load(std::sync::atomic::Ordering::Relaxed),
            "requestsDelayed": stats.requests_delayed.load(std::sync::atomic::Ordering::Relaxed),
            "upstreamErrors": stats.upstream_errors(),
        });
        tracing::debug!("observed {sample}");
        if handle.samples.len() < MAX_SAMPLES {
            handle.samples.push(sample);
        }
        Ok(Progress::Running)
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        let mut observations = handle.stats.to_json();
        observations["listen"] = json!(handle.proxy.local_addr.to_string());
        observations["samples"] = json!(handle.samples);
        if let Some(applied) = &handle.redirect {
            observations["table"] = json!(applied.table);
            observations["redirectedConnections"] = json!(redirect::redirected(applied));
            if let Some(bypass) = handle.bypass.as_object() {
                for (key, value) in bypass {
                    observations[key] = value.clone();
                }
            }
        }
        Conclusion {
            observations,
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all, fields(run_id = %self.run_id))]
    async fn revert(&mut self, handle: Handle) -> Result<Value> {
        let removed = match handle.redirect {
            Some(applied) => Some(redirect::remove(applied).await),
            None => None,
        };
        let drained = handle.proxy.stop(self.drain).await;
        info!("proxy stopped: {drained}");
        let details = json!({
            "proxy": drained,
            "redirect": removed.as_ref().map(|r| r.as_ref().ok()),
            "stats": handle.stats.to_json(),
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
            Placement::Transparent { .. } => vec![
                rules::delete_argv(&rules::table_name(&self.run_id)).join(" "),
                "latency-injector --cleanup".to_owned(),
            ],
        }
    }
}
