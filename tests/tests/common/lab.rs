//! A lab of a test's own (docs/lab.md): `scripts/lab.sh up` in a state directory named
//! after the test process, kubectl against it, `lab.sh down` when dropped (a failing test
//! too). The remote-mode and runbook tests add what they measure to it
//! (`remote_support/lab.rs`, `runbook_support/lab.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::Instant;

use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A running lab of its own (its own state directory), taken down on drop.
pub struct Lab {
    pub dir: PathBuf,
    pub kubeconfig: String,
    pub base_url: String,
}

impl Lab {
    /// `scripts/lab.sh up ARGS` in `/run/chaos-lab/NAME-PID`; the exports it prints kept.
    pub fn start(name: &str, args: &[&str]) -> Lab {
        super::require_root("the lab: network namespaces, cgroups, nftables");
        let dir = PathBuf::from(format!("/run/chaos-lab/{name}-{}", std::process::id()));
        let t0 = Instant::now();
        let out = Command::new(root().join("scripts/lab.sh"))
            .arg("up")
            .args(args)
            .env("CHAOS_LAB_DIR", &dir)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "lab.sh up failed: {}\n{stdout}",
            String::from_utf8_lossy(&out.stderr)
        );
        eprintln!("lab.sh up: {:.1} s", t0.elapsed().as_secs_f64());
        let export = |name: &str| {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap_or_else(|| panic!("no {name} in {stdout}"))
                .trim_matches('\'')
                .to_owned()
        };
        Lab {
            kubeconfig: export("KUBECONFIG"),
            base_url: export("BASE_URL"),
            dir,
        }
    }

    /// `kubectl ARGS` against the lab, at most 120 s.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("kubectl")
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap()
    }

    /// `kubectl ARGS`, which must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `kubectl ARGS -o json`, parsed.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ok(&all)).unwrap()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let t0 = Instant::now();
        let out = Command::new(root().join("scripts/lab.sh"))
            .arg("down")
            .env("CHAOS_LAB_DIR", &self.dir)
            .output();
        if let Ok(out) = out {
            eprintln!(
                "lab.sh down: exit {:?} after {:.1} s",
                out.status.code(),
                t0.elapsed().as_secs_f64()
            );
        }
    }
}
