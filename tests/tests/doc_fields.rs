//! The docs match the reports (issue 14): every report field path a doc names in
//! backticks (`revert.details.probeAfter.result.ok`, `parameters.namespace`, ...) is
//! looked up in real reports of the tool the doc describes (runs with the flags that
//! produce those fields: `--probe` for net-partition, a kill for pod-killer), and in a
//! run, a `--stop` and a `--cleanup` report for docs/report.md. A path that no report has
//! fails: the doc names a field that does not exist (as `probeAfter.ok` once did).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure

mod common;

use std::collections::BTreeSet;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use chaos_tests::kube_lab::KubeLab;
use common::netlab::Lab;
use serde_json::Value;

/// The report's top-level fields whose sub-fields docs name.
const ROOTS: [&str; 9] = [
    "observations",
    "parameters",
    "revert",
    "baseline",
    "targets",
    "criteria",
    "phases",
    "safety",
    "errors",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The dotted report paths named in backticks in `text` (`observations.rs`, a file, is
/// not a path).
fn paths_named(text: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    for span in text.split('`').skip(1).step_by(2) {
        let path: String = span
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '_')
            .collect();
        let path = path.trim_end_matches('.');
        let Some((root, _)) = path.split_once('.') else {
            continue;
        };
        if ROOTS.contains(&root) && !path.ends_with(".rs") {
            paths.insert(path.to_owned());
        }
    }
    paths
}

/// Whether `value` has `path` (a key present, even null; through arrays, any element).
fn has(value: &Value, path: &[&str]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return true;
    };
    match value {
        Value::Object(map) => map.get(*first).is_some_and(|v| has(v, rest)),
        Value::Array(items) => items.iter().any(|v| has(v, path)),
        _ => false,
    }
}

/// Every path `doc` names is in one of `reports`; returns how many were checked.
fn check_doc(doc: &str, reports: &[Value]) -> usize {
    let text = std::fs::read_to_string(repo().join(doc)).unwrap();
    let paths = paths_named(&text);
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| {
            let parts: Vec<&str> = p.split('.').collect();
            !reports.iter().any(|r| has(r, &parts))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "{doc} names report fields that its tool's reports do not have: {missing:?}\n\
         reports:\n{reports:#?}"
    );
    paths.len()
}

fn run_report(tool: &str, args: &[&str], state: &std::path::Path) -> Value {
    let out = common::run(
        Command::new(common::bin(tool))
            .args(args)
            .args(["--output", "json"])
            .env("CHAOS_STATE_DIR", state),
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{tool} {args:?}: no report ({e}): {out:?}"));
    common::assert_valid_report(&report);
    report
}

#[test]
fn cpu_hog_md_and_report_md_name_fields_the_reports_have() {
    let state = tempfile::tempdir().unwrap();
    let run = run_report(
        "cpu-hog",
        &["-c", "10", "-d", "1", "-y", "--run-id", "fields-2"],
        state.path(),
    );
    assert_eq!(run["result"], "ok", "{run:#}");
    assert!(check_doc("docs/cpu-hog.md", std::slice::from_ref(&run)) >= 1);
    let stop = run_report("cpu-hog", &["--stop", "fields-2"], state.path());
    let cleanup = run_report("cpu-hog", &["--cleanup"], state.path());
    assert!(check_doc("docs/report.md", &[run, stop, cleanup]) >= 5);
}

#[test]
fn memory_leak_md_names_fields_the_reports_have() {
    let state = tempfile::tempdir().unwrap();
    let run = run_report(
        "memory-leak",
        &["-m", "8", "-r", "1", "--hold-seconds", "0.5", "-y"],
        state.path(),
    );
    assert_eq!(run["result"], "ok", "{run:#}");
    assert!(check_doc("docs/memory-leak.md", &[run]) >= 1);
}

#[test]
fn root_net_partition_md_names_fields_the_reports_have() {
    common::require_root("network namespaces and nftables");
    let mut lab = Lab::new("df");
    let client = lab.namespace("c");
    let server = lab.namespace("s");
    let (_, server_ip) = lab.link(&client, &server);
    let _echo = lab.tcp_echo(&server, SocketAddr::new(server_ip, 8080));
    let state = tempfile::tempdir().unwrap();
    let (ip, probe) = (server_ip.to_string(), format!("{server_ip}:8080"));
    let out = common::run(
        lab.command(&client, common::bin("net-partition"))
            .args(["-H", &ip, "-p", "8080", "--protocol", "tcp"])
            .args(["--probe", &probe, "-d", "2", "-y", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    common::assert_valid_report(&report);
    assert!(check_doc("docs/net-partition.md", &[report]) >= 5);
}

#[test]
fn latency_injector_md_names_fields_the_reports_have() {
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in upstream.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = stream.try_clone().unwrap();
                let mut writer = stream;
                let _ = std::io::copy(&mut reader, &mut writer);
            });
        }
    });
    let (injector, listen) =
        common::injector::Injector::explicit(upstream_addr, &["-l", "10ms", "-d", "2"]);
    let mut stream = std::net::TcpStream::connect(listen).unwrap();
    common::netlab::echo_roundtrip(&mut stream, b"ping", Duration::from_secs(5)).unwrap();
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    assert!(check_doc("docs/latency-injector.md", &[report]) >= 2);
}

#[test]
fn pod_killer_md_names_fields_the_reports_have() {
    let lab = KubeLab::lomash_wood().unwrap();
    let state = tempfile::tempdir().unwrap();
    let config = lab.kubeconfig.to_string_lossy().into_owned();
    let report = run_report(
        "pod-killer",
        &[
            "--kubeconfig",
            &config,
            "--deployment",
            "product-service",
            "-c",
            "1",
            "--delay",
            "0",
            "-y",
        ],
        state.path(),
    );
    assert_eq!(report["result"], "ok", "{report:#}");
    assert!(check_doc("docs/pod-killer.md", &[report]) >= 3);
}

#[test]
fn the_reader_finds_paths_and_the_lookup_misses_wrong_ones() {
    let text = "see `revert.details.probeAfter.result.ok`, `observations.rs`, \
                `parameters.namespace` (and `observations.kills[].pod`), `--probe`";
    let paths: Vec<String> = paths_named(text).into_iter().collect();
    assert_eq!(
        paths,
        [
            "observations.kills",
            "parameters.namespace",
            "revert.details.probeAfter.result.ok"
        ]
    );
    let report = serde_json::json!({
        "revert": {"details": {"probeAfter": {"result": {"ok": true}}}},
        "observations": {"kills": [{"pod": "a"}], "oom": null}
    });
    assert!(has(
        &report,
        &["revert", "details", "probeAfter", "result", "ok"]
    ));
    assert!(!has(&report, &["revert", "details", "probeAfter", "ok"]));
    assert!(has(&report, &["observations", "kills", "pod"]));
    assert!(has(&report, &["observations", "oom"]));
    assert!(!has(&report, &["observations", "kills", "node"]));
}
