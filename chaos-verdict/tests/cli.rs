//! chaos-verdict's command line, driven as the runbooks drive it: synthetic k6 points,
//! timelines and checks in a temporary run directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

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

#[test]
fn a_timestamp_years_off_is_bad_input_not_a_year_of_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let extra = "mark\tnote\t2031-01-01T00:00:00Z\ta typo\n";
    let files = write_run(dir.path(), &healthy(), extra, CHECKS);
    let out = verdict(dir.path(), &files, &[]);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("more than 7 days"),
        "{}",
        stderr(&out)
    );
    assert!(!dir.path().join("seconds.csv").exists());
}
