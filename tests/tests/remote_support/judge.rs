//! What the remote lab tests judge from outside the tools: pods' reports, files and
//! reachability through kubectl exec, request times with curl from the host, and a
//! kubeconfig for docs/rbac.yaml's chaos-tools account.
#![allow(dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::lab::Lab;

/// Each pod's own report in an aggregated remote report.
pub fn pod_reports(report: &Value) -> Vec<Value> {
    report["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["details"]["report"].clone())
        .collect()
}

/// Nothing of the tool's copy (`chaos-TOOL-*`) left in the pod's /tmp.
pub fn no_copy_left(lab: &Lab, pod: &str, tool: &str) {
    let (code, listing) = lab.exec(pod, &["ls", "-A", "/tmp"]);
    assert_eq!(code, 0);
    assert!(
        !listing.contains(&format!("chaos-{tool}-")),
        "left in {pod}:/tmp: {listing}"
    );
}

/// `curl` from a pod's app container to URL: true when it answered.
pub fn reaches(lab: &Lab, pod: &str, url: &str) -> bool {
    lab.exec(pod, &["curl", "-s", "-o", "/dev/null", "-m", "2", url])
        .0
        == 0
}

/// The time `curl ARGS` takes from the host, and its status.
pub fn timed_curl(args: &[&str]) -> (Duration, String) {
    let t0 = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-m", "30"])
        .args(args)
        .output()
        .unwrap();
    (
        t0.elapsed(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// One GET of the product catalogue from the host: (took, X-Cache).
pub fn products(lab: &Lab) -> (Duration, String) {
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-D",
            "-",
            "-w",
            "took=%{time_total}",
            "-m",
            "30",
        ])
        .arg(format!("{}/v1/products", lab.base_url))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_ascii_lowercase();
    let cache = text
        .lines()
        .find_map(|l| l.strip_prefix("x-cache:"))
        .unwrap_or("")
        .trim()
        .to_uppercase();
    let took: f64 = text.rsplit("took=").next().unwrap().trim().parse().unwrap();
    (Duration::from_secs_f64(took), cache)
}

/// The mean time of `n` catalogue reads served from Redis (X-Cache: HIT); waits (at most
/// 60 s) for the cache to answer, as after a reconnect its breaker skips it for 5 s.
pub fn redis_hits(lab: &Lab, n: u32) -> Duration {
    let mut hits = Vec::new();
    let t0 = Instant::now();
    while hits.len() < n as usize {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no Redis hits: {hits:?}"
        );
        let (took, cache) = products(lab);
        if cache == "HIT" {
            hits.push(took);
        }
    }
    hits.iter().sum::<Duration>() / n
}

/// A kubeconfig for docs/rbac.yaml's chaos-tools ServiceAccount.
pub fn chaos_tools_account(lab: &Lab) -> String {
    let rbac = chaos_tests::kube_lab::rbac_yaml();
    lab.ok(&["apply", "-f", &rbac.to_string_lossy()]);
    let token = lab.ok(&[
        "create",
        "token",
        "chaos-tools",
        "-n",
        "lomash-wood",
        "--duration=1h",
    ]);
    let path = lab.dir.join("kubeconfig-chaos-tools");
    std::fs::copy(&lab.kubeconfig, &path).unwrap();
    let k = path.to_string_lossy().into_owned();
    let set = |args: &[&str]| {
        let out = Command::new("kubectl")
            .args(args)
            .env("KUBECONFIG", &k)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    set(&[
        "config",
        "set-credentials",
        "chaos-tools",
        &format!("--token={}", token.trim()),
    ]);
    set(&["config", "set-context", "--current", "--user=chaos-tools"]);
    k
}
