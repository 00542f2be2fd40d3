//! The runbook library without load: --help, --dry-run, bad input and the preflight's
//! refusals (safety rules, freeze switch through a stand-in kubectl), and shellcheck.
//! None of these may touch anything: no run directory, no result log change, no request
//! to the service, no fault.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::{Command, Output};

use common::toy::{PLACEHOLDER_LOG, Toy, text};

/// Nothing was touched: no run directory, the log as it was, no request, no fault.
fn untouched(toy: &Toy) {
    assert!(!toy.results.exists(), "a run directory was created");
    assert_eq!(toy.log_text(), PLACEHOLDER_LOG, "the result log changed");
    assert!(toy.standin.requests().is_empty(), "the service was loaded");
    assert!(!toy.mode_file.exists(), "the fault was applied");
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_shows_the_hypothesis_the_checks_and_every_rollback() {
    let toy = Toy::new(false);
    let out = toy.run(&["--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let help = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "TOY-001: Toy fault against a stand-in service",
        "Hypothesis: The stand-in slows down",
        "p95 back to baseline within 3 s  [metric=recovery-seconds le=3]",
        "the mode file says ok after the run  [command, after the recovery]",
        "rollback: toy-fault --stop RUNID-flip",
        "--mode-file",
        "Exit: 0 PASS, 1 FAIL, 5 PARTIAL, 6 ABORTED, 2 bad input, 3 refused",
        "--guard-error-rate",
    ] {
        assert!(
            help.contains(expected),
            "--help lacks '{expected}':\n{help}"
        );
    }
    untouched(&toy);
}

#[test]
fn dry_run_prints_every_step_with_the_tool_plans_and_touches_nothing() {
    let toy = Toy::new(false);
    let out = toy.run(&["--dry-run", "--run-id", "dry1"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "(dry run: nothing is touched)",
        "1/7 hypothesis",
        "2/7 preflight",
        "flip plan: [\"write slow:100 into",
        "3/7 baseline: would create",
        "k6 run --quiet --no-usage-report --out json=",
        "4/7 injection: would run",
        "toy-fault --mode slow:100 --duration 3",
        "--run-id dry1-flip --output json --yes",
        "rollback: toy-fault --stop dry1-flip",
        "5/7 observation",
        "6/7 recovery",
        "7/7 result",
    ] {
        assert!(
            plan.contains(expected),
            "the dry run lacks '{expected}':\n{plan}"
        );
    }
    untouched(&toy);
}

#[test]
fn bad_input_is_one_line_and_exit_2_before_anything() {
    let toy = Toy::new(false);
    for (args, expected) in [
        (vec!["--frobnicate", "1"], "unknown flag '--frobnicate'"),
        (vec!["--environment", "prod-ish"], "--environment must be"),
        (
            vec!["--fault-duration", "soon"],
            "--fault-duration must be whole seconds",
        ),
        (vec!["--rate", "0"], "--rate must be a whole number above 0"),
        (vec!["--k6-env", "lower=1"], "--k6-env takes NAME=VALUE"),
        (vec!["--run-id", "Bad_Id"], "--run-id must be"),
        (
            vec!["--guard-cmd", "/nonexistent/check"],
            "--guard-cmd must be an executable",
        ),
        (vec!["--baseline"], "--baseline needs a value"),
        (
            vec!["--guard-error-rate", "100"],
            "--guard-error-rate must be below 100",
        ),
        (
            vec!["--guard-breaches", "601"],
            "--guard-breaches must be at most 600",
        ),
        (
            vec!["--guard-window", "2h"],
            "--guard-window must be whole seconds",
        ),
        (
            vec!["--guard-window", "3601"],
            "--guard-window must be at most 3600 s",
        ),
        (
            vec!["--band-windows", "101"],
            "--band-windows must be at most 100",
        ),
        (
            vec!["--namespace", "Not_A_Namespace"],
            "is not a valid namespace name",
        ),
        (
            vec!["--k6-script", "nope.js"],
            "k6 script 'nope.js' not found",
        ),
    ] {
        let out = toy.run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
        let err = stderr(&out);
        assert!(
            err.contains(expected),
            "{args:?}: expected '{expected}' in:\n{err}"
        );
        assert!(
            err.lines()
                .any(|l| l.starts_with("toy-runbook.sh: error: ")),
            "{err}"
        );
    }
    let out = toy.command(&[]).env_remove("BASE_URL").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--base-url (or BASE_URL) must be an http(s) URL"));
    untouched(&toy);
}

/// A stand-in kubectl: records its argv, answers the namespace and freeze-switch reads.
const KUBECTL: &str = r#"#!/usr/bin/env bash
printf '%s\n' "$*" >>"$KUBECTL_LOG"
case "$*" in
  *"get namespace"*) [ "${KUBE_DOWN:-}" = 1 ] && { echo "Unable to connect to the server: dial tcp 203.0.113.9:6443: i/o timeout" >&2; exit 1; }; echo namespace/lomash-wood ;;
  *"get configmap chaos-freeze"*"-o name"*) [ -n "${FREEZE_REASON:-}" ] && echo configmap/chaos-freeze; exit 0 ;;
  *"get configmap chaos-freeze"*"jsonpath"*) printf '%s' "$FREEZE_REASON" ;;
  *) echo "kubectl stand-in: unexpected $*" >&2; exit 1 ;;
esac
"#;

