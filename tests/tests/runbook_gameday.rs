//! The game day (docs/runbooks.md#game-day) end to end on the lab with real k6: the
//! shipped scenario (the seed's example: Redis down + one product-service pod OOMKilled +
//! an appointment booking surge) PASSes against the well-behaved stand-ins with a
//! pre-filled debrief; Ctrl-C with all three faults in place reverts everything (Redis
//! back to its replicas, no memory-leak in any pod, the surge's k6 gone); FAIL naming the
//! products check against a product-service with no Redis fallback. One lab. And, with no
//! lab: a bad scenario file is one line and exit 2 before anything is touched.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use std::process::Command;

use runbook_support::{GUARD_AWAY, Lab, Runs, root};

const SCRIPT: &str = "game-day.sh";
const PRODUCTS: &str = "GET /v1/products served while redis is down";
/// Windows of seconds; the restore clock 60 s (the faults end by 25 s after the first).
const FAST: &[&str] = &[
    "--baseline",
    "4",
    "--fault-duration",
    "20",
    "--recovery",
    "20",
    "--band-window",
    "1",
    "--rate",
    "20",
    "--restore-clock",
    "60",
];

// The platform is compared once the HPA has scaled back: product-service has one (the
// lab's scale-down window is 30 s), and the load, the surge and the leak's CPU can make it
// add a replica while the run goes on; its own scaling is not something the run left.

/// No memory-leak process and no copy in any product-service pod.
fn nothing_in_the_pods(lab: &Lab) {
    for pod in lab
        .ok(&["get", "pods", "-l", "app=product-service", "-o", "name"])
        .lines()
    {
        let comms = lab.ok(&["exec", pod, "--", "sh", "-c", "cat /proc/[0-9]*/comm"]);
        assert!(
            !comms.lines().any(|c| c == "memory-leak"),
            "{pod} still runs memory-leak"
        );
        let tmp = lab.ok(&["exec", pod, "--", "ls", "-a", "/tmp"]);
        assert!(!tmp.contains("chaos-memory-leak"), "{pod}: {tmp}");
    }
}

/// Seconds of the day of a fault's start in the timeline (`...THH:MM:SS.mmmZ`).
fn fault_start(timeline: &str, name: &str) -> f64 {
    let at = timeline
        .lines()
        .find_map(|l| l.strip_prefix(&format!("fault-start\t{name}\t")))
        .unwrap_or_else(|| panic!("no fault-start of {name}:\n{timeline}"));
    let at = at.split('\t').next().unwrap();
    let clock = at.split('T').nth(1).unwrap().trim_end_matches('Z');
    clock
        .split(':')
        .map(|p| p.parse::<f64>().unwrap())
        .fold(0.0, |acc, p| acc * 60.0 + p)
}

/// The static memory-leak the pods run (scripts/build-static.sh; scripts/test.sh builds it).
fn require_dist() {
    let leak = root().join("dist/memory-leak");
    assert!(
        leak.is_file(),
        "{} is not built: run scripts/build-static.sh first (scripts/test.sh does)",
        leak.display()
    );
}

