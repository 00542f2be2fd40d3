//! latency-injector's engine choice on the machine the tests run on, judged against what
//! `tc` itself can do here (a netem and a prio qdisc tried on a namespace of the test's
//! own), and its refusal to replace a root qdisc that is not its own. The netem engine's
//! effects (delays, revert, guard, cleanup of its own qdiscs) need a kernel with
//! sch_netem: they are tested in the VM lane (scripts/vm/tests/latency-netem.sh).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::netlab::Lab;
use serde_json::Value;

const TOOL: &str = "latency-injector";

/// Whether `tc` can add `kind` as a root qdisc here (tried on the loopback of `ns`,
/// a namespace of the test, and removed again).
fn tc_can_add(lab: &Lab, ns: &str, kind: &[&str]) -> bool {
    let mut argv = vec!["tc", "qdisc", "add", "dev", "lo", "root", "handle", "1:"];
    argv.extend(kind);
    let out = lab.exec(ns, &argv);
    if out.status.success() {
        lab.exec_ok(ns, &["tc", "qdisc", "del", "dev", "lo", "root"]);
        return true;
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("kind is unknown"),
        "tc failed otherwise: {stderr}"
    );
    false
}

/// Every qdisc of `ns` as "dev kind handle parent" (counters left out: they move).
fn qdiscs(lab: &Lab, ns: &str) -> Vec<String> {
    let listing: Value =
        serde_json::from_str(&lab.exec_ok(ns, &["tc", "-j", "qdisc", "show"])).unwrap();
    listing
        .as_array()
        .unwrap()
        .iter()
        .map(|q| format!("{} {} {} {}", q["dev"], q["kind"], q["handle"], q["parent"]))
        .collect()
}

/// Runs the tool in `ns` with `--output json` and a state directory of its own.
fn run_in(lab: &Lab, ns: &str, args: &[&str]) -> (i32, Value, String) {
    let state = tempfile::tempdir().unwrap();
    let mut cmd: Command = lab.command(ns, common::bin(TOOL));
    cmd.env("CHAOS_STATE_DIR", state.path())
        .args(args)
        .args(["--output", "json"]);
    let out = common::run(&mut cmd);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let report: Value = serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim())
        .unwrap_or_else(|e| panic!("{args:?}: not one JSON report ({e}); stderr:\n{stderr}"));
    common::assert_valid_report(&report);
    (out.status.code().unwrap_or(-1), report, stderr)
}

fn pod_with_peer(tag: &str) -> (Lab, String, String, String) {
    let mut lab = Lab::new(tag);
    let pod = lab.namespace("p");
    let peer = lab.namespace("q");
    let (_, peer_ip) = lab.link(&pod, &peer);
    let dev = lab
        .exec_ok(&pod, &["ip", "-o", "link", "show", "type", "veth"])
        .split(':')
        .nth(1)
        .map(|name| name.trim().split('@').next().unwrap_or("").to_owned())
        .unwrap();
    (lab, pod, format!("{peer_ip}:6379"), dev)
}

