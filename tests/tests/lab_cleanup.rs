//! A lab whose process is SIGKILLed: its containers die with it (parent-death signals),
//! and the sweep removes what it left (network namespaces, cgroups, state), while a live
//! lab beside it is untouched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chaos_tests::lab::cleanup;
use chaos_tests::lab::env::NoRefs;
use chaos_tests::lab::node::Node;
use chaos_tests::lab::testing::{self, is_ready, wait_status};
use serde_json::json;

const CHILD_ENV: &str = "LAB_CLEANUP_TEST_CHILD";

fn idle_pod(name: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "lomash-wood", "uid": format!("uid-{name}")},
        "spec": {"containers": [{"name": "app", "image": "busybox",
                 "command": ["sh", "-c", "echo started; while :; do sleep 1; done"]}]}
    })
}

/// In the child process: a node with one pod, then wait to be killed.
fn child() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let node = Node::start(testing::node_config()).unwrap();
    rt.block_on(async {
        let pod = node
            .run_pod(testing::pod(idle_pod("orphan")).unwrap(), Arc::new(NoRefs))
            .unwrap();
        wait_status(&pod, "Ready", Duration::from_secs(20), is_ready)
            .await
            .unwrap();
        let pid = pod.lock().containers["app"].pid.unwrap();
        println!("ready {} {pid}", node.plan().id);
        tokio::time::sleep(Duration::from_secs(120)).await;
    });
}

#[test]
fn root_lab_a_killed_lab_takes_its_containers_and_the_sweep_removes_the_rest() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    assert!(
        nix::unistd::Uid::effective().is_root(),
        "needs root (the lab)"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let live = Node::start(testing::node_config()).unwrap();
    let live_pod = rt.block_on(async {
        let pod = live
            .run_pod(
                testing::pod(idle_pod("survivor")).unwrap(),
                Arc::new(NoRefs),
            )
            .unwrap();
        wait_status(&pod, "Ready", Duration::from_secs(20), is_ready)
            .await
            .unwrap();
        pod
    });

    let exe = std::env::current_exe().unwrap();
    let mut kid = Command::new(exe)
        .args([
            "--exact",
            "root_lab_a_killed_lab_takes_its_containers_and_the_sweep_removes_the_rest",
            "--nocapture",
        ])
        .env(CHILD_ENV, "1")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    let mut out = BufReader::new(kid.stdout.take().unwrap());
    while !line.starts_with("ready ") {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "the child lab never got ready"
        );
    }
    let parts: Vec<&str> = line.split_whitespace().collect();
    let (id, container_pid) = (parts[1].to_owned(), parts[2].parse::<i32>().unwrap());
    let plan = cleanup::plan_of(&id).unwrap();
    assert!(Path::new("/run/netns").join(plan.node_ns()).exists());

    kid.kill().unwrap();
    kid.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // Dead: gone, or a zombie waiting for whoever adopted it (a subreaper up the tree).
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|stat| {
                stat.rsplit_once(") ")
                    .is_some_and(|(_, rest)| !rest.starts_with('Z'))
            })
            .unwrap_or(false)
    };
    while alive(container_pid) {
        assert!(
            Instant::now() < deadline,
            "the container outlived its kubelet"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Any lab starting meanwhile sweeps too; what counts is that it is all gone.
    cleanup::sweep_dead_labs();
    assert!(!Path::new("/run/netns").join(plan.node_ns()).exists());
    assert!(
        !Path::new("/sys/fs/cgroup/memory")
            .join(plan.cgroup_name())
            .exists()
    );
    assert!(!plan.state_dir().exists());
    let left = chaos_tests::lab::net::namespaces_with_prefix(&plan.ns_prefix()).unwrap();
    assert!(left.is_empty(), "{left:?}");
    assert!(chaos_tests::lab::cmd::run(&["ip", "link", "show", &plan.host_veth()], None).is_err());

    // The live lab is untouched.
    assert!(Path::new("/run/netns").join(live.plan().node_ns()).exists());
    assert!(is_ready(&live_pod.status()));
    rt.block_on(live.shutdown());
}
