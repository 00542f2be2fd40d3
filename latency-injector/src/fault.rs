//! The tool's fault: one of two engines, chosen in `resolve` (`engine.rs`) and driven
//! through the same contract. The proxy (`proxy_fault.rs`) and netem (`netem.rs`) keep their
//! own configuration; this type holds both (either may be absent when the flags allow
//! only the other), records the choice in the plan, the observations (`engine`,
//! `engineReason`) and the revert details (`engine`), and dispatches.

use chaos_common::{ChaosError, Conclusion, Fault, Plan, Progress, Result};
use serde_json::Value;

use crate::engine::{self, Choice, Engine, EngineFlag, Facts, Shape};
use crate::netem::{self, NetemFault};
use crate::netem_plan;
use crate::probe::{self, Kind};
use crate::proxy_fault::{self, LatencyProxy};

#[derive(Debug)]
pub struct Latency {
    pub(crate) requested: EngineFlag,
    pub(crate) shape: Shape,
    pub(crate) proxy: Option<LatencyProxy>,
    pub(crate) netem: Option<NetemFault>,
    pub(crate) choice: Option<Choice>,
}

#[derive(Debug)]
pub enum Handle {
    Proxy(Box<proxy_fault::Handle>),
    Netem(Box<netem::Handle>),
}

fn missing(engine: &str) -> ChaosError {
    ChaosError::fault(format!("the {engine} engine was chosen but not configured"))
}

/// Adds `engine` (and the reason, when given) to a report object.
fn with_engine(mut value: Value, choice: Option<&Choice>, reason: bool) -> Value {
    if let (Some(object), Some(choice)) = (value.as_object_mut(), choice) {
        object.insert(
            "engine".into(),
            serde_json::to_value(choice.engine).unwrap_or(Value::Null),
        );
        if reason {
            object.insert("engineReason".into(), Value::String(choice.reason.clone()));
        }
    }
    value
}

impl Latency {
    /// The engine: the choice once resolved; before, the one the flags point to.
    pub fn engine(&self) -> Engine {
        match &self.choice {
            Some(choice) => choice.engine,
            None if self.proxy.is_none() || self.requested == EngineFlag::Netem => Engine::Netem,
            None => Engine::Proxy,
        }
    }

    fn proxy(&mut self) -> Result<&mut LatencyProxy> {
        self.proxy.as_mut().ok_or_else(|| missing("proxy"))
    }

    fn netem(&mut self) -> Result<&mut NetemFault> {
        self.netem.as_mut().ok_or_else(|| missing("netem"))
    }

    fn netem_access() -> Result<()> {
        crate::tc::run_blocking(&[crate::tc::TC.to_owned(), "-V".to_owned()], &[])?;
        match probe::kind("netem", probe::LOOPBACK) {
            Kind::Unknown(why) if why.contains("CAP_NET_ADMIN") => {
                Err(ChaosError::Precondition(format!(
                    "the netem engine needs CAP_NET_ADMIN in this network namespace ({why}): run as root or in a debug container with NET_ADMIN"
                )))
            }
            _ => Ok(()),
        }
    }
}

impl Fault for Latency {
    type Handle = Handle;

    fn plan(&self) -> Plan {
        let mut plan = match (self.engine(), &self.proxy, &self.netem) {
            (Engine::Netem, _, Some(netem)) => netem_plan::plan(netem),
            (_, Some(proxy), _) => proxy.plan(),
            (_, None, Some(netem)) => netem_plan::plan(netem),
            (_, None, None) => Plan::default(),
        };
        if let Some(choice) = &self.choice {
            plan.steps.insert(
                0,
                format!(
                    "use the {} engine ({})",
                    serde_json::to_value(choice.engine)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    choice.reason
                ),
            );
            plan.warnings.extend(choice.warning.clone());
            for target in &mut plan.targets {
                if target.details.is_null() {
                    target.details = Value::Object(serde_json::Map::new());
                }
                target.details =
                    with_engine(std::mem::take(&mut target.details), Some(choice), false);
            }
        }
        plan
    }

    async fn resolve(&mut self) -> Result<()> {
        let requested = self.requested;
        let shape = self.shape;
        let matches = self.netem.as_ref().map(|n| n.matches.clone());
        let choice = tokio::task::spawn_blocking(move || {
            engine::decide(requested, shape, || match &matches {
                Some(matches) => engine::gather(matches),
                None => Facts {
                    netem: Kind::Unknown("not a netem fault".into()),
                    prio: Kind::Unknown("not a netem fault".into()),
                    devices: Err("these flags need the proxy".into()),
                },
            })
        })
        .await
        .map_err(|e| ChaosError::fault(format!("choosing the engine panicked: {e}")))??;
        if choice.engine == Engine::Netem {
            self.netem()?.devices.clone_from(&choice.devices);
        }
        tracing::info!("engine: {:?} ({})", choice.engine, choice.reason);
        self.choice = Some(choice);
        Ok(())
    }

    fn check_access(&self) -> Result<()> {
        match (self.engine(), &self.proxy) {
            (Engine::Netem, _) => Latency::netem_access(),
            (Engine::Proxy, Some(proxy)) => proxy.check_access(),
            (Engine::Proxy, None) => Err(missing("proxy")),
        }
    }

    async fn baseline(&mut self) -> Result<Value> {
        match self.engine() {
            Engine::Proxy => self.proxy()?.baseline().await,
            Engine::Netem => Ok(Value::Null),
        }
    }

    async fn apply(&mut self) -> Result<Handle> {
        match self.engine() {
            Engine::Proxy => self
                .proxy()?
                .apply()
                .await
                .map(|h| Handle::Proxy(Box::new(h))),
            Engine::Netem => self
                .netem()?
                .apply()
                .await
                .map(|h| Handle::Netem(Box::new(h))),
        }
    }

    async fn observe(&mut self, handle: &mut Handle) -> Result<Progress> {
        match handle {
            Handle::Proxy(h) => self.proxy()?.observe(h).await,
            Handle::Netem(h) => self.netem()?.observe(h).await,
        }
    }

    fn conclude(&mut self, handle: &mut Handle) -> Conclusion {
        let conclusion = match (handle, &mut self.proxy, &mut self.netem) {
            (Handle::Proxy(h), Some(proxy), _) => proxy.conclude(h),
            (Handle::Netem(h), _, Some(netem)) => netem.conclude(h),
            _ => Conclusion::default(),
        };
        Conclusion {
            observations: with_engine(conclusion.observations, self.choice.as_ref(), true),
            criteria: conclusion.criteria,
        }
    }

    async fn revert(&mut self, handle: Handle) -> Result<Value> {
        let details = match handle {
            Handle::Proxy(h) => self.proxy()?.revert(*h).await?,
            Handle::Netem(h) => self.netem()?.revert(*h).await?,
        };
        Ok(with_engine(details, self.choice.as_ref(), false))
    }

    fn manual_revert_steps(&self) -> Vec<String> {
        match (self.engine(), &self.proxy, &self.netem) {
            (Engine::Netem, _, Some(netem)) => netem.manual_revert_steps(),
            (_, Some(proxy), _) => proxy.manual_revert_steps(),
            _ => vec!["latency-injector --cleanup".to_owned()],
        }
    }
}
