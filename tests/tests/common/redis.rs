//! redis-server (Debian package redis-server) for the tests: on a free loopback port, or
//! inside a lab namespace; killed when the value drops, even when the test fails.
// Test support: a failed step is the test failing, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::KillOnDrop;

pub struct Redis {
    pub addr: SocketAddr,
    /// The namespace it runs in, if any (for `redis-cli` against it).
    namespace: Option<String>,
    server: KillOnDrop,
}

const ARGS: [&str; 8] = [
    "--save",
    "",
    "--appendonly",
    "no",
    "--protected-mode",
    "no",
    "--maxclients",
    "10000",
];

impl Redis {
    /// On a free loopback port (another, if a parallel test took it first).
    pub fn start() -> Redis {
        for _ in 0..5 {
            let addr = SocketAddr::from(([127, 0, 0, 1], super::free_port()));
            if let Some(redis) = Redis::try_spawn(Command::new("redis-server"), addr, None) {
                return redis;
            }
        }
        panic!("redis-server found no free port in 5 tries");
    }

    /// Inside `ns` (through `ip netns exec`), listening on `addr`.
    pub fn in_namespace(ns: &str, addr: SocketAddr) -> Redis {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, "redis-server"]);
        Redis::spawn(cmd, addr, Some(ns.to_owned()))
    }

    fn spawn(cmd: Command, addr: SocketAddr, namespace: Option<String>) -> Redis {
        Redis::try_spawn(cmd, addr, namespace)
            .unwrap_or_else(|| panic!("redis-server exited before answering on {addr}"))
    }

    /// `None` if the server exits before it answers (its port was taken).
    fn try_spawn(mut cmd: Command, addr: SocketAddr, namespace: Option<String>) -> Option<Redis> {
        let child = cmd
            .args([
                "--port",
                &addr.port().to_string(),
                "--bind",
                &addr.ip().to_string(),
            ])
            .args(ARGS)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server (Debian package redis-server): {e}")
            });
        let mut redis = Redis {
            addr,
            namespace,
            server: KillOnDrop(child),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while redis.cli(&["PING"]).trim() != "PONG" {
            if redis.server.0.try_wait().ok().flatten().is_some() {
                return None;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not answer on {addr}"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        Some(redis)
    }

    /// `redis-cli` against this server; its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut cmd = match &self.namespace {
            Some(ns) => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", ns, "redis-cli"]);
                cmd
            }
            None => Command::new("redis-cli"),
        };
        cmd.args([
            "-h",
            &self.addr.ip().to_string(),
            "-p",
            &self.addr.port().to_string(),
        ]);
        let out = super::run(cmd.args(args));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// How many clients redis has right now (INFO clients).
    pub fn connected_clients(&self) -> u64 {
        self.cli(&["INFO", "clients"])
            .lines()
            .find_map(|l| l.strip_prefix("connected_clients:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("redis INFO clients has no connected_clients"))
    }

    /// Stops the server now (an upstream that dies mid-run).
    pub fn kill(&mut self) {
        let _ = self.server.0.kill();
        let _ = self.server.0.wait();
    }
}
