//! The lab's pod runtime for real, without the API server: pods are network namespaces,
//! cgroups and processes with the spec's user, capabilities and read-only root; OOM
//! kills, restarts with back-off, probes, logs, exec, ephemeral containers and deletion.
//! Every node is removed when its test ends, even on failure (Node's Drop).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_tests::lab::env::NoRefs;
use chaos_tests::lab::exec;
use chaos_tests::lab::logs::{self, LogQuery};
use chaos_tests::lab::node::Node;
use chaos_tests::lab::pod::PodShared;
use chaos_tests::lab::testing::{self, container, is_ready, is_running, wait_status};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(20);

fn require_root() {
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (network namespaces, cgroups, mounts); scripts/test.sh reports root_* tests as skipped without it"
    );
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// The platform's pod template (target-cluster.md), running `script` in busybox.
fn platform_pod(name: &str, script: &str, memory: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "lomash-wood", "uid": format!("uid-{name}")},
        "spec": {
            "terminationGracePeriodSeconds": 3,
            "securityContext": {"runAsNonRoot": true, "runAsUser": 1001, "fsGroup": 1001},
            "containers": [{
                "name": "app",
                "image": "busybox",
                "command": ["sh", "-c", script],
                "env": [{"name": "GREETING", "value": "hello $(HOSTNAME)"}],
                "resources": {"limits": {"cpu": "500m", "memory": memory},
                              "requests": {"cpu": "100m", "memory": "32Mi"}},
                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                    "capabilities": {"drop": ["ALL"]}},
                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]
            }],
            "volumes": [{"name": "tmp", "emptyDir": {}}]
        }
    })
}

const IDLE: &str = "trap 'exit 0' TERM; echo started; while :; do sleep 1; done";

async fn sh(pod: &PodShared, script: &str) -> exec::ExecOutput {
    let argv = vec!["sh".to_owned(), "-c".to_owned(), script.to_owned()];
    exec::run(pod, "app", argv, Duration::from_secs(20))
        .await
        .unwrap()
}

fn start_pod(node: &Node, json: serde_json::Value) -> Arc<PodShared> {
    node.run_pod(testing::pod(json).unwrap(), Arc::new(NoRefs))
        .unwrap()
}

#[test]
fn root_lab_pod_sandbox_is_the_platforms_security_context() {
    require_root();
    let rt = runtime();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let pod = start_pod(&node, platform_pod("sandbox", IDLE, "64Mi"));
        wait_status(&pod, "Ready", WAIT, is_ready).await.unwrap();

        let id = sh(
            &pod,
            "id -u; id -G; grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs)' /proc/self/status",
        )
        .await;
        assert_eq!(id.code, 0, "{id:?}");
        let lines: Vec<&str> = id.stdout.lines().collect();
        assert_eq!(lines[0], "1001");
        assert_eq!(lines[1], "0 1001");
        for cap in [
            "CapEff:\t0000000000000000",
            "CapPrm:\t0000000000000000",
            "CapBnd:\t0000000000000000",
        ] {
            assert!(lines.contains(&cap), "{cap} missing in {lines:?}");
        }
        assert!(lines.contains(&"NoNewPrivs:\t1"));

        let root = sh(&pod, "touch /lab-probe-file").await;
        assert_ne!(root.code, 0);
        assert!(root.stderr.contains("Read-only file system"), "{root:?}");
        let tmp = sh(
            &pod,
            "echo private > /tmp/f && cat /tmp/f && stat -c %g /tmp",
        )
        .await;
        assert_eq!(tmp.stdout, "private\n1001\n", "{tmp:?}");
        assert!(
            !Path::new("/tmp/f").exists()
                || std::fs::read_to_string("/tmp/f").unwrap() != "private\n"
        );

        let ident = sh(
            &pod,
            "hostname; echo $GREETING; cat /sys/fs/cgroup/memory/memory.limit_in_bytes",
        )
        .await;
        assert_eq!(
            ident.stdout,
            format!("sandbox\nhello sandbox\n{}\n", 64 << 20),
            "{ident:?}"
        );
        // The host sees the same limit on the container's cgroup, and pid 1 is the command.
        let cg = pod.lock().containers["app"].cgroup.clone().unwrap();
        let host_limit = &cg.describe()[0].1;
        assert_eq!(
            std::fs::read_to_string(host_limit.join("memory.limit_in_bytes"))
                .unwrap()
                .trim(),
            (64u64 << 20).to_string()
        );
        // What `lab.sh cgroup sandbox` prints, from the state directory.
        let lines = chaos_tests::lab::inventory::cgroup_lines("lomash-wood/sandbox", None).unwrap();
        assert_eq!(
            lines[0],
            format!("memory {}", host_limit.display()),
            "{lines:?}"
        );
        assert!(chaos_tests::lab::inventory::cgroup_lines("sandbox", Some("nope")).is_err());
        let ps = sh(&pod, "cat /proc/1/cmdline | tr '\\0' ' '").await;
        assert!(ps.stdout.starts_with("sh -c trap"), "{ps:?}");

        let net = sh(&pod, "ip -4 -o addr show eth0; cat /etc/resolv.conf").await;
        assert!(net.stdout.contains(&pod.net.ip.to_string()), "{net:?}");
        assert!(net.stdout.contains("search lomash-wood.svc.cluster.local"));

        let log = std::fs::read_to_string(logs::log_path(&pod.dir, "app", 0)).unwrap();
        assert_eq!(logs::render(&log, &LogQuery::default()), "started\n");
    });
    rt.block_on(node.shutdown());
}

