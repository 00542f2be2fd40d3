//! Support for the remote-mode tests against the Kubernetes API test server (no lab
//! needed): a server that also serves ConfigMaps, Services and EndpointSlices, the
//! platform's auth-service and redis Services with endpoints, and helpers to run a tool
//! in remote mode as the admin or as a ServiceAccount.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use chaos_tests::kube_lab::KubeLab;
use chaos_tests::kube_server::registry::{ALL_VERBS, GroupResource, ResourceType};
use chaos_tests::kube_server::{Builder, Fixture};
use serde_json::Value;

use super::common;

pub mod judge;
pub mod lab;

const fn namespaced(gr: GroupResource, kind: &'static str) -> ResourceType {
    ResourceType {
        gr,
        version: "v1",
        kind,
        namespaced: true,
        short_names: &[],
        verbs: ALL_VERBS,
        subresources: &[],
        spec_generation: false,
        virtual_only: false,
        in_all: false,
        storage: None,
    }
}

/// The types the remote layer reads besides pods (the lab serves them too).
fn extra_types() -> [ResourceType; 3] {
    [
        namespaced(GroupResource::new("", "configmaps"), "ConfigMap"),
        namespaced(GroupResource::new("", "services"), "Service"),
        namespaced(
            GroupResource::new("discovery.k8s.io", "endpointslices"),
            "EndpointSlice",
        ),
    ]
}

/// ClusterIPs from a documentation range; endpoints are the fixture's pod IPs.
const SERVICES: &str = r#"
apiVersion: v1
kind: Service
metadata: {name: auth-service, namespace: lomash-wood}
spec:
  selector: {app: auth-service}
  clusterIP: 203.0.113.10
  ports: [{port: 3000, targetPort: 3000, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: redis, namespace: lomash-wood}
spec:
  selector: {app: redis}
  clusterIP: 203.0.113.11
  ports: [{port: 6379, targetPort: 6379, protocol: TCP}]
"#;

pub struct Api {
    pub lab: KubeLab,
}

impl Api {
    /// The platform fixture with Services and EndpointSlices for auth-service and redis.
    pub fn start() -> Api {
        let fixture =
            Fixture::lomash_wood().unwrap_or_else(|e| panic!("cannot load the fixture: {e:#}"));
        let mut builder = Builder::new(fixture);
        for rt in extra_types() {
            builder = builder.resource(rt);
        }
        let lab = KubeLab::start_built(builder)
            .unwrap_or_else(|e| panic!("cannot start the test server: {e:#}"));
        let api = Api { lab };
        api.apply(SERVICES);
        for (service, app) in [("auth-service", "auth-service"), ("redis", "redis")] {
            api.apply(&api.slice(service, app));
        }
        api
    }

    /// `kubectl apply -f -` of `yaml`, as the admin.
    pub fn apply(&self, yaml: &str) {
        let file = self.lab.dir.join(format!("apply-{}.yaml", yaml.len()));
        std::fs::write(&file, yaml).unwrap();
        let out = self.lab.kubectl(&["apply", "-f", &file.to_string_lossy()]);
        assert!(
            out.status.success(),
            "kubectl apply: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// An EndpointSlice of `service` holding the IPs of the pods labelled app=`app`.
    pub fn slice(&self, service: &str, app: &str) -> String {
        let ips = self.pod_ips(app);
        let endpoints: Vec<String> = ips
            .iter()
            .map(|ip| format!("  - addresses: [\"{ip}\"]\n    conditions: {{ready: true}}"))
            .collect();
        format!(
            "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-x1\n  namespace: lomash-wood\n  labels: {{kubernetes.io/service-name: {service}}}\naddressType: IPv4\nports: [{{port: 3000, protocol: TCP}}]\nendpoints:\n{}\n",
            endpoints.join("\n")
        )
    }

    pub fn pod_ips(&self, app: &str) -> Vec<String> {
        let list = self
            .lab
            .kubectl_json(&["get", "pods", "-l", &format!("app={app}")]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["status"]["podIP"].as_str().map(str::to_owned))
            .collect()
    }

    /// Runs `tool ARGS --kubeconfig K --output json` (K: the admin's unless given);
    /// returns (exit, schema-valid report or Null when stdout is empty, stderr).
    pub fn run(
        &self,
        tool: &str,
        kubeconfig: Option<&Path>,
        args: &[&str],
    ) -> (i32, Value, String) {
        let kubeconfig = kubeconfig.unwrap_or(&self.lab.kubeconfig);
        let out = common::run(
            Command::new(common::bin(tool))
                .args(args)
                .arg("--kubeconfig")
                .arg(kubeconfig)
                .args(["--output", "json"])
                .env_remove("KUBECONFIG")
                .env_remove("CHAOS_IMAGE"),
        );
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let report = if stdout.trim().is_empty() {
            Value::Null
        } else {
            let r: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
                panic!("{tool} {args:?}: stdout is not JSON ({e}): {stdout}\n{stderr}")
            });
            common::assert_valid_report(&r);
            r
        };
        (out.status.code().unwrap_or(-1), report, stderr)
    }
}

/// The repository's `dist/`, built with scripts/build-static.sh when a tool is missing
/// (exec delivery copies the static binary from there; test binaries are dynamic).
pub fn ensure_dist() -> PathBuf {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dist = repo.join("dist");
    let complete = [
        "cpu-hog",
        "memory-leak",
        "net-partition",
        "latency-injector",
    ]
    .iter()
    .all(|t| dist.join(t).is_file() && built_from_head(&repo, &dist.join(t)));
    if !complete {
        let out = common::run(&mut Command::new(repo.join("scripts/build-static.sh")));
        assert!(
            out.status.success(),
            "scripts/build-static.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    dist
}

/// Whether `binary --version` names the commit the tree is at: a `dist/` left from an
/// older commit runs old code in the pods (seen: reports without fields the schema has
/// since required), so it is rebuilt rather than trusted. Outside a git checkout (no
/// commit to compare) the binary is taken as it is.
fn built_from_head(repo: &std::path::Path, binary: &std::path::Path) -> bool {
    let head = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    let Some(head) = head.filter(|h| !h.is_empty()) else {
        return true;
    };
    Command::new(binary)
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("commit {head}")))
}

/// The plan's steps as one text.
pub fn plan_text(report: &Value) -> String {
    report["plan"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join("\n")
}
