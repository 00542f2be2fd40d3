//! The command line: help, bad flags and values (exit 2, one stderr line), and an
//! unreachable API server (a clear error naming the server and the kubeconfig).

use std::process::{Command, Output};

fn pod_killer(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pod-killer"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap_or_else(|e| panic!("cannot run pod-killer: {e}"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn help_lists_the_original_and_runbook_flags() {
    let out = pod_killer(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--namespace",
        "--service",
        "--deployment",
        "--selector",
        "--count",
        "--interval",
        "--grace-period",
        "--delay",
        "--evict",
        "--min-ready",
        "--recovery-timeout",
        "--expect-recovery-within",
        "--kubeconfig",
        "--context",
        "--dry-run",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn unknown_flag_exits_2_with_one_line() {
    let out = pod_killer(&["--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr(&out).trim().lines().count(), 1, "{}", stderr(&out));
}

#[test]
fn bad_values_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["-c", "0"], "--count"),
        (&["-i", "0"], "--interval"),
        (&["-s", "Not_A_Name"], "--service"),
        (&["-s", "a", "--deployment", "b"], "--deployment"),
        (&["--recovery-timeout", "soon"], "--recovery-timeout"),
        (&["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
        (&["-d", "0"], "--duration"),
        (&["-l", "app in a,b"], "--selector"),
        (
            &[
                "--recovery-timeout",
                "2s",
                "--expect-recovery-within",
                "30s",
            ],
            "--expect-recovery-within 30s",
        ),
    ];
    for (args, flag) in cases {
        let out = pod_killer(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(flag), "{args:?}: {}", stderr(&out));
        assert_eq!(
            stderr(&out).trim().lines().count(),
            1,
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn an_unreachable_api_server_is_named_with_the_kubeconfig() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let kubeconfig = dir.path().join("kubeconfig");
    let text = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\n\
                contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user: {}\n";
    std::fs::write(&kubeconfig, text).unwrap_or_else(|e| panic!("{e}"));
    let path = kubeconfig.to_string_lossy().into_owned();
    let out = pod_killer(&[
        "--kubeconfig",
        &path,
        "--deployment",
        "product-service",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("cannot reach the Kubernetes API at http://127.0.0.1:1"),
        "{message}"
    );
    assert!(message.contains(&path), "{message}");
}
