//! chaos-verdict's helper sub-commands, driven as the runbooks drive them: the abort
//! guard, the safety rules, get / manifest / stats / validate, and a large points file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

const T0: i64 = 1_796_000_000_000;

fn healthy() -> Synthetic {
    Synthetic {
        t0: T0,
        fault_status: 200,
        fault_ms: 40.0,
        lingering: 0,
    }
}

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
    )
    .unwrap()
}

fn guard(points: &Path, state: &Path) -> (i32, serde_json::Value) {
    let out = run(&[
        "guard",
        "--points",
        points.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
        "--breaches",
        "1",
        "--window",
        "5",
        "--min-samples",
        "10",
    ]);
    let line: serde_json::Value = serde_json::from_str(stdout(&out).trim())
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (code(&out), line)
}

#[test]
fn the_guard_trips_on_sustained_errors_and_stays_tripped() {
    let dir = tempfile::tempdir().unwrap();
    let start = (now_ms() / 1000 - 6) * 1000;
    let healthy = dir.path().join("healthy.ndjson");
    let reqs: Vec<(i64, f64, u16, &str)> =
        (0..60).map(|i| (start + i * 100, 1.0, 200, "x")).collect();
    std::fs::write(&healthy, k6_lines(&reqs, 1)).unwrap();
    let (c, line) = guard(&healthy, &dir.path().join("healthy.json"));
    assert_eq!((c, line["guard"].as_str()), (0, Some("ok")), "{line}");

    let failing = dir.path().join("failing.ndjson");
    let reqs: Vec<(i64, f64, u16, &str)> = (0..60)
        .map(|i| (start + i * 100, 1.0, if i < 10 { 200 } else { 503 }, "x"))
        .collect();
    std::fs::write(&failing, k6_lines(&reqs, 1)).unwrap();
    let state = dir.path().join("failing.json");
    let (c, line) = guard(&failing, &state);
    assert_eq!((c, line["guard"].as_str()), (6, Some("trip")), "{line}");
    assert!(line["breachStartedAt"].is_string());
    assert_eq!(
        guard(&failing, &state).0,
        6,
        "a tripped guard stays tripped"
    );
    std::fs::write(&failing, "").unwrap();
    let out = run(&[
        "guard",
        "--points",
        failing.to_str().unwrap(),
        "--state",
        state.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2, "a truncated points file is refused");
    assert!(
        stderr(&out).contains("replaced or truncated"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_guard_refuses_a_missing_points_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(&[
        "guard",
        "--points",
        dir.path().join("none").to_str().unwrap(),
        "--state",
        dir.path().join("s").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("cannot read the k6 points file"));
}

fn safety(env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut cmd = std::process::Command::new(bin());
    cmd.arg("safety")
        .args(args)
        .env_remove("CHAOS_PROTECTED_NAMESPACES")
        .env_remove("CHAOS_TEST_NOW");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (code(&out), stderr(&out) + &stdout(&out))
}

#[test]
fn the_safety_rules_refuse_with_exit_3() {
    let night = [("CHAOS_TEST_NOW", "1796004000")]; // 02:40 UTC
    let noon = [("CHAOS_TEST_NOW", "1796040000")]; // 12:40 UTC
    let staging = [
        "--experiment",
        "EXP-001",
        "--environment",
        "staging",
        "--namespace",
        "lomash-wood",
    ];
    assert_eq!(safety(&noon, &staging).0, 0, "staging runs at any hour");
    let (c, text) = safety(
        &night,
        &[
            "--experiment",
            "EXP-001",
            "--environment",
            "staging",
            "--namespace",
            "kube-system",
        ],
    );
    assert_eq!(c, 3);
    assert!(text.contains("protected-namespace"), "{text}");
    let (c, text) = safety(
        &[("CHAOS_PROTECTED_NAMESPACES", "payments,lomash-wood")],
        &staging,
    );
    assert_eq!(c, 3, "{text}");
    let prod = [
        "--experiment",
        "EXP-001",
        "--environment",
        "production",
        "--namespace",
        "lomash-wood",
        "--observer",
        "ana",
    ];
    let (c, text) = safety(&noon, &prod);
    assert_eq!(c, 3);
    assert!(text.contains("production-peak-hours"), "{text}");
    assert_eq!(
        safety(
            &noon,
            &[&prod[..], &["--allow-peak-hours", "incident drill"]].concat()
        )
        .0,
        0
    );
    assert_eq!(safety(&night, &prod).0, 0);
    let (c, text) = safety(&night, &prod[..6]);
    assert_eq!(c, 3);
    assert!(text.contains("--observer NAME"), "{text}");
    let (c, text) = safety(
        &night,
        &[
            "--experiment",
            "EXP-008",
            "--environment",
            "staging",
            "--destructive",
        ],
    );
    assert_eq!(c, 3);
    assert!(text.contains("--approved-by NAME"), "{text}");
    assert_eq!(
        safety(
            &night,
            &[
                "--experiment",
                "EXP-008",
                "--environment",
                "staging",
                "--destructive",
                "--approved-by",
                "em"
            ]
        )
        .0,
        0
    );
    assert_eq!(
        safety(
            &night,
            &[
                "--experiment",
                "EXP-001",
                "--environment",
                "staging",
                "--namespace",
                "Bad_NS"
            ]
        )
        .0,
        2
    );
    assert_eq!(
        safety(
            &night,
            &[
                "--experiment",
                "EXP-001",
                "--environment",
                "staging",
                "--observer",
                " "
            ]
        )
        .0,
        2
    );
}

#[test]
fn get_and_manifest_replace_jq() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("r.json");
    std::fs::write(
        &file,
        r#"{"phases":[{"name":"apply","startedAt":"2026-11-28T07:00:00.000Z"}],"n":3}"#,
    )
    .unwrap();
    let out = run(&["get", file.to_str().unwrap(), "/phases/0/startedAt"]);
    assert_eq!(stdout(&out), "2026-11-28T07:00:00.000Z\n");
    assert_eq!(
        stdout(&run(&["get", file.to_str().unwrap(), "/phases/0"])).trim(),
        r#"{"name":"apply","startedAt":"2026-11-28T07:00:00.000Z"}"#
    );
    assert_eq!(code(&run(&["get", file.to_str().unwrap(), "/nothing"])), 2);
    let manifest = dir.path().join("manifest.json");
    let out = run(&[
        "manifest",
        "--out",
        manifest.to_str().unwrap(),
        "experiment=EXP-001",
        "flags[]=--namespace",
        "flags[]=a b \"c\"",
        "targets:json=[{\"kind\":\"pod\"}]",
        "note=x=y",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert_eq!(m["flags"][1], "a b \"c\"");
    assert_eq!(m["targets"][0]["kind"], "pod");
    assert_eq!(m["note"], "x=y");
    assert_eq!(
        code(&run(&[
            "manifest",
            "--out",
            manifest.to_str().unwrap(),
            "bad key=1"
        ])),
        2
    );
}

#[test]
fn stats_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_run(dir.path(), &healthy(), "", CHECKS);
    let out = run(&[
        "stats",
        "--points",
        files[0].to_str().unwrap(),
        "--from",
        &ts(T0 + 10_000),
        "--to",
        &ts(T0 + 15_000),
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["stats"]["requests"], 50);
    assert_eq!(v["stats"]["p95Ms"], 40.0);
    let out = run(&[
        "validate",
        "--checks",
        files[2].to_str().unwrap(),
        "--timeline",
        files[1].to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("3 checks") && stdout(&out).contains("4 phases, 1 faults"));
}

/// k6 files of hundreds of MB are streamed: the verdict's peak memory stays far below the
/// file's size (a file read whole would need at least its size).
#[test]
fn a_large_points_file_is_streamed_not_loaded_whole() {
    let dir = tempfile::tempdir().unwrap();
    let points = dir.path().join("points.ndjson");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&points).unwrap());
    let mut written = 0usize;
    let mut at = T0;
    while written < 80 << 20 {
        let chunk = k6_lines(&[(at, 12.5, 200, "products")], 8);
        written += chunk.len();
        std::io::Write::write_all(&mut file, chunk.as_bytes()).unwrap();
        at += 10;
    }
    drop(file);
    let out = run(&["stats", "--points", points.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(v["stats"]["requests"].as_u64().unwrap() > 20_000, "{v}");
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak_mib = usage.max_rss() / 1024;
    assert!(
        peak_mib < 40,
        "peak memory {peak_mib} MiB for an 80 MiB file: it was not streamed"
    );
}
