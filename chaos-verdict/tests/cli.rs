//! chaos-verdict's command line, driven as the runbooks drive it: synthetic k6 points,
//! timelines and checks in a temporary run directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use common::*;

const T0: i64 = 1_796_000_000_000; // 2026-11-29T...

fn healthy() -> Synthetic {
    Synthetic {
        t0: T0,
        fault_status: 200,
        fault_ms: 40.0,
        lingering: 0,
    }
}

#[test]
fn help_lists_the_sub_commands_and_exit_codes() {
    let out = run(&["--help"]);
    assert_eq!(code(&out), 0);
    let text = stdout(&out);
    for word in [
        "verdict",
        "gate",
        "guard",
        "log",
        "stats",
        "get",
        "manifest",
        "safety",
        "validate",
        "5 PARTIAL",
        "6 ABORTED",
    ] {
        assert!(text.contains(word), "--help lacks {word}:\n{text}");
    }
}

#[test]
fn bad_flags_are_one_line_and_exit_2() {
    for args in [
        vec!["verdict", "--points"],
        vec![
            "guard",
            "--points",
            "p",
            "--state",
            "s",
            "--error-rate",
            "150",
        ],
        vec![
            "log",
            "--result-log",
            "x.md",
            "--experiment",
            "exp-1",
            "--environment",
            "staging",
            "--result",
            "PASS",
            "--notes",
            "n",
        ],
        vec!["frobnicate"],
    ] {
        let out = run(&args);
        assert_eq!(code(&out), 2, "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
        assert!(
            stderr(&out).starts_with("chaos-verdict: error: "),
            "{}",
            stderr(&out)
        );
    }
}

#[test]
fn a_healthy_run_passes_and_writes_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_run(dir.path(), &healthy(), "", CHECKS);
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with("PASS: 4/4 checks passed"),
        "{}",
        stdout(&out)
    );
    let v = result_json(dir.path());
    assert_eq!(v["result"], "PASS");
    assert_eq!(v["recovery"]["recoverySeconds"], 0.0);
    assert_eq!(v["points"]["requests"], 300);
    assert_eq!(v["points"]["lines"], 1 + 300 * 5);
    let fault = v["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "fault")
        .unwrap();
    assert_eq!(fault["p95Ms"], 40.0);
    assert_eq!(fault["p95DeltaMs"], 30.0);
    let csv = std::fs::read_to_string(dir.path().join("seconds.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + 30);
    assert!(
        std::fs::read_to_string(dir.path().join("summary.md"))
            .unwrap()
            .starts_with("# EXP-001 run r1: PASS")
    );
    assert!(
        std::fs::read_to_string(dir.path().join("timeline.svg"))
            .unwrap()
            .contains("</svg>")
    );
}

#[test]
fn a_service_that_stays_degraded_fails_naming_the_check() {
    let dir = tempfile::tempdir().unwrap();
    let syn = Synthetic {
        lingering: 20,
        ..healthy()
    };
    let files = write_run(dir.path(), &syn, "", CHECKS);
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 1, "{}", stdout(&out));
    assert!(
        stdout(&out).contains("failed: \"p95 back to baseline within 5 s\""),
        "{}",
        stdout(&out)
    );
    let v = result_json(dir.path());
    assert_eq!(v["recovery"]["recovered"], false);
    assert!(
        v["resultLogRow"]["notes"]
            .as_str()
            .unwrap()
            .contains("not recovered")
    );
}

#[test]
fn manual_checks_are_partial_until_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let checks = format!("{CHECKS}name=Grafana shows the event\tkind=manual\n");
    let files = write_run(dir.path(), &healthy(), "", &checks);
    assert_eq!(code(&verdict(dir.path(), &files, &[])), 5);
    assert_eq!(result_json(dir.path())["result"], "PARTIAL");
    assert_eq!(
        code(&verdict(
            dir.path(),
            &files,
            &["--confirm", "Grafana shows the event"]
        )),
        0
    );
    let out = verdict(dir.path(), &files, &["--confirm", "Grafana shows it"]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("names no manual check (manual checks: 'Grafana shows the event')"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_aborted_run_is_aborted_whatever_its_checks() {
    let dir = tempfile::tempdir().unwrap();
    let extra = format!(
        "mark\tguard-breach\t{}\tx\nmark\tguard-trip\t{}\tx\nabort\tguard\t{}\terror rate 100% over 10 s\nmark\tfaults-removed\t{}\t\n",
        ts(T0 + 12_000),
        ts(T0 + 14_000),
        ts(T0 + 14_000),
        ts(T0 + 14_600)
    );
    let files = write_run(dir.path(), &healthy(), &extra, CHECKS);
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 6);
    let v = result_json(dir.path());
    assert_eq!(v["abort"]["breachToRemovedMs"], 2600);
    let svg = std::fs::read_to_string(dir.path().join("timeline.svg")).unwrap();
    assert!(svg.contains("guard trip") && svg.contains("faults removed"));
}

#[test]
fn broken_inputs_are_bad_input_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_run(dir.path(), &healthy(), "", CHECKS);
    std::fs::write(&files[0], "time,value\n1,2\n").unwrap();
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("line 1: not a JSON object"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("result.json").exists());
    std::fs::remove_file(&files[0]).unwrap();
    assert!(stderr(&verdict(dir.path(), &files, &[])).contains("cannot open the k6 points file"));
    std::fs::write(&files[2], "chaos-verdict-checks\t1\nname=x\tmetric=p95\n").unwrap();
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("checks.tsv: line 2"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn an_empty_points_file_is_no_data_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_run(dir.path(), &healthy(), "", CHECKS);
    std::fs::write(&files[0], "").unwrap();
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 1);
    let v = result_json(dir.path());
    let details: Vec<&str> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["detail"].as_str().unwrap())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(
        details.iter().all(|d| d.starts_with("no data")),
        "{details:?}"
    );
}

