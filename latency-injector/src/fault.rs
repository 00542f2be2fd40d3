//! The fault: a latency proxy put in the path of a TCP service or HTTP endpoints.
//! `apply` checks the upstream answers and starts the proxy; `revert` stops accepting,
//! drains in-flight connections within the drain timeout, and reports how it went.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_common::report::Target;
use chaos_common::safety::SafetyRequest;
use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::{Value, json};
use tracing::{info, instrument};

use crate::http;
use crate::proxy::{self, Proxy, ProxyConfig};
use crate::stats::Stats;

#[derive(Debug)]
pub struct LatencyProxy {
    run_id: String,
    config: ProxyConfig,
    upstream_label: String,
    drain: Duration,
}

/// What apply started.
#[derive(Debug)]
pub struct Handle {
    proxy: Proxy,
    stats: Arc<Stats>,
}

impl LatencyProxy {
    pub fn new(run_id: &str, config: ProxyConfig, upstream_label: String, drain: Duration) -> Self {
        LatencyProxy {
            run_id: run_id.to_owned(),
            config,
            upstream_label,
            drain,
        }
    }

    fn delay_text(&self) -> String {
        let m = &self.config.model;
        let what = match &self.config.http {
            Some(rules) => format!("each request matching {}", http::describe(rules)),
            None => format!("each chunk travelling {:?}", m.direction).to_lowercase(),
        };
        let share = match &self.config.http {
            Some(_) => "of matching requests",
            None => "of connections",
        };
        format!(
            "hold {what} for {} ms ± {} ms from its arrival ({}% {share})",
            m.latency.as_millis(),
            m.jitter.as_millis(),
            m.probability
        )
    }
}

/// Connect time to the upstream, to tell added latency from what was already there.
async fn connect_ms(config: &ProxyConfig) -> Result<f64> {
    let started = Instant::now();
    proxy::connect_upstream(&config.upstream)
        .await
        .map_err(|(addr, e)| {
            ChaosError::fault(format!(
                "upstream {addr} (--upstream) is unreachable: {} ({e})",
                proxy::cause(&e)
            ))
        })?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

impl Fault for LatencyProxy {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        let kind = if self.config.http.is_some() {
            "http"
        } else {
            "tcp"
        };
        Plan {
            hypothesis: format!(
                "clients of {} see {} ms more latency (± {} ms) and keep working",
                self.upstream_label,
                self.config.model.latency.as_millis(),
                self.config.model.jitter.as_millis()
            ),
            targets: vec![
                Target::new("upstream", &self.upstream_label).with_details(json!({
                    "listen": self.config.listen.to_string(),
                    "protocol": kind,
                    "runId": self.run_id,
                })),
            ],
            steps: vec![
                format!("check that {} accepts connections", self.upstream_label),
                format!("listen on {} (backlog 4096)", self.config.listen),
                format!(
                    "forward each connection to {} ({kind})",
                    self.upstream_label
                ),
                self.delay_text(),
                format!(
                    "at the end: stop accepting, let in-flight connections finish for up to {} ms, then close the rest",
                    self.drain.as_millis()
                ),
            ],
            warnings: Vec::new(),
            // Only clients pointed at the listen address are affected.
            safety: SafetyRequest {
                destructive: false,
                namespaces: Vec::new(),
            },
        }
    }

    async fn baseline(&mut self) -> Result<Value> {
        let mut samples = Vec::new();
        for _ in 0..3 {
            samples.push(connect_ms(&self.config).await?);
        }
        samples.sort_by(f64::total_cmp);
        Ok(json!({ "upstreamConnectMs": { "median": samples[1], "samples": samples } }))
    }

    #[instrument(skip(self), fields(run_id = %self.run_id))]
    async fn apply(&mut self) -> Result<Handle> {
        connect_ms(&self.config).await?;
        let stats = Arc::new(Stats::default());
        let proxy = Proxy::start(self.config.clone(), Arc::clone(&stats))?;
        info!(
            "proxy listening on {} -> {}",
            proxy.local_addr, self.upstream_label
        );
        Ok(Handle { proxy, stats })
    }

    async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        tracing::debug!(
            active = handle.stats.active(),
            upstream_errors = handle.stats.upstream_errors(),
            "observed"
        );
        Ok(Progress::Running)
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        let mut observations = handle.stats.to_json();
        observations["listen"] = json!(handle.proxy.local_addr.to_string());
        Conclusion {
            observations,
            criteria: Vec::new(),
        }
    }

    #[instrument(skip_all, fields(run_id = %self.run_id))]
    async fn revert(&mut self, handle: Handle) -> Result<Value> {
        let drained = handle.proxy.stop(self.drain).await;
        info!("proxy stopped: {drained}");
        Ok(json!({ "proxy": drained, "stats": handle.stats.to_json() }))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        vec![format!(
            "nothing persists after the process exits: kill the latency-injector listening on {}",
            self.config.listen
        )]
    }
}