#[test]
fn root_engine_choice_agrees_with_what_tc_can_do_on_this_kernel() {
    common::require_root("network namespaces, tc");
    let (lab, pod, target, dev) = pod_with_peer("eng");
    let netem =
        tc_can_add(&lab, &pod, &["netem", "delay", "1ms"]) && tc_can_add(&lab, &pod, &["prio"]);
    eprintln!("this kernel can run netem under prio: {netem}");
    let before = qdiscs(&lab, &pod);

    let (code, auto, stderr) = run_in(&lab, &pod, &["--target", &target, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    let expected = if netem { "netem" } else { "proxy" };
    assert_eq!(
        auto["targets"][0]["details"]["engine"], expected,
        "{auto:#}"
    );
    let first = auto["plan"][0].as_str().unwrap();
    assert!(
        first.starts_with(&format!("use the {expected} engine (auto: ")),
        "{first}"
    );
    if !netem {
        assert!(
            first.contains("sch_netem") || first.contains("sch_prio"),
            "{first}"
        );
    }

    let (code, forced, stderr) = run_in(
        &lab,
        &pod,
        &["--engine", "netem", "--target", &target, "--dry-run"],
    );
    let (code_all, all, _) = run_in(&lab, &pod, &["-l", "100", "--dry-run"]);
    if netem {
        assert_eq!((code, code_all), (0, 0), "{stderr}");
        assert_eq!(
            forced["targets"][0]["details"]["interfaces"][0]["device"],
            dev.as_str()
        );
        assert_eq!(all["targets"][0]["name"], "every outgoing TCP connection");
    } else {
        // Ended before anything is touched: this kernel cannot serve the command, bad
        // input (exit 2, like a target that does not exist), one line naming the module.
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(forced["result"], "bad-input");
        assert_eq!(forced["errors"][0]["kind"], "bad-input");
        let message = forced["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("--engine netem: the kernel has no sch_"),
            "{message}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.contains("ERROR")).count(),
            1,
            "{stderr}"
        );
        assert_eq!(code_all, 2);
        assert_eq!(all["errors"][0]["kind"], "bad-input");
        let message = all["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains("needs the netem engine"), "{message}");
    }

    // A live run: netem applies and reverts; where it cannot, nothing is touched.
    let (code, live, stderr) = run_in(
        &lab,
        &pod,
        &["--engine", "netem", "--target", &target, "-d", "1", "-y"],
    );
    assert_eq!(code, if netem { 0 } else { 2 }, "{stderr}");
    assert_eq!(
        live["revert"]["status"],
        if netem { "reverted" } else { "not-applied" }
    );
    assert_eq!(qdiscs(&lab, &pod), before);
}

#[test]
fn root_a_foreign_root_qdisc_keeps_auto_on_the_proxy_and_is_never_replaced() {
    common::require_root("network namespaces, tc");
    let (lab, pod, target, dev) = pod_with_peer("enf");
    lab.exec_ok(
        &pod,
        &[
            "tc", "qdisc", "add", "dev", &dev, "root", "handle", "1:", "htb", "default", "1",
        ],
    );
    let before = qdiscs(&lab, &pod);

    let (code, auto, stderr) = run_in(&lab, &pod, &["--target", &target, "--dry-run"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(auto["targets"][0]["details"]["engine"], "proxy");
    let first = auto["plan"][0].as_str().unwrap();
    assert!(
        first.contains(&format!("{dev} has a root qdisc that is not ours (htb 1:)")),
        "{first}"
    );

    for args in [
        &["--engine", "netem", "--target", &target, "--dry-run"][..],
        &["--engine", "netem", "--target", &target, "-d", "1", "-y"],
        &["-l", "100", "-d", "1", "-y"],
    ] {
        // Refused (exit 3): the engine never replaces a root qdisc.
        let (code, report, stderr) = run_in(&lab, &pod, args);
        assert_eq!(code, 3, "{args:?}: {stderr}");
        assert_eq!(report["result"], "refused", "{args:?}");
        assert_eq!(report["errors"][0]["kind"], "refused", "{args:?}");
        assert!(
            report["errors"][0]["message"]
                .as_str()
                .unwrap()
                .contains("not ours (htb 1:)"),
            "{report:#}"
        );
    }
    assert_eq!(qdiscs(&lab, &pod), before, "the htb root was touched");
}

#[test]
fn root_cleanup_leaves_qdiscs_that_are_not_ours() {
    common::require_root("network namespaces, tc");
    let (lab, pod, _, dev) = pod_with_peer("enc");
    // A root in our handle range that is not a two-band prio, on the test's interface.
    lab.exec_ok(
        &pod,
        &[
            "tc", "qdisc", "add", "dev", &dev, "root", "handle", "4c01:", "htb",
        ],
    );
    let before = qdiscs(&lab, &pod);
    let (code, report, stderr) = run_in(&lab, &pod, &["--cleanup"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["observations"]["removed"], serde_json::json!([]));
    assert_eq!(qdiscs(&lab, &pod), before);
}
