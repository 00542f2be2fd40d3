//! The lab (`scripts/lab.sh up`, docs/lab.md) for remote-mode tests, and what they measure
//! from outside the tools: a container's CPU use from its cgroup, processes and files in a
//! pod through kubectl, a tool running in the background whose log lines are collected.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::super::common;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub use common::lab::Lab;

impl Lab {
    /// `scripts/lab.sh up EXTRA` in a directory of this test process, with dist/ current
    /// (the binaries remote mode copies into the pods).
    pub fn up(extra: &[&str]) -> Lab {
        common::require_root("the lab: network namespaces, cgroups, nftables");
        super::ensure_dist();
        Lab::start("remote-test", extra)
    }

    /// Running, not terminating pods labelled app=`app`, sorted.
    pub fn pods(&self, app: &str) -> Vec<String> {
        let list = self.json(&["get", "pods", "-l", &format!("app={app}")]);
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .filter(|p| p["status"]["phase"] == "Running")
            .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// `kubectl exec POD -c app -- ARGV`: (exit code, stdout).
    pub fn exec(&self, pod: &str, argv: &[&str]) -> (i32, String) {
        let mut all = vec!["exec", pod, "-c", "app", "--"];
        all.extend(argv);
        let out = self.kubectl(&all);
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// The container's cgroup directory for `controller` (`lab.sh cgroup`).
    pub fn cgroup(&self, pod: &str, controller: &str) -> PathBuf {
        let out = Command::new(root().join("scripts/lab.sh"))
            .args(["cgroup", pod, "app"])
            .env("CHAOS_LAB_DIR", &self.dir)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lab.sh cgroup {pod}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        text.lines()
            .find_map(|l| {
                let (c, path) = l.split_once(' ')?;
                c.split(',')
                    .any(|c| c == controller)
                    .then(|| PathBuf::from(path.trim()))
            })
            .unwrap_or_else(|| panic!("no {controller} cgroup for {pod} in:\n{text}"))
    }

    /// The container's CPU use over `window`, in percent of one CPU (cpuacct.usage or
    /// cpu.stat usage_usec).
    pub fn cpu_percent(&self, pod: &str, window: Duration) -> f64 {
        let dir = self.cgroup(pod, "cpuacct");
        let read = || -> f64 {
            if let Ok(ns) = std::fs::read_to_string(dir.join("cpuacct.usage")) {
                return ns.trim().parse::<f64>().unwrap() / 1e9;
            }
            let stat = std::fs::read_to_string(dir.join("cpu.stat")).unwrap();
            let usec = stat
                .lines()
                .find_map(|l| l.strip_prefix("usage_usec "))
                .unwrap();
            usec.trim().parse::<f64>().unwrap() / 1e6
        };
        let (a, t0) = (read(), Instant::now());
        std::thread::sleep(window);
        let (b, t1) = (read(), Instant::now());
        (b - a) / (t1 - t0).as_secs_f64() * 100.0
    }

    /// Processes in the container's cgroup.
    pub fn processes(&self, pod: &str) -> usize {
        let dir = self.cgroup(pod, "cpuacct");
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap()
            .lines()
            .count()
    }

    /// Waits until `f` holds (at most `secs`), every 100 ms.
    pub fn until(&self, what: &str, secs: u64, mut f: impl FnMut() -> bool) -> Duration {
        let t0 = Instant::now();
        while !f() {
            assert!(
                t0.elapsed() < Duration::from_secs(secs),
                "{what}: not within {secs} s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        t0.elapsed()
    }
}

impl Lab {
    /// `cpu-hog --pod POD -c 50 -d 300 --run-id RUN_ID` whose operator is SIGKILLed once
    /// the pod's run applied: that run goes on in the pod (checked from its cgroup).
    pub fn orphan_cpu_hog(&self, pod: &str, run_id: &str) {
        let mut run = Running::start(
            self,
            "cpu-hog",
            &["--pod", pod, "-c", "50", "-d", "300", "--run-id", run_id],
        );
        run.wait_for("fault applied in pod", 1, 120);
        run.signal(nix::sys::signal::Signal::SIGKILL);
        std::thread::sleep(Duration::from_secs(1));
        assert!(
            self.cpu_percent(pod, Duration::from_secs(1)) > 20.0,
            "the pod's run died with the operator"
        );
    }
}

/// A tool running in the background with `--output json`; its stderr lines collected.
pub struct Running {
    pub child: Option<Child>,
    pub lines: Arc<Mutex<Vec<String>>>,
    reader: Option<JoinHandle<()>>,
}

impl Running {
    pub fn start(lab: &Lab, tool: &str, args: &[&str]) -> Running {
        let mut child = Command::new(common::bin(tool))
            .args(args)
            .args(["--output", "json", "-y"])
            .env("KUBECONFIG", &lab.kubeconfig)
            .env_remove("CHAOS_IMAGE")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Running {
            child: Some(child),
            lines,
            reader: Some(reader),
        }
    }

    pub fn log(&self) -> String {
        self.lines.lock().unwrap().join("\n")
    }

    /// Waits until `n` lines contain `needle` (at most `secs`).
    pub fn wait_for(&mut self, needle: &str, n: usize, secs: u64) -> Duration {
        let t0 = Instant::now();
        loop {
            let seen = self
                .lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.contains(needle))
                .count();
            if seen >= n {
                return t0.elapsed();
            }
            let exited = self
                .child
                .as_mut()
                .is_none_or(|c| c.try_wait().ok().flatten().is_some());
            assert!(
                t0.elapsed() < Duration::from_secs(secs) && !exited,
                "'{needle}' x{n} not logged within {secs} s:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = self.child.as_ref().unwrap().id() as i32;
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal).unwrap();
    }

    /// Waits for the end (at most `secs`): (exit code, schema-valid report, log).
    pub fn finish(mut self, secs: u64) -> (i32, Value, String) {
        let child = self.child.take().unwrap();
        let pid = child.id() as i32;
        let waiter = std::thread::spawn(move || child.wait_with_output());
        let t0 = Instant::now();
        while !waiter.is_finished() {
            if t0.elapsed() > Duration::from_secs(secs) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("pid {pid} did not end within {secs} s:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let out = waiter.join().unwrap().unwrap();
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let report: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("not one JSON report ({e}): {stdout}\n{}", self.log()));
        common::assert_valid_report(&report);
        (out.status.code().unwrap_or(-1), report, self.log())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