#[test]
fn the_gate_judges_the_baseline_alone() {
    let dir = tempfile::tempdir().unwrap();
    let checks = format!("{CHECKS}name=baseline p95 < 5 ms\twindow=baseline\tmetric=p95\tlt=5\n");
    let files = write_run(dir.path(), &healthy(), "", &checks);
    let out = run(&[
        "gate",
        "--points",
        files[0].to_str().unwrap(),
        "--timeline",
        files[1].to_str().unwrap(),
        "--checks",
        files[2].to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 1);
    let text = stdout(&out);
    assert!(
        text.contains("pass\tbaseline error rate < 1%")
            && text.contains("FAIL\tbaseline p95 < 5 ms"),
        "{text}"
    );
    assert!(
        !text.contains("error rate in the fault"),
        "only baseline checks: {text}"
    );
}

#[test]
fn log_rows_replace_the_placeholder_then_append_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("chaos-results.md");
    std::fs::write(&log, "| Date | Experiment | Environment | Result | Notes |\n|---|---|---|---|---|\n| — | EXP-001 | Staging | — | Pending first run |\n").unwrap();
    let files = write_run(
        dir.path(),
        &Synthetic {
            lingering: 2,
            ..healthy()
        },
        "",
        CHECKS,
    );
    verdict(dir.path(), &files, &["--result-log", log.to_str().unwrap()]);
    let out = run(&[
        "log",
        "--result-log",
        log.to_str().unwrap(),
        "--from",
        dir.path().join("result.json").to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("Pending first run"), "{text}");
    assert!(
        text.contains("| EXP-001 | Staging | PASS | PASS: 4/4 checks passed; recovery 2 s;"),
        "{text}"
    );

    let files = write_run(dir.path(), &healthy(), "", CHECKS);
    let out = verdict(dir.path(), &files, &["--result-log", log.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("recovery 0 s, last time 2 s"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        result_json(dir.path())["previous"]["figures"]["recoverySeconds"],
        2.0
    );
    run(&[
        "log",
        "--result-log",
        log.to_str().unwrap(),
        "--from",
        dir.path().join("result.json").to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("| EXP-001 |")
            .count(),
        2
    );
}

#[test]
fn a_row_is_written_even_without_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("new.md");
    let out = run(&[
        "log",
        "--result-log",
        log.to_str().unwrap(),
        "--experiment",
        "EXP-004",
        "--environment",
        "production",
        "--result",
        "FAIL",
        "--notes",
        "verdict failed | see run dir",
    ]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.contains("| EXP-004 | Production | FAIL | verdict failed \\| see run dir |"),
        "{text}"
    );
}

#[test]
fn two_runbooks_logging_at_once_lose_no_row() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.md");
    let children: Vec<_> = (0..12)
        .map(|i| {
            std::process::Command::new(bin())
                .args([
                    "log",
                    "--result-log",
                    log.to_str().unwrap(),
                    "--experiment",
                    "EXP-005",
                    "--environment",
                    "staging",
                    "--result",
                    "PASS",
                    "--notes",
                    &format!("run {i}"),
                ])
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(
        std::fs::read_to_string(&log)
            .unwrap()
            .matches("| EXP-005 |")
            .count(),
        12
    );
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
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak_mib = usage.max_rss() / 1024;
    assert!(peak_mib < 40, "peak memory {peak_mib} MiB for an 80 MiB file: it was not streamed");
}