#[test]
fn root_lab_oom_kill_ends_the_container_which_restarts() {
    require_root();
    let rt = runtime();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let group = start_pod(&node, platform_pod("oom-group", IDLE, "48Mi"));
        let mut single = platform_pod("oom-process", IDLE, "48Mi");
        single["metadata"]["annotations"] = json!({"lab.chaos-tools/oom-kill": "process"});
        let single = start_pod(&node, single);
        for pod in [&group, &single] {
            wait_status(pod, "Ready", WAIT, is_ready).await.unwrap();
        }

        // Group (the default, as on cgroup v2): the whole container ends and restarts.
        let hog = sh(&group, "tail /dev/zero").await;
        assert_eq!(hog.code, 137, "{hog:?}");
        let status = wait_status(&group, "restarted and Ready", WAIT, |s| {
            container(s, "app").is_some_and(|c| c.restart_count == 1) && is_ready(s)
        })
        .await
        .unwrap();
        let last = container(&status, "app")
            .unwrap()
            .last_state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(last.reason.as_deref(), Some("OOMKilled"));
        assert_eq!(last.exit_code, 137);
        let events: Vec<String> = group
            .lock()
            .events
            .iter()
            .map(|e| e.reason.clone())
            .collect();
        assert!(events.contains(&"OOMKilling".to_owned()), "{events:?}");
        assert_eq!(
            events.iter().filter(|r| *r == "Started").count(),
            2,
            "{events:?}"
        );

        // Process (cgroup v1 style): only the allocator dies; the container goes on.
        let pid_before = single.lock().containers["app"].pid;
        let hog = sh(&single, "tail /dev/zero").await;
        assert_eq!(hog.code, 137, "{hog:?}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !single
            .lock()
            .events
            .iter()
            .any(|e| e.reason == "OOMKilling")
        {
            assert!(Instant::now() < deadline, "no OOMKilling event");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let status = single.status();
        assert!(is_running(&status, "app"));
        assert_eq!(container(&status, "app").unwrap().restart_count, 0);
        assert_eq!(single.lock().containers["app"].pid, pid_before);
    });
    rt.block_on(node.shutdown());
}

#[test]
fn root_lab_crash_loop_backs_off_and_keeps_the_previous_log() {
    require_root();
    let rt = runtime();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let pod = start_pod(
            &node,
            platform_pod("crash", "echo run-$(date +%s%N); exit 3", "32Mi"),
        );
        let status = wait_status(&pod, "CrashLoopBackOff", WAIT, |s| {
            container(s, "app")
                .and_then(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone())
                .is_some_and(|r| r == "CrashLoopBackOff")
        })
        .await
        .unwrap();
        let c = container(&status, "app").unwrap();
        assert!(c.restart_count >= 1, "{c:?}");
        let last = c.last_state.clone().unwrap().terminated.unwrap();
        assert_eq!((last.exit_code, last.reason.as_deref()), (3, Some("Error")));
        let events = pod.lock().events.clone();
        assert!(events.iter().any(|e| e.reason == "BackOff" && e.warning));
        // Each instance has its own log; the previous one is kept.
        let first = std::fs::read_to_string(logs::log_path(&pod.dir, "app", 0)).unwrap();
        let second = std::fs::read_to_string(logs::log_path(&pod.dir, "app", 1)).unwrap();
        let (a, b) = (
            logs::render(&first, &LogQuery::default()),
            logs::render(&second, &LogQuery::default()),
        );
        assert!(
            a.starts_with("run-") && b.starts_with("run-") && a != b,
            "{a:?} {b:?}"
        );
    });
    rt.block_on(node.shutdown());
}

