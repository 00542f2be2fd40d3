use super::*;

fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("pod-killer").chain(args.iter().copied()))
}

/// A kubeconfig whose current context has `namespace` (or none), in a temporary dir.
fn kubeconfig(namespace: Option<&str>) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config");
    let ns = namespace.map_or(String::new(), |n| format!(", namespace: {n}"));
    std::fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\ncontexts:\n- name: c\n  context: {{cluster: k, user: u{ns}}}\n\
             clusters:\n- name: k\n  cluster: {{server: \"https://127.0.0.1:1\"}}\nusers:\n- name: u\n  user: {{token: t}}\n"
        ),
    )
    .unwrap();
    let path = path.to_string_lossy().into_owned();
    (dir, path)
}

#[test]
fn defaults_match_the_original_script() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, config) = kubeconfig(None);
    let cli = parse(&["--kubeconfig", &config])?;
    let s = cli.settings("run-1")?;
    assert_eq!(s.namespace, "lomash-wood");
    assert_eq!(
        (s.count, s.interval, s.grace_period),
        (3, Duration::from_secs(30), 0)
    );
    assert_eq!(
        (s.min_ready, s.recovery_timeout),
        (1, Duration::from_secs(120))
    );
    assert_eq!(s.target, TargetSpec::RandomDeployment);
    assert_eq!(default_duration(&s), Duration::from_secs(60 + 360 + 10));
    Ok(())
}

#[test]
fn runbook_and_script_forms_parse() -> Result<(), Box<dyn std::error::Error>> {
    let cli = parse(&[
        "--namespace=lomash-wood",
        "--deployment=product-service",
        "--delay=0",
    ])?;
    assert_eq!(
        cli.settings("r")?.target,
        TargetSpec::Deployment("product-service".into())
    );
    let cli = parse(&[
        "-n",
        "lomash-wood",
        "-s",
        "auth-service",
        "-i",
        "5",
        "-c",
        "2",
        "-g",
        "3",
    ])?;
    let s = cli.settings("r")?;
    assert_eq!(s.target, TargetSpec::Service("auth-service".into()));
    assert_eq!(
        (s.count, s.interval, s.grace_period),
        (2, Duration::from_secs(5), 3)
    );
    let cli = parse(&[
        "-l",
        "app=a,tier in (web)",
        "--evict",
        "--expect-recovery-within",
        "30s",
    ])?;
    let s = cli.settings("r")?;
    assert_eq!(s.method, Method::Evict);
    assert_eq!(s.expect_recovery_within, Some(Duration::from_secs(30)));
    Ok(())
}

#[test]
fn bad_values_are_rejected_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["-c", "0"], "--count"),
        (&["-c", "101"], "--count"),
        (&["-i", "0"], "--interval"),
        (&["--recovery-timeout", "0"], "--recovery-timeout"),
        (
            &["--expect-recovery-within", "0"],
            "--expect-recovery-within",
        ),
        (&["-s", "Bad_Name"], "--service"),
        (&["--deployment=-x"], "--deployment"),
        (&["-n", "UPPER"], "--namespace"),
        (&["-l", " "], "--selector"),
        (&["-l", "app in a,b"], "--selector"),
        (&["-l", "app=(x)"], "--selector"),
        (&["-l", "app=a,"], "--selector"),
        (&["--statefulset", "Redis"], "--statefulset"),
        (
            &[
                "--recovery-timeout",
                "2s",
                "--expect-recovery-within",
                "30s",
            ],
            "--recovery-timeout",
        ),
        (&["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
    ];
    for (args, flag) in cases {
        let cli = parse(args).unwrap_or_else(|e| panic!("{args:?} should parse: {e}"));
        let err = cli
            .settings("r")
            .err()
            .unwrap_or_else(|| panic!("{args:?} accepted"));
        assert!(err.to_string().contains(flag), "{args:?}: {err}");
    }
}

#[test]
fn targets_are_mutually_exclusive_and_counts_are_numbers() {
    assert!(parse(&["-s", "a", "--deployment", "b"]).is_err());
    assert!(parse(&["-s", "a", "-l", "app=a"]).is_err());
    assert!(parse(&["-c", "-1"]).is_err());
    assert!(parse(&["-g", "x"]).is_err());
}

#[test]
fn the_recovery_timeout_is_never_shorter_than_the_pass_criterion()
-> Result<(), Box<dyn std::error::Error>> {
    let s = parse(&["--expect-recovery-within", "300s"])?.settings("r")?;
    assert_eq!(
        s.recovery_timeout,
        Duration::from_secs(300),
        "the default is raised"
    );
    let s = parse(&["--expect-recovery-within", "30s"])?.settings("r")?;
    assert_eq!(s.recovery_timeout, Duration::from_secs(120));
    let s = parse(&[
        "--recovery-timeout",
        "45s",
        "--expect-recovery-within",
        "30s",
    ])?
    .settings("r")?;
    assert_eq!(
        (s.recovery_timeout, s.limit()),
        (Duration::from_secs(45), Duration::from_secs(30))
    );
    let err = parse(&[
        "--recovery-timeout",
        "2s",
        "--expect-recovery-within",
        "30s",
    ])?
    .settings("r")
    .err()
    .map(|e| e.to_string())
    .unwrap_or_default();
    assert!(
        err.contains("shorter than --expect-recovery-within 30s"),
        "{err}"
    );
    Ok(())
}

#[test]
fn namespaces_are_trimmed_and_stateful_sets_are_targets() -> Result<(), Box<dyn std::error::Error>>
{
    let s = parse(&["-n", " lomash-wood ", "--statefulset", "redis"])?.settings("r")?;
    assert_eq!(s.namespace, "lomash-wood");
    assert_eq!(s.target, TargetSpec::StatefulSet("redis".into()));
    let s = parse(&["-l", "app in (a, b),!legacy"])?.settings("r")?;
    assert_eq!(
        s.target,
        TargetSpec::Selector("app in (a, b),!legacy".into())
    );
    Ok(())
}

#[test]
fn the_kubeconfig_context_s_namespace_is_the_default() -> Result<(), Box<dyn std::error::Error>> {
    let (_dir, config) = kubeconfig(Some("lomash-staging"));
    let s = parse(&["--kubeconfig", &config])?.settings("r")?;
    assert_eq!(s.namespace, "lomash-staging");
    assert!(
        s.namespace_from.contains("context c"),
        "{}",
        s.namespace_from
    );
    let s = parse(&["--kubeconfig", &config, "-n", "lomash-wood"])?.settings("r")?;
    assert_eq!(s.namespace, "lomash-wood");
    Ok(())
}
