//! A running latency-injector for the tests: started with `-y --output json`, its stdout
//! and stderr collected as they come (so a test can wait on a log line: a real "ready"
//! signal, never a sleep), stopped with SIGTERM, killed if the test fails first.
// Test support: a failed step is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

pub const TOOL: &str = "latency-injector";
/// The line apply logs once the proxy listens.
pub const LISTENING: &str = "proxy listening on";
/// The line apply logs once a transparent redirect is in place.
pub const REDIRECTING: &str = "in place: redirecting into port";

type Buffer = Arc<Mutex<Vec<u8>>>;

pub struct Injector {
    child: Option<Child>,
    stdout: Buffer,
    stderr: Buffer,
    readers: Vec<JoinHandle<()>>,
}

fn collect(mut from: impl Read + Send + 'static, into: Buffer) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = from.read(&mut chunk) {
            if n == 0 {
                break;
            }
            into.lock().unwrap().extend_from_slice(&chunk[..n]);
        }
    })
}

impl Injector {
    /// Starts `cmd` (the tool, possibly behind `ip netns exec`) with JSON output.
    pub fn spawn(cmd: &mut Command) -> Injector {
        let mut child = cmd
            .args(["-y", "--output", "json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {TOOL}: {e}"));
        let (stdout, stderr) = (Buffer::default(), Buffer::default());
        let readers = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Injector {
            child: Some(child),
            stdout,
            stderr,
            readers,
        }
    }

    /// The tool with `args`, in this namespace.
    pub fn start(args: &[&str]) -> Injector {
        Injector::spawn(Command::new(super::bin(TOOL)).args(args))
    }

    /// An explicit proxy on a free loopback port in front of `upstream` (60 s unless
    /// `extra` says otherwise); returns once it listens.
    /// A port picked free may be taken by a parallel test before the tool binds it: then
    /// it tries another.
    pub fn explicit(upstream: SocketAddr, extra: &[&str]) -> (Injector, SocketAddr) {
        for _ in 0..5 {
            let listen = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
            let (l, u) = (listen.to_string(), upstream.to_string());
            let mut args = vec!["--listen", &l, "--upstream", &u];
            if !extra.iter().any(|a| ["-d", "--duration"].contains(a)) {
                args.extend(["-d", "60"]);
            }
            args.extend(extra);
            let mut injector = Injector::start(&args);
            if injector.logs_before_exit(LISTENING, Duration::from_secs(20)) {
                return (injector, listen);
            }
            assert!(
                injector.stderr().contains("in use"),
                "{TOOL} exited:\n{}",
                injector.stderr()
            );
        }
        panic!("no free port for {TOOL} in 5 tries");
    }

    /// Waits until stderr has `needle` (true) or the tool exits (false); panics after
    /// `timeout`.
    pub fn logs_before_exit(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if self.stderr().contains(needle) {
                return true;
            }
            if self.exited() {
                return self.stderr().contains(needle);
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{TOOL} did not log {needle:?} within {timeout:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    fn exited(&mut self) -> bool {
        self.child
            .as_mut()
            .is_none_or(|c| c.try_wait().ok().flatten().is_some())
    }

    /// Waits until stderr has a line containing `needle`; panics with what it said if
    /// the tool exits first or `timeout` passes.
    pub fn wait_log(&mut self, needle: &str, timeout: Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while !self.stderr().contains(needle) {
            let exited = self.exited();
            assert!(
                !exited && std::time::Instant::now() < deadline,
                "{TOOL} did not log {needle:?} within {timeout:?} (exited: {exited}):\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> Pid {
        let id = self.child.as_ref().map_or(0, Child::id);
        Pid::from_raw(i32::try_from(id).unwrap())
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap_or_else(|e| panic!("kill {signal}: {e}"));
    }

    /// SIGTERM, then [`Injector::finish`].
    pub fn stop(self) -> (i32, Value, String) {
        self.signal(Signal::SIGTERM);
        self.finish()
    }

    /// Waits (at most 60 s) for the tool to exit; returns its exit code, its report
    /// (checked against the schema) and its stderr.
    pub fn finish(mut self) -> (i32, Value, String) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.exited() {
            assert!(
                std::time::Instant::now() < deadline,
                "{TOOL} did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let status = self.child.take().unwrap().wait().unwrap();
        for reader in self.readers.drain(..) {
            reader.join().unwrap();
        }
        let stdout = String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned();
        let stderr = self.stderr();
        let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!("stdout is not one JSON report ({e}):\n{stdout}\nstderr:\n{stderr}")
        });
        super::assert_valid_report(&report);
        (status.code().unwrap_or(-1), report, stderr)
    }

    /// SIGKILL (no revert: what the watchdog and the guard are for).
    pub fn kill(mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Injector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The drain figures of a report (`revert.details.proxy`).
pub fn drain_of(report: &Value) -> &Value {
    &report["revert"]["details"]["proxy"]
}