#[test]
fn root_lab_deletion_runs_prestop_then_sigterm_then_sigkill_and_leaves_nothing() {
    require_root();
    let rt = runtime();
    let node = Node::start(testing::node_config()).unwrap();
    let plan = node.plan().clone();
    rt.block_on(async {
        // Handles SIGTERM after a 1 s preStop sleep: gone in about 1 s.
        let mut polite = platform_pod("polite", IDLE, "32Mi");
        polite["spec"]["containers"][0]["lifecycle"] =
            json!({"preStop": {"sleep": {"seconds": 1}}});
        // PID 1 without a SIGTERM handler: only SIGKILL at the 3 s grace ends it.
        let stubborn = platform_pod(
            "stubborn",
            "echo started; while :; do sleep 1; done",
            "32Mi",
        );
        let polite = start_pod(&node, polite);
        let stubborn = start_pod(&node, stubborn);
        for pod in [&polite, &stubborn] {
            wait_status(pod, "Ready", WAIT, is_ready).await.unwrap();
        }
        let mut ready_rx = polite.subscribe();
        let t0 = Instant::now();
        let (a, b) = tokio::join!(
            async {
                node.delete_pod(&polite.uid, None).await;
                t0.elapsed()
            },
            async {
                node.delete_pod(&stubborn.uid, None).await;
                t0.elapsed()
            }
        );
        assert!(
            !is_ready(&ready_rx.borrow_and_update()),
            "Ready must drop at once"
        );
        assert!(
            a >= Duration::from_secs(1) && a < Duration::from_millis(2500),
            "polite took {a:?}"
        );
        assert!(
            b >= Duration::from_secs(3) && b < Duration::from_secs(5),
            "stubborn took {b:?}"
        );
        let stubborn_exit = container(&stubborn.status(), "app")
            .unwrap()
            .state
            .clone()
            .unwrap()
            .terminated
            .unwrap();
        assert_eq!(stubborn_exit.exit_code, 137);
        for pod in [&polite, &stubborn] {
            assert!(!Path::new("/run/netns").join(&pod.net.ns).exists());
            assert!(!pod.dir.exists());
            assert!(pod.cgroup.dirs().iter().all(|d| !d.exists()));
        }
    });
    rt.block_on(node.shutdown());
    let left: Vec<String> = std::fs::read_dir("/run/netns")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&plan.ns_prefix()))
        .collect();
    assert!(left.is_empty(), "network namespaces left: {left:?}");
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(plan.cgroup_name())
            .exists()
    );
    assert!(!plan.state_dir().exists());
}

#[test]
fn root_lab_ephemeral_container_shares_the_network_with_net_admin() {
    require_root();
    let rt = runtime();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let pod = start_pod(&node, platform_pod("debugged", IDLE, "32Mi"));
        wait_status(&pod, "Ready", WAIT, is_ready).await.unwrap();
        // What `kubectl debug --profile=netadmin --target=app` adds, with the user
        // override a non-root pod needs for the capability to be effective.
        let ec = serde_json::from_value(json!({
            "name": "debugger", "image": "busybox", "targetContainerName": "app",
            "command": ["sh", "-c", "id -u; grep CapEff /proc/self/status; nft list tables >/dev/null && echo nft-ok; ps -eo args | grep -c '^sh -c trap'; ip -4 -o addr show eth0; (touch /lab-host-probe 2>/dev/null && echo wrote) || echo read-only; echo x > /tmp/x && echo tmp-ok"],
            "securityContext": {"runAsUser": 0, "runAsNonRoot": false,
                                "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}}
        }))
        .unwrap();
        node.add_ephemeral(&pod.uid, &ec).unwrap();
        let status = wait_status(&pod, "debugger ended", WAIT, |s| {
            container(s, "debugger")
                .and_then(|c| c.state.as_ref()?.terminated.as_ref().map(|t| t.exit_code))
                .is_some()
        })
        .await
        .unwrap();
        let c = container(&status, "debugger").unwrap();
        assert_eq!(c.state.clone().unwrap().terminated.unwrap().exit_code, 0);
        let log = std::fs::read_to_string(logs::log_path(&pod.dir, "debugger", 0)).unwrap();
        let out = logs::render(&log, &LogQuery::default());
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "0", "{out}");
        assert_ne!(lines[1], "CapEff:\t0000000000000000", "{out}");
        assert_eq!(lines[2], "nft-ok", "{out}");
        assert_ne!(lines[3], "0", "the target's processes must be visible: {out}");
        assert!(lines[4].contains(&pod.net.ip.to_string()), "{out}");
        // Root in the container, yet the host's filesystem stays read-only; /tmp is its own.
        assert_eq!(lines[5], "read-only", "{out}");
        assert_eq!(lines[6], "tmp-ok", "{out}");
        assert!(!Path::new("/lab-host-probe").exists());
        // Its own cgroup under the pod's, and the app container is untouched.
        assert_eq!(container(&status, "app").unwrap().restart_count, 0);
        assert!(is_ready(&status));
    });
    rt.block_on(node.shutdown());
}
