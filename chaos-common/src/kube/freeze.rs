//! The freeze switch: while a ConfigMap `chaos-freeze` exists in a run's namespace (or
//! in `--freeze-namespace`), every tool that reaches the cluster refuses to start (exit
//! 3, quoting its `reason`), and running remote runs and pod-killer stop and revert
//! within 5 s of its creation.
//!
//! ```text
//! kubectl create configmap chaos-freeze -n lomash-wood --from-literal=reason="incident INC-123"
//! ```
//!
//! Running runs poll it with `get` on that one name every second rather than watching:
//! `get` can be granted for exactly `chaos-freeze` (`resourceNames`), where a watch needs
//! list and watch on every ConfigMap of the namespace; one request a second meets the
//! 5 s with room to spare. A poll that fails (API unreachable) is logged and retried: the
//! switch cannot be seen then, and the run goes on as it would without the API.

use std::time::Duration;

use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use tracing::{debug, warn};

use super::client::{ClientOptions, connect};
use super::error::code_of;
use super::{Connection, api_error};
use crate::error::{ChaosError, Result};

/// The ConfigMap's name.
pub const NAME: &str = "chaos-freeze";
/// How often running runs look for it.
pub const POLL: Duration = Duration::from_secs(1);

/// Where a run looks for the switch: its target namespace, then `--freeze-namespace`
/// (validated, exit 2 when malformed) if it differs.
pub fn namespaces(target: &str, freeze_namespace: Option<&str>) -> Result<Vec<String>> {
    let mut namespaces = vec![target.to_owned()];
    if let Some(ns) = freeze_namespace {
        let ns = crate::safety::validate_namespace(ns)
            .map_err(|e| ChaosError::bad_input(format!("--freeze-namespace: {e}")))?;
        if !namespaces.contains(&ns) {
            namespaces.push(ns);
        }
    }
    Ok(namespaces)
}

/// A freeze switch that is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frozen {
    pub namespace: String,
    /// Its `reason` key, if any.
    pub reason: Option<String>,
}

impl Frozen {
    pub fn describe(&self) -> String {
        let reason = self.reason.as_deref().map_or_else(
            || "no reason given".to_owned(),
            |r| format!("reason: \"{r}\""),
        );
        format!(
            "ConfigMap {NAME} exists in namespace {} ({reason})",
            self.namespace
        )
    }

    /// The refusal of a run that wants to start.
    pub fn refusal(&self) -> ChaosError {
        ChaosError::Refused {
            rule: "freeze",
            message: format!(
                "chaos is frozen: {}; delete it to allow runs again (kubectl delete configmap {NAME} -n {})",
                self.describe(),
                self.namespace
            ),
        }
    }
}

/// Where runs look for the switch, with the client to look with.
#[derive(Debug, Clone, PartialEq)]
pub struct FreezeSwitch {
    pub client: ClientOptions,
    pub namespaces: Vec<String>,
}

/// The first namespace of `namespaces` where the switch is on.
pub async fn check(conn: &Connection, namespaces: &[String]) -> Result<Option<Frozen>> {
    for ns in namespaces {
        let api: Api<ConfigMap> = Api::namespaced(conn.client.clone(), ns);
        match api.get(NAME).await {
            Ok(cm) => {
                let reason = cm.data.as_ref().and_then(|d| d.get("reason")).cloned();
                return Ok(Some(Frozen {
                    namespace: ns.clone(),
                    reason,
                }));
            }
            Err(e) if code_of(&e) == Some(404) => {}
            Err(e) => {
                return Err(api_error(e, "get", &format!("configmaps/{NAME}"), ns, conn));
            }
        }
    }
    Ok(None)
}

/// Polls every [`POLL`] until the switch is on; resolves with the stop reason
/// (`freeze: ...`). Connects lazily, and keeps trying when the API is unreachable.
pub async fn wait_frozen(switch: FreezeSwitch) -> String {
    let mut conn: Option<Connection> = None;
    let mut ticker = tokio::time::interval(POLL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        if conn.is_none() {
            match connect(&switch.client).await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    warn!("freeze switch: cannot connect ({e}); trying again");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        match check(c, &switch.namespaces).await {
            Ok(Some(frozen)) => {
                warn!("freeze switch on: {}; stopping", frozen.describe());
                return format!("freeze: {}", frozen.describe());
            }
            Ok(None) => debug!("freeze switch off"),
            Err(e) => warn!("freeze switch: {e}; trying again"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_quotes_the_reason_and_the_way_out() {
        let f = Frozen {
            namespace: "lomash-wood".into(),
            reason: Some("incident INC-123".into()),
        };
        let e = f.refusal();
        assert_eq!(e.exit(), crate::Exit::Refused);
        let text = e.to_string();
        assert!(text.contains("\"incident INC-123\""), "{text}");
        assert!(
            text.contains("kubectl delete configmap chaos-freeze -n lomash-wood"),
            "{text}"
        );
        let none = Frozen {
            namespace: "x".into(),
            reason: None,
        };
        assert!(none.describe().contains("no reason given"));
    }
}
