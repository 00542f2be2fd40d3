//! What a person sees (issue 14): the text summary of a real run of every tool, whose
//! figures must be the JSON report's (each tool's run is made with `--output json`, and
//! the same report is rendered with `TOOL summary FILE`, the renderer a text run uses);
//! logs without repeated fields; `-q`; `--stop` of a run id that never ran.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::time::Duration;

use chaos_tests::kube_lab::KubeLab;
use common::netlab::Lab;
use serde_json::Value;

/// A figure of a sentence: its value, its decimals, and the word after it (its unit).
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    value: f64,
    decimals: i32,
    unit: String,
}

/// Every figure of `text`, in order: `1,204 packets`, `-15.691 points`, `+0.003`,
/// `30.0%`, `0.31 ms`. Addresses (`198.51.100.2:8080`), clock times and digits inside
/// names (`product-service-7d9c`) are not figures.
fn figures(text: &str) -> Vec<Figure> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let before = |k: usize| (i >= k).then(|| chars[i - k]);
        let starts = chars[i].is_ascii_digit()
            && !before(1).is_some_and(|c| c.is_alphanumeric() || c == '.' || c == ':')
            && !(before(1) == Some('-') && before(2).is_some_and(char::is_alphanumeric));
        if !starts {
            i += 1;
            continue;
        }
        let sign = if before(1) == Some('-') { -1.0 } else { 1.0 };
        let mut digits = String::new();
        while i < chars.len()
            && (chars[i].is_ascii_digit()
                || chars[i] == '.'
                || chars[i] == ':'
                || (chars[i] == ',' && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
        {
            if chars[i] != ',' {
                digits.push(chars[i]);
            }
            i += 1;
        }
        let digits = digits.trim_end_matches(['.', ':']);
        let glued_to_a_word = chars.get(i).is_some_and(|c| c.is_alphabetic());
        if digits.matches('.').count() > 1 || digits.contains(':') || glued_to_a_word {
            continue;
        }
        let decimals = digits.split_once('.').map_or(0, |(_, f)| f.len() as i32);
        let rest: String = chars[i..].iter().collect();
        let unit = if rest.starts_with('%') {
            "%".to_owned()
        } else {
            rest.trim_start()
                .split(|c: char| c.is_whitespace() || ",);:".contains(c))
                .next()
                .unwrap_or("")
                .to_owned()
        };
        out.push(Figure {
            value: sign * digits.parse::<f64>().unwrap(),
            decimals,
            unit,
        });
    }
    out
}

/// The figure says `expected` as rounded to its decimals (a duration in ms or s:
/// `expected` is in ms and converted when the figure is in seconds).
fn assert_says(figure: &Figure, expected: f64, what: &str, line: &str) {
    let expected = if figure.unit == "s" {
        expected / 1000.0
    } else {
        expected
    };
    let tolerance = 0.5 * 10f64.powi(-figure.decimals) + 1e-9;
    assert!(
        (figure.value - expected).abs() <= tolerance,
        "{what}: the sentence says {} {}, the report {expected}\n{line}",
        figure.value,
        figure.unit
    );
}

/// `TOOL summary FILE` of `report`.
fn summary_of(tool: &str, report: &Value) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.json");
    std::fs::write(&file, report.to_string()).unwrap();
    let out = common::run(
        Command::new(common::bin(tool))
            .arg("summary")
            .arg(&file)
            .env("NO_COLOR", "1"),
    );
    assert!(out.status.success(), "{tool} summary: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn line_starting<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .map(str::trim_start)
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{text}"))
}

