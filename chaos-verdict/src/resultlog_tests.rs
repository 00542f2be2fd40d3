use super::*;

const SEED: &str = "## Chaos Test Result Log

| Date | Experiment | Environment | Result | Notes |
|------|-----------|-------------|--------|-------|
| — | EXP-001 | Staging | — | Pending first run |
| — | EXP-002 | Staging | — | Pending first run |
| — | EXP-008 | Production | — | Scheduled post-launch |

Update this table with `PASS`, `FAIL`, or `PARTIAL` and detailed notes after each run.
";

fn row(exp: &str, result: &str, notes: &str) -> Row {
    Row {
        date: "2026-11-28".into(),
        experiment: exp.into(),
        environment: "Staging".into(),
        result: result.into(),
        notes: notes.into(),
    }
}

#[test]
fn the_first_run_replaces_the_placeholder_row() {
    let out = with_row(SEED, &row("EXP-002", "PASS", "recovery 3 s"));
    assert!(out.contains("| 2026-11-28 | EXP-002 | Staging | PASS | recovery 3 s |"));
    assert!(!out.contains("| — | EXP-002 |"));
    assert!(out.contains("| — | EXP-001 |"), "other placeholders stay");
    assert!(
        out.ends_with("after each run.\n"),
        "text after the table stays"
    );
    assert_eq!(out.lines().count(), SEED.lines().count());
}

#[test]
fn scheduled_post_launch_is_a_placeholder_too() {
    let out = with_row(SEED, &row("EXP-008", "FAIL", "x"));
    assert!(!out.contains("Scheduled post-launch"));
}

#[test]
fn later_runs_go_after_the_last_row() {
    let once = with_row(SEED, &row("EXP-001", "PASS", "recovery 9.8 s"));
    let twice = with_row(&once, &row("EXP-001", "FAIL", "not recovered"));
    let lines: Vec<&str> = twice.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.contains("not recovered"))
        .unwrap();
    assert!(
        lines[i - 1].contains("EXP-008"),
        "appended after the table's last row"
    );
    assert_eq!(lines[i + 1], "");
}

#[test]
fn a_file_without_the_table_gets_one() {
    let out = with_row("# Notes\nsome text", &row("EXP-003", "PASS", "ok"));
    assert!(out.starts_with(
        "# Notes\nsome text\n\n| Date | Experiment | Environment | Result | Notes |\n|---"
    ));
    assert!(out.ends_with("| 2026-11-28 | EXP-003 | Staging | PASS | ok |\n"));
    let fresh = with_row("", &row("EXP-003", "PASS", "ok"));
    assert!(fresh.starts_with("# Chaos Test Result Log\n\n| Date |"));
    assert_eq!(previous(&fresh, "EXP-003"), None, "no figures in 'ok'");
}

#[test]
fn pipes_and_newlines_cannot_break_the_row() {
    let r = row("EXP-001", "FAIL", "failed: a | b\nsecond line");
    let md = r.to_markdown();
    assert_eq!(md.lines().count(), 1);
    assert!(md.contains("a \\| b second line"));
    assert_eq!(parse_row(&md).unwrap().notes, "failed: a | b second line");
}

#[test]
fn the_previous_run_is_the_last_row_with_figures() {
    let mut text = with_row(
        SEED,
        &row(
            "EXP-001",
            "PASS",
            "recovery 9.8 s; fault p95 190 ms (baseline 120 ms); fault errors 0.1% (baseline 0%)",
        ),
    );
    text = with_row(&text, &row("EXP-001", "PASS", "hand-written, no figures"));
    text = with_row(&text, &row("EXP-002", "PASS", "recovery 1 s"));
    let p = previous(&text, "EXP-001").unwrap();
    assert_eq!(p.figures.recovery_seconds, Some(9.8));
    assert_eq!(p.figures.fault_p95_ms, Some(190.0));
    assert_eq!(p.figures.fault_error_rate_percent, Some(0.1));
    assert_eq!(previous(SEED, "EXP-001"), None, "placeholders are not runs");
}

#[test]
fn figures_round_trip_through_notes() {
    let f = Figures {
        recovery_seconds: Some(12.3),
        fault_p95_ms: Some(210.0),
        fault_error_rate_percent: Some(0.4),
    };
    let text = figures_text(&f, Some(120.0), Some(0.0));
    assert_eq!(
        text,
        "recovery 12.3 s; fault p95 210 ms (baseline 120 ms); fault errors 0.4% (baseline 0%)"
    );
    assert_eq!(figures(&text), f);
    let none = Figures {
        recovery_seconds: None,
        ..f.clone()
    };
    assert!(figures_text(&none, None, None).starts_with("not recovered; "));
}

#[test]
fn the_comparison_names_both_runs() {
    let now = Figures {
        recovery_seconds: Some(12.3),
        fault_p95_ms: Some(210.0),
        fault_error_rate_percent: None,
    };
    let prev = Previous {
        date: "2026-11-20".into(),
        result: "PASS".into(),
        figures: Figures {
            recovery_seconds: Some(9.8),
            ..Figures::default()
        },
    };
    let text = comparison("EXP-001", &now, Some(&prev));
    assert!(
        text.starts_with(
            "recovery 12.3 s, last time 9.8 s; fault p95 210 ms, last time not measured"
        ),
        "{text}"
    );
    assert!(
        text.ends_with("(previous EXP-001 run: 2026-11-20, PASS)"),
        "{text}"
    );
    assert!(comparison("EXP-001", &now, None).starts_with("first recorded EXP-001 run"));
}
