//! The fixture a test server starts from: namespaces, their Deployments (with the
//! delays of the simulated controllers) and the namespaces where the caller is forbidden.

use std::path::Path;

use anyhow::Context;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Fixture {
    pub namespaces: Vec<NamespaceFixture>,
    /// Requests matching one of these get 403 Forbidden, as RBAC would answer.
    #[serde(default)]
    pub forbidden: Vec<Forbidden>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NamespaceFixture {
    pub name: String,
    #[serde(default)]
    pub deployments: Vec<DeploymentFixture>,
}

/// One Deployment, its ReplicaSet and pods. Delays are milliseconds after the pod's
/// creation step before it; they default to values that keep tests fast.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeploymentFixture {
    pub name: String,
    #[serde(default = "two")]
    pub replicas: i32,
    /// Extra labels on the pods, besides `app=<name>`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Pending -> scheduled (nodeName, PodScheduled).
    #[serde(default = "ms_50")]
    pub schedule_delay_ms: u64,
    /// scheduled -> Running.
    #[serde(default = "ms_100")]
    pub start_delay_ms: u64,
    /// Running -> Ready.
    #[serde(default = "ms_200")]
    pub ready_delay_ms: u64,
    /// Replacement pods of this Deployment never become Ready (the readiness probe
    /// fails); the fixture's own pods start Ready.
    #[serde(default)]
    pub never_ready: bool,
    /// The pods' terminationGracePeriodSeconds (used when a delete gives none).
    #[serde(default = "thirty")]
    pub termination_grace_period_seconds: i64,
    /// A PodDisruptionBudget for this Deployment (named `<name>-pdb`).
    #[serde(default)]
    pub pdb: Option<PdbFixture>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PdbFixture {
    #[serde(default)]
    pub min_available: Option<i32>,
    #[serde(default)]
    pub max_unavailable: Option<i32>,
}

/// A namespace (and optionally only some verbs or resources in it) the caller may not use.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Forbidden {
    pub namespace: String,
    /// Empty: every verb (get, list, watch, create, delete).
    #[serde(default)]
    pub verbs: Vec<String>,
    /// Empty: every resource (pods, deployments, events, pods/eviction, ...).
    #[serde(default)]
    pub resources: Vec<String>,
}

impl Forbidden {
    pub fn matches(&self, namespace: &str, verb: &str, resource: &str) -> bool {
        self.namespace == namespace
            && (self.verbs.is_empty() || self.verbs.iter().any(|v| v == verb))
            && (self.resources.is_empty() || self.resources.iter().any(|r| r == resource))
    }
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
        serde_norway::from_str(text).context("fixture is not valid")
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