fn f64_at(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {report:#}"))
}

fn phase_ms(report: &Value, name: &str) -> f64 {
    report["phases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["durationMs"].as_f64())
        .unwrap_or_else(|| panic!("no {name} phase in {report:#}"))
}

fn state_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn cpu_hog_sentence_says_the_report_s_figures() {
    let state = state_dir();
    let run = |output: &str| {
        common::run(
            Command::new(common::bin("cpu-hog"))
                .args(["-c", "30", "-d", "2", "-y", "--output", output])
                .env("CHAOS_STATE_DIR", state.path())
                .env("NO_COLOR", "1"),
        )
    };
    let out = run("json");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = summary_of("cpu-hog", &report);
    assert!(
        text.starts_with(&format!(
            "cpu-hog run {}: ok\n",
            report["runId"].as_str().unwrap()
        )),
        "{text}"
    );
    let line = line_starting(&text, "held ");
    let f = figures(line);
    assert_eq!(f.len(), 6, "{f:?}\n{line}");
    let o = &report["observations"];
    assert_says(&f[0], f64_at(o, "/achievedCpuPercent"), "achieved", line);
    assert_says(&f[1], f64_at(o, "/observedMs"), "observed", line);
    let pid = report["targets"][0]["name"].as_str().unwrap();
    assert_eq!(pid, format!("pid {} (this machine)", f[2].value), "{line}");
    assert_says(&f[3], f64_at(o, "/requestedCpuPercent"), "asked", line);
    assert_says(&f[4], f64_at(o, "/errorPercentPoints"), "error", line);
    assert_says(&f[5], f64_at(&report, "/revert/durationMs"), "revert", line);
    // A text run prints the same sentence (the same renderer, from its own report).
    let text = String::from_utf8(run("text").stdout).unwrap();
    let line = line_starting(&text, "held ");
    assert!(
        line.contains("of one CPU for") && line.contains("; reverted in"),
        "{text}"
    );
}

#[test]
fn memory_leak_sentence_says_the_report_s_figures() {
    let state = state_dir();
    let out = common::run(
        Command::new(common::bin("memory-leak"))
            .args([
                "-m",
                "32",
                "-r",
                "1",
                "--hold-seconds",
                "1",
                "-y",
                "--output",
                "json",
            ])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = summary_of("memory-leak", &report);
    let line = line_starting(&text, "grew allocator pid ");
    let f = figures(line);
    let o = &report["observations"];
    assert_eq!(f.len(), 8, "{f:?}\n{line}");
    assert_says(&f[0], f64_at(o, "/allocatorPid"), "pid", line);
    assert_says(&f[1], f64_at(o, "/peakResidentMib"), "peak", line);
    assert_says(&f[2], f64_at(o, "/achievedRateMibPerSecond"), "rate", line);
    assert_says(&f[3], f64_at(o, "/targetMib"), "target", line);
    assert_says(&f[4], f64_at(o, "/rateMibPerSecond"), "asked rate", line);
    assert_says(&f[5], f64_at(o, "/rateErrorPercent"), "rate error", line);
    assert_says(&f[6], phase_ms(&report, "observe"), "held", line);
    assert_says(
        &f[7],
        f64_at(&report, "/revert/durationMs"),
        "release",
        line,
    );
    let line = line_starting(&text, "the cgroup's usage peaked at ");
    assert_says(
        &figures(line)[0],
        f64_at(o, "/peakCgroupUsageMib"),
        "cgroup peak",
        line,
    );
}

#[test]
fn root_net_partition_sentence_says_the_report_s_figures() {
    common::require_root("network namespaces and nftables");
    let mut lab = Lab::new("su");
    let client = lab.namespace("c");
    let server = lab.namespace("s");
    let (_, server_ip) = lab.link(&client, &server);
    let _echo = lab.tcp_echo(&server, SocketAddr::new(server_ip, 8080));
    let state = state_dir();
    let (ip, probe) = (server_ip.to_string(), format!("{server_ip}:8080"));
    let out = common::run(
        lab.command(&client, common::bin("net-partition"))
            .args([
                "-H",
                &ip,
                "-p",
                "8080",
                "--protocol",
                "tcp",
                "--bidirectional",
            ])
            .args(["--probe", &probe, "-d", "3", "-y", "--output", "json"])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let text = summary_of("net-partition", &report);
    let line = line_starting(&text, "cut ");
    assert!(
        line.starts_with(&format!("cut {server_ip}:8080 (tcp) for ")),
        "{line}"
    );
    let f = figures(line);
    let o = &report["observations"];
    assert_says(&f[0], phase_ms(&report, "observe"), "held", line);
    assert_says(&f[1], f64_at(o, "/egressPackets"), "out", line);
    assert!(f64_at(o, "/egressPackets") > 0.0, "the probes' SYNs: {o:#}");
    assert_says(&f[2], f64_at(o, "/ingressPackets"), "in", line);
    assert_says(&f[3], f64_at(&report, "/revert/durationMs"), "revert", line);
    let line = line_starting(&text, "probe ");
    let f = figures(line);
    assert_says(&f[0], f64_at(o, "/probe/before/connectMs"), "before", line);
    assert_says(&f[1], f64_at(o, "/probe/duringFailed"), "failed", line);
    let during = o["probe"]["during"].as_array().unwrap().len() as f64;
    assert_says(&f[2], during, "probes", line);
    let after = f64_at(&report, "/revert/details/probeAfter/result/connectMs");
    assert_says(&f[3], after, "after", line);
}

#[test]
fn latency_injector_sentence_says_the_report_s_figures() {
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
        common::injector::Injector::explicit(upstream_addr, &["-l", "20ms", "-d", "3"]);
    for _ in 0..3 {
        let mut stream = std::net::TcpStream::connect(listen).unwrap();
        common::netlab::echo_roundtrip(&mut stream, b"ping", Duration::from_secs(5)).unwrap();
    }
    let (code, report, stderr) = injector.finish();
    assert_eq!(code, 0, "{stderr}");
    let text = summary_of("latency-injector", &report);
    let line = line_starting(&text, "delayed ");
    let o = &report["observations"];
    let f = figures(line);
    assert_says(&f[0], f64_at(o, "/chunksDelayed"), "chunks", line);
    assert_says(
        &f[1],
        f64_at(o, "/connectionsDelayed"),
        "delayed connections",
        line,
    );
    assert_says(&f[2], f64_at(o, "/connections"), "connections", line);
    assert_says(&f[3], 20.0, "latency", line);
    assert_says(&f[4], f64_at(o, "/appliedDelay/p50Ms"), "p50", line);
    assert_says(&f[5], f64_at(o, "/appliedDelay/p99Ms"), "p99", line);
    let tail: Vec<&Figure> = f.iter().rev().take(2).collect();
    assert_says(tail[1], phase_ms(&report, "observe"), "held", line);
    assert_says(
        tail[0],
        f64_at(&report, "/revert/durationMs"),
        "revert",
        line,
    );
    assert!(
        line.contains(&format!("through {listen} to {upstream_addr}")),
        "{line}"
    );
}

#[test]
fn pod_killer_sentence_says_the_report_s_figures() {
    let lab = KubeLab::lomash_wood().unwrap();
    let config = lab.kubeconfig.to_string_lossy().into_owned();
    let (code, report, stderr) = common::run_json(
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
            "--expect-recovery-within",
            "30s",
            "-y",
            "--output",
            "json",
        ],
    );
    assert_eq!(code, 0, "{stderr}\n{report:#}");
    let text = summary_of("pod-killer", &report);
    let kill = &report["observations"]["kills"][0];
    let line = line_starting(&text, "killed ");
    let at = &kill["requestedAt"].as_str().unwrap()[11..19];
    assert!(
        line.starts_with(&format!(
            "killed {} at {at} UTC; replacement Ready after ",
            kill["pod"].as_str().unwrap()
        )),
        "{line}"
    );
    assert!(line.ends_with("(limit 30 s: pass)"), "{line}");
    let f = figures(line.split(" UTC").nth(1).unwrap());
    assert_says(&f[0], f64_at(kill, "/replacementReadyMs"), "Ready", line);
    assert_says(&f[1], f64_at(kill, "/recoveredMs"), "whole", line);
    assert_says(&f[2], 30_000.0, "limit", line);
    assert!(line.contains("; deployment whole after "), "{line}");
    let line = line_starting(&text, "1 of 1 kills recovered; the slowest in ");
    let slowest = f64_at(&report, "/observations/slowestRecoveryMs");
    assert_says(&figures(line)[2], slowest, "slowest", line);
}

#[test]
fn a_live_run_logs_the_run_id_once_and_no_fields_on_every_line() {
    let state = state_dir();
    let out = common::run(
        Command::new(common::bin("cpu-hog"))
            .args([
                "-c", "10", "-d", "1", "-y", "-v", "--run-id", "fields-1", "--output", "json",
            ])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.lines().next().unwrap().contains("run fields-1"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("fields-1").count(), 1, "{stderr}");
    for line in stderr.lines() {
        assert!(
            !line.contains("}:") && !line.contains("run_id="),
            "a span's fields on a log line: {line}\n{stderr}"
        );
    }
    assert!(stderr.contains("apply: started"), "{stderr}");
}

#[test]
fn quiet_live_runs_print_only_warnings_and_errors() {
    let state = state_dir();
    for tool_args in [
        &["cpu-hog", "-c", "10", "-d", "1"][..],
        &["memory-leak", "-m", "8", "-r", "1", "--hold-seconds", "0.5"],
    ] {
        let out = common::run(
            Command::new(common::bin(tool_args[0]))
                .args(&tool_args[1..])
                .args(["-y", "-q", "--output", "json"])
                .env("CHAOS_STATE_DIR", state.path()),
        );
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr
                .lines()
                .all(|l| l.contains("WARN") || l.contains("ERROR")),
            "{tool_args:?} -q:\n{stderr}"
        );
    }
}

/// `-q` for the proxy and for pod-killer (a kill in the Lomash Wood API test server):
/// stderr has only warnings and errors, and the run still reports ok.
#[test]
fn quiet_proxy_and_pod_killer_runs_print_only_warnings_and_errors() {
    let lab = KubeLab::lomash_wood().unwrap();
    let config = lab.kubeconfig.to_string_lossy().into_owned();
    let state = state_dir();
    let upstream = TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = format!("127.0.0.1:{}", common::free_port());
    let upstream = upstream.local_addr().unwrap().to_string();
    let runs: [&[&str]; 2] = [
        &[
            "latency-injector",
            "--listen",
            &listen,
            "--upstream",
            &upstream,
            "-d",
            "1",
        ],
        &[
            "pod-killer",
            "--kubeconfig",
            &config,
            "--deployment",
            "product-service",
            "-c",
            "1",
            "--delay",
            "0",
        ],
    ];
    for tool_args in runs {
        let out = common::run(
            Command::new(common::bin(tool_args[0]))
                .args(&tool_args[1..])
                .args(["-y", "-q", "--output", "json"])
                .env("CHAOS_STATE_DIR", state.path()),
        );
        assert_eq!(out.status.code(), Some(0), "{tool_args:?}: {out:?}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["result"], "ok", "{report:#}");
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(
            stderr
                .lines()
                .all(|l| l.contains("WARN") || l.contains("ERROR")),
            "{tool_args:?} -q:\n{stderr}"
        );
    }
}

#[test]
fn stop_tells_an_ended_run_from_one_that_never_ran() {
    let state = state_dir();
    let stop = |id: &str| {
        common::run(
            Command::new(common::bin("cpu-hog"))
                .args(["--stop", id, "--output", "json"])
                .env("CHAOS_STATE_DIR", state.path()),
        )
    };
    let out = common::run(
        Command::new(common::bin("cpu-hog"))
            .args([
                "-c", "10", "-d", "1", "-y", "--run-id", "ended-1", "--output", "json",
            ])
            .env("CHAOS_STATE_DIR", state.path()),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let ended = stop("ended-1");
    assert_eq!(ended.status.code(), Some(0), "{ended:?}");
    let report: Value = serde_json::from_slice(&ended.stdout).unwrap();
    common::assert_valid_report(&report);
    assert_eq!(report["result"], "ok");
    let text = summary_of("cpu-hog", &report);
    assert!(text.contains("already ended; nothing to stop"), "{text}");
    let never = stop("ended-2");
    assert_eq!(never.status.code(), Some(2), "{never:?}");
    let report: Value = serde_json::from_slice(&never.stdout).unwrap();
    common::assert_valid_report(&report);
    assert_eq!(report["result"], "bad-input");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("no cpu-hog run ended-2 is running, and none ended here"),
        "{message}"
    );
}

#[test]
fn the_namespace_follows_the_flag_the_environment_and_the_kubeconfig_context() {
    let lab = KubeLab::lomash_wood().unwrap();
    let restricted = lab.dir.join("kubeconfig-restricted");
    lab.server
        .write_kubeconfig(&restricted, "payments-restricted")
        .unwrap();
    let dry = |config: &std::path::Path, args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(common::bin("pod-killer"));
        cmd.arg("--kubeconfig")
            .arg(config)
            .args(args)
            .args(["--dry-run", "--output", "json"]);
        cmd.env_remove("CHAOS_NAMESPACE");
        if let Some(ns) = env {
            cmd.env("CHAOS_NAMESPACE", ns);
        }
        let out = common::run(&mut cmd);
        let report: Value =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
        common::assert_valid_report(&report);
        (out.status.code(), report)
    };
    // The context's namespace: ledger lives only in payments-restricted.
    let (code, report) = dry(&restricted, &["--deployment", "ledger"], None);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["parameters"]["namespace"], "payments-restricted");
    // CHAOS_NAMESPACE beats the context; -n beats both.
    let (code, report) = dry(
        &restricted,
        &["--deployment", "auth-service"],
        Some("lomash-wood"),
    );
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["parameters"]["namespace"], "lomash-wood");
    let (code, _) = dry(
        &restricted,
        &["-n", "payments-restricted", "--deployment", "ledger"],
        Some("lomash-wood"),
    );
    assert_eq!(code, Some(0));
    // A namespace that does not exist says so.
    let (code, report) = dry(
        &lab.kubeconfig,
        &["-n", "no-such-namespace", "--deployment", "x"],
        None,
    );
    assert_eq!(code, Some(2), "{report:#}");
    let message = report["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("namespace no-such-namespace does not exist"),
        "{message}"
    );
}

#[test]
fn figures_reads_sentences_as_a_person_does() {
    let f = figures(
        "held 30.0% of one CPU for 2.0 s on pid 4242 (asked 30%, off by -0.003 points); 1,204 packets; +0.4%; \
         cut 198.51.100.2:8080 at 10:04:05 on product-service-7d9c-abc12 v4 for 3.0 s: done",
    );
    let values: Vec<f64> = f.iter().map(|x| x.value).collect();
    assert_eq!(values, [30.0, 2.0, 4242.0, 30.0, -0.003, 1204.0, 0.4, 3.0]);
    assert_eq!(f[1].unit, "s");
    assert_eq!(f[7].unit, "s", "a unit before a colon");
    assert_eq!(f[0].unit, "%");
    assert_eq!(f[4].decimals, 3);
}
