use clap::Parser;

use super::*;

#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    remote: RemoteArgs,
}

fn parse(args: &[&str]) -> RemoteArgs {
    match Cli::try_parse_from(std::iter::once("tool").chain(args.iter().copied())) {
        Ok(cli) => cli.remote,
        Err(e) => panic!("{args:?}: {e}"),
    }
}

#[test]
fn the_originals_forms_select_pods() -> Result<()> {
    let cases: &[(&[&str], Selection)] = &[
        (
            &["-s", "product-service"],
            Selection::Service("product-service".into()),
        ),
        (
            &[
                "--pod=pod/product-service-7d9c-abc12",
                "--pod",
                "x-1",
                "--pod",
                "pod/x-1",
            ],
            Selection::Pods(vec!["product-service-7d9c-abc12".into(), "x-1".into()]),
        ),
        (
            &["-l", "app=redis,tier in (cache)"],
            Selection::Selector("app=redis,tier in (cache)".into()),
        ),
        (
            &["--deployment=order-payment-service"],
            Selection::Deployment("order-payment-service".into()),
        ),
    ];
    for (args, want) in cases {
        let remote = parse(args);
        assert!(remote.selects_pods(), "{args:?}");
        assert_eq!(remote.selection()?.as_ref(), Some(want), "{args:?}");
    }
    assert_eq!(parse(&[]).selection()?, None);
    Ok(())
}

#[test]
fn bad_selections_are_bad_input() {
    for args in [
        &["-s", "Product"][..],
        &["-s", "a", "--pod", "b"],
        &["--pod", "pod/"],
        &["--pod", "deployment/x"],
        &["--pod", "a_b"],
        &["-l", "app in"],
        &["--deployment=-x"],
    ] {
        match parse(args).selection() {
            Err(e) => assert_eq!(e.exit(), crate::Exit::BadInput, "{args:?}"),
            Ok(s) => panic!("{args:?} gave {s:?}"),
        }
    }
}

#[test]
fn settings_apply_defaults_and_validate() -> Result<()> {
    let s = parse(&["-s", "a"]).settings(Selection::Service("a".into()), "0.1.0+abc")?;
    assert_eq!(s.namespace, DEFAULT_NAMESPACE);
    assert_eq!(s.remote_dir, "/tmp");
    assert_eq!(s.max_parallel, DEFAULT_MAX_PARALLEL);
    assert_eq!(s.image, "lomash-wood/chaos-tools:0.1.0");
    assert_eq!(s.freeze_namespaces, ["lomash-wood"]);
    let s = parse(&[
        "-s",
        "a",
        "-n",
        "shop",
        "--freeze-namespace",
        "platform",
        "--max-pods",
        "2",
        "--image",
        "reg.example/ct:1",
    ])
    .settings(Selection::Service("a".into()), "0.1.0")?;
    assert_eq!(s.freeze_namespaces, ["shop", "platform"]);
    assert_eq!(
        (s.max_pods, s.image.as_str()),
        (Some(2), "reg.example/ct:1")
    );
    for args in [
        &["-n", "Shop"][..],
        &["--remote-dir", "tmp"],
        &["--remote-dir", "/tmp/../etc"],
        &["--remote-dir", "/tmp dir"],
        &["--container", "App"],
        &["--freeze-namespace", "x_y"],
        &["--image", "has space"],
        &["--kubeconfig", "/nonexistent/kubeconfig"],
    ] {
        let e = parse(args)
            .settings(Selection::Service("a".into()), "0.1.0")
            .err();
        assert!(
            e.as_ref()
                .is_some_and(|e| e.exit() == crate::Exit::BadInput),
            "{args:?}: {e:?}"
        );
    }
    Ok(())
}

#[test]
fn remote_only_flags_in_local_mode_are_named() {
    assert!(parse(&[]).check_local("cpu-hog").is_ok());
    let e = parse(&["-n", "x", "--container", "app"])
        .check_local("cpu-hog")
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(e.contains("--namespace, --container"), "{e}");
    assert!(e.contains("--pod"), "{e}");
}

#[test]
fn numbers_are_bounded_by_clap() {
    for args in [
        &["--max-pods", "0"][..],
        &["--max-parallel", "0"],
        &["--max-parallel", "101"],
    ] {
        assert!(
            Cli::try_parse_from(std::iter::once("tool").chain(args.iter().copied())).is_err(),
            "{args:?}"
        );
    }
}

#[test]
fn the_namespace_follows_the_kubeconfig_context_unless_n_names_one() -> Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    std::fs::write(
        &config,
        "apiVersion: v1\nkind: Config\ncurrent-context: staging\ncontexts:\n\
         - name: staging\n  context: {cluster: c, user: u, namespace: lomash-staging}\n\
         clusters:\n- name: c\n  cluster: {server: \"https://127.0.0.1:6443\"}\n\
         users:\n- name: u\n  user: {}\n",
    )
    .unwrap();
    let path = config.to_string_lossy().into_owned();
    assert!(
        std::env::var_os(crate::kube::namespace::ENV).is_none(),
        "unset CHAOS_NAMESPACE to run this test: it checks what comes after it"
    );
    let s = parse(&["-s", "a", "--kubeconfig", &path])
        .settings(Selection::Service("a".into()), "0.1.0")?;
    assert_eq!(s.namespace, "lomash-staging");
    assert_eq!(s.freeze_namespaces, ["lomash-staging"]);
    let s = parse(&["-s", "a", "--kubeconfig", &path, "-n", "shop"])
        .settings(Selection::Service("a".into()), "0.1.0")?;
    assert_eq!(s.namespace, "shop");
    Ok(())
}
