//! The lab end to end, with the real kubectl as the judge (issue "The lab", "Done when"):
//! one `scripts/lab.sh up` shared by every check (they run in order, each leaving the
//! lab as it found it), then `scripts/lab.sh down`, run twice, must leave nothing. A
//! Drop guard runs `down` when a check fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

struct Lab {
    dir: PathBuf,
    kubeconfig: String,
    base_url: String,
    id: String,
}

impl Lab {
    fn up() -> Lab {
        let dir = PathBuf::from(format!("/run/chaos-lab/lab.sh-test-{}", std::process::id()));
        let t0 = Instant::now();
        let out = Command::new(root().join("scripts/lab.sh"))
            .args(["up", "--no-build", "--hpa-sync", "2"])
            .env("CHAOS_LAB_DIR", &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lab.sh up failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!(
            "lab.sh up: every pod Ready after {:.1} s",
            t0.elapsed().as_secs_f64()
        );
        let export = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
                .to_owned()
        };
        let log = std::fs::read_to_string(dir.join("lab.log")).unwrap();
        let id = log
            .lines()
            .find_map(|l| l.split(" lab ").nth(1))
            .unwrap()
            .trim()
            .to_owned();
        Lab {
            kubeconfig: export("KUBECONFIG"),
            base_url: export("BASE_URL"),
            dir,
            id,
        }
    }

    fn down(&self) -> Output {
        Command::new(root().join("scripts/lab.sh"))
            .arg("down")
            .env("CHAOS_LAB_DIR", &self.dir)
            .output()
            .unwrap()
    }

    /// kubectl ARGS (at most 120 s); the output, whatever the exit code.
    fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    /// kubectl ARGS, which must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }

    fn pods(&self, app: &str) -> Vec<String> {
        let list = self.json(&["get", "pods", "-l", &format!("app={app}")]);
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits until `f` holds (at most `secs`), polling every 200 ms.
    fn until(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while !f() {
            assert!(Instant::now() < deadline, "{what}: not within {secs} s");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `curl` from the host: (HTTP status, body).
    fn curl(&self, args: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-m", "20", "-w", "\n%{http_code}"])
            .args(args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_owned())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.down();
    }
}

fn products_answer_through_base_url(lab: &Lab) {
    let (code, body) = lab.curl(&[&format!("{}/v1/products", lab.base_url)]);
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["count"], 12, "{body}");
}

fn exec_shows_the_platforms_sandbox(lab: &Lab) {
    let pod = &lab.pods("product-service")[0];
    assert_eq!(lab.ok(&["exec", pod, "--", "id", "-u"]).trim(), "1001");
    assert_eq!(
        lab.ok(&["exec", pod, "--", "grep", "CapEff", "/proc/self/status"])
            .trim(),
        "CapEff:\t0000000000000000"
    );
    let root = lab.kubectl(&["exec", pod, "--", "touch", "/lab-probe"]);
    assert_eq!(root.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&root.stderr).contains("Read-only file system"));
    let file = std::env::temp_dir().join(format!("lab-cp-{}", std::process::id()));
    std::fs::write(&file, "copied through tar\n").unwrap();
    lab.ok(&["cp", file.to_str().unwrap(), &format!("{pod}:/tmp/copied")]);
    let _ = std::fs::remove_file(&file);
    assert_eq!(
        lab.ok(&["exec", pod, "--", "cat", "/tmp/copied"]),
        "copied through tar\n"
    );
    let code = lab.kubectl(&["exec", pod, "--", "sh", "-c", "exit 7"]);
    assert_eq!(
        code.status.code(),
        Some(7),
        "kubectl passes the exit code on"
    );
}

fn oom_kill_restarts_the_container(lab: &Lab) {
    let pod = lab.pods("notification-service")[0].clone();
    let hog = lab.kubectl(&["exec", &pod, "--", "tail", "/dev/zero"]);
    assert_eq!(
        hog.status.code(),
        Some(137),
        "{}",
        String::from_utf8_lossy(&hog.stderr)
    );
    lab.until("OOMKilled, restartCount 1, Ready", 60, || {
        let p = lab.json(&["get", "pod", &pod]);
        let c = &p["status"]["containerStatuses"][0];
        c["restartCount"] == 1
            && c["lastState"]["terminated"]["reason"] == "OOMKilled"
            && c["ready"] == true
    });
    let events = lab.ok(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.name={pod}"),
    ]);
    assert!(events.contains("OOMKilling"), "{events}");
    assert!(events.contains("Started"), "{events}");
    let previous = lab.ok(&["logs", &pod, "--previous"]);
    assert!(previous.contains("listening on port 3000"), "{previous}");
}

