//! What a test server starts with (YAML; documented in docs/kube-test-server.md): server
//! settings, simulated nodes, namespaces with their Deployments and StatefulSets (each
//! with the timings of its simulated pods), and PodDisruptionBudgets.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    #[serde(default)]
    pub server: ServerFixture,
    /// Nodes whose pods the simulated kubelet runs.
    #[serde(default = "default_nodes")]
    pub nodes: Vec<String>,
    #[serde(default)]
    pub namespaces: Vec<NamespaceFixture>,
}

/// Server behaviour; the defaults are a real server's where that is practical.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ServerFixture {
    /// Changes kept per resource for watches and lists at an older resourceVersion;
    /// older ones get 410 Gone (the real watch cache keeps about 100 to 1000s).
    #[serde(default = "default_history")]
    pub watch_history: usize,
    /// How often a watch that asked for bookmarks gets one (a real server: about 1 min).
    #[serde(default = "default_bookmark_ms")]
    pub bookmark_interval_ms: u64,
    /// How long a watch lasts when the client gives no `timeoutSeconds` (a real server
    /// picks 30-60 min).
    #[serde(default = "default_watch_timeout")]
    pub watch_timeout_seconds: u64,
    /// How long controllers wait after a change before they act.
    #[serde(default = "default_controller_delay")]
    pub controller_delay_ms: u64,
    /// API Priority and Fairness stand-in: this share of requests from non-exempt users
    /// is answered 429 with `Retry-After`.
    #[serde(default)]
    pub throttle_percent: u32,
    #[serde(default = "one")]
    pub retry_after_seconds: u32,
}

impl Default for ServerFixture {
    fn default() -> Self {
        ServerFixture {
            watch_history: default_history(),
            bookmark_interval_ms: default_bookmark_ms(),
            watch_timeout_seconds: default_watch_timeout(),
            controller_delay_ms: default_controller_delay(),
            throttle_percent: 0,
            retry_after_seconds: 1,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceFixture {
    pub name: String,
    #[serde(default)]
    pub deployments: Vec<WorkloadFixture>,
    #[serde(default)]
    pub statefulsets: Vec<WorkloadFixture>,
}

/// A Deployment or StatefulSet and its pods (labelled `app=<name>`). Delays are
/// milliseconds, kept short so tests are fast; the fixture's own pods start Ready.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkloadFixture {
    pub name: String,
    #[serde(default = "two")]
    pub replicas: i32,
    /// Extra labels on the pods, besides `app=<name>`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Pending -> scheduled.
    #[serde(default = "ms_50")]
    pub schedule_delay_ms: u64,
    /// scheduled -> Running.
    #[serde(default = "ms_100")]
    pub start_delay_ms: u64,
    /// Running -> Ready.
    #[serde(default = "ms_200")]
    pub ready_delay_ms: u64,
    /// New pods never become Ready (the readiness probe fails).
    #[serde(default)]
    pub never_ready: bool,
    /// How long containers take to exit after SIGTERM; default: the whole grace period.
    #[serde(default)]
    pub stop_delay_ms: Option<u64>,
    /// The pods' terminationGracePeriodSeconds (used when a DELETE gives none).
    #[serde(default = "thirty")]
    pub termination_grace_period_seconds: i64,
    /// Finalizers every pod starts with (they hold a deleted pod in Terminating).
    #[serde(default)]
    pub finalizers: Vec<String>,
    /// A PodDisruptionBudget `<name>-pdb` selecting the pods.
    #[serde(default)]
    pub pdb: Option<PdbFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdbFixture {
    #[serde(default)]
    pub min_available: Option<serde_json::Value>,
    #[serde(default)]
    pub max_unavailable: Option<serde_json::Value>,
}

fn default_nodes() -> Vec<String> {
    vec!["kind-worker".into()]
}
fn default_history() -> usize {
    1000
}
fn default_bookmark_ms() -> u64 {
    60_000
}
fn default_watch_timeout() -> u64 {
    1800
}
fn default_controller_delay() -> u64 {
    10
}
fn one() -> u32 {
    1
}
fn two() -> i32 {
    2
}
fn thirty() -> i64 {
    30
}
fn ms_50() -> u64 {
    50
}
fn ms_100() -> u64 {
    100
}
fn ms_200() -> u64 {
    200
}

impl Fixture {
    pub fn from_yaml(text: &str) -> anyhow::Result<Fixture> {
        let fixture: Fixture = serde_norway::from_str(text).context("fixture is not valid")?;
        if fixture.server.throttle_percent > 100 {
            anyhow::bail!("server.throttlePercent must be between 0 and 100");
        }
        Ok(fixture)
    }

    pub fn load(path: &Path) -> anyhow::Result<Fixture> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read fixture {}", path.display()))?;
        Fixture::from_yaml(&text).with_context(|| format!("in {}", path.display()))
    }

    /// The platform's fixture, `tests/fixtures/lomash-wood.yaml`.
    pub fn lomash_wood() -> anyhow::Result<Fixture> {
        Fixture::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lomash-wood.yaml"))
    }
}
