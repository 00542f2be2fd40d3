use super::*;

fn one(line: &str) -> std::result::Result<CheckSpec, String> {
    parse(&format!("{HEADER}\n{line}\n")).map(|mut v| v.remove(0))
}

#[test]
fn a_metric_check_with_window_filter_and_threshold() {
    let c =
        one("name=login works\twindow=fault\trequest=auth-login\tmetric=error-rate\tlt=1").unwrap();
    assert_eq!(c.kind, Kind::Metric);
    assert_eq!(c.window, "fault");
    assert_eq!(c.request.as_deref(), Some("auth-login"));
    assert_eq!(c.op, Some((Op::Lt, 1.0)));
    assert_eq!(c.unit, "%");
}

#[test]
fn recovery_defaults_to_the_fault_window_and_takes_from() {
    let c = one("name=back\tmetric=recovery-seconds\tfrom=fault-start\tle=60").unwrap();
    assert_eq!(c.window, "fault");
    assert_eq!(
        c.metric.unwrap().1,
        Metric::RecoverySeconds { from_start: true }
    );
    assert!(
        one("name=x\tmetric=p95\tfrom=fault-start\tle=60")
            .unwrap_err()
            .contains("from=")
    );
}

#[test]
fn value_outcome_and_manual_checks() {
    let c = one(
        "name=ready\tkind=value\tsource=faults/k.json\tpointer=/a/0\tscale=0.001\tunit=s\tle=30",
    )
    .unwrap();
    assert_eq!(
        (c.kind, c.scale, c.unit.as_str()),
        (Kind::Value, 0.001, "s")
    );
    assert_eq!(
        one("name=logs\tkind=outcome\tobserved=fail\tdetail=no match")
            .unwrap()
            .kind,
        Kind::Outcome
    );
    assert_eq!(
        one("name=dashboard\tkind=manual").unwrap().kind,
        Kind::Manual
    );
}

#[test]
fn mistakes_are_named() {
    let cases = [
        ("name=x\tmetric=p95", "threshold"),
        ("name=x\tmetric=p96\tlt=1", "unknown metric 'p96'"),
        ("name=x\tmetric=p95\tlt=1\tle=2", "more than one"),
        ("name=x\tmetric=p95\tlt=fast", "not a number"),
        ("name=x\tmetric=p95\tlt=inf", "not a number"),
        ("metric=p95\tlt=1", "needs name="),
        ("name=x\tkind=manual\tlt=1", "needs no threshold"),
        ("name=x\tkind=value\tle=1", "observed= or source="),
        ("name=x\tkind=value\tsource=a.json\tle=1", "go together"),
        ("name=x\tkind=outcome\tobserved=maybe", "pass or fail"),
        ("name=x\tkind=manual\tmetric=p95", "for metric checks"),
        ("name=x\tcolour=red", "unknown key 'colour'"),
        ("name=x\tmetric=status:6xx\tlt=1", "HTTP status"),
        ("name=x\tlt", "not key=value"),
    ];
    for (line, expected) in cases {
        let err = one(line).unwrap_err();
        assert!(err.contains(expected), "{line}: {err}");
        assert!(err.contains("line 2"), "{line}: {err}");
    }
}

#[test]
fn the_file_needs_its_header_unique_names_and_a_check() {
    assert!(
        parse("name=x\tkind=manual\n")
            .unwrap_err()
            .contains("first line")
    );
    assert!(
        parse(&format!("{HEADER}\n"))
            .unwrap_err()
            .contains("at least one")
    );
    let dup = format!("{HEADER}\nname=x\tkind=manual\nname=x\tkind=manual\n");
    assert!(parse(&dup).unwrap_err().contains("second check named 'x'"));
}

#[test]
fn a_fault_plus_window_needs_whole_seconds() {
    let ok =
        parse("chaos-verdict-checks\t1\nname=a\twindow=fault+30\tmetric=errors\tlt=5\n").unwrap();
    assert_eq!(ok[0].window, "fault+30");
    let err = parse("chaos-verdict-checks\t1\nname=a\twindow=fault+3s\tmetric=errors\tlt=5\n")
        .unwrap_err();
    assert!(err.contains("fault+SECONDS"), "{err}");
}