fn with_kubectl(toy: &Toy, env: &[(&str, &str)], args: &[&str]) -> Output {
    toy.stand_in_command("kubectl", KUBECTL);
    let mut cmd = toy.command(&[&["--kube"], args].concat());
    cmd.env("KUBECTL_LOG", toy.dir.path().join("kubectl.log"))
        .env_remove("FREEZE_REASON")
        .env_remove("KUBE_DOWN");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn the_freeze_switch_refuses_the_run_quoting_its_reason() {
    let toy = Toy::new(false);
    let out = with_kubectl(
        &toy,
        &[("FREEZE_REASON", "Black Friday")],
        &["--context", "staging-eu"],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out)
            .contains("chaos is frozen in lomash-wood (configmap chaos-freeze: Black Friday)"),
        "{}",
        text(&out)
    );
    let calls = std::fs::read_to_string(toy.dir.path().join("kubectl.log")).unwrap();
    assert!(
        calls
            .lines()
            .all(|l| l.starts_with("--context staging-eu ")),
        "{calls}"
    );
    untouched(&toy);
    let out = with_kubectl(
        &toy,
        &[("FREEZE_REASON", "x")],
        &["--freeze-namespace", "chaos-control"],
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(
        stderr(&out).contains("frozen in chaos-control"),
        "{}",
        text(&out)
    );
}

#[test]
fn an_unreachable_cluster_refuses_the_run() {
    let toy = Toy::new(false);
    let out = with_kubectl(&toy, &[("KUBE_DOWN", "1")], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        stderr(&out).contains("cannot reach namespace lomash-wood: Unable to connect"),
        "{}",
        text(&out)
    );
    untouched(&toy);
}

#[test]
fn the_safety_rules_refuse_with_exit_3() {
    let toy = Toy::new(false);
    let noon = ("CHAOS_TEST_NOW", "1796040000");
    let night = ("CHAOS_TEST_NOW", "1796004000");
    let cases: [(&[&str], (&str, &str), &str); 5] = [
        (
            &["--namespace", "kube-system"],
            night,
            "protected-namespace",
        ),
        (
            &["--protected-namespace", "lomash-wood"],
            night,
            "protected-namespace",
        ),
        (
            &["--environment", "production", "--observer", "ana"],
            noon,
            "production-peak-hours",
        ),
        (&["--environment", "production"], night, "--observer NAME"),
        (&["--destructive"], night, "--approved-by NAME"),
    ];
    for (args, now, expected) in cases {
        let out = toy.command(args).env(now.0, now.1).output().unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?}: {}", text(&out));
        assert!(
            stderr(&out).contains(expected),
            "{args:?}: expected '{expected}':\n{}",
            text(&out)
        );
    }
    untouched(&toy);
}

#[test]
fn the_library_the_toy_runbook_and_the_toy_tool_are_shellcheck_clean() {
    let found = Command::new("shellcheck").arg("--version").output();
    assert!(
        found.is_ok_and(|o| o.status.success()),
        "shellcheck is not installed: apt-get install shellcheck (scripts/test.sh installs it)"
    );
    let repo = common::repo();
    let mut files: Vec<String> = vec![
        "scripts/runbooks/lib.sh".into(),
        "scripts/runbooks/game-day.sh".into(),
        "chaos-verdict/tests/fixtures/toy-runbook.sh".into(),
        "chaos-verdict/tests/fixtures/bin/toy-fault".into(),
    ];
    for entry in std::fs::read_dir(repo.join("scripts/runbooks/lib")).unwrap() {
        files.push(format!(
            "scripts/runbooks/lib/{}",
            entry.unwrap().file_name().to_string_lossy()
        ));
    }
    files.extend(
        exp_runbooks()
            .into_iter()
            .map(|f| format!("scripts/runbooks/{f}")),
    );
    let out = Command::new("shellcheck")
        .arg("-x")
        .args(&files)
        .current_dir(&repo)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "shellcheck:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The EXP runbooks of scripts/runbooks/ (exp-*.sh), by name.
fn exp_runbooks() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(common::repo().join("scripts/runbooks"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("exp-") && n.ends_with(".sh"))
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    names
}

#[test]
fn every_exp_runbook_has_help_and_refuses_bad_input_with_one_line() {
    let repo = common::repo();
    for name in exp_runbooks() {
        let script = repo.join("scripts/runbooks").join(&name);
        let id = format!("EXP-{}", &name[4..7]);
        let help = Command::new(&script)
            .arg("--help")
            .env("BASE_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(help.status.code(), Some(0), "{name}: {}", text(&help));
        let out = String::from_utf8_lossy(&help.stdout);
        assert!(out.starts_with(&format!("{id}: ")), "{name}:\n{out}");
        assert!(out.contains("Hypothesis: "), "{name}:\n{out}");
        assert!(out.contains("rollback: "), "{name}:\n{out}");
        let bad = Command::new(&script)
            .args(["--vus", "0"])
            .env("BASE_URL", "http://127.0.0.1:9")
            .output()
            .unwrap();
        assert_eq!(bad.status.code(), Some(2), "{name}: {}", text(&bad));
        let err = stderr(&bad);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(
            err.contains("--vus must be a whole number above 0"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_runbook_flag_named_as_a_common_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("shadow.sh");
    let lib = common::repo().join("scripts/runbooks/lib.sh");
    std::fs::write(
        &script,
        format!(
            "source '{}'\nrb_experiment EXP-006 T H\nrb_option \"$1\" V 1 help count\necho declared\n",
            lib.display()
        ),
    )
    .unwrap();
    for (flag, shadows) in [
        ("--rate", true),
        ("--recovery", true),
        ("--guard-breaches", true),
        ("--rate-mb-per-second", false),
    ] {
        let out = Command::new("bash")
            .arg(&script)
            .arg(flag)
            .output()
            .unwrap();
        if shadows {
            assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out));
            assert!(
                stderr(&out).contains(&format!("internal: {flag} is a common flag")),
                "{flag}: {}",
                text(&out)
            );
        } else {
            assert_eq!(out.status.code(), Some(0), "{flag}: {}", text(&out));
        }
    }
}