fn pool_exhaustion_answers_503(lab: &Lab) {
    lab.ok(&[
        "set",
        "env",
        "deployment/order-payment-service",
        "DATABASE_CONNECTION_LIMIT=2",
    ]);
    lab.ok(&[
        "rollout",
        "status",
        "deployment/order-payment-service",
        "--timeout=90s",
    ]);
    let (code, body) = lab.curl(&[
        "-H",
        "Content-Type: application/json",
        "-d",
        r#"{"email":"ops@lomash-wood.test","password":"Password123!"}"#,
        &format!("{}/v1/auth/login", lab.base_url),
    ]);
    assert_eq!(code, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let auth = format!(
        "Authorization: Bearer {}",
        token["accessToken"].as_str().unwrap()
    );
    let url = format!("{}/v1/payments/create-intent", lab.base_url);
    let t0 = Instant::now();
    // 50 clients, each sending 3 requests in a row (k6's 50 VUs, shortened).
    let codes: Vec<u16> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..50)
            .map(|_| {
                s.spawn(|| {
                    (0..3)
                        .map(|_| {
                            lab.curl(&[
                                "-H",
                                &auth,
                                "-H",
                                "Content-Type: application/json",
                                "-d",
                                r#"{"amount":4990}"#,
                                &url,
                            ])
                            .0
                        })
                        .collect::<Vec<u16>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let count = |c| codes.iter().filter(|x| **x == c).count();
    assert!(count(503) >= 10, "{codes:?}");
    assert_eq!(
        count(503) + count(201),
        150,
        "503s and successes only, no timeouts: {codes:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(60));
    let logs = lab.ok(&["logs", "-l", "app=order-payment-service", "--tail=-1"]);
    assert!(logs.contains("PrismaClientKnownRequestError"), "{logs}");
    lab.ok(&[
        "set",
        "env",
        "deployment/order-payment-service",
        "DATABASE_CONNECTION_LIMIT=20",
    ]);
    lab.ok(&[
        "rollout",
        "status",
        "deployment/order-payment-service",
        "--timeout=90s",
    ]);
}

fn redis_scaled_to_zero_degrades_gracefully(lab: &Lab) {
    let product = lab.pods("product-service")[0].clone();
    let health = || {
        lab.ok(&[
            "exec",
            &product,
            "--",
            "curl",
            "-s",
            "localhost:3000/health",
        ])
    };
    lab.ok(&["scale", "statefulset/redis", "--replicas=0"]);
    lab.until("redis-0 gone", 30, || lab.pods("redis").is_empty());
    lab.until("products from the database", 20, || {
        let (code, body) = lab.curl(&["-D", "-", &format!("{}/v1/products", lab.base_url)]);
        code == 200
            && body.to_ascii_lowercase().contains("x-cache: bypass")
            && body.contains("\"count\":12")
    });
    assert!(health().contains("\"redis\":\"degraded\""));
    lab.ok(&["scale", "statefulset/redis", "--replicas=1"]);
    lab.ok(&["rollout", "status", "statefulset/redis", "--timeout=60s"]);
    lab.until("redis healthy again", 30, || {
        health().contains("\"redis\":\"ok\"")
    });
}

fn debug_container_partitions_one_pod(lab: &Lab) {
    let pods = lab.pods("order-payment-service");
    let (target, other) = (&pods[0], &pods[1]);
    let custom = lab.dir.join("debug-custom.json");
    std::fs::write(
        &custom,
        r#"{"securityContext":{"runAsUser":0,"runAsNonRoot":false}}"#,
    )
    .unwrap();
    lab.ok(&[
        "debug",
        target,
        "--image=lomash-wood/chaos-tools:0.1.0",
        "--target=app",
        "--profile=netadmin",
        &format!("--custom={}", custom.display()),
        "--container=partition",
        "--",
        "net-partition",
        "-H",
        "auth-service",
        "-d",
        "8s",
        "-y",
        "--output",
        "json",
    ]);
    let reach = |pod: &str| {
        lab.kubectl(&[
            "exec",
            pod,
            "--",
            "curl",
            "-s",
            "-m",
            "2",
            "-o",
            "/dev/null",
            "http://auth-service:3000/health",
        ])
        .status
        .success()
    };
    lab.until("auth-service cut off from the target pod", 20, || {
        !reach(target)
    });
    assert!(reach(other), "the other pod must still reach auth-service");
    lab.until("the partition container ended", 40, || {
        let p = lab.json(&["get", "pod", target]);
        p["status"]["ephemeralContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    });
    assert!(
        reach(target),
        "reverted: the target reaches auth-service again"
    );
    // The report is the JSON document among the logs (stderr's log lines interleave).
    let log = lab.ok(&["logs", target, "-c", "partition"]);
    let report: Value = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v.get("schemaVersion").is_some())
        .unwrap_or_else(|| panic!("no report in the debug container's log:\n{log}"));
    assert_eq!(report["tool"], "net-partition", "{log}");
    assert_eq!(report["result"], "ok", "{log}");
}

fn hpa_scales_up_and_back(lab: &Lab) {
    lab.ok(&[
        "patch",
        "hpa",
        "product-service",
        "--type=merge",
        "-p",
        r#"{"spec":{"behavior":{"scaleDown":{"stabilizationWindowSeconds":10}}}}"#,
    ]);
    let pod = lab.pods("product-service")[0].clone();
    std::thread::scope(|s| {
        s.spawn(|| {
            lab.kubectl(&[
                "exec",
                &pod,
                "--",
                "sh",
                "-c",
                "timeout 20 sh -c 'while :; do :; done'; true",
            ])
        });
        lab.until("the HPA sees the load", 20, || {
            let h = lab.json(&["get", "hpa", "product-service"]);
            h["status"]["currentMetrics"][0]["resource"]["current"]["averageUtilization"]
                .as_u64()
                .unwrap_or(0)
                > 70
        });
        let table = lab.ok(&["get", "hpa", "product-service"]);
        assert!(
            table.contains("/70%"),
            "kubectl get hpa shows the target: {table}"
        );
        lab.until("scaled up", 20, || {
            lab.json(&["get", "deployment", "product-service"])["spec"]["replicas"]
                .as_i64()
                .unwrap_or(0)
                > 2
        });
        lab.ok(&[
            "rollout",
            "status",
            "deployment/product-service",
            "--timeout=60s",
        ]);
    });
    lab.until("scaled back after the stabilisation window", 90, || {
        lab.json(&["get", "deployment", "product-service"])["status"]["readyReplicas"] == 2
            && lab.json(&["get", "deployment", "product-service"])["spec"]["replicas"] == 2
    });
    let events = lab.ok(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=HorizontalPodAutoscaler",
    ]);
    assert!(events.contains("SuccessfulRescale"), "{events}");
}

#[test]
fn root_lab_cluster_is_judged_by_kubectl() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (the lab)"
    );
    let lab = Lab::up();
    products_answer_through_base_url(&lab);
    exec_shows_the_platforms_sandbox(&lab);
    oom_kill_restarts_the_container(&lab);
    pool_exhaustion_answers_503(&lab);
    redis_scaled_to_zero_degrades_gracefully(&lab);
    debug_container_partitions_one_pod(&lab);
    hpa_scales_up_and_back(&lab);

    let plan = chaos_tests::lab::cleanup::plan_of(&lab.id).unwrap();
    for _ in 0..2 {
        let out = lab.down();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(!lab.dir.exists());
    let netns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!netns.contains(&plan.ns_prefix()), "{netns}");
    assert!(chaos_tests::lab::cmd::run(&["ip", "link", "show", &plan.host_veth()], None).is_err());
    let tables = String::from_utf8_lossy(
        &Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!tables.contains("chaos-lab"), "{tables}");
    for hierarchy in ["memory", "cpu", "cpuacct"] {
        assert!(
            !Path::new("/sys/fs/cgroup")
                .join(hierarchy)
                .join(plan.cgroup_name())
                .exists()
        );
    }
    let pid = chaos_tests::lab::cleanup::lab_pid(&lab.id).unwrap();
    assert!(
        !chaos_tests::lab::cleanup::is_alive(pid),
        "the lab process is gone"
    );
}
