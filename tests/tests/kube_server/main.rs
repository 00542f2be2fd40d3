//! The Kubernetes API test server, judged by the real kubectl (1.32) and kube-rs: the
//! behaviours clients rely on, each against what a real API server does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod auth;
mod basics;
mod deletion;
mod events;
mod throttle;
mod watch;
mod workloads;

use std::path::Path;
use std::process::Output;

use chaos_tests::kube_lab::KubeLab;
use serde_json::Value;

pub fn lab() -> KubeLab {
    KubeLab::lomash_wood().unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"))
}

pub fn lab_from(yaml: &str) -> KubeLab {
    KubeLab::from_yaml(yaml).unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"))
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Asserts kubectl succeeded; returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(out.status.success(), "kubectl failed: {}", stderr(out));
    stdout(out)
}

pub fn condition(pod: &Value, kind: &str) -> Option<String> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == kind)
        .and_then(|c| c["status"].as_str())
        .map(str::to_owned)
}

/// A kube-rs client for `kubeconfig` (the judge beside kubectl).
pub async fn client(kubeconfig: &Path) -> kube::Client {
    let file = kube::config::Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(file, &Default::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}
