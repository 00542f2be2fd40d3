//! One pod's run, as the operator's tool sees it: its state (shared through a `watch`
//! channel so the fault can wait on changes instead of polling), the context every
//! session shares, and what the in-pod run's output lines mean (JSON log lines relayed
//! with the pod's name; the line that says the fault is applied; the report).

use std::sync::Arc;
use std::time::Instant;

use serde_json::Value;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, error, info, warn};

use super::Delivery;
use super::pods::PodTarget;
use crate::kube::Connection;

/// The message the runner logs once the fault is applied.
pub use crate::runner::APPLIED as APPLIED_MESSAGE;

/// Where a pod's run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Waiting,
    Delivering,
    Started,
    Applied,
    Ended,
}

/// How a pod's run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Its report arrived (it ended by itself, or after `--stop`).
    Completed,
    /// Delivery or start failed: nothing ran in the pod.
    NotStarted,
    /// The container was killed with the run in it (expected with memory-leak
    /// --watch-oom; otherwise a failure).
    ContainerKilled,
    /// Contact was lost: whether it still runs is unknown (it ends at its duration).
    Lost,
}

/// One pod's run.
#[derive(Debug, Clone)]
pub struct PodRun {
    pub target: PodTarget,
    pub stage: Stage,
    pub applied_at: Option<Instant>,
    pub ended_at: Option<Instant>,
    pub outcome: Option<Outcome>,
    /// The in-pod run's report (its last report line).
    pub report: Option<Value>,
    pub errors: Vec<String>,
    /// `--stop RUNID` was sent.
    pub stop_sent: bool,
    /// Exec delivery: the copied directory was removed.
    pub removed: Option<bool>,
    /// memory-leak --watch-oom: what the pod watch saw.
    pub oom: Option<Value>,
    /// Peer address updates sent to the pod's fault (net-partition -t).
    pub updates: Vec<Value>,
    /// Set while a killed container's pod is awaited Ready again (--watch-oom).
    pub recovering_until: Option<Instant>,
}

impl PodRun {
    pub fn new(target: PodTarget) -> PodRun {
        PodRun {
            target,
            stage: Stage::Waiting,
            applied_at: None,
            ended_at: None,
            outcome: None,
            report: None,
            errors: Vec::new(),
            stop_sent: false,
            removed: None,
            oom: None,
            updates: Vec::new(),
            recovering_until: None,
        }
    }

    pub fn ended(&self) -> bool {
        self.stage == Stage::Ended
    }
}

pub type Shared = watch::Sender<PodRun>;

/// Where and how the tool runs in each pod: everything the plan needs (pure).
#[derive(Debug, Clone)]
pub struct Layout {
    pub tool: &'static str,
    pub run_id: String,
    pub namespace: String,
    pub delivery: Delivery,
    pub remote_dir: String,
    pub image: String,
    /// The in-pod arguments after the program.
    pub argv: Vec<String>,
}

impl Layout {
    /// `chaos-TOOL-RUNID`: the copied directory, and the ephemeral container's name.
    pub fn name(&self) -> String {
        format!("chaos-{}-{}", self.tool, self.run_id)
    }

    /// The copied directory (exec delivery).
    pub fn dir(&self) -> String {
        format!("{}/{}", self.remote_dir.trim_end_matches('/'), self.name())
    }

    /// The program the pod runs: the copy, or the image's tool on its PATH.
    pub fn program(&self) -> String {
        match self.delivery {
            Delivery::Exec => format!("{}/{}", self.dir(), self.tool),
            Delivery::Ephemeral => self.tool.to_owned(),
        }
    }

    /// The whole in-pod command.
    pub fn command(&self) -> Vec<String> {
        std::iter::once(self.program())
            .chain(self.argv.iter().cloned())
            .collect()
    }

    /// `TOOL --stop RUNID` as the pod runs it.
    pub fn stop_command(&self) -> Vec<String> {
        vec![self.program(), "--stop".into(), self.run_id.clone()]
    }

    /// The container a stop (or any later exec) goes to.
    pub fn exec_container(&self, target: &PodTarget) -> String {
        match self.delivery {
            Delivery::Exec => target.container.clone(),
            Delivery::Ephemeral => self.name(),
        }
    }

