//! The lab (`scripts/lab.sh up`, docs/lab.md) for the runbooks' tests: kubectl against
//! it, the platform's state before and after a run, the badly-behaved stand-ins.
#![allow(dead_code)]

use std::process::Command;
use std::time::Instant;

use serde_json::Value;

use super::wait_until;

pub use super::super::common::lab::Lab;

/// What a run must leave as it found it: every workload's replicas, Ready count and
/// container environment.
#[derive(Debug, PartialEq)]
pub struct Platform(Vec<(String, Value, Value)>);

impl Lab {
    /// `scripts/lab.sh up` (already built, the HPA synced every 2 s) in a directory of
    /// this test process.
    pub fn up() -> Lab {
        Lab::start("runbook-test", &["--no-build", "--hpa-sync", "2"])
    }

    /// Every Deployment and StatefulSet: replicas, Ready replicas, containers' env.
    pub fn platform(&self) -> Platform {
        let list = self.json(&["get", "deployments,statefulsets"]);
        let mut items: Vec<(String, Value, Value)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| {
                let name = format!(
                    "{}/{}",
                    w["kind"].as_str().unwrap(),
                    w["metadata"]["name"].as_str().unwrap()
                );
                let counts =
                    serde_json::json!([w["spec"]["replicas"], w["status"]["readyReplicas"]]);
                let env: Vec<Value> = w["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["env"].clone())
                    .collect();
                (name, counts, Value::Array(env))
            })
            .collect();
        items.sort_by(|a, b| a.0.cmp(&b.0));
        Platform(items)
    }

    /// Waits until every rollout is done and no pod is terminating or not Ready.
    pub fn settled(&self) {
        wait_until("every pod Ready and no pod terminating", 90, || {
            let pods = self.json(&["get", "pods"]);
            pods["items"].as_array().unwrap().iter().all(|p| {
                p["metadata"]["deletionTimestamp"].is_null()
                    && p["status"]["conditions"].as_array().is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    })
            }) && self
                .platform()
                .0
                .iter()
                .all(|(_, counts, _)| counts[0] == counts[1])
        });
    }

    /// The platform as it was before the run (after it settled).
    pub fn assert_as_it_was(&self, before: &Platform) {
        self.settled();
        let now = self.platform();
        assert_eq!(&now, before, "the platform changed");
    }

    /// The platform as it was before the run once the HPA has scaled back (its
    /// scale-down stabilization window is 30 s on the lab): waits up to `secs`.
    pub fn assert_back_to(&self, before: &Platform, secs: u64) {
        let deadline = Instant::now() + std::time::Duration::from_secs(secs);
        while self.platform() != *before && Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        self.assert_as_it_was(before);
    }

    /// `kubectl set env` on each Deployment, the rollouts awaited and settled.
    pub fn set_env(&self, deployments: &[&str], pairs: &[&str]) {
        for d in deployments {
            let mut args = vec!["set", "env", "deployment/"];
            let target = format!("deployment/{d}");
            args[2] = &target;
            args.extend(pairs);
            self.ok(&args);
        }
        for d in deployments {
            self.ok(&[
                "rollout",
                "status",
                &format!("deployment/{d}"),
                "--timeout=120s",
            ]);
        }
        self.settled();
    }

    /// Waits until each path through the gateway answers without a 503 `n` times in a
    /// row (a warming-up stand-in is Ready before it serves).
    pub fn warm(&self, paths: &[&str], n: usize) {
        for path in paths {
            let mut streak = 0;
            wait_until(&format!("{path} answers"), 60, || {
                let out = Command::new("curl")
                    .args(["-s", "-o", "/dev/null", "-m", "5", "-w", "%{http_code}"])
                    .arg(format!("{}{path}", self.base_url))
                    .output()
                    .unwrap();
                let code = String::from_utf8_lossy(&out.stdout).into_owned();
                if code != "503" && code != "000" {
                    streak += 1;
                } else {
                    streak = 0;
                }
                streak >= n
            });
        }
    }

    /// The badly-behaved stand-ins (docs/lab.md): LAB_MODE=fragile, and a service that is
    /// Ready LAB_WARMUP_MS before it can serve, on `deployments`; waits until they serve.
    pub fn fragile(&self, deployments: &[&str]) {
        self.set_env(deployments, &["LAB_MODE=fragile", "LAB_WARMUP_MS=8000"]);
        let paths: Vec<&str> = deployments
            .iter()
            .map(|d| match *d {
                "product-service" => "/v1/products",
                "auth-service" => "/v1/auth/verify",
                "order-payment-service" => "/v1/payments/orders/summary",
                "notification-service" => "/v1/notifications",
                "appointment-service" => "/v1/appointments",
                other => panic!("no warm-up path known for {other}"),
            })
            .collect();
        self.warm(&paths, 3);
    }
}