#[test]
fn root_runbook_gameday_passes_reverts_on_ctrl_c_and_fails_against_fragile() {
    require_dist();
    let lab = Lab::up();
    let runs = Runs::new(&lab);
    lab.settled();
    let before = lab.platform();

    let pass = runs.run(SCRIPT, "tg-pass", FAST);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        PRODUCTS,
        "redis back: statefulset Ready",
        "OOMKill of a product-service pod recorded",
        "product-service pod back within 30 s of the OOM kill",
        "surge bookings succeed",
        "service restored within the restore clock (error rate and p95 back in the baseline band)",
        "every fault removed within the restore clock",
        "GET /health answers 200 after the restore",
        "the targets' pods all Ready after the restore",
        "GET /v1/products served after the restore",
        "bookings succeed after the restore",
        "fault 'redis' removed (verified)",
        "fault 'oom' removed (verified)",
        "fault 'surge' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    let restore = pass.check(
        "service restored within the restore clock (error rate and p95 back in the baseline band)",
    )["observed"]
        .as_f64()
        .unwrap();
    assert!(restore <= 60.0, "{restore}");
    // Every fault and every check in the timeline; the surge's requests in the points.
    let timeline = pass.file("timeline.tsv");
    for line in [
        "fault-start\tredis",
        "fault-start\toom",
        "fault-start\tsurge",
        "fault-end\tredis",
        "fault-end\toom",
        "fault-end\tsurge",
        "mark\tredis-gone",
        "mark\tleak-applied",
        "mark\tsurge-started",
        "mark\tcheck",
    ] {
        assert!(timeline.contains(line), "{line}:\n{timeline}");
    }
    // The OOM fault started 5 s after Redis went (the scenario's offset).
    let offset = fault_start(&timeline, "oom") - fault_start(&timeline, "redis");
    assert!((4.5..8.0).contains(&offset), "{offset}:\n{timeline}");
    assert!(
        pass.file("k6/surge.ndjson")
            .contains("surge-appointment-book")
    );
    let debrief = pass.file("debrief.md");
    for part in [
        "# Game day debrief: Redis down + product-service pod OOMKilled + appointment booking surge",
        "redis-oom-surge.conf",
        "- **Result**: PASS.",
        "against a restore clock of 60 s (within the clock)",
        "- **Faults removed**: every fault removed and verified by +",
        "| fault-start | redis |",
        "| fault-start | oom |",
        "| surge bookings succeed | pass |",
        "## What went well",
        "## Gaps in the runbooks",
        "## Gaps in monitoring",
        "## Gaps in automation",
        "## Actions",
    ] {
        assert!(debrief.contains(part), "{part}:\n{debrief}");
    }
    assert!(
        runs.row("tg-pass")
            .contains("| GAME-DAY | Staging | PASS |")
    );
    nothing_in_the_pods(&lab);
    lab.assert_back_to(&before, 120);

    // Ctrl-C with the three faults in place (the leak slow: no OOM kill before it).
    let scenario = runs.dir.path().join("slow-leak.conf");
    std::fs::write(
        &scenario,
        "title slow leak\nfault redis redis-down redis 0\n\
         fault oom pod-oom product-service 0 rate=2\nfault surge booking-surge appointment-service 0\n",
    )
    .unwrap();
    let mut args = FAST.to_vec();
    args.extend(["--scenario", scenario.to_str().unwrap()]);
    let stopped = runs.interrupt(SCRIPT, "tg-ctrlc", &args, || {
        let t = runs.timeline("tg-ctrlc");
        ["redis-gone", "leak-applied", "surge-started"]
            .iter()
            .all(|m| t.contains(&format!("mark\t{m}")))
    });
    for name in ["redis", "oom", "surge"] {
        assert_eq!(
            stopped.status(&format!("fault '{name}' removed (verified)")),
            "pass",
            "{name}"
        );
    }
    let report: serde_json::Value = serde_json::from_str(&stopped.file("faults/oom.json")).unwrap();
    assert_eq!(report["revert"]["status"], "reverted", "{report:#}");
    assert!(
        stopped
            .file("debrief.md")
            .contains("- **Result**: ABORTED.")
    );
    assert!(
        runs.row("tg-ctrlc")
            .contains("| ABORTED | ABORTED: aborted by operator")
    );
    nothing_in_the_pods(&lab);
    lab.assert_back_to(&before, 120);

    // A product-service with no Redis fallback (and Ready 8 s before it serves).
    lab.fragile(&["product-service"]);
    let fragile = lab.platform();
    let mut args = FAST.to_vec();
    args.extend(GUARD_AWAY);
    let fail = runs.run(SCRIPT, "tg-fragile", &args);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed().contains(&PRODUCTS.to_owned()),
        "{:?}",
        fail.failed()
    );
    assert!(
        fail.file("debrief.md")
            .contains(&format!("| {PRODUCTS} | fail |"))
    );
    assert!(
        runs.row("tg-fragile")
            .contains("| GAME-DAY | Staging | FAIL |")
    );
    nothing_in_the_pods(&lab);
    lab.assert_back_to(&fragile, 120);
}

/// `game-day.sh ARGS` with no cluster behind it (BASE_URL a closed port).
fn offline(args: &[&str], dir: &std::path::Path) -> std::process::Output {
    Command::new(root().join("scripts/runbooks").join(SCRIPT))
        .args(args)
        .env("BASE_URL", "http://127.0.0.1:9")
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .current_dir(dir)
        .output()
        .unwrap()
}

#[test]
fn game_day_refuses_a_bad_scenario_with_one_line_before_touching_anything() {
    let dir = tempfile::tempdir().unwrap();
    let help = offline(&["--help"], dir.path());
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    for part in [
        "GAME-DAY: ",
        "Hypothesis: ",
        "redis (after 0 s, for 300 s)",
        "oom (after 5 s, for 300 s)",
        "rollback: ",
        "--restore-clock",
        "le=1200",
    ] {
        assert!(text.contains(part), "{part}:\n{text}");
    }
    let cases: &[(&str, &str)] = &[
        ("fault a redis-down redis 0\n", "1 fault line(s)"),
        (
            "fault a redis-down redis 0\nfault b pod-oom product-service soon\n",
            ":2: offset 'soon' must be whole seconds",
        ),
        (
            "fault a redis-down redis 0\nfault b cpu-hog product-service 0\n",
            ":2: fault kind 'cpu-hog'",
        ),
        (
            "fault a redis-down redis 0\nfault b pod-oom product-service 0 peak=9\n",
            ":2: pod-oom takes no key 'peak'",
        ),
        (
            "fault a redis-down redis 0 for=$(touch${IFS}pwned)\nfault b pod-oom p 0\n",
            ":1: for= must be a duration",
        ),
        (
            "title t\nkubectl delete ns lomash-wood\n",
            ":2: unknown directive 'kubectl'",
        ),
        (
            "fault a redis-down redis 0\r\nfault b pod-oom p 0\n",
            ":1: carriage return",
        ),
        (
            "fault a redis-down redis 0 for=90\nfault b pod-oom p 30 for=100\n",
            "b would stay until 130 s after the injection, past the restore clock (120 s)",
        ),
    ];
    for (i, (body, expected)) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.conf"));
        std::fs::write(&file, body).unwrap();
        for extra in [&[][..], &["--dry-run"][..]] {
            let mut args = vec![
                "--scenario",
                file.to_str().unwrap(),
                "--restore-clock",
                "2m",
            ];
            args.extend(extra);
            let out = offline(&args, dir.path());
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{body:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{body:?}: {err}");
            assert!(err.contains(expected), "{body:?}: {err}");
            assert!(out.stdout.is_empty(), "{body:?}");
        }
    }
    // Nothing was created: no run directory, no result log, no file planted by the text.
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("bad-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    let missing = offline(&["--scenario", "no-such.conf"], dir.path());
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--scenario: cannot read"));
}
