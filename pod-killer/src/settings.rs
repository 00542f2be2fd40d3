//! The validated configuration of a run ([`Settings`], built by `cli.rs`) and the kill
//! [`Method`]. A leaf module: everything else reads it, it reads nothing of this crate.

use std::time::Duration;

use chaos_common::kube::ClientOptions;
use chaos_common::kube::targets::TargetSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Delete,
    Evict,
}

impl Method {
    pub fn verb(self) -> &'static str {
        match self {
            Method::Delete => "delete",
            Method::Evict => "evict",
        }
    }

    pub fn past(self) -> &'static str {
        match self {
            Method::Delete => "deleted",
            Method::Evict => "evicted",
        }
    }

    /// The Event's `action`.
    pub fn action(self) -> &'static str {
        match self {
            Method::Delete => "Delete",
            Method::Evict => "Evict",
        }
    }
}

/// Validated flags.
#[derive(Debug, Clone)]
pub struct Settings {
    pub namespace: String,
    /// Where the namespace came from (`-n/--namespace`, `CHAOS_NAMESPACE`, the kubeconfig
    /// context NAME, the default), for the log.
    pub namespace_from: String,
    pub target: TargetSpec,
    pub count: u32,
    pub interval: Duration,
    pub grace_period: u32,
    pub delay: Duration,
    pub method: Method,
    pub min_ready: u32,
    /// How long each kill waits for recovery; never shorter than
    /// `expect_recovery_within` (see `cli.rs`).
    pub recovery_timeout: Duration,
    pub expect_recovery_within: Option<Duration>,
    pub client: ClientOptions,
    pub run_id: String,
    /// Where the freeze switch (ConfigMap chaos-freeze) is looked for.
    pub freeze_namespaces: Vec<String>,
}

impl Settings {
    /// The recovery time a kill must meet to pass.
    pub fn limit(&self) -> Duration {
        self.expect_recovery_within.unwrap_or(self.recovery_timeout)
    }
}