    /// The stop command as an operator can type it.
    pub fn kubectl_stop(&self, target: &PodTarget) -> String {
        super::exec::kubectl_exec(
            &self.namespace,
            &target.name,
            &self.exec_container(target),
            &self.stop_command(),
        )
    }
}

/// What every session of a live run shares.
#[derive(Debug)]
pub struct Ctx {
    pub layout: Layout,
    pub conn: Connection,
    /// Exec delivery: the tar stream, built once.
    pub archive: Option<Arc<Vec<u8>>>,
    pub watch_oom: bool,
    /// Bounds how many pods are delivered to at once.
    pub permits: Arc<Semaphore>,
    /// The start of apply, for `appliedMs`.
    pub started: Instant,
    /// Set when the run is being stopped: a session that has not started its pod's run
    /// yet does not start it.
    pub stopping: std::sync::atomic::AtomicBool,
}

impl Ctx {
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl std::ops::Deref for Ctx {
    type Target = Layout;
    fn deref(&self) -> &Layout {
        &self.layout
    }
}

/// What one output line of the in-pod run is.
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// A report (an object with `schemaVersion`).
    Report(Value),
    /// A JSON log line: level, message, the other fields.
    Log {
        level: String,
        message: String,
        fields: Vec<(String, String)>,
    },
    /// Anything else (a panic message, a container runtime's own line).
    Text(String),
}

/// Classifies a line (a container log line may carry a CRI timestamp prefix: stripped by
/// the caller).
pub fn classify(line: &str) -> Line {
    let trimmed = line.trim();
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(trimmed) else {
        return Line::Text(trimmed.to_owned());
    };
    if map.contains_key("schemaVersion") {
        return Line::Report(Value::Object(map));
    }
    let text = |k: &str| map.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let fields = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "timestamp" | "level" | "message" | "target"))
        .map(|(k, v)| {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            (k.clone(), v)
        })
        .collect();
    Line::Log {
        level: text("level"),
        message: text("message"),
        fields,
    }
}

/// Relays a pod's log line: warnings and errors as they are, the rest at debug (the
/// remote layer logs each pod's milestones itself).
pub fn relay(pod: &str, level: &str, message: &str, fields: &[(String, String)]) {
    let extra: String = fields.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    match level {
        "ERROR" => error!(pod, "{message}{extra}"),
        "WARN" => warn!(pod, "{message}{extra}"),
        _ => debug!(pod, "{message}{extra}"),
    }
}

/// Handles one output line: relays logs, notes the applied moment, keeps the report.
pub fn on_line(shared: &Shared, pod: &str, line: &str) {
    match classify(line) {
        Line::Report(report) => shared.send_modify(|r| r.report = Some(report)),
        Line::Log {
            level,
            message,
            fields,
        } => {
            if message == APPLIED_MESSAGE {
                shared.send_if_modified(|r| {
                    if r.applied_at.is_some() {
                        return false;
                    }
                    r.applied_at = Some(Instant::now());
                    r.stage = Stage::Applied;
                    true
                });
                info!(pod, "fault applied in pod {pod}");
            } else {
                relay(pod, &level, &message, &fields);
            }
        }
        Line::Text(text) if !text.is_empty() => warn!(pod, "{text}"),
        Line::Text(_) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_reports_logs_or_text() {
        assert!(matches!(
            classify(r#"{"schemaVersion":"1.2","result":"ok"}"#),
            Line::Report(_)
        ));
        assert_eq!(
            classify(
                r#"{"timestamp":"t","level":"INFO","message":"fault applied","target":"chaos_common::runner","phase":"apply"}"#
            ),
            Line::Log {
                level: "INFO".into(),
                message: "fault applied".into(),
                fields: vec![("phase".into(), "apply".into())]
            }
        );
        assert_eq!(
            classify("thread 'main' panicked"),
            Line::Text("thread 'main' panicked".into())
        );
        assert_eq!(classify("[1,2]"), Line::Text("[1,2]".into()));
    }
}
