//! EXP-009 (regional failover, a timed guided procedure) end to end with real k6 against
//! the lab's gateway (the "failover region" URL is the lab's too) and STAND-INS for
//! `aws`, `kubectl` and `dig` (chaos-verdict/tests/fixtures/standins/: no AWS, EKS or DNS
//! change can be made from here; they record their argument vectors and answer in the
//! documented formats). The operator's answers come on stdin. PASS when every step is
//! confirmed and DNS propagates; FAIL naming the step check when the operator answers
//! "n"; FAIL naming the DNS check when DNS never propagates. One lab.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod runbook_support;

use runbook_support::{Lab, Runs, root};

const SCRIPT: &str = "exp-009-regional-failover.sh";
const WEBHOOKS: &str =
    "failover region: Stripe webhooks processed (Stripe dashboard: the test deliveries succeeded)";

fn args(lab: &Lab, batch: &str) -> Vec<String> {
    let mut a: Vec<String> = [
        "--environment",
        "staging",
        "--approved-by",
        "Test Lead",
        "--failover-url",
        &lab.base_url,
        "--dns-interval",
        "1",
        "--dns-timeout",
        "4",
        "--baseline",
        "4",
        "--recovery",
        "4",
        "--band-window",
        "1",
        "--rate",
        "20",
        "--confirm",
        WEBHOOKS,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    for set in [
        "PRIMARY_REGION=eu-west-1",
        "FAILOVER_REGION=eu-west-2",
        "GLOBAL_CLUSTER=lw-global",
        "FAILOVER_DB_CLUSTER_ARN=arn:aws:rds:eu-west-2:123456789012:cluster:lw-dr",
        "FAILOVER_CONTEXT=eks-dr",
        "HOSTED_ZONE_ID=Z123",
        "DNS_NAME=api.lomashwood.co.uk",
        "DNS_EXPECT=new-lb.eu-west-2.elb.amazonaws.com.",
    ] {
        a.extend(["--set".to_owned(), set.to_owned()]);
    }
    a.extend(["--set".to_owned(), format!("CHANGE_BATCH={batch}")]);
    a
}

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
        ("DIG_STANDIN_PROPAGATE_SECONDS".into(), "1".into()),
    ];
    for (k, v) in settings {
        runs.env.push(((*k).into(), (*v).into()));
    }
    (runs, calls)
}

const YES: &str = "y\ny\ny\ny\ny\ny\ny\ny\ny\ny\n";

#[test]
fn root_runbook_exp009_passes_and_fails_on_a_step_not_done_or_dns_not_propagated() {
    let lab = Lab::up();
    lab.settled();
    let batch = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(batch.path(), "{\"Changes\": []}").unwrap();
    let batch = batch.path().to_str().unwrap().to_owned();
    let argv = args(&lab, &batch);
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();

    let (runs, dir) = runs_with_standins(&lab, &[]);
    let pass = runs.run_input(SCRIPT, "t9-pass", &argv, YES);
    pass.expect("PASS");
    assert_eq!(pass.code, Some(0));
    for name in [
        "baseline error rate < 1%",
        "procedure and smoke test done within the RTO (1800 s)",
        "every step done and confirmed",
        "DNS fully propagated within 300 s of the Route 53 update",
        "failover region: health endpoints answer 200",
        "failover region: products served",
        "failover region: login works",
        "failover region: Stripe webhooks received",
        WEBHOOKS,
        "fault 'failover' removed (verified)",
    ] {
        assert_eq!(pass.status(name), "pass", "{name}");
    }
    let calls = std::fs::read_to_string(dir.path().join("calls.tsv")).unwrap();
    assert!(
        calls.contains("rds\tfailover-global-cluster\t--global-cluster-identifier\tlw-global\t"),
        "{calls}"
    );
    assert!(
        calls.contains(&format!("route53\tchange-resource-record-sets\t--hosted-zone-id\tZ123\t--change-batch\tfile://{batch}\t")),
        "{calls}"
    );
    assert!(runs.row("t9-pass").contains("| EXP-009 | Staging | PASS |"));

    // The operator answers "n" to the first question: that step is not done.
    let (runs, _dir) = runs_with_standins(&lab, &[]);
    let answers = format!("n\n{YES}");
    let notdone = runs.run_input(SCRIPT, "t9-notdone", &argv, &answers);
    notdone.expect("FAIL");
    assert_eq!(notdone.code, Some(1));
    assert!(
        notdone
            .failed()
            .contains(&"every step done and confirmed".to_owned()),
        "{:?}",
        notdone.failed()
    );

    // DNS never propagates: the DNS step times out after --dns-timeout.
    let (runs, _dir) = runs_with_standins(&lab, &[("DIG_STANDIN_PROPAGATE_SECONDS", "never")]);
    let nodns = runs.run_input(SCRIPT, "t9-nodns", &argv, YES);
    nodns.expect("FAIL");
    assert!(
        nodns
            .failed()
            .contains(&"DNS fully propagated within 300 s of the Route 53 update".to_owned()),
        "{:?}",
        nodns.failed()
    );
}
