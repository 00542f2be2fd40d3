//! pod-killer against the Kubernetes API test server over TLS, with the token of the
//! ServiceAccount that `docs/rbac.yaml` creates (applied with kubectl), checked with
//! kubectl and the server's record of what it authorized.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../common/mod.rs"]
mod common;

mod kills;
mod rbac;
mod refusals;
mod resilience;
mod workloads;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use chaos_tests::kube_lab::{KubeLab, rbac_yaml};
use serde_json::Value;

/// A lab and the kubeconfig of the `pod-killer` ServiceAccount of docs/rbac.yaml.
pub struct Setup {
    pub lab: KubeLab,
    pub sa: PathBuf,
}

pub const SA_USER: &str = "system:serviceaccount:lomash-wood:pod-killer";

pub fn setup(yaml: Option<&str>) -> Setup {
    let lab = match yaml {
        Some(yaml) => KubeLab::from_yaml(yaml),
        None => KubeLab::lomash_wood(),
    }
    .unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"));
    let sa = lab.service_account_kubeconfig(&rbac_yaml(), "lomash-wood", "pod-killer");
    Setup { lab, sa }
}

fn args_with(kubeconfig: &std::path::Path, args: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = vec![
        "--kubeconfig".into(),
        kubeconfig.to_string_lossy().into_owned(),
        "--output".into(),
        "json".into(),
        "-y".into(),
    ];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    all
}

impl Setup {
    /// Runs pod-killer as the ServiceAccount; returns (exit, schema-valid report, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, Value, String) {
        let all = args_with(&self.sa, args);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (exit, report, stderr) = common::run_json("pod-killer", &refs);
        common::assert_valid_report(&report);
        (exit, report, stderr)
    }

    /// Starts pod-killer as the ServiceAccount in the background (finish with
    /// `common::finish`).
    pub fn spawn(&self, args: &[&str]) -> Child {
        Command::new(common::bin("pod-killer"))
            .args(args_with(&self.sa, args))
            .env_remove("KUBECONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start pod-killer: {e}"))
    }

    /// Waits until the ServiceAccount's `n`-th authorized request to `verb` `resource`.
    pub fn wait_for_access(&self, verb: &str, resource: &str, n: usize) {
        chaos_tests::kube_lab::wait_until(
            &format!("{verb} {resource} #{n}"),
            std::time::Duration::from_secs(30),
            || {
                let seen = self
                    .lab
                    .control()
                    .accesses()
                    .iter()
                    .filter(|a| {
                        a.user == SA_USER
                            && a.allowed
                            && a.verb == verb
                            && resource_of(a) == resource
                    })
                    .count();
                (seen >= n).then_some(())
            },
        );
    }

    /// Names of the Ready, not terminating pods of `app` (kubectl's view).
    pub fn ready_pods(&self, app: &str) -> Vec<String> {
        let list = self
            .lab
            .kubectl_json(&["get", "pods", "-l", &format!("app={app}")]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| {
                p["status"]["conditions"].as_array().is_some_and(|c| {
                    c.iter()
                        .any(|c| c["type"] == "Ready" && c["status"] == "True")
                })
            })
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// `pods` or `pods/eviction`.
pub fn resource_of(a: &chaos_tests::kube_server::auth::Access) -> String {
    if a.subresource.is_empty() {
        a.resource.clone()
    } else {
        format!("{}/{}", a.resource, a.subresource)
    }
}

pub fn kills(report: &Value) -> Vec<Value> {
    report["observations"]["kills"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// A kill's milliseconds field (`oldPodGoneMs`, ...), which must be present.
pub fn ms(kill: &Value, field: &str) -> f64 {
    kill[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing: {kill:#}"))
}
