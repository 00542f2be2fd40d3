//! EXP-008 (AZ failure with AWS FIS) end to end with real k6 against the lab's gateway
//! (products and the Stripe webhook endpoint) and STAND-INS for `aws` and `kubectl`
//! (chaos-verdict/tests/fixtures/standins/: AWS and EKS cannot be reached from here; they
//! record their argument vectors and answer with the JSON and formats those programs
//! document). PASS with a failover and the pods moved in time, every AWS call an argument
//! vector with the run's values; FAIL naming the failover check when RDS never fails over;
//! Ctrl-C while the experiment runs stopping it and deleting its template. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{Lab, Runs, root};

const SCRIPT: &str = "exp-008-az-failure.sh";
const ARGS: &[&str] = &[
    "--environment",
    "staging",
    "--approved-by",
    "Test Lead",
    "--az",
    "eu-west-2a",
    "--vpc-id",
    "vpc-0abc12345678def90",
    "--db-cluster-arn",
    "arn:aws:rds:eu-west-2:123456789012:cluster:lw",
    "--role-arn",
    "arn:aws:iam::123456789012:role/fis",
    "--stop-alarm-arn",
    "arn:aws:cloudwatch:eu-west-2:123456789012:alarm:lw-errors",
    "--baseline",
    "4",
    "--recovery",
    "6",
    "--poll",
    "1",
    "--band-window",
    "1",
    "--rate",
    "20",
];

/// Runs against the lab's gateway with the stand-ins first on PATH, each with a
/// directory of its own for the recorded calls.
fn runs_with_standins<'a>(
    lab: &'a Lab,
    settings: &[(&str, &str)],
) -> (Runs<'a>, tempfile::TempDir) {
    let calls = tempfile::tempdir().unwrap();
    let mut runs = Runs::new(lab);
    let standins = root().join("chaos-verdict/tests/fixtures/standins");
    runs.env = vec![
        (
            "PATH".into(),
            format!("{}:{}", standins.display(), std::env::var("PATH").unwrap()),
        ),
        ("AWS_STANDIN_DIR".into(), calls.path().display().to_string()),
        ("STRIPE_WEBHOOK_SECRET".into(), "whsec_lab".into()),
        ("AWS_STANDIN_RUN_SECONDS".into(), "6".into()),
        ("AWS_STANDIN_FAILOVER_SECONDS".into(), "3".into()),
    ];
    for (k, v) in settings {
        runs.env.push(((*k).into(), (*v).into()));
    }
    (runs, calls)
}

fn calls(dir: &tempfile::TempDir) -> Vec<Vec<String>> {
    std::fs::read_to_string(dir.path().join("calls.tsv"))
        .unwrap()
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn has_call(calls: &[Vec<String>], service: &str, op: &str) -> bool {
    calls.iter().any(|c| {
        c.first().map(String::as_str) == Some(service) && c.get(1).map(String::as_str) == Some(op)
    })
}

#[test]
fn root_runbook_exp008_passes_fails_without_failover_and_stops_fis_on_ctrl_c() {
    let lab = Lab::up();
    lab.settled();

    let (runs, dir) = runs_with_standins(&lab, &[]);
    let pass = runs.run(SCRIPT, "t8-pass", ARGS);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "RDS failover completed within 120 s",
        "pods rescheduled to healthy AZs within 180 s",
        "error rate spike < 5%",
        "error rate elevated < 90 s",
        "Stripe webhook endpoint operational throughout",
        "FIS experiment ran to completion (not stopped by its alarm)",
        "fault 'fis' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    let made = calls(&dir);
    for (service, op) in [
        ("fis", "create-experiment-template"),
        ("fis", "start-experiment"),
        ("fis", "get-experiment"),
        ("rds", "describe-events"),
        ("fis", "delete-experiment-template"),
    ] {
        assert!(
            has_call(&made, service, op),
            "no aws {service} {op} in {made:#?}"
        );
    }
    assert!(!has_call(&made, "fis", "stop-experiment"), "{made:#?}");
    // The template went to AWS as a file:// argument holding the run's values.
    let create = made
        .iter()
        .find(|c| c.get(1).map(String::as_str) == Some("create-experiment-template"))
        .unwrap();
    assert!(
        create.iter().any(|a| a.starts_with("file://")),
        "{create:?}"
    );
    assert!(runs.row("t8-pass").contains("| EXP-008 | Staging | PASS |"));

    // RDS never fails over: FAIL, the failover check named.
    let (runs, _dir) = runs_with_standins(&lab, &[("AWS_STANDIN_FAILOVER_SECONDS", "none")]);
    let fail = runs.run(SCRIPT, "t8-nofailover", ARGS);
    fail.expect("FAIL");
    assert_eq!(fail.code, Some(1));
    assert!(
        fail.failed()
            .contains(&"RDS failover completed within 120 s".to_owned()),
        "{:?}",
        fail.failed()
    );

    // Ctrl-C while the experiment runs (it would run 60 s): stopped, template deleted.
    let (runs, dir) = runs_with_standins(&lab, &[("AWS_STANDIN_RUN_SECONDS", "60")]);
    let stopped = runs.interrupt(SCRIPT, "t8-ctrlc", ARGS, || {
        runs.timeline("t8-ctrlc").contains("mark\tfis-started")
    });
    assert_eq!(stopped.status("fault 'fis' removed (verified)"), "pass");
    let made = calls(&dir);
    assert!(has_call(&made, "fis", "stop-experiment"), "{made:#?}");
    assert!(
        has_call(&made, "fis", "delete-experiment-template"),
        "{made:#?}"
    );
}
